# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rollback of a failed create, unique MACs, drift in the health check, compleat.cloud.reconcile
(repair in the store's direction, power observe/enforce, the reaper of abandoned builds, orphans)
on libvirt's test driver."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import macs, virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import (
    Conflict,
    InvalidInput,
    VirtError,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import cloud_info, instance, reconcile

VM = {"name": "vm1", "template": "tpl", "offering": "small", "tenant": "acme", "networks": [{}]}


def rows(cloud, table="instances"):
    with Store.open(cloud.store) as s:
        return s.select(table)


def redefine(conn, name, edit):
    """Change a domain's persistent definition behind the store's back."""
    root = ET.fromstring(virt.inactive_xml(conn.lookupByName(name)))
    edit(root)
    conn.defineXML(ET.tostring(root, encoding="unicode"))


def add_disk(root, target="vdc", source="/var/tmp/intruder.qcow2"):
    disk = ET.SubElement(root.find("devices"), "disk", {"type": "file", "device": "disk"})
    ET.SubElement(disk, "driver", {"name": "qemu", "type": "qcow2"})
    ET.SubElement(disk, "source", {"file": source})
    ET.SubElement(disk, "target", {"dev": target, "bus": "virtio"})


def set_vcpus(root, n=3):
    root.find("vcpu").text = str(n)


# ------------------------------------------------------------------------------------------------
# A failed create rolls back
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["define", "start"])
def test_failed_create_leaves_no_row_no_file_no_domain(cloud, libvirt_test, monkeypatch, step):
    def refuse(*_args):
        raise VirtError(f"libvirt could not {step} the domain: boom", "See the libvirtd log.")

    with monkeypatch.context() as patch:
        patch.setattr(virt, step, refuse)
        res = cloud.fails(instance, state="running", **VM)
        assert "boom" in res["msg"] and res["rolled_back"] is True
        assert any(a.startswith("remove ") for a in res["rollback_actions"])
        assert rows(cloud) == [] and rows(cloud, "usage_events") == []
        assert os.listdir(cloud.tmp / "hv1") == []
        assert "vm1" not in virt.domain_names(libvirt_test)
    assert cloud.ok(instance, state="running", **VM)["instance"]["state"] == "running"  # capacity free


def test_rollback_keeps_files_that_were_there_before(cloud, libvirt_test, monkeypatch):
    stale = cloud.tmp / "hv1" / "vm1-seed.iso"
    stale.write_text("not ours")

    def refuse(*_args):
        raise VirtError("no define", "hint")

    monkeypatch.setattr(virt, "define", refuse)
    cloud.fails(instance, **VM)
    assert stale.exists() and not (cloud.tmp / "hv1" / "vm1.qcow2").exists()
    assert rows(cloud) == []


# ------------------------------------------------------------------------------------------------
# MACs
# ------------------------------------------------------------------------------------------------
def test_generated_mac_is_stable_and_local():
    assert macs.generated_mac("u1", 0) == macs.generated_mac("u1", 0) != macs.generated_mac("u1", 1)
    assert macs.generated_mac("u1", 0, 1) != macs.generated_mac("u1", 0)
    assert macs.generated_mac("u1", 0).startswith("52:54:00:")


def test_assign_rederives_a_generated_clash_and_refuses_a_given_one():
    nics = [{"mac": "52:54:00:00:00:01"}, {"mac": "52:54:00:00:00:02"}]
    used = {"52:54:00:00:00:01": "other"}
    out = macs.assign(nics, "u9", set(), used, "me")
    assert out[0]["mac"] == macs.generated_mac("u9", 0, 1) and out[1]["mac"] == "52:54:00:00:00:02"
    with pytest.raises(Conflict, match=r"networks\[0\]\.mac=52:54:00:00:00:01 .* used by instance other"):
        macs.assign(nics, "u9", {0}, used, "me")
    with pytest.raises(Conflict):  # two NICs of one instance with one MAC
        macs.assign([{"mac": "52:54:00:00:00:03"}] * 2, "u9", {0, 1}, {}, "me")


@pytest.mark.parametrize(
    "bad", ["52:54:00:00:00", "zz:54:00:00:00:01", "01:00:5e:00:00:01", "5254.0000.0001"]
)
def test_bad_mac_format_is_refused(bad):
    with pytest.raises(InvalidInput, match=r"networks\[0\]\.mac"):
        macs.check_format([{"mac": bad}])


