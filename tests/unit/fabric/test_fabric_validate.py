# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation: every problem is collected with its key path and value."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import BASE_DOC, EXAMPLE_500, LAB_FILE, LAB_OSPF_FILE, make_doc

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import (
    FabricError,
    FabricValidationError,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.validate import (
    _check_overlaps,
    _Pool,
    check,
)

MULTI_FAULT = """\
name: Bad_Name
routing: bgp
link_mtu: 10000
limits: {max_racks: 16, tors_per_rack: 2, uplinks_per_tor: 4, hosts_per_rack: 16, spines: 4}
pools:
  loopbacks: 10.255.0.1/22
  links: 10.254.0.0/28
networks:
  mgmt: {pool: 10.0.0.0/20, prefix_len: 24, vlan: 5000, mtu: 1500}
  storage: {pool: 10.0.8.0/21, prefix_len: 24, vlan: 20, mtu: 20}
  averyveryverylongrole: {pool: 10.9.0.0/20, prefix_len: 24, vlan: 30}
spines:
  - {id: 1}
  - {id: 1}
racks:
  - {id: 1, uplinks: [spine01, spine09]}
  - {id: 1}
  - {id: 16}
bgp:
  spine_asn: 65000
  tor_asn_base: 4294967290
  colour: blue
"""

EXPECTED_PATHS = {
    "name",  # not a DNS label
    "link_mtu",  # > 9216
    "pools.loopbacks",  # host bits set
    "pools.links",  # too small for the limits
    "networks.mgmt.vlan",  # > 4094
    "networks.storage.mtu",  # < 68
    "networks.storage.pool",  # overlaps mgmt
    "networks.averyveryverylongrole",  # interface name > 15 characters
    "spines[1].id",  # duplicate spine id
    "racks[0].uplinks[1]",  # unknown spine
    "racks[1].id",  # duplicate rack id
    "racks[2].id",  # rack id >= max_racks
    "bgp.spine_asn",  # outside the private 4-byte range
    "bgp.tor_asn_base",  # derived ToR range leaves the private range
    "bgp.colour",  # unknown key
}


def errors_of(doc: Any) -> list[FabricError]:
    """Every error of a document (fails the test if it is valid)."""
    fabric, errors = check(doc)
    assert fabric is None and errors, "expected validation errors"
    return errors


def paths(doc: Any) -> set[str]:
    return {error.path for error in errors_of(doc)}


@pytest.mark.parametrize("path", [LAB_FILE, LAB_OSPF_FILE, EXAMPLE_500])
def test_shipped_fabrics_are_valid(path: Path) -> None:
    assert load_fabric(path).name


def test_multi_fault_file_reports_every_fault_with_its_path(tmp_path: Path) -> None:
    source = tmp_path / "bad.yml"
    source.write_text(MULTI_FAULT)
    with pytest.raises(FabricValidationError) as caught:
        load_fabric(source)
    found = {error.path for error in caught.value.errors}
    assert found >= EXPECTED_PATHS, f"missing: {EXPECTED_PATHS - found}"
    text = str(caught.value)
    for path in EXPECTED_PATHS:
        assert f"  - {path}: " in text
    by_path = {error.path: error for error in caught.value.errors}
    assert by_path["pools.loopbacks"].value == "10.255.0.1/22"
    assert "did you mean 10.255.0.0/22" in by_path["pools.loopbacks"].message
    assert by_path["racks[0].uplinks[1]"].value == "spine09"
    assert by_path["bgp.spine_asn"].value == 65000
    assert "derived range" in by_path["bgp.tor_asn_base"].message


def test_errors_are_sorted_and_serialisable() -> None:
    errors = FabricValidationError([FabricError("b", 1, "x"), FabricError("a", {"k": object()}, "y")]).errors
    assert [error.path for error in errors] == ["a", "b"]
    assert isinstance(errors[0].to_dict()["value"], str)
    assert str(FabricError("", None, "bad")) == "<root>: bad (value: None)"


def test_valid_base_document() -> None:
    fabric, errors = check(make_doc())
    assert errors == []
    assert fabric is not None
    assert [spine.name for spine in fabric.spines] == ["spine01", "spine02"]
    assert [rack.id for rack in fabric.racks] == [1, 2, 3]
    assert fabric.racks[0].uplinks == 3
    assert fabric.link_mtu == 9000
    assert fabric.bgp.spine_asn == 4200000000


def test_root_must_be_a_mapping() -> None:
    assert paths(["not", "a", "mapping"]) == {""}


def test_missing_required_keys() -> None:
    found = paths({"pools": {}, "spines": []})
    assert {"name", "pools.loopbacks", "spines"} <= found


def test_unknown_keys_with_suggestion() -> None:
    doc = make_doc(limts={"max_racks": 4})
    doc["bgp"] = {"spine_as": 4200000000}
    errors = {error.path: error.message for error in errors_of(doc)}
    assert "did you mean 'limits'" in errors["limts"]
    assert "did you mean 'spine_asn'" in errors["bgp.spine_as"]


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ("10.255.0.0", "malformed CIDR"),
        ("10.255.0.0/33", "malformed CIDR"),
        ("10.255.0.300/24", "malformed CIDR"),
        ("fd00::/64", "malformed CIDR"),
        (42, "malformed CIDR"),
        ("10.255.0.1/20", "host bits set"),
    ],
)
def test_malformed_cidr(pool: Any, message: str) -> None:
    errors = errors_of(make_doc(pools={"loopbacks": pool, "links": "10.254.0.0/20"}))
    assert [(e.path, e.value) for e in errors] == [("pools.loopbacks", pool)]
    assert message in errors[0].message


