# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``bgp.anycast``: host-originated /32s out of anycast pools (LB node VIPs), issue 20.

- fabrics without the key (or with ``anycast: []``) render byte for byte as before (the FRR
  goldens of ``golden_frr/``);
- with it, lines are only added: every ``FABRIC`` list and every spine's ``RACKnnn`` list accept
  the pools' /32s, a ToR's ``HOSTS`` list too, a host's ``TO-TOR`` and a ToR's ``TO-SPINE`` get an
  entry 20 (``ANYCAST`` + AS-path condition), ``maximum-prefix`` grows by the pools' size;
- every rendered file passes ``vtysh -C`` (plain, EVPN, hardened, unnumbered);
- validation: needs BGP-to-host, overlaps with any pool collected with key paths;
- topology.json carries the pools (only when declared) and the live intent check takes their /32s
  as legitimate, neither required nor leaks.
The routing itself (two LB nodes, ECMP, withdraw) runs in tests/lab/test_lb_lab.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import (
    GOLDEN_FRR,
    TWO_TORS,
    assert_vtysh_accepts,
    golden_frr_docs,
    make_doc,
    needs_vtysh,
    plan_of,
    prefix_list,
    route_map_lines,
    validation_errors,
)

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.anycast import (
    anycast_capacity,
    anycast_clauses,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.intent import (
    KIND_LEAK,
    compare,
    in_anycast_pool,
    intent_from_topology,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import (
    ROLE_HOST,
    ROLE_SPINE,
    ROLE_TOR,
    Plan,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import render_frr

POOLS = ["10.96.0.0/24", "10.97.0.5/32"]
CLAUSES = ["10.96.0.0/24 ge 32", "10.97.0.5/32"]


def anycast_doc(**bgp: Any) -> dict[str, Any]:
    """Two-ToR racks with BGP hosts and two anycast pools."""
    return make_doc(defaults=TWO_TORS, bgp={"hosts": True, "bfd_interval": 150, "anycast": POOLS, **bgp})


def _configs(plan: Plan) -> dict[str, str]:
    return {device.name: render_frr(plan, device.name) for device in plan.routers()}


# ------------------------------------------------------------------------------------ unchanged
@pytest.mark.parametrize("variant", sorted(golden_frr_docs()))
@pytest.mark.parametrize("anycast", ["omitted", "empty"])
def test_fabrics_without_anycast_render_as_before(variant: str, anycast: str) -> None:
    doc = golden_frr_docs()[variant]
    if anycast == "empty":
        doc.setdefault("bgp", {})["anycast"] = []
    plan = plan_of(doc)
    for device in plan.routers():
        golden = (GOLDEN_FRR / variant / device.name / "frr.conf").read_text()
        assert render_frr(plan, device.name) == golden, f"{variant}/{device.name} changed"


def test_anycast_only_adds_lines() -> None:
    before = _configs(plan_of(anycast_doc(anycast=[])))
    after = _configs(plan_of(anycast_doc()))
    assert before.keys() == after.keys()
    for name, text in after.items():
        lines = text.splitlines()
        old = iter(lines)
        missing = [line for line in before[name].splitlines() if line not in old]  # subsequence check
        assert not missing, f"{name}: lines lost or reordered: {missing[:3]}"
        assert len(lines) > len(before[name].splitlines()), name


# ------------------------------------------------------------------------------------ content
def test_every_fabric_list_accepts_the_pools() -> None:
    plan = plan_of(anycast_doc())
    assert anycast_clauses(plan) == CLAUSES
    for name, text in _configs(plan).items():
        assert prefix_list(text, "FABRIC")[-2:] == CLAUSES, name


def test_host_sends_only_what_it_originates() -> None:
    plan = plan_of(anycast_doc())
    host = next(d for d in plan.routers() if d.role == ROLE_HOST)
    text = render_frr(plan, host.name)
    assert prefix_list(text, "LOCAL") == list(host.announce)  # no VIP lines: per-VIP lists are not needed
    assert prefix_list(text, "ANYCAST") == CLAUSES
    assert "bgp as-path access-list LOCAL-ORIGIN seq 10 permit ^$" in text.splitlines()
    assert route_map_lines(text, "TO-TOR", 10) == ["match ip address prefix-list LOCAL"]
    assert route_map_lines(text, "TO-TOR", 20) == [
        "match ip address prefix-list ANYCAST",
        "match as-path LOCAL-ORIGIN",
    ]
    assert route_map_lines(text, "FROM-TOR", 10) == ["match ip address prefix-list FABRIC"]


def test_tor_accepts_from_hosts_and_passes_only_its_hosts_upstream() -> None:
    plan = plan_of(anycast_doc())
    for tor in (d for d in plan.routers() if d.role == ROLE_TOR):
        text = render_frr(plan, tor.name)
        hosts = prefix_list(text, "HOSTS")
        assert hosts[-2:] == CLAUSES and len(hosts) == 2 + 2, tor.name  # 2 host loopbacks + pools
        assert not set(CLAUSES) & set(prefix_list(text, "LOCAL")), tor.name
        assert "bgp as-path access-list HOST-ORIGIN seq 10 permit ^[0-9]+$" in text.splitlines()
        assert route_map_lines(text, "TO-SPINE", 20) == [
            "match ip address prefix-list ANYCAST",
            "match as-path HOST-ORIGIN",
        ]
        assert route_map_lines(text, "FROM-HOST", 10) == ["match ip address prefix-list HOSTS"]


def test_spines_accept_the_pools_from_every_rack() -> None:
    plan = plan_of(anycast_doc())
    for spine in (d for d in plan.routers() if d.role == ROLE_SPINE):
        text = render_frr(plan, spine.name)
        racks = {line.split()[2] for line in text.splitlines() if line.startswith("ip prefix-list RACK")}
        assert racks == {"RACK001", "RACK002", "RACK003"}, spine.name
        for rack in racks:
            assert prefix_list(text, rack)[-2:] == CLAUSES, (spine.name, rack)
        assert "  maximum-paths 64" in text.splitlines()
        assert " bgp bestpath as-path multipath-relax" in text.splitlines()  # LB nodes' ASNs differ


def test_evpn_and_anycast_share_one_local_origin_list() -> None:
    plan = plan_of(anycast_doc(evpn=True))
    host = next(d for d in plan.routers() if d.role == ROLE_HOST)
    text = render_frr(plan, host.name)
    assert text.count("bgp as-path access-list LOCAL-ORIGIN") == 1
    assert route_map_lines(text, "EVPN-LOCAL", 10)[0] == "match as-path LOCAL-ORIGIN"


def test_maximum_prefix_allows_the_pools() -> None:
    hardening = {"maximum_prefix": {"enabled": True, "headroom": 100}}
    plain = _configs(plan_of(anycast_doc(anycast=[], **hardening)))
    plan = plan_of(anycast_doc(**hardening))
    assert anycast_capacity(plan) == 256 + 1
    for name, text in _configs(plan).items():
        old = [int(line.split()[3]) for line in plain[name].splitlines() if " maximum-prefix " in line]
        new = [int(line.split()[3]) for line in text.splitlines() if " maximum-prefix " in line]
        assert old and new == [limit + 257 for limit in old], name


# ------------------------------------------------------------------------------------ vtysh -C
@needs_vtysh
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"evpn": True},
        {"gtsm": True, "passwords": "per_session", "maximum_prefix": {"enabled": True, "restart": 5}},
        "unnumbered",
    ],
    ids=["plain", "evpn", "hardened", "unnumbered"],
)
def test_every_anycast_config_passesvtysh_check(variant: Any, tmp_path: Path) -> None:
    if variant == "unnumbered":
        doc = anycast_doc()
        doc["pools"] = {"loopbacks": "10.255.0.0/20", "unnumbered": True}
    else:
        doc = anycast_doc(**variant)
    plan = plan_of(doc)
    secret = "s3cr3t" if plan.fabric.bgp.passwords != "none" else None
    assert_vtysh_accepts(plan, tmp_path, bgp_password=secret)


