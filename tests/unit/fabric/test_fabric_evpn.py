# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""EVPN (``bgp.evpn``): schema and validation, the l2vpn evpn sections, VTEP facts, and that a
fabric without it renders exactly as before (``vtysh -C`` of the EVPN variants is in
``test_fabric_frr.py``)."""

from __future__ import annotations

import re

import pytest
from fabric_testlib import LAB_FILE, TWO_TORS, make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import FabricValidationError
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.evpn import (
    VXLAN_OVERHEAD,
    evpn_enabled,
    max_tenant_mtu,
    underlay_mtu,
    vtep_address,
    vteps,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.docs import render_docs
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import (
    evpn_group_maps,
    render_frr,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.schema import markdown_table


def _evpn_plan(**bgp: object) -> Plan:
    return plan_of(make_doc(defaults=TWO_TORS, bgp={"hosts": True, "evpn": True, **bgp}))


def _evpn_section(text: str) -> list[str]:
    lines = text.splitlines()
    begin = lines.index(" address-family l2vpn evpn")
    end = lines.index(" exit-address-family", begin)
    return lines[begin + 1 : end]


def _errors(doc: dict) -> list[str]:
    with pytest.raises(FabricValidationError) as caught:
        load_fabric(doc)
    return [f"{err.path}: {err.message}" for err in caught.value.errors]


# ------------------------------------------------------------------------------------ schema
def test_schema_declares_evpn_off_by_default() -> None:
    table = markdown_table()
    assert re.search(r"^\| `bgp\.evpn` \| bool \| `false` \|", table, re.M)
    assert load_fabric(make_doc()).bgp.evpn is False
    assert load_fabric(make_doc(bgp={"hosts": True, "evpn": True})).bgp.evpn is True


def test_evpn_needs_bgp_hosts_and_bgp_routing() -> None:
    assert any(e.startswith("bgp.evpn: needs bgp.hosts") for e in _errors(make_doc(bgp={"evpn": True})))
    ospf = make_doc(routing="ospf", bgp={"hosts": True, "evpn": True})
    assert any(e.startswith("bgp.evpn: needs routing: bgp") for e in _errors(ospf))
    assert any("bgp.evpn" in e for e in _errors(make_doc(bgp={"hosts": True, "evpn": "yes"})))


# ------------------------------------------------------------------------------------ no change without it
@pytest.mark.parametrize("bgp", [{}, {"hosts": True}, {"hosts": True, "evpn": False}])
def test_without_evpn_no_config_mentions_it(bgp: dict) -> None:
    plan = plan_of(make_doc(defaults=TWO_TORS, bgp=bgp))
    assert not evpn_enabled(plan) and vteps(plan) == {}
    for device in plan.routers():
        text = render_frr(plan, device.name)
        assert "l2vpn" not in text and "evpn" not in text.lower() and "attribute-unchanged" not in text


def test_evpn_only_adds_lines_to_the_ipv4_configuration() -> None:
    """Every line of the plain BGP-to-host config is still there, in the same order."""
    plain = plan_of(make_doc(defaults=TWO_TORS, bgp={"hosts": True}))
    evpn = _evpn_plan()
    for device in plain.routers():
        before = render_frr(plain, device.name).splitlines()
        after = render_frr(evpn, device.name).splitlines()
        it = iter(after)
        missing = [line for line in before if not any(line == other for other in it)]
        assert not missing, (device.name, missing[:5])
        assert len(after) > len(before), device.name


# ------------------------------------------------------------------------------------ sections
def test_spine_passes_evpn_routes_with_next_hop_unchanged() -> None:
    plan = _evpn_plan()
    section = _evpn_section(render_frr(plan, "spine01"))
    assert section == [
        "  neighbor TOR activate",
        "  neighbor TOR attribute-unchanged next-hop",
        "  neighbor TOR route-map EVPN in",
        "  neighbor TOR route-map EVPN out",
    ]
    assert "advertise-all-vni" not in render_frr(plan, "spine01")


def test_tor_relays_between_spines_and_vtep_hosts() -> None:
    plan = _evpn_plan()
    text = render_frr(plan, "r002-tor2")
    section = _evpn_section(text)
    for group in ("SPINE", "HOST"):
        assert f"  neighbor {group} activate" in section
        assert f"  neighbor {group} attribute-unchanged next-hop" in section
        assert f"  neighbor {group} route-map EVPN in" in section
        assert f"  neighbor {group} route-map EVPN out" in section
    assert "advertise-all-vni" not in text
    # only type-2 and type-3 routes pass
    assert re.findall(r"^ match evpn route-type (\S+)$", text, re.M) == ["macip", "multicast"]


def test_vtep_host_advertises_all_vnis_and_only_its_own_routes() -> None:
    plan = _evpn_plan()
    host = plan.devices["r003-h02"]
    text = render_frr(plan, host.name)
    section = _evpn_section(text)
    assert section == [
        "  neighbor TOR activate",
        "  neighbor TOR route-map EVPN in",
        "  neighbor TOR route-map EVPN-LOCAL out",
        "  advertise-all-vni",
    ]
    assert "\nbgp as-path access-list LOCAL-ORIGIN seq 10 permit ^$\n" in text
    local = text[text.index("route-map EVPN-LOCAL permit 10") :]
    assert local.splitlines()[1:3] == [" match as-path LOCAL-ORIGIN", " match evpn route-type macip"]
    # both ToRs of the rack are peers; the VTEP address (loopback) is announced in IPv4
    assert {nbr.peer_device for nbr in host.bgp_neighbors} == {"r003-tor1", "r003-tor2"}
    assert re.findall(r"^  network (\S+)$", text, re.M) == [host.loopback]


def test_evpn_group_maps() -> None:
    plan = _evpn_plan()
    assert evpn_group_maps(plan.devices["r001-h01"], ["TOR"]) == {"TOR": ("EVPN", "EVPN-LOCAL")}
    assert evpn_group_maps(plan.devices["r001-tor1"], ["SPINE", "HOST"]) == {
        "SPINE": ("EVPN", "EVPN"),
        "HOST": ("EVPN", "EVPN"),
    }


# ------------------------------------------------------------------------------------ VTEP facts
def test_vtep_addresses_follow_the_loopback_law() -> None:
    plan = _evpn_plan()
    table = vteps(plan)
    assert list(table) == [host.name for host in plan.hosts()]
    assert len(set(table.values())) == len(table)
    for name, address in table.items():
        assert plan.devices[name].loopback == f"{address}/32"
        assert vtep_address(plan, name) == address
    with pytest.raises(ValueError, match="not a VTEP"):
        vtep_address(plan, "r001-tor1")
    with pytest.raises(KeyError):
        vtep_address(plan, "nope")


def test_tenant_mtu_is_underlay_minus_vxlan_overhead() -> None:
    assert VXLAN_OVERHEAD == 50
    plan = _evpn_plan()  # hosts peer over mgmt (1500), links 9000
    assert underlay_mtu(plan) == 1500 and max_tenant_mtu(plan) == 1450
    jumbo = _evpn_plan(host_network="vm")  # vm network 9000
    assert underlay_mtu(jumbo) == 9000 and max_tenant_mtu(jumbo) == 8950
    lab = build_plan(load_fabric(LAB_FILE))
    assert not evpn_enabled(lab)


def test_fabric_docs_say_evpn_and_the_tenant_mtu() -> None:
    text = render_docs(_evpn_plan(host_network="vm"))["fabric.md"]
    assert (
        "- EVPN/VXLAN tenant networks: the hosts are VTEPs (loopback = VTEP address), tenant MTU at most 8950"
        in text
    )
    plain = render_docs(plan_of(make_doc(defaults=TWO_TORS, bgp={"hosts": True})))["fabric.md"]
    assert "EVPN" not in plain
