# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.network, and instances on tenant/rack networks (allocation, seed, bridge, evacuation)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lifecycle, virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import VirtError
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import (
    cloud_info,
    evacuate,
    hypervisor,
    instance,
    network,
)

ROOT = Path(__file__).resolve().parents[3]
NET = {"name": "acme-net", "tenant": "acme", "cidr": "10.10.0.0/24", "vni": 10010}
VM = {"name": "vm1", "template": "tpl", "offering": "small", "tenant": "acme", "host": "hv1"}


def addresses(cloud):
    return cloud.ok(cloud_info, gather=["addresses"])["addresses"]


# ------------------------------------------------------------------------------------------------
# The network module
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path, run_module):
    from cloud_testlib import Cloud

    return Cloud(tmp_path, str(tmp_path / "cloud.db"), run_module)


def test_create_check_diff_idempotence(store):
    res = store.ok(network, check=True, diff=True, **NET)
    assert res["changed"] and res["diff"]["before"] == {"network": {}}
    assert res["network"]["mtu"] == 1450 and res["network"]["gateway"] == "10.10.0.1"
    assert not os.path.exists(store.store)  # check mode created nothing
    res = store.ok(network, diff=True, **NET, reserved=["10.10.0.2-10.10.0.9"], dns=["10.10.0.2"])
    net = res["network"]
    assert res["changed"] and net["bridge"] == "brv10010" and net["capacity"] == 253 - 8
    assert net["allocated"] == 0 and net["kind"] == "tenant" and net["rack"] == 0
    assert res["diff"]["after"]["network"]["cidr"] == "10.10.0.0/24"
    again = store.ok(network, **NET, reserved=["10.10.0.2-10.10.0.9"], dns=["10.10.0.2"])
    assert not again["changed"]
    assert not store.ok(network, **NET)["changed"]  # omitted options keep their values
    res = store.ok(network, check=True, diff=True, **NET, mtu=1400)
    assert res["changed"] and res["diff"]["before"]["network"]["mtu"] == 1450
    assert res["diff"]["after"]["network"]["mtu"] == 1400
    assert store.ok(network, **NET)["network"]["mtu"] == 1450  # check mode wrote nothing
    assert store.ok(network, **NET, mtu=1400)["changed"]


def test_overlap_allowed_between_tenants_not_within_one(store):
    store.ok(network, **NET)
    store.ok(network, **{**NET, "tenant": "other", "vni": 10011})  # same CIDR, other tenant
    res = store.fails(network, **{**NET, "name": "acme-2", "cidr": "10.10.0.128/25", "vni": 10012})
    assert "overlaps network acme-net" in res["msg"] and "10.10.0.128/25" in res["msg"]


def test_vni_unique_and_in_range(store):
    store.ok(network, **NET)
    res = store.fails(network, **{**NET, "name": "b", "cidr": "10.11.0.0/24"})
    assert "vni=10010" in res["msg"] and "acme-net" in res["msg"]
    for vni in (0, 16_777_216):
        res = store.fails(network, **{**NET, "name": "c", "cidr": "10.12.0.0/24", "vni": vni})
        assert f"vni={vni}" in res["msg"] and res["key"] == "vni"