def test_overlapping_pools_name_both_keys() -> None:
    doc = make_doc()
    doc["networks"]["vm"]["pool"] = "10.0.0.0/16"  # contains mgmt 10.0.0.0/18
    errors = errors_of(doc)
    overlap = [e for e in errors if "overlaps" in e.message]
    assert len(overlap) == 1
    assert {overlap[0].path, overlap[0].message.split()[1]} == {"networks.mgmt.pool", "networks.vm.pool"}


def test_adjacent_pools_do_not_overlap() -> None:
    doc = make_doc(pools={"loopbacks": "10.255.0.0/20", "links": "10.255.16.0/20"})
    assert check(doc)[1] == []


def test_overlap_scan_is_not_quadratic() -> None:
    pools = [_Pool(i * 256, i * 256 + 255, f"p{i}", "x") for i in range(200_000)]
    pools.append(_Pool(300 * 256 + 10, 300 * 256 + 20, "inner", "y"))
    errors: list[FabricError] = []
    started = time.process_time()
    _check_overlaps(pools, errors)
    assert time.process_time() - started < 2.0
    assert [(e.path, e.message) for e in errors] == [("inner", "overlaps p300 (x)")]


def test_pools_too_small_for_the_limits() -> None:
    doc = make_doc(pools={"loopbacks": "10.255.0.0/24", "links": "10.254.0.0/25"})
    doc["networks"]["mgmt"]["pool"] = "10.0.0.0/20"  # 16 /24s for max_racks 64
    doc["networks"]["vm"]["prefix_len"] = 28  # 16 addresses < 10 + 16 hosts + 1
    errors = {e.path: e.message for e in errors_of(doc)}
    assert "pool too small" in errors["pools.loopbacks"]
    assert "/21 or larger" in errors["pools.loopbacks"]
    assert "pool too small" in errors["pools.links"]
    assert "pool too small" in errors["networks.mgmt.pool"]
    assert "too small for limits.hosts_per_rack" in errors["networks.vm.prefix_len"]


def test_prefix_len_shorter_than_pool() -> None:
    doc = make_doc()
    doc["networks"]["mgmt"]["prefix_len"] = 16
    assert "networks.mgmt.prefix_len" in paths(doc)


