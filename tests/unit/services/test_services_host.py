# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""render/host.py (a host's networks from the plan) and the fabric_host_networks filter."""

from __future__ import annotations

import pytest
from services_testlib import DOC, LAB_FILE, doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.host import (
    host_networks,
    networkd_files,
)


def test_host_of_rack_1_gets_the_law_addresses_and_the_default_route_on_mgmt() -> None:
    view = host_networks(plan_of(DOC), "r001-h02")
    assert (view["device"], view["rack"], view["bgp"]) == ("r001-h02", 1, False)
    assert view["loopback"].endswith("/32")
    mgmt, vm = view["networks"]
    assert mgmt == {
        "name": "mgmt",
        "vlan": 10,
        "mtu": 1500,
        "address": "10.0.1.11/24",
        "prefix": "10.0.1.0/24",
        "gateway": "10.0.1.1",
        "default_route": True,
        "routes": [],
    }
    assert (vm["name"], vm["vlan"], vm["mtu"], vm["default_route"]) == ("vm", 40, 9000, False)
    assert vm["address"].rsplit("/", 1)[1] == "26" and vm["prefix"] == "10.64.0.64/26"
    # the whole vm pool (every rack's vm network) via the vm gateway, not the default route
    assert vm["routes"] == [{"to": "10.64.0.0/22", "via": vm["gateway"]}]
    assert vm["gateway"] == "10.64.0.65"


def test_addresses_are_the_planned_host_interfaces() -> None:
    plan = plan_of(DOC)
    for name in ("r001-h01", "r001-h03", "r002-h02"):
        planned = {i.network_role: i.address for i in plan.devices[name].interfaces if i.network_role}
        assert {n["name"]: n["address"] for n in host_networks(plan, name)["networks"]} == planned


def test_default_route_elsewhere_or_nowhere() -> None:
    plan = plan_of(DOC)
    on_vm = host_networks(plan, "r002-h01", default_route="vm")["networks"]
    assert [n["default_route"] for n in on_vm] == [False, True]
    assert (
        on_vm[0]["routes"] == [{"to": "10.0.0.0/14", "via": on_vm[0]["gateway"]}] and on_vm[1]["routes"] == []
    )
    nowhere = host_networks(plan, "r002-h01", default_route=None)["networks"]
    assert not any(n["default_route"] for n in nowhere)
    assert all(len(n["routes"]) == 1 for n in nowhere)


def test_bgp_to_host_routes_only_the_host_network_by_bgp() -> None:
    # the sessions (over mgmt, the default host network) carry mgmt and the loopbacks; vm still
    # routes its pool via its own gateway, so its traffic keeps to the vm network
    view = host_networks(plan_of(doc(bgp={"hosts": True})), "r001-h01")
    assert view["bgp"] is True
    assert [n["default_route"] for n in view["networks"]] == [True, False]
    mgmt, vm = view["networks"]
    assert mgmt["routes"] == []
    assert vm["routes"] == [{"to": DOC["networks"]["vm"]["pool"], "via": vm["gateway"]}]


def test_bgp_over_another_network_keeps_the_default_route_network() -> None:
    view = host_networks(plan_of(doc(bgp={"hosts": True, "host_network": "vm"})), "r001-h01")
    assert [(n["name"], n["routes"]) for n in view["networks"]] == [("mgmt", []), ("vm", [])]
    assert [n["default_route"] for n in view["networks"]] == [True, False]


def test_adding_a_rack_changes_nothing_for_existing_hosts() -> None:
    before = host_networks(plan_of(DOC), "r002-h02")
    grown = doc(racks=[*DOC["racks"], {"id": 3, "tors": 1, "uplinks": 2, "hosts": 4}])
    assert host_networks(plan_of(grown), "r002-h02") == before


