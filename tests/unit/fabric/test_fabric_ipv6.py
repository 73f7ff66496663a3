# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dual stack (``ipv6.prefix``): the IPv6 law, its validation, the plan, FRR, DNS, whois, exports.

- fabrics without ``ipv6`` render exactly as before (also checked by the golden tests);
- every IPv6 address follows from the ids by the law and maps back with whois;
- adding a rack changes no existing IPv6 address;
- the FRR ipv6 unicast policy has the shape of the ipv4 one, and every config passes ``vtysh -C``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import TWO_TORS, assert_vtysh_accepts, make_doc, needs_vtysh, plan_of, validation_errors

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import ipv6
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Limits, Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.csv import render_csv
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.dns import (
    address_names6,
    ptr_owner6,
    render_dns,
    reverse_blocks6,
    reverse_zone_name6,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.docs import render_docs
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import (
    ipv6_sessions,
    render_frr,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.host import (
    host_networks,
    networkd_files,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.topology import render_topology
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.whois import (
    ASSIGNED,
    OUTSIDE,
    RESERVED,
    UNASSIGNED,
    WhoisIndex,
    parse_address6,
)

PREFIX = "fd00:1::/48"
LIMITS = Limits(max_racks=64, tors_per_rack=2, uplinks_per_tor=4, hosts_per_rack=16, spines=4)
UNNUMBERED = {"loopbacks": "10.255.0.0/20", "unnumbered": True}


def v6_doc(**changes: Any) -> dict[str, Any]:
    """BASE_DOC (64 racks, VLANs 10..40) with ``ipv6.prefix``."""
    return make_doc(ipv6={"prefix": PREFIX}, **changes)


# ------------------------------------------------------------------------------------ the law
def test_law_numbers_the_64s_by_vlan_and_rack() -> None:
    base = ipv6.parse_cidr6(PREFIX)[0]
    assert ipv6.rack_bits(LIMITS) == 6  # racks 0..63
    assert ipv6.subnet_number(LIMITS, 10, 12) == (10 << 6) + 12
    assert ipv6.ip6(ipv6.network6(base, LIMITS, 10, 12)) == "fd00:1:0:28c::"
    assert ipv6.vlan_block(base, LIMITS, 10) == "fd00:1:0:280::/58"
    assert ipv6.ip6(ipv6.loopback6(base, 41)) == "fd00:1::29"
    assert ipv6.ip6(ipv6.link6(base, 98)) == "fd00:1:0:1::c4"


def test_required_prefix_len_holds_the_highest_vlan() -> None:
    # VLAN 40, racks up to 63: /64 numbers below 41 << 6 = 2624 -> 12 bits -> a /52
    assert ipv6.required_prefix_len(LIMITS, 40) == 52
    assert ipv6.required_prefix_len(LIMITS, 4094) == 64 - (4094 << 6 | 63).bit_length()
    assert ipv6.required_prefix_len(LIMITS, 0) == 63  # only the two infrastructure /64s


@pytest.mark.parametrize(
    ("number", "owner"),
    [
        (0, ("loopbacks", 0, 0)),
        (1, ("links", 0, 0)),
        (2, ("reserved", 0, 2)),  # the rest of the VLAN 0 block
        ((10 << 6) + 12, ("network", 10, 12)),
        ((40 << 6) + 63, ("network", 40, 63)),
    ],
)
def test_subnet_owner_inverts_subnet_number(number: int, owner: tuple[str, int, int]) -> None:
    assert ipv6.subnet_owner(LIMITS, number) == owner


def test_rack_bits_for_a_limit_that_is_not_a_power_of_two() -> None:
    limits = Limits(max_racks=100, tors_per_rack=1, uplinks_per_tor=2, hosts_per_rack=8, spines=2)
    assert ipv6.rack_bits(limits) == 7
    assert ipv6.subnet_owner(limits, (10 << 7) + 100) == ("reserved", 10, 100)  # rack id >= max_racks


def test_offset_in_subnet() -> None:
    assert ipv6.offset_in_subnet("10.0.1.11/24") == 11
    assert ipv6.offset_in_subnet("10.64.4.1/22") == 1
    assert ipv6.offset_in_subnet("10.64.5.1/22") == 257


# ------------------------------------------------------------------------------------ schema
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("fd00:1::1/48", "host bits set (did you mean fd00:1::/48?)"),
        ("10.0.0.0/8", "must be an IPv6 network"),
        ("fd00:1::", "must be an IPv6 network"),
        ("fd00:1::/129", "bad prefix length"),
        (48, "must be an IPv6 network"),
    ],
)
def test_malformed_prefix_is_refused_with_its_key(value: object, fragment: str) -> None:
    errors = validation_errors(make_doc(ipv6={"prefix": value}))
    assert [path for path, _message in errors] == ["ipv6.prefix"]
    assert fragment in errors[0][1]


def test_unknown_ipv6_key_is_refused() -> None:
    assert ("ipv6.prefx", "unknown key; did you mean 'prefix'?") in validation_errors(
        make_doc(ipv6={"prefx": PREFIX})
    )


def test_dual_stack_needs_bgp() -> None:
    errors = validation_errors(v6_doc(routing="ospf"))
    assert errors == [
        (
            "ipv6.prefix",
            "dual stack needs routing: bgp (IPv6 is carried by BGP's ipv6 unicast family; OSPFv3/ospf6d "
            "is not rendered)",
        )
    ]


def test_dual_stack_refuses_the_anycast_gateway() -> None:
    errors = validation_errors(v6_doc(gateway={"redundancy": "anycast"}))
    assert [path for path, _message in errors] == ["ipv6.prefix"]
    assert "IPv6 anycast gateway" in errors[0][1]


def test_prefix_too_small_names_the_length_needed() -> None:
    errors = validation_errors(make_doc(ipv6={"prefix": "fd00:1::/56"}))
    assert errors == [
        (
            "ipv6.prefix",
            "prefix too small: the /64s of VLAN 40 x limits.max_racks (64) need a /52 or shorter",
        )
    ]
    load_fabric(make_doc(ipv6={"prefix": "fd00:1::/52"}))


# ------------------------------------------------------------------------------------ plan
def test_without_ipv6_the_plan_has_no_ipv6_fields() -> None:
    plan = plan_of(make_doc())
    assert not ipv6.ipv6_enabled(plan)
    for device in plan.devices.values():
        assert device.loopback6 is None and device.announce6 == ()
        assert all(iface.address6 is None for iface in device.interfaces)
        assert all(nbr.address6 is None for nbr in device.bgp_neighbors)
    assert all(net.prefix6 is None for net in plan.networks)
    assert all(link.prefix6 is None for link in plan.links)


def test_plan_addresses_follow_the_law() -> None:
    plan = plan_of(v6_doc())
    tor = plan.devices["r001-tor1"]
    assert tor.loopback6 == "fd00:1::7/128"  # IPv4 loopback offset 7
    assert tor.interface("up1").address6 == "fd00:1:0:1::11/127"  # link index 8, ToR side
    assert tor.interface("mgmt").address6 == "fd00:1:0:281::1/64"  # VLAN 10 << 6 | rack 1
    assert tor.announce6 == (
        "fd00:1::7/128",
        "fd00:1:0:281::/64",
        "fd00:1:0:501::/64",
        "fd00:1:0:781::/64",
        "fd00:1:0:a01::/64",
    )
    spine = plan.devices["spine01"]
    assert spine.interface("r1t1u1").address6 == "fd00:1:0:1::10/127"
    assert spine.bgp_neighbors[0].address6 == "fd00:1:0:1::11"
    host = plan.devices["r002-h02"]
    assert host.interface("storage").address6 == "fd00:1:0:502::b/64"  # host offset 11
    net = plan.networks[0]
    assert (net.prefix6, net.gateway6) == ("fd00:1:0:281::/64", "fd00:1:0:281::1")
    link = plan.links[0]
    assert (link.a.address6, link.b.address6, link.prefix6) == (
        "fd00:1:0:1::10/127",
        "fd00:1:0:1::11/127",
        "fd00:1:0:1::10/127",
    )


def test_unnumbered_links_have_no_ipv6_address() -> None:
    plan = plan_of(v6_doc(pools=UNNUMBERED))
    assert all(link.prefix6 is None for link in plan.links)
    tor = plan.devices["r001-tor1"]
    assert tor.interface("up1").address6 is None
    assert tor.interface("lo").address6 == "fd00:1::7/128"
    assert all(nbr.address6 is None for nbr in tor.bgp_neighbors)


def test_bgp_hosts_peer_over_ipv6_on_the_host_network() -> None:
    plan = plan_of(v6_doc(defaults=TWO_TORS, bgp={"hosts": True}))
    host = plan.devices["r002-h01"]
    assert [nbr.address6 for nbr in host.bgp_neighbors] == ["fd00:1:0:282::1", "fd00:1:0:282::2"]
    tor2 = plan.devices["r002-tor2"]
    hosts = [nbr for nbr in tor2.bgp_neighbors if nbr.peer_device.startswith("r002-h")]
    assert [nbr.address6 for nbr in hosts] == ["fd00:1:0:282::a", "fd00:1:0:282::b"]


def _addresses6(plan: Plan) -> dict[tuple[str, str], str]:
    return {
        (device.name, iface.name): iface.address6
        for device in plan.devices.values()
        for iface in device.interfaces
        if iface.address6
    }


def test_adding_a_rack_changes_no_existing_ipv6_address() -> None:
    before = _addresses6(plan_of(v6_doc()))
    doc = v6_doc()
    doc["racks"].insert(0, {"id": 7, "tors": 2, "uplinks": 4, "hosts": 5})
    after = _addresses6(plan_of(doc))
    assert {key: after[key] for key in before} == before
    assert len(after) > len(before)


def test_every_ipv6_address_is_unique_and_maps_back_with_whois() -> None:
    plan = plan_of(v6_doc(defaults=TWO_TORS))
    addresses = _addresses6(plan)
    assert len(set(addresses.values())) == len(addresses)
    index = WhoisIndex(plan.fabric)
    for (device, iface), cidr in addresses.items():
        owner = index.lookup(cidr)
        assert (owner.status, owner.device, owner.interface) == (ASSIGNED, device, iface), cidr


# ------------------------------------------------------------------------------------ whois
@pytest.mark.parametrize(
    ("address", "status", "note"),
    [
        ("fd00:1::", RESERVED, "pool network address"),
        ("fd00:1:0:1::1", RESERVED, "slot of rack id 0"),
        ("fd00:1:0:281::", RESERVED, "subnet-router anycast address of rack 1's mgmt network"),
        ("fd00:1:0:281::2", UNASSIGNED, "slot of r001-tor2, not declared"),
        ("fd00:1:0:281::9", RESERVED, "reserved for infrastructure"),
        ("fd00:1:0:280::a", RESERVED, "slot of rack id 0"),
        ("fd00:1:0:2::1", RESERVED, "no rack network's /64"),
        ("fd00:2::1", OUTSIDE, ""),
    ],
)
def test_whois_ipv6_statuses(address: str, status: str, note: str) -> None:
    owner = WhoisIndex(plan_of(v6_doc()).fabric).lookup(address)
    assert owner.status == status
    assert note in owner.note


def test_whois_ipv6_link_and_loopback_answers() -> None:
    index = WhoisIndex(plan_of(v6_doc()).fabric)
    link = index.lookup("fd00:1:0:1::11")
    assert (link.device, link.interface, link.peer_device, link.prefix) == (
        "r001-tor1",
        "up1",
        "spine01",
        "fd00:1:0:1::10/127",
    )
    assert index.lookup("fd00:1::7").describe() == (
        "fd00:1::7: r001-tor1 lo (tor, rack 1) in fd00:1::7/128, loopbacks pool fd00:1::/64"
    )
    mgmt = index.lookup("fd00:1:0:283::b/64")
    assert (mgmt.device, mgmt.pool, mgmt.pool_prefix, mgmt.vlan) == (
        "r003-h02",
        "mgmt",
        "fd00:1:0:280::/58",
        10,
    )


def test_whois_unnumbered_ipv6_links_are_reserved() -> None:
    owner = WhoisIndex(plan_of(v6_doc(pools=UNNUMBERED)).fabric).lookup("fd00:1:0:1::11")
    assert owner.status == RESERVED and "unnumbered" in owner.note


@pytest.mark.parametrize("prefix", ["fd00:1::/48", "fd00:1:0:281::/64", "fd00:1:0:1::10/126"])
def test_whois_refuses_ipv6_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="a network prefix"):
        parse_address6(prefix)