# ------------------------------------------------------------------------------------ validation
def test_anycast_needs_bgp_to_host() -> None:
    doc = make_doc(bgp={"anycast": ["10.96.0.0/24"]})
    assert ("bgp.anycast", "needs bgp.hosts: true (hosts announce the /32s)") in validation_errors(doc)
    doc = make_doc(routing="ospf", bgp={"hosts": True, "anycast": ["10.96.0.0/24"]})
    assert ("bgp.anycast", "needs routing: bgp (hosts announce over BGP)") in validation_errors(doc)


def test_anycast_pool_overlaps_are_collected_with_key_paths() -> None:
    doc = anycast_doc(anycast=["10.255.1.0/24", "10.96.0.0/24", "10.96.0.128/25", "10.64.8.0/24", "10.96.0"])
    errors = validation_errors(doc)
    assert ("bgp.anycast[0]", "overlaps pools.loopbacks (10.255.0.0/20)") in errors  # inside the loopbacks
    assert ("bgp.anycast[2]", "overlaps bgp.anycast[1] (10.96.0.0/24)") in errors  # inside another pool
    assert ("bgp.anycast[3]", "overlaps networks.vm.pool (10.64.0.0/16)") in errors  # inside a network
    assert any(path == "bgp.anycast[4]" and "malformed CIDR" in message for path, message in errors)
    assert not any(path == "bgp.anycast[1]" for path, _message in errors)