@pytest.mark.parametrize(
    ("device", "default_route", "message"),
    [
        ("spine01", "mgmt", "'spine01' is not a host of the plan"),
        ("r001-tor1", "mgmt", "'r001-tor1' is not a host"),
        ("r009-h01", "mgmt", "'r009-h01' is not a host"),
        ("r001-h01", "storage", "default_route: 'storage' is not a network of the fabric"),
    ],
)
def test_errors_name_the_key_and_value(device: str, default_route: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        host_networks(plan_of(DOC), device, default_route=default_route)


def test_filter_reads_a_file_and_reports_errors() -> None:
    from ansible.errors import AnsibleFilterError

    from ansible_collections.compleat.cloud.plugins.filter.services import fabric_host_networks

    view = fabric_host_networks(str(LAB_FILE), "r001-h02")
    assert [n["name"] for n in view["networks"]] == ["mgmt", "storage", "service", "vm"]
    assert not any(
        n["default_route"]
        for n in fabric_host_networks(str(LAB_FILE), "r001-h02", default_route="")["networks"]
    )
    with pytest.raises(AnsibleFilterError, match="fabric_host_networks: device: 'nope'"):
        fabric_host_networks(str(LAB_FILE), "nope")


# ---- systemd-networkd files -------------------------------------------------------------------


def _view() -> dict:
    return host_networks(plan_of(DOC), "r001-h02")


def test_vlan_mode_trunk_vlans_and_networks() -> None:
    files = networkd_files(_view(), link_mode="vlan", uplink="eno1")
    assert list(files) == [
        "20-compleat-eno1.10.netdev",
        "20-compleat-eno1.40.netdev",
        "20-compleat-lo.network",
        "20-compleat-mgmt.network",
        "20-compleat-uplink.network",
        "20-compleat-vm.network",
    ]
    trunk = files["20-compleat-uplink.network"]
    assert "Name=eno1\n" in trunk and "MTUBytes=9000\n" in trunk and "LinkLocalAddressing=no\n" in trunk
    assert "VLAN=eno1.10\nVLAN=eno1.40\n" in trunk and "Address=" not in trunk
    assert (
        "[NetDev]\nName=eno1.40\nKind=vlan\nMTUBytes=9000\n\n[VLAN]\nId=40\n"
        in files["20-compleat-eno1.40.netdev"]
    )
    mgmt = files["20-compleat-mgmt.network"]
    assert "[Match]\nName=eno1.10\n" in mgmt and "Address=10.0.1.11/24\n" in mgmt
    assert "[Route]\nGateway=10.0.1.1\n" in mgmt and "Destination" not in mgmt
    vm = files["20-compleat-vm.network"]
    assert "[Route]\nDestination=10.64.0.0/22\nGateway=10.64.0.65\n" in vm and "[Route]\nGateway=" not in vm
    lo = files["20-compleat-lo.network"]
    assert "Address=127.0.0.1/8\nAddress=::1/128\nAddress=" + _view()["loopback"] + "\n" in lo


def test_nic_mode_matches_names_or_macs_and_roles_limit() -> None:
    files = networkd_files(
        _view(),
        link_mode="nic",
        nics={"mgmt": "eth1", "vm": "52:54:00:AA:BB:CC"},
        roles=["mgmt", "vm"],
        loopback=False,
    )
    assert list(files) == ["20-compleat-mgmt.network", "20-compleat-vm.network"]
    assert "[Match]\nName=eth1\n" in files["20-compleat-mgmt.network"]
    assert "[Match]\nMACAddress=52:54:00:aa:bb:cc\n" in files["20-compleat-vm.network"]
    assert "MTUBytes=9000" in files["20-compleat-vm.network"]
    only_mgmt = networkd_files(_view(), link_mode="nic", nics={"mgmt": "eth1"}, roles=["mgmt"])
    assert sorted(only_mgmt) == ["20-compleat-lo.network", "20-compleat-mgmt.network"]


def test_none_mode_writes_only_the_loopback() -> None:
    assert list(networkd_files(_view(), link_mode="none")) == ["20-compleat-lo.network"]
    assert networkd_files(_view(), link_mode="none", loopback=False) == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"link_mode": "bond"}, "link_mode: 'bond' is not one of vlan, nic, none"),
        ({"link_mode": "vlan", "uplink": ""}, "uplink: '' is not a usable interface name"),
        ({"link_mode": "vlan", "uplink": "enp129s0f1np1"}, "uplink: 'enp129s0f1np1'"),
        ({"link_mode": "nic", "nics": {"mgmt": "eth1"}}, "nics: no interface for network.s. vm"),
        ({"link_mode": "nic", "nics": {"mgmt": "eth 1", "vm": "eth2"}}, "nics.mgmt: 'eth 1' is neither"),
        ({"link_mode": "nic", "nics": {}, "roles": ["storage"]}, "roles: 'storage' not networks of the plan"),
    ],
)
def test_networkd_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        networkd_files(_view(), **kwargs)


def test_networkd_filter() -> None:
    from ansible.errors import AnsibleFilterError

    from ansible_collections.compleat.cloud.plugins.filter.services import fabric_host_networkd

    files = fabric_host_networkd(
        _view(), link_mode="nic", nics={"mgmt": "eth1", "vm": "eth2"}, roles="mgmt,vm"
    )
    assert "20-compleat-vm.network" in files
    with pytest.raises(AnsibleFilterError, match="expected the result of fabric_host_networks"):
        fabric_host_networkd({"device": "x"})
    with pytest.raises(AnsibleFilterError, match="fabric_host_networkd: link_mode"):
        fabric_host_networkd(_view(), link_mode="x")
