# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``gateway.redundancy: anycast``: first-hop redundancy of two-ToR racks (issue 17 item 1).

- the law: offset 1 stays the hosts' gateway, held by every ToR of the rack; ToR t moves to
  offset t + 1; whois inverts it; DHCP relays stamp the gateway as giaddr; refused with BGP hosts;
- fabrics without the key (or with ``redundancy: none``) render byte for byte as before (the
  goldens of ``golden_frr/``);
- every rendered ToR file holds its own address first, then the gateway, and passes ``vtysh -C``;
- topology.json, plan.csv and the rack pages name every holder and the MAC;
- validation: at most 8 ToR slots, a unicast MAC, both with key paths.
The failover itself runs in tests/lab/test_fabric_gateway.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import (
    GOLDEN_FRR,
    TWO_TORS,
    assert_vtysh_accepts,
    make_doc,
    needs_vtysh,
    plan_of,
    validation_errors,
)

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import gateway
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.csv import render_csv
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.dhcp import (
    kea_subnets,
    relay_config,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.docs import render_rack_md
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import render_frr
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.whois import whois

MAC = "02:00:00:00:01:01"


def anycast_doc(**changes: Any) -> dict[str, Any]:
    """Two-ToR racks (rack 1 has 3 uplinks) with the anycast gateway."""
    return make_doc(defaults=TWO_TORS, gateway={"redundancy": "anycast"}, **changes)


def _stanza(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(header)
    return [line.strip() for line in lines[start + 1 : lines.index("exit", start)]]


# ------------------------------------------------------------------------------------ the law
def test_tor_offsets_move_up_by_one_with_anycast() -> None:
    assert [gateway.tor_offset(tor, False) for tor in (1, 2, 9)] == [1, 2, 9]
    assert [gateway.tor_offset(tor, True) for tor in (1, 2, 8)] == [2, 3, 9]
    assert gateway.max_tors(False) == 9
    assert gateway.max_tors(True) == 8


def test_network_slot_names_the_anycast_gateway_and_the_tors() -> None:
    assert gateway.network_slot(1, 24, True) == ("anycast", 0)
    assert gateway.network_slot(2, 24, True) == ("gateway", 1)
    assert gateway.network_slot(9, 24, True) == ("gateway", 8)
    assert gateway.network_slot(10, 24, True) == ("host", 1)
    assert gateway.network_slot(255, 24, True) == ("broadcast", 0)
    assert gateway.network_slot(1, 24, False) == ("gateway", 1)


def test_plan_gives_every_tor_the_gateway_and_its_own_address() -> None:
    plan = plan_of(anycast_doc())
    tor1, tor2 = plan.devices["r002-tor1"], plan.devices["r002-tor2"]
    assert tor1.interface("mgmt").address == "10.0.2.2/24"
    assert tor2.interface("mgmt").address == "10.0.2.3/24"
    assert tor1.interface("mgmt").gateway == tor2.interface("mgmt").gateway == "10.0.2.1/24"
    assert tor1.interface("vm").gateway == "10.64.8.1/22"
    net = next(n for n in plan.networks if n.rack == 2 and n.role == "mgmt")
    assert (net.gateway, net.gateway_devices, net.gateway_mac) == (
        "10.0.2.1",
        ("r002-tor1", "r002-tor2"),
        MAC,
    )
    assert plan.devices["r002-h01"].interface("mgmt").address == "10.0.2.10/24"  # hosts unchanged


def test_anycast_is_refused_with_bgp_hosts() -> None:
    messages = dict(validation_errors(anycast_doc(bgp={"hosts": True})))
    assert messages["gateway.redundancy"].startswith("not with bgp.hosts")


def test_dhcp_relays_use_the_gateway_as_giaddr() -> None:
    plan = plan_of(anycast_doc(dhcp_relay={"servers": ["10.0.1.10"], "networks": ["mgmt"]}))
    for tor in ("r002-tor1", "r002-tor2"):
        assert [relay["address"] for relay in relay_config(plan, tor)["relays"]] == ["10.0.2.1"]
    subnet = next(s for s in kea_subnets(plan) if s["subnet"] == "10.0.2.0/24")
    assert subnet["relay"]["ip-addresses"] == ["10.0.2.1"]


def test_without_anycast_nothing_changes() -> None:
    plan = plan_of(make_doc(defaults=TWO_TORS, gateway={"redundancy": "none"}))
    assert plan.devices["r002-tor1"].interface("mgmt").address == "10.0.2.1/24"
    assert plan.devices["r002-tor1"].interface("mgmt").gateway is None
    assert all(not net.gateway_devices and net.gateway_mac is None for net in plan.networks)


# ------------------------------------------------------------------------------------ FRR
@pytest.mark.parametrize("variant", ["bgp-hosts-2tors", "bgp-unnumbered", "ospf-unnumbered-bfd"])
def test_fabrics_without_the_key_render_as_before(variant: str) -> None:
    unnumbered = {"loopbacks": "10.255.0.0/20", "unnumbered": True}
    docs = {
        "bgp-hosts-2tors": make_doc(defaults=TWO_TORS, bgp={"hosts": True, "bfd_interval": 150}),
        "bgp-unnumbered": make_doc(pools=unnumbered, bgp={"bfd": False}),
        "ospf-unnumbered-bfd": make_doc(routing="ospf", pools=unnumbered, ospf={"area": 0, "bfd": True}),
    }
    doc = docs[variant]
    doc["gateway"] = {"redundancy": "none", "mac": "02:aa:00:00:00:01"}
    plan = plan_of(doc)
    for device in plan.routers():
        golden = (GOLDEN_FRR / variant / device.name / "frr.conf").read_text()
        assert render_frr(plan, device.name) == golden, f"{variant}/{device.name} changed"


def test_tor_holds_own_address_first_then_the_gateway() -> None:
    plan = plan_of(anycast_doc())
    text = render_frr(plan, "r002-tor2")
    assert _stanza(text, "interface mgmt") == [
        f"description rack network mgmt vlan 10, mtu 1500, anycast gateway mac {MAC}",
        "ip address 10.0.2.3/24",
        "ip address 10.0.2.1/24",
    ]
    assert "anycast gateway" not in render_frr(plan, "spine01")


def test_rack_networks_are_announced_by_both_tors() -> None:
    plan = plan_of(anycast_doc())
    for tor in ("r002-tor1", "r002-tor2"):
        assert "  network 10.0.2.0/24" in render_frr(plan, tor).splitlines()


@needs_vtysh
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"bgp": {"gtsm": True}, "dhcp_relay": {"servers": ["10.0.1.10"]}},
        {"routing": "ospf"},
        {"pools": {"loopbacks": "10.255.0.0/20", "unnumbered": True}},
    ],
    ids=["bgp", "bgp-gtsm-relay", "ospf", "unnumbered"],
)
def test_every_anycast_gateway_config_passesvtysh_check(changes: dict[str, Any], tmp_path: Path) -> None:
    plan = plan_of(anycast_doc(**changes))
    assert_vtysh_accepts(plan, tmp_path)