def test_a_given_mac_used_by_another_instance_is_refused(cloud, libvirt_test):
    cloud.ok(instance, **{**VM, "networks": [{"mac": "52:54:00:aa:00:01"}]})
    res = cloud.fails(instance, **{**VM, "name": "vm2", "networks": [{"mac": "52:54:00:AA:00:01"}]})
    assert "used by instance vm1" in res["msg"] and "omit mac" in res["hint"]
    assert [r["name"] for r in rows(cloud)] == ["vm1"]


def test_a_generated_clash_gets_another_mac_that_stays(cloud, libvirt_test, monkeypatch):
    real = macs.generated_mac
    monkeypatch.setattr(
        macs, "generated_mac", lambda u, i, a=0: "52:54:00:00:00:77" if a == 0 else real(u, i, a)
    )
    first = cloud.ok(instance, **VM)["instance"]["networks"][0]["mac"]
    second = cloud.ok(instance, **{**VM, "name": "vm2"})["instance"]["networks"][0]["mac"]
    assert first == "52:54:00:00:00:77" and second != first
    # the re-derived MAC is kept on later runs (no flapping back to the clashing one)
    again = cloud.ok(instance, **{**VM, "name": "vm2"})
    assert not again["changed"] and again["instance"]["networks"][0]["mac"] == second


# ------------------------------------------------------------------------------------------------
# Drift and reconcile
# ------------------------------------------------------------------------------------------------
def test_health_sees_a_volume_and_vcpus_added_behind_the_store(cloud, libvirt_test):
    cloud.ok(instance, state="stopped", **VM)
    redefine(libvirt_test, "vm1", lambda r: (add_disk(r), set_vcpus(r)))
    health = cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]
    entry = health["instances"]["vm1"]
    assert health["mismatched"] == ["vm1"] and entry["store"] == entry["libvirt"] == "stopped"
    assert entry["drift"]["config"] == ["disks", "vcpus"] and entry["drift"]["disks"]["extra"] == ["vdc"]


def test_reconcile_check_mode_then_repair_then_nothing(cloud, libvirt_test):
    cloud.ok(instance, state="stopped", **VM)
    redefine(libvirt_test, "vm1", lambda r: (add_disk(r), set_vcpus(r)))
    check = cloud.ok(reconcile, check=True, diff=True)
    assert check["changed"] and check["instances"][0]["config"] == ["disks", "vcpus"]
    assert "vdc" in {
        d["target"] for d in virt.owned_fields(virt.inactive_xml(libvirt_test.lookupByName("vm1")))["disks"]
    }
    res = cloud.ok(reconcile)
    assert res["changed"] and res["instances"][0]["repaired"]
    fields = virt.owned_fields(virt.inactive_xml(libvirt_test.lookupByName("vm1")))
    assert fields["vcpus"] == 1 and "vdc" not in {d["target"] for d in fields["disks"]}
    again = cloud.ok(reconcile)
    assert not again["changed"] and again["instances"] == []
    assert cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]["mismatched"] == []


def test_reconcile_rebuilds_a_lost_domain_and_overlay(cloud, libvirt_test):
    inst = cloud.ok(instance, state="stopped", **VM)["instance"]
    virt.undefine(libvirt_test.lookupByName("vm1"))
    os.unlink(inst["root_disk"])
    res = cloud.ok(reconcile)
    assert res["instances"][0]["missing"] and os.path.exists(inst["root_disk"])
    assert libvirt_test.lookupByName("vm1").UUIDString() == inst["uuid"]
    assert not cloud.ok(reconcile)["changed"]


def test_power_observe_records_and_enforce_starts(cloud, libvirt_test):
    cloud.ok(instance, state="running", **VM)
    libvirt_test.lookupByName("vm1").destroy()  # the guest went down by itself
    res = cloud.ok(reconcile)
    assert res["instances"][0]["power"] == {"store": "running", "libvirt": "stopped"}
    assert rows(cloud)[0]["state"] == "stopped"
    assert [e["event"] for e in rows(cloud, "usage_events")][-1] == "stop"
    with Store.open(cloud.store) as s:  # the operator wants it running: enforce
        s.update("instances", s.get("instances", name="vm1")["id"], {"state": "running"})
    assert cloud.ok(reconcile, check=True, power="enforce")["changed"]
    assert virt.power_state(libvirt_test.lookupByName("vm1")) == "stopped"
    assert cloud.ok(reconcile, power="enforce")["changed"]
    assert virt.power_state(libvirt_test.lookupByName("vm1")) == "running"
    assert not cloud.ok(reconcile, power="enforce")["changed"]