def test_whois_accepts_the_even_end_of_a_127() -> None:
    assert parse_address6("fd00:1:0:1::10/127") == int(ipaddress.IPv6Address("fd00:1:0:1::10"))


# ------------------------------------------------------------------------------------ FRR
V6_VARIANTS = {
    "numbered": v6_doc(),
    "unnumbered": v6_doc(pools=UNNUMBERED),
    "hosts-hardened": v6_doc(
        defaults=TWO_TORS,
        bgp={
            "hosts": True,
            "gtsm": True,
            "passwords": "fabric",
            "maximum_prefix": {"enabled": True},
            "evpn": True,
        },
    ),
}


@needs_vtysh
@pytest.mark.parametrize("variant", sorted(V6_VARIANTS))
def test_dual_stack_configs_passvtysh_check(variant: str, tmp_path: Path) -> None:
    plan = plan_of(V6_VARIANTS[variant])
    assert_vtysh_accepts(plan, tmp_path, bgp_password="Secret-1")


def _policy_names(text: str, family: str) -> set[str]:
    pattern = r"^ipv6 prefix-list (\S+)" if family == "6" else r"^ip prefix-list (\S+)"
    lists = set(re.findall(pattern, text, flags=re.M))
    maps = set(re.findall(r"^route-map (\S+) permit", text, flags=re.M))
    maps = (
        {m for m in maps if m.endswith("-V6")}
        if family == "6"
        else {m for m in maps if not m.endswith("-V6")}
    )
    return lists | maps


