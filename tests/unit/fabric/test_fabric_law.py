# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The addressing law: formulas, inverses, names."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import law
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Limits

LIMITS = Limits(max_racks=64, tors_per_rack=2, uplinks_per_tor=4, hosts_per_rack=16, spines=4)


def test_int_ip_round_trip() -> None:
    for text in ("0.0.0.0", "10.255.0.1", "192.168.1.254", "255.255.255.255"):
        assert law.int_to_ip(law.ip_to_int(text)) == text
        assert law.ip_to_int(text) == int(ipaddress.IPv4Address(text))


def test_parse_cidr_and_sizes() -> None:
    assert law.parse_cidr("10.254.0.0/16") == (int(ipaddress.IPv4Address("10.254.0.0")), 16)
    assert law.block_size(31) == 2
    assert law.block_size(24) == 256
    assert law.smallest_prefix_for(1) == 32
    assert law.smallest_prefix_for(256) == 24
    assert law.smallest_prefix_for(257) == 23


def test_loopback_offsets_follow_the_contract() -> None:
    assert law.spine_loopback_offset(3) == 3
    # spines + 1 + r*tors_per_rack + (t-1)
    assert law.tor_loopback_offset(LIMITS, 12, 1) == 4 + 1 + 24
    assert law.tor_loopback_offset(LIMITS, 12, 2) == 4 + 1 + 25
    # spines + 1 + max_racks*tors_per_rack + r*hosts_per_rack + (h-1)
    assert law.host_loopback_offset(LIMITS, 12, 7) == 4 + 1 + 128 + 12 * 16 + 6
    assert law.loopback_capacity(LIMITS) == 4 + 1 + 64 * 18


def test_loopback_inverse_covers_every_slot() -> None:
    seen = set()
    for spine in range(1, LIMITS.spines + 1):
        assert law.loopback_owner(LIMITS, law.spine_loopback_offset(spine)) == ("spine", None, spine)
        seen.add(law.spine_loopback_offset(spine))
    for rack in range(LIMITS.max_racks):
        for tor in range(1, LIMITS.tors_per_rack + 1):
            offset = law.tor_loopback_offset(LIMITS, rack, tor)
            assert law.loopback_owner(LIMITS, offset) == ("tor", rack, tor)
            seen.add(offset)
        for host in range(1, LIMITS.hosts_per_rack + 1):
            offset = law.host_loopback_offset(LIMITS, rack, host)
            assert law.loopback_owner(LIMITS, offset) == ("host", rack, host)
            seen.add(offset)
    # every offset 1..capacity-1 is used exactly once; 0 and beyond the capacity own nothing
    assert seen == set(range(1, law.loopback_capacity(LIMITS)))
    assert law.loopback_owner(LIMITS, 0) is None
    assert law.loopback_owner(LIMITS, law.loopback_capacity(LIMITS)) is None


def test_link_index_and_inverse() -> None:
    assert law.link_index(LIMITS, 0, 1, 1) == 0
    assert law.link_index(LIMITS, 12, 1, 3) == (12 * 2 + 0) * 4 + 2
    indexes = set()
    for rack in range(LIMITS.max_racks):
        for tor in (1, 2):
            for uplink in range(1, 5):
                index = law.link_index(LIMITS, rack, tor, uplink)
                assert law.link_from_index(LIMITS, index) == (rack, tor, uplink)
                indexes.add(index)
    assert indexes == set(range(law.link_capacity(LIMITS)))


def test_uplink_spine_round_robin_and_explicit() -> None:
    spines = ("spine01", "spine02")
    assert [law.uplink_spine(spines, u) for u in (1, 2, 3, 4)] == ["spine01", "spine02", "spine01", "spine02"]
    assert law.uplink_spine(spines, 2, ("spine02", "spine02")) == "spine02"


def test_asns() -> None:
    assert law.tor_asn(4200001000, LIMITS, 12, 1) == 4200001000 + 24
    assert law.host_asn(4210000000, LIMITS, 12, 3) == 4210000000 + 12 * 16 + 2
    assert law.tor_asn_range(4200001000, LIMITS) == (4200001000, 4200001000 + 128 - 1)
    assert law.host_asn_range(4210000000, LIMITS) == (4210000000, 4210000000 + 64 * 16 - 1)


def test_rack_network_slots() -> None:
    base = law.ip_to_int("10.0.0.0")
    assert law.int_to_ip(law.rack_subnet(base, 24, 12)) == "10.0.12.0"
    assert law.int_to_ip(law.rack_subnet(base, 22, 3)) == "10.0.12.0"
    assert law.gateway_offset(1) == 1
    assert law.gateway_offset(2) == 2
    assert law.host_offset(1) == 10
    assert law.network_slot(0, 24) == ("network", 0)
    assert law.network_slot(255, 24) == ("broadcast", 0)
    assert law.network_slot(1, 24) == ("gateway", 1)
    assert law.network_slot(2, 24) == ("gateway", 2)
    assert law.network_slot(10, 24) == ("host", 1)
    assert law.network_slot(25, 24) == ("host", 16)
    assert law.rack_network_min_size(LIMITS) == 10 + 16 + 1


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("r012-tor1", ("tor", 12, 1)),
        ("r001-h07", ("host", 1, 7)),
        ("r1000-tor2", ("tor", 1000, 2)),
        ("spine01", None),
    ],
)
def test_device_names_round_trip(name: str, parsed: tuple[str, int, int] | None) -> None:
    assert law.parse_device_name(name) == parsed
    if parsed is not None:
        role, rack, index = parsed
        assert (law.tor_name if role == "tor" else law.host_name)(rack, index) == name


def test_interface_names() -> None:
    assert law.spine_name(1) == "spine01"
    assert law.uplink_ifname(3) == "up3"
    assert law.parse_uplink("up3") == 3
    assert law.parse_uplink("mgmt") is None
    assert law.spine_port_ifname(12, 1, 3) == "r12t1u3"
    assert law.parse_spine_port("r12t1u3") == (12, 1, 3)
    assert law.parse_spine_port("up1") is None
    assert law.rack_label(7) == "r007"
    assert law.longest_spine_port(LIMITS) == "r63t2u4"
    big = Limits(max_racks=100000, tors_per_rack=9, uplinks_per_tor=64, hosts_per_rack=16, spines=4)
    assert len(law.longest_spine_port(big)) <= law.IFNAME_MAX
