# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""whois: law inversion answers every address of a plan, and free/reserved/outside ones."""

from __future__ import annotations

import pytest
from fabric_testlib import make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import law
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.csv import render_csv
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.whois import (
    ASSIGNED,
    OUTSIDE,
    RESERVED,
    UNASSIGNED,
    WhoisIndex,
    whois,
)


@pytest.fixture(scope="module")
def plan50() -> Plan:
    """50 racks: 2 ToRs in even racks, 4 uplinks, 16 hosts, BGP-to-host; 4 spines."""
    doc = make_doc(
        spines=[{"id": s} for s in (1, 2, 3, 4)],
        defaults={"tors": 1, "uplinks": 4, "hosts": 16},
        racks=[{"id": r, "tors": 2 if r % 2 == 0 else 1} for r in range(1, 51)],
        bgp={"hosts": True},
    )
    return plan_of(doc)


def link_rack(spine_port: str) -> int:
    parsed = law.parse_spine_port(spine_port)
    assert parsed is not None
    return parsed[0]


def test_round_trip_every_address_of_a_50_rack_plan(plan50: Plan) -> None:
    index = WhoisIndex(plan50.fabric)
    count = 0
    for device in plan50.devices.values():
        for iface in device.interfaces:
            if iface.address is None:
                continue
            address, plen = iface.address.split("/")
            owner = index.lookup(address)
            assert owner.status == ASSIGNED, (device.name, iface.name, owner)
            # a link's /31 belongs to the rack of its ToR, on the spine side too
            rack = link_rack(iface.name) if iface.kind == "downlink" else device.rack
            assert (owner.device, owner.interface, owner.role, owner.rack) == (
                device.name,
                iface.name,
                device.role,
                rack,
            )
            assert owner.prefix is not None and owner.prefix.endswith(f"/{plen}")
            if iface.kind in ("uplink", "downlink"):
                assert (owner.peer_device, owner.peer_interface) == (iface.peer_device, iface.peer_interface)
            count += 1
    assert count == 4 + 75 + 800 + 300 * 2 + 75 * 4 + 800 * 4  # loopbacks, links, rack networks


def test_round_trip_matches_plan_csv(plan50: Plan) -> None:
    index = WhoisIndex(plan50.fabric)
    lines = render_csv(plan50).splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        owner = index.lookup(row["address"])
        assert (owner.device, owner.interface, owner.prefix, owner.pool) == (
            row["device"],
            row["interface"],
            row["prefix"],
            row["pool"],
        )


def test_lab_examples(lab_plan: Plan) -> None:
    owner = whois(lab_plan, "10.254.0.21")
    assert (owner.device, owner.interface, owner.peer_device, owner.peer_interface) == (
        "r001-tor1",
        "up3",
        "spine01",
        "r1t1u3",
    )
    assert owner.prefix == "10.254.0.20/31" and owner.network == "link" and owner.rack == 1
    gateway = whois(lab_plan.fabric, "10.0.2.1/24")
    assert (gateway.device, gateway.interface, gateway.vlan, gateway.network) == (
        "r002-tor1",
        "mgmt",
        10,
        "mgmt",
    )
    spine = whois(lab_plan, "10.255.0.2")
    assert (spine.device, spine.role, spine.rack, spine.interface) == ("spine02", "spine", None, "lo")


@pytest.mark.parametrize(
    ("address", "status", "note"),
    [
        ("10.255.0.0", RESERVED, "pool network address"),
        ("10.255.0.3", UNASSIGNED, "spine id 3 is not declared"),
        ("10.255.0.9", UNASSIGNED, "slot of r002-tor1"),  # ToR slot (2,1): 4+1+2*2 = 9 ... rack 2 declares it
        ("10.255.0.8", UNASSIGNED, "slot of r001-tor2"),
        ("10.255.3.255", RESERVED, "beyond the law's loopback slots"),
        ("10.254.0.23", UNASSIGNED, "slot of link r001-tor1 up4"),
        ("10.254.0.255", UNASSIGNED, "slot of link r015-tor2 up4"),
        ("10.0.1.0", RESERVED, "network address"),
        ("10.0.1.255", RESERVED, "broadcast address"),
        ("10.0.1.2", UNASSIGNED, "slot of r001-tor2"),
        ("10.0.1.5", RESERVED, "reserved for infrastructure"),
        ("10.0.1.12", UNASSIGNED, "slot of r001-h03"),
        ("10.0.1.200", RESERVED, "beyond the law's host slots"),
        ("10.0.0.10", RESERVED, "outside the law's rack ids"),
        ("10.0.9.10", UNASSIGNED, "slot of r009-h01"),
        ("192.0.2.1", OUTSIDE, ""),
    ],
)
def test_free_reserved_and_outside(lab_plan: Plan, address: str, status: str, note: str) -> None:
    owner = whois(lab_plan, address)
    if address == "10.255.0.9":  # declared: rack 2's ToR 1
        assert (owner.status, owner.device) == (ASSIGNED, "r002-tor1")
        return
    assert owner.status == status, owner
    assert note in owner.note
    assert owner.device is None


def test_describe_and_dict(lab_plan: Plan) -> None:
    owner = whois(lab_plan, "10.0.1.10")
    assert owner.describe().startswith("10.0.1.10: r001-h01 mgmt (host, rack 1) in 10.0.1.0/24")
    assert owner.to_dict()["device"] == "r001-h01"
    assert "outside" in whois(lab_plan, "8.8.8.8").describe()
    assert "unassigned" in whois(lab_plan, "10.0.9.10").describe()


@pytest.mark.parametrize("bad", ["banana", "10.0.0", "fd00::zz", "300.1.1.1", "fd00::/48"])
def test_bad_addresses_raise(lab_plan: Plan, bad: str) -> None:
    with pytest.raises(ValueError):
        whois(lab_plan, bad)


def test_ipv6_address_of_an_ipv4_only_fabric_is_outside(lab_plan: Plan) -> None:
    assert whois(lab_plan, "fd00::1").status == OUTSIDE


def test_unnumbered_fabric_has_no_link_pool() -> None:
    plan = plan_of(
        make_doc(pools={"loopbacks": "10.255.0.0/20", "links": "10.254.0.0/20", "unnumbered": True})
    )
    assert whois(plan, "10.254.0.1").status == OUTSIDE
