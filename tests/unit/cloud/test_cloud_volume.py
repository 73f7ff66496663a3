# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.volume on libvirt's test driver (its default-pool) and a temp SQLite store."""

from __future__ import annotations

import contextlib

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lifecycle, virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import instance, volume

VM = {"name": "vm1", "template": "tpl", "offering": "small", "tenant": "acme"}
ISCSI = {
    "backend": "iscsi",
    "iscsi_portal": "192.0.2.5:3260",
    "iscsi_iqn": "iqn.2026-01.cloud.compleat:s1.v1",
}


def disks(conn, live=False):
    dom = conn.lookupByName("vm1")
    return {d["target"]: d for d in virt.owned_fields(dom.XMLDesc(0 if live else virt.XML_INACTIVE))["disks"]}


def cleanup_pool(conn, *names):
    pool = conn.storagePoolLookupByName("default-pool")
    for name in names:
        with contextlib.suppress(Exception):
            pool.storageVolLookupByName(name).delete(0)


def test_pool_volume_lifecycle(cloud, libvirt_test):
    cleanup_pool(libvirt_test, "data1.qcow2")
    cloud.ok(instance, **VM)
    args = {"name": "data1", "size_gb": 2, "pool": "default-pool", "host": "hv1"}
    assert cloud.ok(volume, check=True, **args)["changed"]
    with Store.open(cloud.store) as s:
        assert s.get("volumes", name="data1") is None
    res = cloud.ok(volume, **args)
    assert res["changed"] and res["volume"]["path"] == "/default-pool/data1.qcow2"
    assert not cloud.ok(volume, **args)["changed"]
    assert cloud.fails(volume, **{**args, "size_gb": 1})["msg"].count("shrinking")
    assert (
        cloud.ok(volume, check=True, **{**args, "size_gb": 3})["volume"]["size_gb"] == 3
    )  # no resize in test://

    check = cloud.ok(volume, check=True, name="data1", instance="vm1", state="attached")
    assert check["changed"] and "vdb" not in disks(libvirt_test)
    res = cloud.ok(volume, name="data1", instance="vm1", state="attached", diff=True)
    assert res["changed"] and res["attach_mode"] == "config" and res["volume"]["target_dev"] == "vdb"
    assert res["volume"]["attached_to"] == "vm1"
    assert disks(libvirt_test)["vdb"]["source"] == "/default-pool/data1.qcow2"
    assert not cloud.ok(volume, name="data1", instance="vm1", state="attached")["changed"]
    assert not cloud.ok(instance, **VM)["changed"]  # the instance's definition includes the volume

    res = cloud.fails(volume, name="data1", state="absent")
    assert "attached" in res["msg"] and "force" in res["hint"]
    res = cloud.ok(volume, name="data1", state="detached")
    assert res["changed"] and "vdb" not in disks(libvirt_test)
    assert not cloud.ok(volume, name="data1", state="detached")["changed"]
    assert cloud.ok(volume, name="data1", state="absent")["changed"]
    assert not cloud.ok(volume, name="data1", state="absent")["changed"]
    pool = libvirt_test.storagePoolLookupByName("default-pool")
    assert "data1.qcow2" not in pool.listVolumes()


def test_two_volumes_get_distinct_targets_and_survive_instance_delete(cloud, libvirt_test):
    cleanup_pool(libvirt_test, "a.qcow2", "b.qcow2")
    cloud.ok(instance, **VM)
    for name in ("a", "b"):
        cloud.ok(volume, name=name, size_gb=1, pool="default-pool", instance="vm1", state="attached")
    assert {"vdb", "vdc"} <= set(disks(libvirt_test))
    cloud.ok(instance, name="vm1", state="absent")
    with Store.open(cloud.store) as s:
        assert [(v["name"], v["attached_to"]) for v in s.select("volumes", order_by="name")] == [
            ("a", None),
            ("b", None),
        ]
    for name in ("a", "b"):
        cloud.ok(volume, name=name, state="absent")