def test_mtu_checked_against_the_fabric(store):
    res = store.fails(network, **NET, mtu=1451)
    assert "mtu=1451" in res["msg"] and "1450" in res["msg"] and res["key"] == "mtu"
    net = store.ok(network, **NET, mtu=8950, fabric_mtu=9000)["network"]
    assert net["mtu"] == 8950
    assert (
        store.ok(network, **{**NET, "name": "jumbo", "cidr": "10.20.0.0/24", "vni": 2}, fabric_mtu=9000)[
            "network"
        ]["mtu"]
        == 8950
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ({"cidr": "10.10.0.1/24"}, ["cidr", "10.10.0.1/24", "10.10.0.0/24"]),
        ({"gateway": "10.99.0.1"}, ["gateway", "10.99.0.1"]),
        ({"name": "a b"}, ["name", "a b"]),
        ({"reserved": ["10.10.1.0/28"]}, ["reserved[0]", "10.10.1.0/28"]),
        ({"dns": ["dns.example"]}, ["dns[0]", "dns.example"]),
        ({"rack": 3}, ["rack", "kind=rack"]),
        ({"fabric_mtu": 20000}, ["fabric_mtu", "20000"]),
    ],
)
def test_bad_network_input_names_key_and_value(store, args, needles):
    res = store.fails(network, **{**NET, **args})
    assert "exception" not in res and res.get("hint")
    for needle in needles:
        assert needle in res["msg"], res["msg"]


def test_rack_network_from_the_fabric_plan(store):
    fabric = str(ROOT / "inventories" / "lab" / "fabric.yml")
    res = store.ok(network, name="vm", kind="rack", rack=2, fabric=fabric, hosts=["hv2"])
    net = res["network"]
    assert (net["cidr"], net["gateway"], net["mtu"], net["bridge"]) == (
        "10.64.8.0/22",
        "10.64.8.1",
        9000,
        "vm",
    )
    assert net["reserved"] == ["10.64.8.1-10.64.8.25"] and net["tenant"] == "" and net["vni"] is None
    assert not store.ok(network, name="vm", kind="rack", rack=2, fabric=fabric, hosts=["hv2"])["changed"]
    res = store.fails(network, name="vm", kind="rack", rack=2, vni=5)
    assert "vni" in res["msg"]


# ------------------------------------------------------------------------------------------------
# Instances on tenant networks
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def tenant(cloud):
    cloud.ok(network, **NET, dns=["10.10.0.53"])
    return cloud


def test_instance_gets_the_lowest_address_bridge_and_static_seed(tenant, libvirt_test):
    plan = tenant.ok(instance, check=True, **VM, networks=[{"network": "acme-net"}])
    assert "allocate 10.10.0.2/24 on acme-net" in plan["actions"] and addresses(tenant) == []
    res = tenant.ok(instance, **VM, networks=[{"network": "acme-net"}])
    (nic,) = res["instance"]["networks"]
    assert nic["ip"] == "10.10.0.2/24" and nic["source"] == "brv10010" and nic["type"] == "bridge"
    assert nic["gateway"] == "10.10.0.1" and nic["mtu"] == 1450 and nic["nameservers"] == ["10.10.0.53"]
    assert "allocate 10.10.0.2/24 on acme-net" in res["actions"]
    fields = virt.owned_fields(libvirt_test.lookupByName("vm1").XMLDesc(virt.XML_INACTIVE))
    assert fields["nics"][0]["source"] == "brv10010" and fields["nics"][0]["mac"] == nic["mac"]
    with Store.open(tenant.store) as s:
        files = lifecycle.seed_content(s.get("instances", name="vm1"))
    (eth0,) = yaml.safe_load(files["network-config"])["ethernets"].values()
    assert eth0["addresses"] == ["10.10.0.2/24"] and eth0["mtu"] == 1450
    assert eth0["routes"] == [{"to": "0.0.0.0/0", "via": "10.10.0.1"}] and "dhcp4" not in eth0
    again = tenant.ok(instance, **VM, networks=[{"network": "acme-net"}])
    assert not again["changed"], again["actions"]
    rows = addresses(tenant)
    assert [(r["instance"], r["address"], r["mac"]) for r in rows] == [("vm1", "10.10.0.2", nic["mac"])]
    assert tenant.ok(network, **NET)["network"]["allocated"] == 1


