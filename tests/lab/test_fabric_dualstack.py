# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dual stack in the namespace lab: the lab fabric with ``ipv6.prefix``, IPv6 routed by BGP.

Numbered links (a /127 per link, a second BGP session per link carrying ipv6 unicast) and
unnumbered links (one session per link by interface, both families, RFC 5549).  Checks: every
IPv6 session established, every ToR's kernel FIB reaches every other rack's /64s over all its
uplinks (ECMP), and ``ping -6`` between hosts of different racks.

Run (root): ``.venv/bin/pytest -m lab tests/lab/test_fabric_dualstack.py -rP``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from labtestlib import FABRICS, RUN_PREFIX, running_lab, skip_unless_lab, tors, uplinks

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all
from lab.fabric_lab import FabricLab
from lab.netns import wait_for

pytestmark = pytest.mark.lab

PREFIX6 = "fd00:1::/48"


def dualstack_doc(*, unnumbered: bool) -> dict[str, Any]:
    """The lab fabric (BGP) with an IPv6 prefix; unnumbered drops the IPv4 link pool too."""
    doc = yaml.safe_load(FABRICS["bgp"].read_text(encoding="utf-8"))
    doc["ipv6"] = {"prefix": PREFIX6}
    if unnumbered:
        doc["pools"] = {"loopbacks": doc["pools"]["loopbacks"], "unnumbered": True}
    return doc


def fib6_paths(lab: FabricLab, device: str, prefix: str) -> int:
    """Next hops of ``prefix`` in the kernel's IPv6 FIB of ``device`` (0: no route)."""
    routes = lab.netns.ip_json(device, "-6", "route", "show", prefix)
    if not routes:
        return 0
    route = routes[0]
    return len(route["nexthops"]) if "nexthops" in route else int("gateway" in route or "dev" in route)


def v6_sessions(lab: FabricLab, device: str) -> dict[str, str]:
    """IPv6 unicast sessions of ``device``: peer -> state."""
    summary = lab.nodes[device].json("show bgp vrf default ipv6 unicast summary json")
    return {peer: data.get("state", "") for peer, data in summary.get("peers", {}).items()}


def ping6(lab: FabricLab, src: str, dst: str, count: int = 3) -> subprocess.CompletedProcess[str]:
    """``ping -6`` from namespace ``src`` (its summary line has the RTTs)."""
    return lab.netns.exec(src, "ping", "-6", "-n", "-c", str(count), "-i", "0.2", "-W", "1", dst, check=False)


def remote_prefixes6(lab: FabricLab, rack: int) -> list[str]:
    """Every other rack's IPv6 /64s."""
    return [net["prefix6"] for net in lab.topology.networks if net["rack"] != rack]


@pytest.mark.parametrize("links", ["numbered", "unnumbered"])
def test_dual_stack_fabric_routes_ipv6_with_ecmp(links: str, tmp_path: Path) -> None:
    skip_unless_lab()
    out = tmp_path / "out"
    render_all(build_plan(load_fabric(dualstack_doc(unnumbered=links == "unnumbered"))), out)
    started = time.monotonic()
    with running_lab(out, f"{RUN_PREFIX}6{links[0]}-", timeout=90) as lab:
        v4_done = time.monotonic() - started
        topo = lab.topology
        assert topo.ipv6

        def ecmp_everywhere() -> bool:
            return all(
                fib6_paths(lab, tor, prefix) == len(uplinks(lab, tor))
                for tor in tors(lab)
                for prefix in remote_prefixes6(lab, topo.devices[tor]["rack"])
            )

        wait_for(ecmp_everywhere, timeout=60, interval=0.2, what="IPv6 ECMP in every ToR's kernel FIB")
        v6_done = time.monotonic() - started
        for name in lab.nodes:
            sessions = v6_sessions(lab, name)
            expected = len(topo.devices[name]["bgp_neighbors"])
            assert len(sessions) == expected, (name, sessions)
            assert set(sessions.values()) == {"Established"}, (name, sessions)

        hosts = topo.hosts()
        src = hosts[0]
        remote = [h for h in hosts if topo.devices[h]["rack"] != topo.devices[src]["rack"]]
        remote_tor = next(t for t in tors(lab) if topo.devices[t]["rack"] == topo.devices[remote[-1]]["rack"])
        targets = {
            "mgmt": lab_address6(lab, remote[-1], "mgmt"),
            "storage": lab_address6(lab, remote[0], "storage"),
            "ToR loopback": topo.devices[remote_tor]["loopback6"].partition("/")[0],
        }
        rtts = {}
        for what, address in targets.items():
            proc = ping6(lab, src, address)
            assert proc.returncode == 0, (what, address, proc.stdout, proc.stderr)
            rtts[what] = proc.stdout.strip().splitlines()[-1]
        tor = tors(lab)[0]
        sample = remote_prefixes6(lab, topo.devices[tor]["rack"])[0]
        print(
            f"dual stack ({links}): IPv4 intent met after {v4_done:.1f}s, "
            f"IPv6 ECMP in every FIB after {v6_done:.1f}s"
        )
        print(
            f"  {tor}: {sample} over {fib6_paths(lab, tor, sample)} paths ({len(uplinks(lab, tor))} uplinks)"
        )
        for what, line in rtts.items():
            print(f"  ping -6 {src} -> {targets[what]} ({what}): {line}")


def lab_address6(lab: FabricLab, host: str, role: str) -> str:
    """Planned IPv6 address (no prefix length) of ``host`` on network ``role``."""
    for iface in lab.topology.devices[host]["interfaces"]:
        if (iface.get("network") or iface["name"]) == role and iface.get("address6"):
            return str(iface["address6"]).partition("/")[0]
    raise KeyError(f"{host} has no IPv6 address on {role}")