def test_iscsi_volume_is_a_network_disk(cloud, libvirt_test):
    cloud.ok(instance, **VM)
    res = cloud.ok(volume, name="lun1", instance="vm1", state="attached", **ISCSI)
    assert res["volume"]["backend"] == "iscsi"
    disk = disks(libvirt_test)["vdb"]
    assert disk["kind"] == "network" and disk["protocol"] == "iscsi"
    assert disk["source"] == "iqn.2026-01.cloud.compleat:s1.v1/0" and disk["hosts"] == ["192.0.2.5:3260"]
    assert not cloud.ok(volume, name="lun1", instance="vm1", state="attached", **ISCSI)["changed"]
    res = cloud.fails(volume, name="lun1", **{**ISCSI, "iscsi_lun": 3})
    assert "Detach" in res["hint"]
    assert cloud.ok(volume, name="lun1", state="absent", force=True)["changed"]
    assert "vdb" not in disks(libvirt_test)


def test_error_paths(cloud, libvirt_test):
    assert "needs iscsi_portal" in cloud.fails(volume, name="x", backend="iscsi")["msg"]
    assert "needs size_gb" in cloud.fails(volume, name="x", pool="default-pool", host="hv1")["msg"]
    assert "No host" in cloud.fails(volume, name="x", size_gb=1)["msg"]
    assert "pool" in cloud.fails(volume, name="x", size_gb=1, pool="nope", host="hv1")["msg"]
    assert (
        "Unknown instance"
        in cloud.fails(volume, name="lun", state="attached", instance="ghost", **ISCSI)["msg"]
    )
    cloud.ok(instance, state="running", **VM)
    res = cloud.fails(volume, name="lun", state="attached", instance="vm1", **ISCSI)
    assert "attach" in res["msg"]  # the test driver cannot hot-plug: refused, store unchanged
    with Store.open(cloud.store) as s:
        assert s.get("volumes", name="lun")["attached_to"] is None


def test_a_name_that_is_not_a_dns_label_is_refused_before_anything_is_written(cloud, libvirt_test):
    pool = libvirt_test.storagePoolLookupByName("default-pool")
    volumes_before = sorted(pool.listVolumes())
    res = cloud.fails(volume, name="../data", size_gb=1, pool="default-pool", host="hv1")
    assert res["key"] == "name" and res["value"] == "../data" and "not a valid name" in res["msg"]
    assert sorted(pool.listVolumes()) == volumes_before
    with Store.open(cloud.store) as s:
        assert not s.select("volumes")


def test_iscsi_volume_through_the_host_initiator(cloud, libvirt_test):
    """A host registered with iscsi_attach=host gets the LUN as its by-path block device (its own
    open-iscsi login with CHAP), in the live attach and in every definition rebuilt from the store."""
    from ansible_collections.compleat.cloud.plugins.modules import hypervisor

    assert cloud.ok(hypervisor, name="hv1", iscsi_attach="host")["host"]["iscsi_attach"] == "host"
    assert not cloud.ok(hypervisor, name="hv1", iscsi_attach="host")["changed"]
    cloud.ok(instance, **VM)
    cloud.ok(volume, name="lun1", instance="vm1", state="attached", **ISCSI)
    disk = disks(libvirt_test)["vdb"]
    assert disk["kind"] == "block"
    assert (
        disk["source"] == "/dev/disk/by-path/ip-192.0.2.5:3260-iscsi-iqn.2026-01.cloud.compleat:s1.v1-lun-0"
    )
    # the stored definition (what evacuate and reconcile rebuild) says the same
    with Store.open(cloud.store) as s:
        inst = s.get("instances", name="vm1")
        spec = lifecycle.domain_spec(s, inst, s.get("hosts", name="hv1"))
    assert [d.kind for d in spec.disks if d.target == "vdb"] == ["block"]
    cloud.ok(volume, name="lun1", state="absent", force=True)
    assert "vdb" not in disks(libvirt_test)
    assert "iscsi_attach" in cloud.fails(hypervisor, name="hv1", iscsi_attach="nfs")["msg"]
