# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The way out (issue 17 item 4), in the namespace lab.

The fabric (``fabric-border.yml``) makes rack 1 the border rack: both its ToRs peer eBGP with an
upstream router over their ``ext1`` links.  The upstream is not part of the plan; the test plays
it with a namespace of its own running FRR (AS 65000) that sends ``0.0.0.0/0`` to each border ToR
(``default-originate``) and accepts whatever it is sent.  Asserted:

- every ToR has 0.0.0.0/0 in its kernel FIB: the other racks' ToRs with one next hop per uplink
  (ECMP over both spines), the border ToRs via the upstream; every spine has it over both border
  ToRs;
- the upstream's BGP table (vtysh JSON) holds exactly the public prefix and the service subnets of
  every rack (topology.json ``border.announced``): no loopback, no mgmt network, no default back;
- a host of rack 2 reaches an address of the upstream from its service address;
- with one border ToR's upstream link down, the spines send the default route to the other border
  ToR only and every other ToR keeps it over both uplinks; restored, both again.

Run (root): ``.venv/bin/python -m pytest -q -p no:cacheprovider -rP -m lab tests/lab/test_fabric_border.py``
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtestlib import render, running_lab, skip_unless_lab, tors, uplinks

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent
from lab.fabric_lab import FabricLab
from lab.frr import FrrNode
from lab.netns import wait_for

pytestmark = pytest.mark.lab

FABRIC = Path(__file__).resolve().parent / "fabric-border.yml"
PREFIX = "ccf-t-border-"
UPSTREAM = "upstream"
UPSTREAM_ADDRESS = "192.0.2.1"  # an "internet" address on the upstream's loopback
DEFAULT = "0.0.0.0/0"
STARTED: dict[str, float] = {}  # when the upstream's config was loaded


def upstream_config(border: dict[str, Any], asns: dict[str, int]) -> str:
    """FRR config of the upstream: one session per border ToR, sending only the default route."""
    lines = ["frr defaults datacenter", "hostname upstream", "no zebra nexthop kernel enable", "!"]
    lines += ["interface lo", f" ip address {UPSTREAM_ADDRESS}/32", "exit", "!"]
    for link in border["links"]:
        lines += [f"interface {link['upstream_interface']}", f" ip address {link['upstream_address']}/31"]
        lines += ["exit", "!"]
    lines += [f"router bgp {border['upstream_asn']}", f" bgp router-id {UPSTREAM_ADDRESS}"]
    lines += [" no bgp ebgp-requires-policy", " bgp bestpath as-path multipath-relax"]
    peers = [link["address"].partition("/")[0] for link in border["links"]]
    for link, peer in zip(border["links"], peers, strict=True):
        lines.append(f" neighbor {peer} remote-as {asns[link['device']]}")
    lines += [" !", " address-family ipv4 unicast"]
    lines += [f"  network {UPSTREAM_ADDRESS}/32"]
    lines += [f"  neighbor {peer} default-originate" for peer in peers]
    lines += [" exit-address-family", "exit", "!"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def border_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricLab]:
    skip_unless_lab(PREFIX)
    out = render(FABRIC, tmp_path_factory.mktemp("fabric-border") / "out")
    with running_lab(out, PREFIX, timeout=90) as lab:
        border = lab.topology.data["border"]
        lab.netns.add(UPSTREAM)
        for link in border["links"]:
            lab.netns.veth(UPSTREAM, link["upstream_interface"], link["device"], link["interface"])
        asns = {name: int(dev["asn"]) for name, dev in lab.topology.devices.items() if "asn" in dev}
        config = out / "upstream.conf"
        config.write_text(upstream_config(border, asns), encoding="utf-8")
        node = FrrNode(lab.netns, UPSTREAM, ("zebra", "bgpd"))
        lab.nodes[UPSTREAM] = node  # stopped with the lab
        node.start()
        node.load(config)
        STARTED["upstream"] = time.monotonic()
        yield lab


def fib_hops(lab: FabricLab, device: str, prefix: str = DEFAULT) -> list[str]:
    return fabric_intent.fib_nexthops(lab.nodes[device].kernel_routes(), prefix)


def default_paths(lab: FabricLab) -> dict[str, list[str]]:
    """Kernel next hops of the default route on every spine and ToR."""
    routers = [name for name, dev in lab.topology.devices.items() if dev["role"] in ("spine", "tor")]
    return {name: fib_hops(lab, name) for name in routers}


