# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Intent vs. observed FRR state, on FRR 8.4 JSON recorded from the namespace lab.

The samples in ``frr_samples/`` were written by ``tests/lab/record_intent_samples.py``: the lab
fabric (2 spines, 3 racks, r001-tor1 with 3 uplinks) converged, and with r001-tor1's uplink 3
down; each file carries the topology it was recorded from.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import LAB_FILE, LAB_OSPF_FILE, make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fi
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.topology import render_topology

SAMPLES = Path(__file__).resolve().parent / "frr_samples"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def diffs_of(data: dict[str, Any], device: str, **override: Any) -> list[fi.Difference]:
    intents = fi.intent_from_topology(data["topology"])
    observed = dict(data["observed"][device], **override)
    return fi.compare(intents[device], observed)


# ------------------------------------------------------------------------------------ intent
def test_intent_of_the_lab_fabric() -> None:
    intents = fi.intent_from_plan(build_plan(load_fabric(LAB_FILE)))
    assert sorted(intents) == ["r001-tor1", "r002-tor1", "r003-tor1", "spine01", "spine02"]
    tor = intents["r001-tor1"]
    assert tor.routing == "bgp" and len(tor.sessions) == 3
    # every other rack: all 3 uplinks; spine01 is reached over 2 of them, spine02 over 1
    assert tor.routes["10.0.2.0/24"] == 3 and tor.routes["10.255.0.11/32"] == 3
    assert tor.routes["10.255.0.1/32"] == 2 and tor.routes["10.255.0.2/32"] == 1
    assert "10.0.1.0/24" not in tor.routes  # its own rack network
    spine = intents["spine01"]
    assert spine.routes["10.0.1.0/24"] == 2 and spine.routes["10.0.2.0/24"] == 1
    assert "10.255.0.2/32" not in spine.routes  # spines never learn each other under BGP
    assert sorted(spine.sessions.values()) == ["r001-tor1", "r001-tor1", "r002-tor1", "r003-tor1"]


def test_bgp_host_expects_loopbacks_and_its_host_network_only() -> None:
    # hosts peer over vm: their sessions carry loopbacks and vm subnets; mgmt, storage and service
    # of other racks route via their own gateways (render.host), so they are never expected
    plan = plan_of(make_doc(bgp={"hosts": True, "host_network": "vm"}))
    host = fi.intent_from_plan(plan)["r001-h01"]
    vm_nets = {n.prefix for n in plan.networks if n.role == "vm"}  # its own rack's too, from the ToR
    loopbacks = {d.loopback for d in plan.devices.values() if d.name != "r001-h01"}
    assert set(host.routes) == vm_nets | loopbacks
    assert set(host.routes.values()) == {fi.PRESENT}
    tor = fi.intent_from_plan(plan)["r001-tor1"]
    assert {n.prefix for n in plan.networks if n.rack == 2} <= set(tor.routes)  # ToRs: everything


def test_ospf_intent_counts_adjacencies_and_spine_loopbacks() -> None:
    intents = fi.intent_from_plan(build_plan(load_fabric(LAB_OSPF_FILE)))
    spine = intents["spine01"]
    assert spine.sessions == {} and spine.ospf_neighbors == {
        "10.255.0.7": 2,
        "10.255.0.9": 1,
        "10.255.0.11": 1,
    }
    # the other spine's loopback through every ToR link whose ToR also reaches spine02
    assert spine.routes["10.255.0.2/32"] == 4


def test_intent_from_plan_equals_intent_from_topology_json() -> None:
    plan = build_plan(load_fabric(LAB_FILE))
    assert fi.intent_from_plan(plan) == fi.intent_from_topology(json.loads(render_topology(plan)))


# ------------------------------------------------------------------------------------ recorded
@pytest.mark.parametrize("routing", ["bgp", "ospf"])
@pytest.mark.parametrize("device", ["r001-tor1", "spine01"])
def test_converged_lab_has_no_difference(routing: str, device: str) -> None:
    assert diffs_of(sample(f"{routing}-converged"), device) == []


@pytest.mark.parametrize("routing", ["bgp", "ospf"])
def test_uplink_down_is_reported(routing: str) -> None:
    data = sample(f"{routing}-uplink-down")
    tor = diffs_of(data, "r001-tor1")
    paths = {d.subject: d for d in tor if d.kind == fi.KIND_PATHS}
    for prefix in ("10.0.2.0/24", "10.4.3.0/24", "10.255.0.9/32"):
        assert paths[prefix].expected == "3 paths"
        assert paths[prefix].observed.startswith("2 paths (")
        assert "%up3" not in paths[prefix].observed
    assert paths["10.255.0.1/32"].expected == "2 paths"
    sessions = [d for d in tor if d.kind == fi.KIND_SESSION]
    assert len(sessions) == 1
    assert not [d for d in tor if d.kind in (fi.KIND_MISSING, fi.KIND_FIB, fi.KIND_LEAK)]
    spine = diffs_of(data, "spine01")
    assert {d.subject for d in spine if d.kind == fi.KIND_PATHS} >= {"10.0.1.0/24", "10.255.0.7/32"}
    assert "r001-tor1: path-count 10.0.2.0/24: expected 3 paths, observed 2 paths (" in str(
        paths["10.0.2.0/24"]
    )