@pytest.mark.parametrize("device", ["spine01", "r001-tor1", "r002-tor2", "r002-h01"])
def test_ipv6_policy_mirrors_the_ipv4_policy(device: str) -> None:
    plan = plan_of(v6_doc(defaults=TWO_TORS, bgp={"hosts": True}))
    text = render_frr(plan, device)
    v4, v6 = _policy_names(text, "4"), _policy_names(text, "6")
    assert {f"{name}-V6" for name in v4} == v6
    family6 = text.split(" address-family ipv6 unicast\n", 1)[1].split(" exit-address-family", 1)[0]
    assert "  maximum-paths 64" in family6
    assert "  network fd00:1::" in family6


def test_numbered_sessions_get_an_ipv6_twin_deactivated_for_ipv4() -> None:
    plan = plan_of(v6_doc())
    text = render_frr(plan, "r001-tor1")
    assert " neighbor fd00:1:0:1::10 peer-group SPINE-V6" in text
    family4 = text.split(" address-family ipv4 unicast\n", 1)[1].split(" exit-address-family", 1)[0]
    assert "  no neighbor SPINE-V6 activate" in family4
    assert "ipv6 forwarding" in text.splitlines()
    sessions = ipv6_sessions({"SPINE": list(plan.devices["r001-tor1"].bgp_neighbors)})
    assert [nbr.address for nbr in sessions["SPINE-V6"]] == [
        "fd00:1:0:1::10",
        "fd00:1:0:1::12",
        "fd00:1:0:1::14",
    ]