def wanted_width(lab: FabricLab, device: str) -> int:
    """Default-route next hops a router should have: a border ToR 1 (the upstream), another ToR
    one per uplink, a spine one per border ToR link to it."""
    border = lab.topology.data["border"]
    border_tors = {link["device"] for link in border["links"]}
    dev = lab.topology.devices[device]
    if dev["role"] == "tor":
        return 1 if device in border_tors else len(uplinks(lab, device))
    return sum(
        1
        for link in lab.topology.links
        if link["a"]["device"] == device and link["b"]["device"] in border_tors
    )


def test_default_route_reaches_every_tor_with_ecmp(border_lab: FabricLab) -> None:
    lab = border_lab
    want = {name: wanted_width(lab, name) for name in default_paths(lab)}
    last: dict[str, list[str]] = {}

    def complete() -> bool:
        last.update(default_paths(lab))
        return all(len(last[name]) == width for name, width in want.items())

    with contextlib.suppress(TimeoutError):  # the assertions below show what is missing
        wait_for(complete, timeout=40, interval=0.3, what="default route everywhere")
    seconds = time.monotonic() - STARTED["upstream"]
    print(f"default route in every kernel FIB {seconds:.1f} s after the upstream's config was loaded")
    for name in sorted(last):
        print(f"  {name:10} {DEFAULT} {len(last[name])} next hops: {', '.join(last[name])}")
    assert {name: len(hops) for name, hops in last.items()} == want
    for tor in tors(lab):
        if want[tor] > 1:
            assert len(last[tor]) == len(uplinks(lab, tor)) >= 2, tor
    assert not lab.differences(), "the fabric no longer matches intent"


def test_upstream_receives_exactly_the_public_and_service_prefixes(border_lab: FabricLab) -> None:
    lab = border_lab
    expected = sorted(lab.topology.data["border"]["announced"])
    received: list[str] = []

    def table() -> bool:
        routes = lab.nodes[UPSTREAM].json("show bgp ipv4 unicast json").get("routes", {})
        received[:] = sorted(prefix for prefix in routes if prefix != f"{UPSTREAM_ADDRESS}/32")
        return received == expected

    with contextlib.suppress(TimeoutError):  # the assertion below shows what arrived
        wait_for(table, timeout=30, interval=0.3, what="the upstream's BGP table")
    print(f"upstream received {len(received)} prefixes: {', '.join(received)}")
    assert received == expected


def test_a_host_reaches_the_upstream_from_its_service_address(border_lab: FabricLab) -> None:
    lab = border_lab
    source = lab.host_address("r002-h01", "service")
    proc = lab.netns.exec(
        "r002-h01", "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", source, UPSTREAM_ADDRESS, check=False
    )
    print(proc.stdout.strip().splitlines()[-2] if proc.stdout.strip() else proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_one_upstream_link_down_leaves_the_other_way_out(border_lab: FabricLab) -> None:
    lab = border_lab
    link = lab.topology.data["border"]["links"][0]
    survivor = lab.topology.data["border"]["links"][1]["device"]
    started = time.monotonic()
    lab.netns.batch(link["device"], [f"link set {link['interface']} down"])
    try:
        wait_for(
            lambda: all(len(fib_hops(lab, spine)) == 1 for spine in ("spine01", "spine02")),
            timeout=20,
            what="spines keep one way out",
        )
        seconds = time.monotonic() - started
        hops = {name: fib_hops(lab, name) for name in ("spine01", "spine02", "r002-tor1")}
        print(f"{link['device']} {link['interface']} down: spines on {survivor} only after {seconds:.2f} s")
        for name, found in hops.items():
            print(f"  {name:10} {DEFAULT} {', '.join(found)}")
        ports = {fab["a"]["interface"] for fab in lab.topology.links if fab["b"]["device"] == survivor}
        assert {hop.partition("%")[2] for hop in hops["spine01"] + hops["spine02"]} <= ports
        assert len(hops["r002-tor1"]) == 2, "a ToR keeps ECMP over its uplinks"
    finally:
        lab.netns.batch(link["device"], [f"link set {link['interface']} up"])
    wait_for(
        lambda: all(len(fib_hops(lab, s)) == 2 for s in ("spine01", "spine02")), timeout=30, what="restore"
    )