# ------------------------------------------------------------------------------------ views
def test_topology_names_holders_and_mac_only_with_anycast() -> None:
    data = plan_to_dict(plan_of(anycast_doc()))
    assert data["fabric"]["gateway"] == {"redundancy": "anycast", "mac": MAC}
    net = next(n for n in data["networks"] if n["rack"] == 2 and n["role"] == "mgmt")
    assert net["gateway_devices"] == ["r002-tor1", "r002-tor2"] and net["gateway_mac"] == MAC
    tor2 = next(d for d in data["devices"] if d["name"] == "r002-tor2")
    mgmt = next(i for i in tor2["interfaces"] if i["name"] == "mgmt")
    assert (mgmt["address"], mgmt["gateway"]) == ("10.0.2.3/24", "10.0.2.1/24")
    plain = plan_to_dict(plan_of(make_doc(defaults=TWO_TORS)))
    assert "gateway" not in plain["fabric"]
    assert all("gateway_devices" not in n for n in plain["networks"])
    assert all("gateway" not in i for d in plain["devices"] for i in d["interfaces"])


def test_plan_csv_lists_the_gateway_once_per_holder_in_address_order() -> None:
    rows = [row.split(",") for row in render_csv(plan_of(anycast_doc())).splitlines()[1:]]
    rack2 = [row for row in rows if row[1] == "10.0.2.0/24"]
    assert [(row[0], row[6], row[9]) for row in rack2[:4]] == [
        ("10.0.2.1", "r002-tor1", "anycast-gateway"),
        ("10.0.2.1", "r002-tor2", "anycast-gateway"),
        ("10.0.2.2", "r002-tor1", "network"),
        ("10.0.2.3", "r002-tor2", "network"),
    ]


def test_rack_page_names_the_holders() -> None:
    plan = plan_of(anycast_doc())
    rack = plan.fabric.rack(2)
    page = render_rack_md(plan, rack, [n for n in plan.networks if n.rack == 2], [])
    assert "10.0.2.1 (anycast: r002-tor1, r002-tor2)" in page


def test_whois_inverts_the_anycast_law() -> None:
    fabric = load_fabric(anycast_doc())
    gw = whois(fabric, "10.0.2.1")
    assert (gw.status, gw.device) == ("assigned", "r002-tor1")
    assert "held by r002-tor1, r002-tor2" in gw.note
    assert (whois(fabric, "10.0.2.3").device, whois(fabric, "10.0.2.3").role) == ("r002-tor2", "tor")
    assert whois(fabric, "10.0.9.1").status == "unassigned"  # rack 9 is not declared


# ------------------------------------------------------------------------------------ validation
def test_anycast_needs_at_most_eight_tor_slots() -> None:
    doc = anycast_doc()
    doc["limits"]["tors_per_rack"] = 9
    assert ("gateway.redundancy", "needs limits.tors_per_rack <= 8 (it is 9)") in [
        (path, message.split(": ", 1)[1]) for path, message in validation_errors(doc)
    ]


@pytest.mark.parametrize(
    ("gateway_doc", "path"),
    [
        ({"redundancy": "vrrp"}, "gateway.redundancy"),
        ({"mac": "01:00:5e:00:00:01"}, "gateway.mac"),
        ({"mac": "02-00-00-00-01-01"}, "gateway.mac"),
        ({"colour": "blue"}, "gateway.colour"),
    ],
)
def test_bad_gateway_keys_are_refused_with_their_path(gateway_doc: dict[str, Any], path: str) -> None:
    assert path in [error_path for error_path, _message in validation_errors(make_doc(gateway=gateway_doc))]


def test_adding_a_rack_changes_no_existing_tor_file() -> None:
    before_doc = anycast_doc(border={"racks": [1], "upstream_asn": 65000, "links": "10.253.0.0/24"})
    after_doc = anycast_doc(border={"racks": [1, 4], "upstream_asn": 65000, "links": "10.253.0.0/24"})
    after_doc["racks"] = [*after_doc["racks"], {"id": 4}]
    before, after = plan_of(before_doc), plan_of(after_doc)
    for tor in before.tors():
        assert render_frr(before, tor.name) == render_frr(after, tor.name), tor.name
