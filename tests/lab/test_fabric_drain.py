# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Maintenance drain of a spine without loss (issue 17 item 3), in the namespace lab.

The fabric (``fabric-drain.yml``) also runs every BGP hardening option (GTSM, per-session TCP-MD5
keys, maximum-prefix), so bringing it up proves those sessions establish.  Then, as an operator
would: set ``drain: true`` on spine01 in the fabric file, re-render, apply the difference of
spine01's frr.conf with vtysh (``bgp graceful-shutdown``), while hosts of different racks ping
each other every 10 ms.  Asserted: no ping lost; every ToR's routes to the other racks use only
spine02 in FRR's RIB and in the kernel FIB (the paths via spine01 arrive with GRACEFUL_SHUTDOWN and
local-pref 0); undraining (the original config back) restores full ECMP, again without loss.
Times are printed, not asserted.

Run (root): ``.venv/bin/python -m pytest -q -p no:cacheprovider -m lab tests/lab/test_fabric_drain.py -rP``
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labtestlib import rack_prefixes, running_lab, show_paths, skip_unless_lab, tors, uplinks

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import render_frr
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all
from lab.fabric_lab import FabricLab, PingFlood, PingStats
from lab.netns import wait_for

pytestmark = pytest.mark.lab

FABRIC = Path(__file__).resolve().parent / "fabric-drain.yml"
PREFIX = "ccf-t-drain-"
SECRET = "lab-only-not-a-secret"  # the lab's BGP password (bgp.passwords: per_session)
DRAINED = "spine01"
INTERVAL = 0.01


def fabric_doc(*, drain: bool) -> dict[str, Any]:
    """The fabric file, with ``drain`` set on spine01."""
    doc = yaml.safe_load(FABRIC.read_text())
    doc = copy.deepcopy(doc)
    doc["spines"][0]["drain"] = drain
    return doc


@pytest.fixture(scope="module")
def drain_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricLab]:
    skip_unless_lab(PREFIX)
    out = tmp_path_factory.mktemp("fabric-drain") / "out"
    render_all(build_plan(load_fabric(fabric_doc(drain=False))), out, bgp_password=SECRET)
    with running_lab(out, PREFIX, timeout=120) as lab:
        yield lab


def remote_paths(lab: FabricLab) -> dict[str, dict[str, dict[str, list[str]]]]:
    """{tor: {prefix of another rack: {"rib": hops, "fib": hops}}} for every ToR."""
    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    racks = sorted({n["rack"] for n in lab.topology.networks})
    for tor in tors(lab):
        own = lab.topology.devices[tor]["rack"]
        observed = lab.observe(tor)
        out[tor] = {
            prefix: {
                "rib": fabric_intent.rib_nexthops(observed["routes"], prefix),
                "fib": fabric_intent.fib_nexthops(observed["kernel_routes"], prefix),
            }
            for rack in racks
            if rack != own
            for prefix in rack_prefixes(lab, rack)
        }
    return out


def uplinks_to(lab: FabricLab, tor: str, spine: str) -> set[str]:
    return {
        i["name"]
        for i in lab.topology.devices[tor]["interfaces"]
        if i["kind"] == "uplink" and i["peer_device"] == spine
    }


def only_via(lab: FabricLab, spine: str) -> Callable[[], bool]:
    """Predicate: every ToR reaches every other rack through ``spine`` only (RIB and FIB)."""

    def check() -> bool:
        for tor, prefixes in remote_paths(lab).items():
            allowed = uplinks_to(lab, tor, spine)
            for hops in prefixes.values():
                for kind in ("rib", "fib"):
                    used = {hop.rpartition("%")[2] for hop in hops[kind]}
                    if not used or not used <= allowed:
                        return False
        return True

    return check


def full_ecmp(lab: FabricLab) -> bool:
    for tor, prefixes in remote_paths(lab).items():
        count = len(uplinks(lab, tor))
        if any(len(h["rib"]) != count or len(h["fib"]) != count for h in prefixes.values()):
            return False
    return True


def start_floods(lab: FabricLab) -> list[tuple[str, str, PingFlood]]:
    """Pings every 10 ms between hosts of different racks (1 -> 2, 2 -> 3, 3 -> 1)."""
    pairs = [("r001-h01", "r002-h01"), ("r002-h02", "r003-h01"), ("r003-h02", "r001-h02")]
    return [(src, dst, lab.ping_flood(src, lab.host_address(dst), interval=INTERVAL)) for src, dst in pairs]