def test_fixed_ip_conflict_and_reserved_leave_nothing(tenant, libvirt_test):
    tenant.ok(instance, **VM, networks=[{"network": "acme-net", "ip": "10.10.0.7"}])
    res = tenant.fails(
        instance, **{**VM, "name": "vm2"}, networks=[{"network": "acme-net", "ip": "10.10.0.7/24"}]
    )
    assert "networks[0].ip=10.10.0.7" in res["msg"] and "instance vm1" in res["msg"]
    res = tenant.fails(
        instance, **{**VM, "name": "vm2"}, networks=[{"network": "acme-net", "ip": "10.10.0.255"}]
    )
    assert "networks[0].ip=10.10.0.255" in res["msg"] and "reserved" in res["msg"]
    res = tenant.fails(instance, **{**VM, "name": "vm2"}, networks=[{"network": "nope"}])
    assert "networks[0].network='nope'" in res["msg"]
    res = tenant.fails(
        instance, **{**VM, "name": "vm2", "tenant": "other"}, networks=[{"network": "acme-net"}]
    )
    assert "tenant other has no network 'acme-net'" in res["msg"]  # tenant networks are not shared
    with Store.open(tenant.store) as s:
        assert [r["name"] for r in s.select("instances")] == ["vm1"]
    assert "vm2" not in virt.domain_names(libvirt_test)
    assert [r["address"] for r in addresses(tenant)] == ["10.10.0.7"]
    res = tenant.ok(instance, **{**VM, "name": "vm2"}, networks=[{"network": "acme-net"}])
    assert res["instance"]["networks"][0]["ip"] == "10.10.0.2/24"  # lowest free, around the fixed one


def test_delete_releases_and_the_address_is_reused(tenant, libvirt_test):
    tenant.ok(instance, **VM, networks=[{"network": "acme-net"}])
    tenant.ok(instance, **{**VM, "name": "vm2"}, networks=[{"network": "acme-net"}])
    res = tenant.fails(network, **NET, state="absent")
    assert "2 allocated" in res["msg"] and "force" in res["hint"]
    res = tenant.fails(network, **{**NET, "cidr": "10.10.0.0/23"})
    assert "cidr cannot change" in res["msg"]
    res = tenant.fails(network, **NET, reserved=["10.10.0.3"])
    assert "10.10.0.3" in res["msg"] and "reserved" in res["msg"]
    tenant.ok(instance, name="vm1", state="absent")
    assert [r["address"] for r in addresses(tenant)] == ["10.10.0.3"]
    res = tenant.ok(instance, **{**VM, "name": "vm3"}, networks=[{"network": "acme-net"}])
    assert res["instance"]["networks"][0]["ip"] == "10.10.0.2/24"


def test_changing_the_nics_moves_and_releases_addresses(tenant, libvirt_test):
    tenant.ok(network, **{**NET, "name": "second", "cidr": "10.30.0.0/24", "vni": 10030})
    tenant.ok(instance, **VM, networks=[{"network": "acme-net"}, {"network": "second"}])
    res = tenant.ok(instance, **VM, networks=[{"network": "second", "ip": "10.30.0.9"}])
    assert res["changed"] and res["instance"]["networks"][0]["ip"] == "10.30.0.9/24"
    assert [(r["network"], r["address"]) for r in addresses(tenant)] == [("second", "10.30.0.9")]
    assert not tenant.ok(instance, **VM, networks=[{"network": "second", "ip": "10.30.0.9"}])["changed"]


def test_force_absent_releases(tenant, libvirt_test):
    tenant.ok(instance, **VM, networks=[{"network": "acme-net"}])
    res = tenant.ok(network, **NET, state="absent", force=True)
    assert res["changed"] and res["released"] == 1 and addresses(tenant) == []
    assert not tenant.ok(network, **NET, state="absent")["changed"]