def test_unnumbered_sessions_carry_ipv6_themselves() -> None:
    text = render_frr(plan_of(v6_doc(pools=UNNUMBERED)), "spine01")
    assert "SPINE-V6" not in text and "TOR-V6 peer-group" not in text
    family6 = text.split(" address-family ipv6 unicast\n", 1)[1].split(" exit-address-family", 1)[0]
    assert "  neighbor TOR activate" in family6
    assert "  neighbor r1t1u1 route-map FROM-RACK001-V6 in" in family6


def test_spine_accepts_from_a_rack_only_its_ipv6_prefixes() -> None:
    text = render_frr(plan_of(v6_doc()), "spine01")
    rack2 = [line for line in text.splitlines() if line.startswith("ipv6 prefix-list RACK002-V6 ")]
    assert [line.split()[-1] for line in rack2] == [
        "fd00:1::9/128",
        "fd00:1:0:282::/64",
        "fd00:1:0:502::/64",
        "fd00:1:0:782::/64",
        "fd00:1:0:a02::/64",
    ]


def test_fabric_entries6_match_only_exact_lengths() -> None:
    assert ipv6.fabric_entries6(plan_of(v6_doc())) == [
        "fd00:1::/64 ge 128",
        "fd00:1:0:280::/58 ge 64 le 64",
        "fd00:1:0:500::/58 ge 64 le 64",
        "fd00:1:0:780::/58 ge 64 le 64",
        "fd00:1:0:a00::/58 ge 64 le 64",
    ]