# ------------------------------------------------------------------------------------ mutations
def test_fib_out_of_sync_with_rib_is_reported() -> None:
    data = sample("bgp-converged")
    kernel = copy.deepcopy(data["observed"]["r001-tor1"]["kernel_routes"])
    route = next(r for r in kernel if r["dst"] == "10.0.2.0/24")
    route["nexthops"] = route["nexthops"][:2]
    diffs = diffs_of(data, "r001-tor1", kernel_routes=kernel)
    assert [(d.kind, d.subject, d.expected) for d in diffs] == [(fi.KIND_FIB, "10.0.2.0/24", "3 paths")]


def test_missing_prefix_leak_and_missing_session() -> None:
    data = sample("bgp-converged")
    observed = data["observed"]["r001-tor1"]
    routes = copy.deepcopy(observed["routes"])
    del routes["10.0.3.0/24"]
    leaked = copy.deepcopy(routes["10.0.2.0/24"])
    leaked[0]["prefix"] = "192.0.2.0/24"
    routes["192.0.2.0/24"] = leaked
    summary = copy.deepcopy(observed["bgp_summary"])
    peers = summary["peers"]
    peers.pop(sorted(peers)[0])
    first = sorted(peers)[0]
    peers[first]["state"] = "Active"
    diffs = diffs_of(data, "r001-tor1", routes=routes, bgp_summary=summary)
    kinds = sorted((d.kind, d.subject.split()[0]) for d in diffs)
    assert (fi.KIND_MISSING, "10.0.3.0/24") in kinds
    assert (fi.KIND_LEAK, "192.0.2.0/24") in kinds
    assert (fi.KIND_SESSION_MISSING, "10.254.0.16") in kinds
    assert (fi.KIND_SESSION, first) in kinds


def test_ospf_adjacency_not_full() -> None:
    data = sample("ospf-converged")
    neighbors = copy.deepcopy(data["observed"]["spine01"]["ospf_neighbors"])
    entry = neighbors["neighbors"]["10.255.0.7"][0]
    entry["nbrState"] = entry["state"] = "ExStart/-"
    diffs = diffs_of(data, "spine01", ospf_neighbors=neighbors)
    assert [str(d) for d in diffs] == [
        "spine01: session-down ospf 10.255.0.7: expected 2 Full, observed 1 Full"
    ]


# ------------------------------------------------------------------------------------ parsers
def test_bgp_summary_shapes() -> None:
    inner = {"peers": {"10.0.0.1": {"state": "Established"}, "up1": {"state": "Idle"}}}
    assert fi.bgp_peers(inner) == {"10.0.0.1": "Established", "up1": "Idle"}
    assert fi.bgp_peers({"ipv4Unicast": inner}) == fi.bgp_peers(inner)
    assert fi.bgp_peers({}) == {}


def test_kernel_nexthop_shapes() -> None:
    kernel = [
        {"dst": "10.255.0.1", "gateway": "10.254.0.16", "dev": "up1"},
        {"dst": "10.0.2.0/24", "nexthops": [{"via": {"family": "inet6", "host": "fe80::1"}, "dev": "up1"}]},
    ]
    assert fi.fib_nexthops(kernel, "10.255.0.1/32") == ["10.254.0.16%up1"]
    assert fi.fib_nexthops(kernel, "10.0.2.0/24") == ["fe80::1%up1"]
    assert fi.fib_nexthops(kernel, "10.9.9.0/24") == []


def test_compare_all_reports_unobserved_routers() -> None:
    data = sample("bgp-converged")
    intents = fi.intent_from_topology(data["topology"])
    diffs = fi.compare_all(intents, data["observed"])
    assert {d.device for d in diffs} == {"r002-tor1", "r003-tor1", "spine02"}
    assert all(d.kind == "unobserved" for d in diffs)


# ------------------------------------------------------------------------------------ module
class _FakeModule:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def fail_json(self, **kwargs: Any) -> None:
        raise AssertionError(kwargs)


def test_module_run(tmp_path: Path) -> None:
    from ansible_collections.compleat.cloud.plugins.modules import fabric_intent

    data = sample("bgp-uplink-down")
    topo = tmp_path / "topology.json"
    topo.write_text(json.dumps(data["topology"]), encoding="utf-8")
    params = {
        "topology": str(topo),
        "topology_data": None,
        "device": "spine01",
        "ospf_neighbors": None,
        "fail_on_differences": False,
        **data["observed"]["spine01"],
    }
    result = fabric_intent.run(_FakeModule(params))
    assert result["changed"] is False and result["ok"] is False
    assert any(m.startswith("spine01: path-count 10.0.1.0/24: expected 2 paths") for m in result["messages"])
    assert result["intent"]["name"] == "spine01"
    with pytest.raises(AssertionError, match="not a router"):
        fabric_intent.run(_FakeModule(dict(params, device="r001-h01")))