def test_failed_create_releases_the_address(tenant, libvirt_test, monkeypatch):
    def refuse(*_args):
        raise VirtError("libvirt could not define the domain: boom", "See the libvirtd log.")

    with monkeypatch.context() as patch:
        patch.setattr(virt, "define", refuse)
        res = tenant.fails(instance, **VM, networks=[{"network": "acme-net"}])
    assert res["rolled_back"] is True and addresses(tenant) == []
    res = tenant.ok(instance, **{**VM, "name": "vm2"}, networks=[{"network": "acme-net"}])
    assert res["instance"]["networks"][0]["ip"] == "10.10.0.2/24"


def test_evacuation_keeps_instance_id_mac_and_tenant_ip_and_moves_the_rack_ip(
    tenant, libvirt_test, second_node
):
    cloud = tenant
    racks_for(cloud, second_node)
    first = cloud.ok(instance, state="running", **VM, networks=[{"network": "acme-net"}, {"network": "vm"}])[
        "instance"
    ]
    assert [n["ip"] for n in first["networks"]] == ["10.10.0.2/24", "10.64.4.26/22"]
    libvirt_test.lookupByName("vm1").destroy()  # hv1 died
    cloud.ok(hypervisor, name="hv1", host_state="fenced")
    (entry,) = cloud.ok(evacuate, host="hv1")["evacuated"]
    assert entry["to"] == "hv2" and entry["instance_id"] == first["instance_id"]
    assert (entry["previous_address"], entry["address"]) == ("10.10.0.2", "10.10.0.2")
    with Store.open(cloud.store) as s:
        moved = s.get("instances", name="vm1")
    assert [n["mac"] for n in moved["networks"]] == [n["mac"] for n in first["networks"]]
    assert moved["networks"][0] == first["networks"][0]  # tenant NIC: same address, bridge, MAC
    assert moved["networks"][1]["ip"] == "10.64.8.26/22"  # rack NIC: rack 2's network now
    dom = virt.connect(second_node).lookupByUUIDString(first["uuid"])
    nics = virt.owned_fields(dom.XMLDesc(virt.XML_INACTIVE))["nics"]
    assert sorted((n["mac"], n["source"]) for n in nics) == sorted(
        (n["mac"], n["source"]) for n in moved["networks"]
    )
    assert sorted((r["network"], r["address"]) for r in addresses(cloud)) == [
        ("acme-net", "10.10.0.2"),
        ("vm", "10.64.8.26"),
    ]
    again = cloud.ok(
        instance,
        state="running",
        **{**VM, "host": None},
        networks=[{"network": "acme-net"}, {"network": "vm"}],
    )
    assert not again["changed"], again["actions"]


def racks_for(cloud, second_node):
    cloud.add_host("hv2", second_node)
    for rack, host in ((1, "hv1"), (2, "hv2")):
        cloud.ok(
            network,
            name="vm",
            kind="rack",
            rack=rack,
            cidr=f"10.64.{4 * rack}.0/22",
            reserved=[f"10.64.{4 * rack}.1-10.64.{4 * rack}.25"],
            hosts=[host],
        )


def test_rebalance_cold_move_keeps_mac_and_tenant_ip(tenant, libvirt_test, second_node):
    from ansible_collections.compleat.cloud.plugins.modules import rebalance

    racks_for(tenant, second_node)
    nets = [{"network": "acme-net"}, {"network": "vm"}]
    first = tenant.ok(instance, state="running", **VM, networks=nets)["instance"]
    tenant.ok(hypervisor, name="hv1", maintenance=True)
    (move,) = tenant.ok(rebalance)["moves"]
    assert (move["instance"], move["to"]) == ("vm1", "hv2")
    with Store.open(tenant.store) as s:
        moved = s.get("instances", name="vm1")
    assert moved["networks"][0] == first["networks"][0]  # same MAC, address, bridge
    assert moved["networks"][1]["mac"] == first["networks"][1]["mac"]
    assert moved["networks"][1]["ip"] == "10.64.8.26/22"
    assert sorted(r["address"] for r in addresses(tenant)) == ["10.10.0.2", "10.64.8.26"]