def stop_floods(floods: list[tuple[str, str, PingFlood]], label: str) -> list[PingStats]:
    stats = []
    for src, dst, flood in floods:
        result = flood.stop()
        stats.append(result)
        rate = f"one per {result.actual_interval * 1000:.1f} ms"
        print(f"  {label}: {src} -> {dst}: sent {result.sent} ({rate}), lost {result.lost}")
    return stats


def gshut_local_prefs(lab: FabricLab, tor: str, prefix: str) -> list[tuple[str, Any, bool]]:
    """(peer, local-pref, carries GRACEFUL_SHUTDOWN) of every path of ``prefix`` on ``tor``."""
    data = lab.nodes[tor].json(f"show bgp ipv4 unicast {prefix} json")
    out = []
    for path in data.get("paths", []):
        community = str(path.get("community", {}).get("string", "")).lower().replace("-", "")
        out.append(
            (path.get("peer", {}).get("hostname", "?"), path.get("locPrf"), "gracefulshutdown" in community)
        )
    return out


def test_sessions_up_with_gtsm_passwords_and_maximum_prefix(drain_lab: FabricLab) -> None:
    lab = drain_lab
    assert lab.differences() == []
    spine = lab.nodes["spine01"].json("show bgp neighbors json")
    assert spine, "spine01 has no neighbors"
    for address, info in spine.items():
        assert info.get("bgpState") == "Established", (address, info.get("bgpState"))
    config = lab.nodes["spine01"].vtysh("show running-config")
    assert "ttl-security hops 1" in config and "maximum-prefix" in config
    assert " password " in config


def test_drain_spine_without_loss_then_undrain(drain_lab: FabricLab) -> None:
    lab = drain_lab
    other = "spine02"
    assert full_ecmp(lab)
    drained_conf = render_frr(build_plan(load_fabric(fabric_doc(drain=True))), DRAINED, bgp_password=SECRET)
    normal_conf = lab.topology.config(DRAINED).read_text()
    watched = rack_prefixes(lab, 2)

    floods = start_floods(lab)
    time.sleep(1.0)
    started = time.monotonic()
    commands = lab.apply_config(DRAINED, drained_conf)
    try:
        wait_for(only_via(lab, other), timeout=30, interval=0.05, what=f"every ToR via {other} only")
    except TimeoutError:
        show_paths(lab, "drain did not complete", "r001-tor1", watched)
        stop_floods(floods, "drain")
        raise
    took = time.monotonic() - started
    time.sleep(1.0)
    print(f"--- drain {DRAINED}: vtysh {commands}; every ToR via {other} only after {took:.2f}s")
    drained_stats = stop_floods(floods, "drain")
    show_paths(lab, f"{DRAINED} drained", "r001-tor1", watched)
    prefs = gshut_local_prefs(lab, "r001-tor1", watched[0])
    print(f"  r001-tor1 paths of {watched[0]}: {prefs}")
    router_bgp = f"router bgp {lab.topology.devices[DRAINED]['asn']}"
    assert commands == [router_bgp, "bgp graceful-shutdown", "exit"]
    assert only_via(lab, other)()
    # the paths via spine01 are still there, de-preferred: GRACEFUL_SHUTDOWN and local-pref 0
    assert any(gshut and pref == 0 for _peer, pref, gshut in prefs), prefs
    assert all(s.lost == 0 and s.sent > 50 for s in drained_stats), drained_stats

    floods = start_floods(lab)
    time.sleep(1.0)
    started = time.monotonic()
    commands = lab.apply_config(DRAINED, normal_conf)
    wait_for(lambda: full_ecmp(lab), timeout=30, interval=0.05, what="full ECMP again")
    took = time.monotonic() - started
    time.sleep(1.0)
    print(f"--- undrain {DRAINED}: vtysh {commands}; full ECMP after {took:.2f}s")
    undrained_stats = stop_floods(floods, "undrain")
    show_paths(lab, f"{DRAINED} undrained", "r001-tor1", watched)
    assert commands == [
        f"router bgp {lab.topology.devices[DRAINED]['asn']}",
        "no bgp graceful-shutdown",
        "exit",
    ]
    assert all(s.lost == 0 for s in undrained_stats), undrained_stats
    lab.wait_converged(timeout=60)