def test_host_config_disables_ipv6_forwarding() -> None:
    text = render_frr(plan_of(v6_doc(bgp={"hosts": True})), "r001-h01")
    assert "no ipv6 forwarding" in text.splitlines()


# ------------------------------------------------------------------------------------ DNS
def test_dns_has_an_aaaa_and_a_forward_confirmed_ptr_per_ipv6_address() -> None:
    plan = plan_of(v6_doc())
    zones = render_dns(plan, nameservers=[{"name": "ns1", "address": "10.0.1.10"}])
    forward = zones[0]
    aaaa = {record.name: record.value for record in forward.records if record.type == "AAAA"}
    assert aaaa["r001-tor1"] == "fd00:1::7"
    assert aaaa["up1.r001-tor1"] == "fd00:1:0:1::11"
    assert aaaa["r002-h01"] == "fd00:1:0:282::a"  # a plain host: its primary (mgmt) address
    reverse = [zone for zone in zones if zone.name.endswith(".ip6.arpa")]
    assert [zone.name for zone in reverse] == ["0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"]
    ptrs = [record for record in reverse[0].records if record.type == "PTR"]
    assert len(ptrs) == len(set(aaaa.values()))
    origin = forward.name
    for record in ptrs:
        full = record.name + "." + reverse[0].name
        address = ipaddress.IPv6Address(int("".join(reversed(full.split(".")[:32])), 16))
        label = record.value.removesuffix(f".{origin}.")
        assert aaaa[label] == str(address)


def test_dns_without_ipv6_is_unchanged() -> None:
    plan = plan_of(make_doc())
    assert address_names6(plan) == []
    zones = render_dns(plan, nameservers=[{"name": "ns1", "address": "10.0.1.10"}])
    assert not any(zone.name.endswith("ip6.arpa") for zone in zones)
    assert not any(record.type == "AAAA" for record in zones[0].records)


def test_reverse_zone_names_are_nibble_aligned() -> None:
    assert reverse_blocks6("fd00:1::/46") == [
        (int(ipaddress.IPv6Address("fd00:1::")) + (i << 80), 48) for i in range(4)
    ]
    start = int(ipaddress.IPv6Address("fd00:1::"))
    assert reverse_zone_name6(start, 48) == "0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"
    assert ptr_owner6(start + 0x11, 124) == "1"


# ------------------------------------------------------------------------------------ exports
def test_topology_and_csv_carry_the_ipv6_fields(tmp_path: Path) -> None:
    plan = plan_of(v6_doc())
    topology = json.loads(render_topology(plan))
    assert topology["fabric"]["ipv6_prefix"] == PREFIX
    tor = next(dev for dev in topology["devices"] if dev["name"] == "r001-tor1")
    assert tor["loopback6"] == "fd00:1::7/128"
    assert tor["interfaces"][1]["address6"] == "fd00:1:0:1::11/127"
    assert tor["bgp_neighbors"][0]["address6"] == "fd00:1:0:1::10"
    assert topology["links"][0]["b"]["address6"] == "fd00:1:0:1::11/127"
    assert topology["networks"][0]["gateway6"] == "fd00:1:0:281::1"
    rows = render_csv(plan).splitlines()
    v6 = [row for row in rows if ":" in row.split(",")[0]]
    assert len(v6) == len(_addresses6(plan))
    values = [int(ipaddress.IPv6Address(row.split(",")[0])) for row in v6]
    assert values == sorted(values)
    assert "fd00:1:0:1::11,fd00:1:0:1::10/127,links,link,,1,r001-tor1,tor,up1,uplink,spine01,r1t1u1" in v6
    render_all(plan, tmp_path / "out")  # every output renders with dual stack