def test_failed_move_puts_the_addresses_back(tenant, libvirt_test, second_node, monkeypatch):
    from ansible_collections.compleat.cloud.plugins.modules import rebalance

    racks_for(tenant, second_node)
    nets = [{"network": "acme-net"}, {"network": "vm"}]
    first = tenant.ok(instance, state="stopped", **VM, networks=nets)["instance"]
    tenant.ok(hypervisor, name="hv1", maintenance=True)
    original = virt.define

    def refuse_on_b(conn, xml):
        if conn is virt.connect(second_node):
            raise VirtError("no define on hv2", "hint")
        return original(conn, xml)

    monkeypatch.setattr(virt, "define", refuse_on_b)
    res = tenant.fails(rebalance)
    assert "It is back on hv1" in res["msg"]
    with Store.open(tenant.store) as s:
        row = s.get("instances", name="vm1")
    assert row["networks"] == first["networks"]
    assert sorted(r["address"] for r in addresses(tenant)) == ["10.10.0.2", "10.64.4.26"]


def test_restored_backup_gets_its_own_address(tenant, libvirt_test):
    from ansible_collections.compleat.cloud.plugins.modules import snapshot

    backups = tenant.tmp / "secondary" / "backups"
    first = tenant.ok(instance, state="stopped", **VM, networks=[{"network": "acme-net"}])["instance"]
    tenant.ok(snapshot, instance="vm1", name="b1", state="backed_up", backup_dir=str(backups))
    res = tenant.ok(
        snapshot, instance="vm1", name="b1", state="restored", backup_dir=str(backups), restore_to="vm1r"
    )
    (nic,) = res["restored"]["networks"]
    assert nic["ip"] == "10.10.0.3/24" and nic["source"] == "brv10010"  # never the original's .2
    assert nic["mac"] != first["networks"][0]["mac"]
    assert sorted((r["instance"], r["address"]) for r in addresses(tenant)) == [
        ("vm1", "10.10.0.2"),
        ("vm1r", "10.10.0.3"),
    ]


def test_cloud_info_filters_networks_and_addresses_by_tenant(tenant, libvirt_test):
    tenant.ok(network, **{**NET, "tenant": "other", "vni": 20010})  # the same CIDR, another tenant
    tenant.ok(instance, **VM, networks=[{"network": "acme-net"}])
    tenant.ok(instance, **{**VM, "name": "vm2", "tenant": "other"}, networks=[{"network": "acme-net"}])
    both = tenant.ok(cloud_info, gather=["networks", "addresses"])
    assert sorted((r["tenant"], r["address"]) for r in both["addresses"]) == [
        ("acme", "10.10.0.2"),
        ("other", "10.10.0.2"),
    ]
    mine = tenant.ok(cloud_info, gather=["networks", "addresses"], tenant="other")
    assert [(r["instance"], r["address"]) for r in mine["addresses"]] == [("vm2", "10.10.0.2")]
    assert [(n["tenant"], n["vni"], n["allocated"]) for n in mine["networks"]] == [("other", 20010, 1)]


def test_fixed_rack_address_cannot_follow_to_another_rack(tenant, libvirt_test, second_node):
    racks_for(tenant, second_node)
    first = tenant.ok(instance, state="running", **VM, networks=[{"network": "vm", "ip": "10.64.4.99"}])[
        "instance"
    ]
    libvirt_test.lookupByName("vm1").destroy()
    tenant.ok(hypervisor, name="hv1", host_state="fenced")
    res = tenant.fails(evacuate, host="hv1")
    (failure,) = res["failures"]
    assert failure["instance"] == "vm1" and "networks[0].ip=10.64.4.99" in failure["reason"]
    with Store.open(tenant.store) as s:
        row = s.get("instances", name="vm1")
        assert row["host_id"] == s.get("hosts", name="hv1")["id"] and row["networks"] == first["networks"]
    assert [r["address"] for r in addresses(tenant)] == ["10.64.4.99"]