def test_duplicate_ids_and_names() -> None:
    doc = make_doc(
        spines=[{"id": 1}, {"id": 2, "name": "spine01"}, {"id": 2}, {"id": 3, "name": "r001-tor1"}],
        racks=[{"id": 1, "name": "a"}, {"id": 2, "name": "a"}, {"range": [2, 5]}, {"id": 4}],
    )
    errors = {(e.path, e.message.split(" (")[0]) for e in errors_of(doc)}
    assert ("spines[1].name", "duplicate device name") in errors
    assert ("spines[2].id", "duplicate spine id") in errors
    assert ("spines[3].name", "collides with ToR/host naming r<rack>-tor<t>/-h<h>") in errors
    assert ("racks[1].name", "duplicate rack name") in errors
    assert ("racks[2].range", "duplicate rack id") in errors
    assert ("racks[3].id", "duplicate rack id") in errors


def test_overlapping_ranges_report_once_per_pair() -> None:
    doc = make_doc(racks=[{"range": [1, 40]}, {"range": [10, 50]}])
    dup = [e for e in errors_of(doc) if "duplicate rack id" in e.message]
    assert len(dup) == 1
    assert dup[0].value == 10


def test_rack_ids_below_max_racks() -> None:
    doc = make_doc(racks=[{"id": 64}, {"range": [60, 70]}, {"id": 0}])
    assert {"racks[0].id", "racks[1].range", "racks[2].id"} <= paths(doc)


def test_rack_entry_needs_id_or_range() -> None:
    doc = make_doc(racks=[{"tors": 1}, {"id": 1, "range": [2, 3]}, {"range": [5, 4]}, {"range": "1-4"}])
    found = paths(doc)
    assert {"racks[0]", "racks[1]", "racks[2].range", "racks[3].range"} <= found


def test_rack_shape_within_limits() -> None:
    doc = make_doc(racks=[{"id": 1, "tors": 3, "uplinks": 5, "hosts": 17}])
    assert {"racks[0].tors", "racks[0].uplinks", "racks[0].hosts"} <= paths(doc)


def test_uplink_names_must_be_spines() -> None:
    doc = make_doc(racks=[{"id": 1, "uplinks": ["spine02", "spine07", 3]}])
    errors = {e.path: e for e in errors_of(doc)}
    assert errors["racks[0].uplinks[1]"].message == "uplink names an unknown spine"
    assert "racks[0].uplinks[2]" in errors


def test_spine_id_within_limits() -> None:
    assert "spines[1].id" in paths(make_doc(spines=[{"id": 1}, {"id": 5}]))


@pytest.mark.parametrize(
    ("bgp", "path"),
    [
        ({"spine_asn": 65000}, "bgp.spine_asn"),
        ({"spine_asn": 4294967295}, "bgp.spine_asn"),
        ({"tor_asn_base": 4294967200}, "bgp.tor_asn_base"),  # 4294967200 + 128 - 1 > max
        ({"host_asn_base": 4294967000}, "bgp.host_asn_base"),  # + 64*16 - 1 > max
    ],
)
def test_asn_ranges(bgp: dict[str, int], path: str) -> None:
    assert path in paths(make_doc(bgp=bgp))


@pytest.mark.parametrize(
    ("bgp", "pair"),
    [
        ({"spine_asn": 4200001005}, ("bgp.spine_asn", "bgp.tor_asn_base")),  # spine ASN in the ToR range
        ({"tor_asn_base": 4210000000}, ("bgp.host_asn_base", "bgp.tor_asn_base")),  # ToR/host ranges overlap
    ],
)
def test_asn_ranges_must_not_overlap(bgp: dict[str, int], pair: tuple[str, str]) -> None:
    errors = errors_of(make_doc(bgp=bgp))
    assert len(errors) == 1
    assert errors[0].path in pair
    assert "overlaps" in errors[0].message
    assert (set(pair) - {errors[0].path}).pop() in errors[0].message


@pytest.mark.parametrize("mtu", [67, 9217, "1500", True])
def test_mtu_range_and_type(mtu: Any) -> None:
    doc = make_doc(link_mtu=mtu)
    doc["networks"]["mgmt"]["mtu"] = mtu
    assert {"link_mtu", "networks.mgmt.mtu"} <= paths(doc)