def test_anycast_pool_containing_a_pool_is_an_overlap() -> None:
    errors = validation_errors(anycast_doc(anycast=["10.0.0.0/8"]))
    assert any(path.startswith(("bgp.anycast[0]", "pools.", "networks.")) for path, _m in errors)
    assert any("overlaps bgp.anycast[0]" in message or path == "bgp.anycast[0]" for path, message in errors)


def test_anycast_must_be_a_list_of_cidrs() -> None:
    assert ("bgp.anycast", "must be a list") in list(validation_errors(anycast_doc(anycast="10.96.0.0/24")))
    errors = validation_errors(anycast_doc(anycast=["10.96.0.1/24"]))
    assert any(path == "bgp.anycast[0]" and "host bits set" in message for path, message in errors)


# ------------------------------------------------------------------------------------ intent, export
def test_topology_carries_the_pools_only_when_declared() -> None:
    assert plan_to_dict(plan_of(anycast_doc()))["fabric"]["anycast"] == POOLS
    assert "anycast" not in plan_to_dict(plan_of(anycast_doc(anycast=[])))["fabric"]


def test_intent_accepts_anycast_host_routes_but_flags_other_leaks() -> None:
    topology = plan_to_dict(plan_of(anycast_doc()))
    tor = intent_from_topology(topology, only=["r001-tor1"])["r001-tor1"]
    assert tor.anycast == tuple(POOLS)
    assert not [p for p in tor.routes if p.startswith(("10.96.", "10.97."))]  # never required
    entry = [{"protocol": "bgp", "selected": True, "nexthops": [{"ip": "10.0.1.11", "fib": True}]}]
    routes = {prefix: copy.deepcopy(entry) for prefix in ("10.96.0.10/32", "10.97.0.5/32", "10.96.1.0/32")}
    routes["10.96.0.0/24"] = copy.deepcopy(entry)  # the pool itself is no host route
    leaks = {d.subject for d in compare(tor, {"routes": routes}) if d.kind == KIND_LEAK}
    assert leaks == {"10.96.1.0/32", "10.96.0.0/24"}
    plain = intent_from_topology(plan_to_dict(plan_of(anycast_doc(anycast=[]))), only=["r001-tor1"])
    leaks = {d.subject for d in compare(plain["r001-tor1"], {"routes": routes}) if d.kind == KIND_LEAK}
    assert {"10.96.0.10/32", "10.97.0.5/32"} <= leaks  # without the option they are leaks
    assert in_anycast_pool("10.97.0.5/32", POOLS) and not in_anycast_pool("10.97.0.4/32", POOLS)
