# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.evacuate between two test-driver "hosts" (test:///default and a second node file)."""

from __future__ import annotations

import os

import pytest
from cloud_testlib import ISCSI_VM1, VM_ON_HV1, vm1_moved_to_hv2

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import evacuate, hypervisor, instance, volume

VM = {"name": "vm1", **VM_ON_HV1}
ISCSI = ISCSI_VM1


@pytest.fixture
def two_hosts(cloud, second_node):
    (cloud.tmp / "hv2").mkdir()
    cloud.ok(
        hypervisor,
        name="hv2",
        uri=second_node,
        hypervisor="test",
        cpu_ratio=1.0,
        storage_dir=str(cloud.tmp / "hv2"),
    )  # capacity discovered from libvirt (8 vCPU, 16 GiB)
    cloud.ok(instance, state="stopped", **VM)
    cloud.ok(volume, name="data", instance="vm1", state="attached", **ISCSI)
    first = cloud.ok(instance, state="running", **VM)["instance"]
    return cloud, second_node, first


def crash(conn, name="vm1"):
    conn.lookupByName(name).destroy()  # the host died: nothing runs there any more


def test_discovered_capacity(two_hosts):
    cloud = two_hosts[0]
    with Store.open(cloud.store) as s:
        hv2 = s.get("hosts", name="hv2")
    assert (hv2["vcpus"], hv2["ram_mb"]) == (8, 16384)


def test_refuses_without_fence(two_hosts, libvirt_test):
    cloud = two_hosts[0]
    crash(libvirt_test)
    res = cloud.fails(evacuate, host="hv1")
    assert "not fenced" in res["msg"] and "host_state=fenced" in res["hint"]
    res = cloud.fails(evacuate, host="hv1", fence_method="command")
    assert "needs fence_command" in res["msg"]
    res = cloud.fails(evacuate, host="hv1", fence_method="command", fence_command=["false"])
    assert "fence command" in res["msg"] and "nothing was moved" in res["hint"]
    with Store.open(cloud.store) as s:
        assert s.get("hosts", name="hv1")["state"] == "up"
        assert s.get("instances", name="vm1")["host_id"] == s.get("hosts", name="hv1")["id"]


def test_refuses_when_fenced_host_still_runs_the_instance(two_hosts):
    cloud = two_hosts[0]
    cloud.ok(hypervisor, name="hv1", host_state="fenced")
    res = cloud.fails(evacuate, host="hv1")
    assert "still runs vm1" in res["msg"]


def test_evacuate_with_mark_then_clean(two_hosts, libvirt_test):
    cloud, uri_b, first = two_hosts
    crash(libvirt_test)
    cloud.ok(hypervisor, name="hv1", host_state="fenced")

    plan = cloud.ok(evacuate, host="hv1", check=True)
    assert plan["changed"] and plan["evacuated"][0]["to"] == "hv2"
    with Store.open(cloud.store) as s:
        assert s.get("instances", name="vm1")["host_id"] == s.get("hosts", name="hv1")["id"]

    res = cloud.ok(evacuate, host="hv1")
    (entry,) = res["evacuated"]
    assert entry == vm1_moved_to_hv2(first["instance_id"])
    conn_b = virt.connect(uri_b)
    dom = conn_b.lookupByUUIDString(first["uuid"])
    assert dom.isActive()
    fields = virt.owned_fields(dom.XMLDesc(virt.XML_INACTIVE))
    assert fields["metadata"]["instance-id"] == first["instance_id"] and fields["metadata"]["host"] == "hv2"
    vdb = next(d for d in fields["disks"] if d["target"] == "vdb")
    assert vdb["source"] == "iqn.2026-01.cloud.compleat:s1.vm1/0"  # same volume, straight to the guest
    assert fields["nics"][0]["mac"] == next(iter(first["networks"]))["mac"]
    vda = next(d for d in fields["disks"] if d["target"] == "vda")
    assert vda["source"].startswith(str(cloud.tmp / "hv2"))
    assert not cloud.ok(instance, name="vm1", state="running")["changed"]  # store and libvirt agree
    assert not cloud.ok(evacuate, host="hv1")["changed"]  # nothing left on hv1

    # hv1 returns: its old definition is still there; clean it
    assert "vm1" in virt.domain_names(libvirt_test)
    assert cloud.ok(evacuate, host="hv1", state="cleaned", check=True)["changed"]
    assert "vm1" in virt.domain_names(libvirt_test)
    res = cloud.ok(evacuate, host="hv1", state="cleaned")
    assert res["cleaned"] == ["vm1"] and "vm1" not in virt.domain_names(libvirt_test)
    assert not os.path.exists(first["root_disk"]) and not os.path.exists(first["seed_path"])
    assert not cloud.ok(evacuate, host="hv1", state="cleaned")["changed"]
    with Store.open(cloud.store) as s:
        events = [(e["event"], e["host"]) for e in s.select("usage_events") if e["instance_name"] == "vm1"]
    assert events[-2:] == [("stop", "hv1"), ("start", "hv2")]


def test_evacuate_with_fence_command_marks_the_host(two_hosts, libvirt_test, tmp_path):
    cloud = two_hosts[0]
    crash(libvirt_test)
    marker = tmp_path / "fenced"
    res = cloud.ok(evacuate, host="hv1", fence_method="command", fence_command=["touch", str(marker)])
    assert res["fenced"] == "command" and marker.exists() and res["evacuated"][0]["to"] == "hv2"
    with Store.open(cloud.store) as s:
        assert s.get("hosts", name="hv1")["state"] == "fenced"


def test_no_capacity_elsewhere_is_reported(two_hosts, libvirt_test):
    cloud = two_hosts[0]
    crash(libvirt_test)
    cloud.ok(hypervisor, name="hv2", host_state="down")
    cloud.ok(hypervisor, name="hv1", host_state="fenced")
    res = cloud.fails(evacuate, host="hv1")
    assert res["failures"][0]["instance"] == "vm1" and "not up" in res["failures"][0]["reason"]