@pytest.mark.parametrize("vlan", [0, 4095])
def test_vlan_range(vlan: int) -> None:
    doc = make_doc()
    doc["networks"]["mgmt"]["vlan"] = vlan
    assert paths(doc) == {"networks.mgmt.vlan"}


def test_vlan_unique() -> None:
    doc = make_doc()
    doc["networks"]["vm"]["vlan"] = 10
    assert paths(doc) == {"networks.vm.vlan"}


def test_role_names_are_interface_names() -> None:
    doc = make_doc()
    doc["networks"] = {
        "lo": {"pool": "10.0.0.0/18", "prefix_len": 24, "vlan": 10},
        "up1": {"pool": "10.4.0.0/18", "prefix_len": 24, "vlan": 20},
        "Bad Name": {"pool": "10.8.0.0/18", "prefix_len": 24, "vlan": 30},
        "sixteen-chars-xx": {"pool": "10.12.0.0/18", "prefix_len": 24, "vlan": 40},
    }
    assert paths(doc) == {"networks.lo", "networks.up1", "networks.Bad Name", "networks.sixteen-chars-xx"}


def test_links_required_unless_unnumbered() -> None:
    assert paths(make_doc(pools={"loopbacks": "10.255.0.0/20"})) == {"pools.links"}
    fabric, errors = check(make_doc(pools={"loopbacks": "10.255.0.0/20", "unnumbered": True}))
    assert errors == [] and fabric is not None and fabric.unnumbered


def test_protocol_relations() -> None:
    doc = make_doc(
        bgp={"timers": {"keepalive": 10, "hold": 9}, "hosts": True, "host_network": "nope"},
        ospf={"hello": 5, "dead": 5, "area": "x"},
        dhcp_relay={"servers": ["10.0.1.10", "999.1.1.1"], "networks": ["mgmt", "nope"]},
        routing="isis",
    )
    assert {
        "bgp.timers.hold",
        "bgp.host_network",
        "ospf.dead",
        "ospf.area",
        "dhcp_relay.servers[1]",
        "dhcp_relay.networks[1]",
        "routing",
    } <= paths(doc)


def test_ospf_area_as_integer() -> None:
    fabric, errors = check(make_doc(routing="ospf", ospf={"area": 1}))
    assert errors == [] and fabric is not None
    assert fabric.ospf.area == "0.0.0.1"


def test_wrong_container_types() -> None:
    doc = make_doc(limits=[1], networks=["mgmt"], spines={"id": 1}, racks=[5], bgp="on")
    assert {"limits", "networks", "spines", "racks[0]", "bgp"} <= paths(doc)


def test_yaml_problems_are_reported(tmp_path: Path) -> None:
    dup = tmp_path / "dup.yml"
    dup.write_text("name: a\nname: b\npools: {loopbacks: 10.0.0.0/8}\n")
    with pytest.raises(FabricValidationError) as caught:
        load_fabric(dup)
    assert caught.value.errors[0].path == "line 2"
    broken = tmp_path / "broken.yml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(FabricValidationError, match="not valid YAML"):
        load_fabric(broken)
    with pytest.raises(FabricValidationError, match="cannot read"):
        load_fabric(tmp_path / "missing.yml")


def test_defaults_apply_to_racks_and_ranges() -> None:
    doc = make_doc(
        defaults={"tors": 2, "uplinks": ["spine02"], "hosts": 5, "pod": 3}, racks=[{"range": [4, 6]}]
    )
    fabric, errors = check(doc)
    assert errors == [] and fabric is not None
    assert [(r.id, r.tors, r.uplinks, r.uplink_spines, r.hosts, r.pod) for r in fabric.racks] == [
        (rack, 2, 1, ("spine02",), 5, 3) for rack in (4, 5, 6)
    ]


def test_base_doc_untouched_by_validation() -> None:
    doc = make_doc()
    check(doc)
    assert doc == BASE_DOC