def test_reaper_releases_only_abandoned_builds(cloud, libvirt_test):
    old = cloud.ok(instance, **VM)["instance"]
    cloud.ok(instance, **{**VM, "name": "vm2"})
    with Store.open(cloud.store) as s:
        for name, age in (("vm1", 7200), ("vm2", 60)):
            row = s.get("instances", name=name)
            s.execute(
                "UPDATE instances SET state = 'building', updated_at = ? WHERE id = ?",
                (s.now() - age, row["id"]),
            )
    check = cloud.ok(reconcile, check=True)
    assert check["reaped"] == ["vm1"] and len(rows(cloud)) == 2
    res = cloud.ok(reconcile, building_ttl=3600)
    assert res["reaped"] == ["vm1"] and [r["name"] for r in rows(cloud)] == ["vm2"]
    assert not os.path.exists(old["root_disk"]) and "vm1" not in virt.domain_names(libvirt_test)
    assert not cloud.ok(reconcile)["changed"]
    health = cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]
    assert health["instances"]["vm2"]["agrees"]  # a build in progress is not drift


def test_orphans_listed_never_removed_and_unknown_host_refused(cloud, libvirt_test):
    cloud.ok(instance, **VM)
    xml = virt.inactive_xml(libvirt_test.lookupByName("vm1"))
    root = ET.fromstring(xml)
    root.find("name").text = "ghost"
    root.find("uuid").text = "00000000-0000-4000-8000-000000000001"
    for dev in root.find("devices").findall("interface"):
        root.find("devices").remove(dev)
    libvirt_test.defineXML(ET.tostring(root, encoding="unicode"))
    res = cloud.ok(reconcile)
    assert res["orphans"] == {"hv1": ["ghost"]} and "ghost" in virt.domain_names(libvirt_test)
    res = cloud.fails(reconcile, hosts=["hv1", "nope"])
    assert "hosts: unknown host(s) nope" in res["msg"] and "cloud_info" in res["hint"]


def test_revert_to_a_snapshot_taken_with_a_volume_keeps_the_stores_volume_view(cloud, libvirt_test):
    from ansible_collections.compleat.cloud.plugins.modules import snapshot, volume

    pool = libvirt_test.storagePoolLookupByName("default-pool")
    for name in pool.listVolumes():
        if name == "rv1.qcow2":
            pool.storageVolLookupByName(name).delete(0)
    cloud.ok(instance, state="stopped", **VM)
    cloud.ok(volume, name="rv1", size_gb=1, pool="default-pool", host="hv1")
    cloud.ok(volume, name="rv1", instance="vm1", state="attached")
    cloud.ok(snapshot, instance="vm1", name="with-volume")
    cloud.ok(volume, name="rv1", state="detached")
    res = cloud.ok(snapshot, instance="vm1", name="with-volume", state="reverted")
    assert any("redefine domain vm1 (disks)" in a for a in res["actions"]), res["actions"]
    targets = {
        d["target"] for d in virt.owned_fields(virt.inactive_xml(libvirt_test.lookupByName("vm1")))["disks"]
    }
    assert "vdb" not in targets  # libvirt brought it back; the store said detached
    health = cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]
    assert health["instances"]["vm1"]["agrees"] and health["mismatched"] == []
    # the double-attach guard holds: the volume can go to another instance, and only there
    cloud.ok(instance, state="stopped", **{**VM, "name": "vm2"})
    cloud.ok(volume, name="rv1", instance="vm2", state="attached")
    assert cloud.ok(snapshot, instance="vm1", name="with-volume", state="reverted")["changed"]
    vm1 = {
        d["source"] for d in virt.owned_fields(virt.inactive_xml(libvirt_test.lookupByName("vm1")))["disks"]
    }
    assert not any(s.endswith("rv1.qcow2") for s in vm1)
    cloud.ok(volume, name="rv1", state="detached")
    cloud.ok(volume, name="rv1", state="absent")