def test_topology_and_csv_without_ipv6_have_no_ipv6_keys() -> None:
    plan = plan_of(make_doc())
    text = render_topology(plan)
    assert "address6" not in text and "ipv6" not in text and "prefix6" not in text
    assert not [row for row in render_csv(plan).splitlines()[1:] if ":" in row.split(",")[0]]


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="named-checkzone (bind9-utils) missing")
@pytest.mark.parametrize("pools", [None, UNNUMBERED])
def test_dual_stack_zones_pass_named_checkzone(pools: dict[str, Any] | None, tmp_path: Path) -> None:
    doc = v6_doc(pools=pools) if pools else v6_doc()
    zones = render_dns(plan_of(doc), nameservers=[{"name": "ns1", "address": "10.0.1.10"}])
    for zone in [zones[0], *(zone for zone in zones if zone.name.endswith(".ip6.arpa"))]:
        path = tmp_path / f"db.{zone.name}"
        path.write_text(zone.text, encoding="utf-8")
        proc = subprocess.run(
            ["named-checkzone", zone.name, str(path)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, (zone.name, proc.stdout, proc.stderr)


def test_rack_pages_and_summary_list_the_ipv6_addresses() -> None:
    pages = render_docs(plan_of(v6_doc()))
    rack1 = pages["racks/r001.md"]
    assert "## IPv6 (dual stack)" in rack1
    assert "| `mgmt` | fd00:1:0:281::/64 | fd00:1:0:281::1 |" in rack1
    assert "| r001-tor1 | up1 | fd00:1:0:1::11/127 | spine01 | fd00:1:0:1::10/127 |" in rack1
    assert "| r001-h02 | fd00:1::" in rack1
    assert f"- dual stack: IPv6 from {PREFIX}" in pages["fabric.md"]
    assert "IPv6" not in render_docs(plan_of(make_doc()))["racks/r001.md"]


@pytest.mark.parametrize("pools", [None, UNNUMBERED])
def test_adding_a_rack_leaves_other_tor_configs_byte_identical(pools: dict[str, Any] | None) -> None:
    doc = v6_doc(pools=pools) if pools else v6_doc()
    before = plan_of(doc)
    doc["racks"].append({"id": 9, "uplinks": 2, "hosts": 3})
    after = plan_of(doc)
    for tor in before.tors():
        assert render_frr(before, tor.name) == render_frr(after, tor.name), tor.name


def test_host_networkd_files_carry_the_ipv6_addresses_and_routes() -> None:
    plan = plan_of(v6_doc())
    view = host_networks(plan, "r002-h01")
    assert view["loopback6"] == "fd00:1::a5/128"  # loopback offset 4 + 1 + 64*2 + 2*16
    storage = next(net for net in view["networks"] if net["name"] == "storage")
    assert storage["routes6"] == [{"to": "fd00:1:0:500::/58", "via": "fd00:1:0:502::1"}]
    files = networkd_files(view, uplink="eth0")
    assert "Address=fd00:1::a5/128" in files["20-compleat-lo.network"]
    mgmt = files["20-compleat-mgmt.network"]
    assert "Address=fd00:1:0:282::a/64" in mgmt and "[Route]\nGateway=fd00:1:0:282::1" in mgmt
    assert "Destination=fd00:1:0:500::/58\nGateway=fd00:1:0:502::1" in files["20-compleat-storage.network"]
    plain = networkd_files(host_networks(plan_of(make_doc()), "r002-h01"), uplink="eth0")
    assert "fd00" not in "".join(plain.values())
