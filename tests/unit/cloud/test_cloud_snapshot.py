# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.snapshot: internal snapshots on the test driver, backups and restores with real qemu-img."""

from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import instance, snapshot, snapshot_info

VM = {"name": "vm1", "template": "tpl", "offering": "small", "tenant": "acme", "ssh_keys": ["ops"]}


def test_internal_snapshot_create_list_revert_delete(cloud, libvirt_test):
    cloud.ok(instance, state="running", **VM)
    assert cloud.ok(snapshot, instance="vm1", name="s1", check=True)["changed"]
    assert virt.snapshot_names(libvirt_test.lookupByName("vm1")) == []
    res = cloud.ok(snapshot, instance="vm1", name="s1", diff=True)
    assert res["changed"] and res["libvirt_snapshots"] == ["s1"]
    assert [s["name"] for s in res["snapshots"]] == ["s1"]
    assert not cloud.ok(snapshot, instance="vm1", name="s1")["changed"]
    listed = cloud.ok(snapshot_info, instance="vm1")
    assert not listed["changed"] and listed["snapshots"][0]["kind"] == "internal"

    cloud.ok(instance, name="vm1", state="stopped")
    res = cloud.ok(snapshot, instance="vm1", name="s1", state="reverted")
    assert res["changed"] and libvirt_test.lookupByName("vm1").isActive()  # s1 was taken while running
    with Store.open(cloud.store) as s:
        assert s.get("instances", name="vm1")["state"] == "running"

    assert "no snapshot" in cloud.fails(snapshot, instance="vm1", name="nope", state="reverted")["msg"]
    assert cloud.ok(snapshot, instance="vm1", name="s1", state="absent")["changed"]
    assert not cloud.ok(snapshot, instance="vm1", name="s1", state="absent")["changed"]
    assert cloud.ok(snapshot_info, instance="vm1")["libvirt_snapshots"] == []


def test_snapshot_xml_skips_seed_and_raw_disks():
    from ansible_collections.compleat.cloud.plugins.modules.snapshot import snapshot_xml

    spec = virt.DomainSpec(
        "v",
        "u",
        "qemu",
        512,
        1,
        disks=(
            virt.DiskSpec("vda", "/r.qcow2"),
            virt.seed_disk("qemu", "/s.iso", "iso"),
            virt.DiskSpec("vdb", "iqn/0", kind="network", fmt="raw", protocol="iscsi"),
        ),
    )
    xml = snapshot_xml("n", "d", spec)
    assert '<disk name="vda" snapshot="internal" />' in xml
    assert '<disk name="sda" snapshot="no" />' in xml and '<disk name="vdb" snapshot="no" />' in xml


def test_backup_and_restore_to_new_instance(cloud, libvirt_test):
    backups = cloud.tmp / "secondary" / "backups"
    first = cloud.ok(instance, state="running", **VM)["instance"]
    res = cloud.fails(snapshot, instance="vm1", name="b1", state="backed_up", backup_dir=str(backups))
    assert "running" in res["msg"] and "state=stopped" in res["hint"]
    cloud.ok(instance, name="vm1", state="stopped")
    assert cloud.ok(
        snapshot, instance="vm1", name="b1", state="backed_up", backup_dir=str(backups), check=True
    )["changed"]
    assert not (backups / "vm1" / "b1.qcow2").exists()
    res = cloud.ok(snapshot, instance="vm1", name="b1", state="backed_up", backup_dir=str(backups))
    assert res["changed"] and (backups / "vm1" / "b1.qcow2").exists()
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(backups / "vm1" / "b1.qcow2")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert info["backing-filename"].endswith("tpl.qcow2")  # only what differs from the template
    manifest = json.loads((backups / "vm1" / "b1.json").read_text())
    assert manifest["template"] == "tpl" and manifest["offering"] == "small" and manifest["instance_id"]
    assert not cloud.ok(snapshot, instance="vm1", name="b1", state="backed_up", backup_dir=str(backups))[
        "changed"
    ]

    args = {
        "instance": "vm1",
        "name": "b1",
        "state": "restored",
        "backup_dir": str(backups),
        "restore_to": "vm1r",
    }
    assert cloud.ok(snapshot, check=True, **args)["restored"]["host"] == "hv1"
    res = cloud.ok(snapshot, **args)
    new = res["restored"]
    assert res["changed"] and new["name"] == "vm1r" and new["uuid"] != first["uuid"]
    assert new["instance_id"] != first["instance_id"] and os.path.exists(new["root_disk"])
    assert libvirt_test.lookupByName("vm1r").UUIDString() == new["uuid"]
    assert not cloud.ok(snapshot, **args)["changed"]
    assert not cloud.ok(instance, name="vm1r", state="present")["changed"]
    assert "No backup" in cloud.fails(snapshot, **{**args, "name": "b9", "restore_to": "x"})["msg"]


def test_missing_name_is_refused(cloud):
    res = cloud.fails(snapshot, instance="vm1", state="present")
    assert "name" in res["msg"]
    assert "Unknown instance" in cloud.fails(snapshot, instance="ghost", name="x")["msg"]


def test_names_and_backup_paths_that_leave_their_directory_are_refused(cloud, libvirt_test, tmp_path):
    cloud.ok(instance, state="stopped", **VM)
    backups = tmp_path / "backups"
    files_before = sorted(str(p) for p in tmp_path.rglob("*"))
    bad = cloud.fails(
        snapshot, instance="vm1", name="../../escape", state="backed_up", backup_dir=str(backups)
    )
    assert bad["key"] == "name" and bad["value"] == "../../escape" and "not a valid name" in bad["msg"]
    bad = cloud.fails(
        snapshot, instance="vm1", name="b1", state="restored", backup_dir=str(backups), restore_to="a/b"
    )
    assert bad["key"] == "restore_to" and bad["value"] == "a/b"
    bad = cloud.fails(
        snapshot, instance="../..", name="b1", state="restored", backup_dir=str(backups), restore_to="vm2"
    )
    assert "outside the directory" in bad["msg"]
    assert sorted(str(p) for p in tmp_path.rglob("*")) == files_before
    assert virt.snapshot_names(libvirt_test.lookupByName("vm1")) == []
    with Store.open(cloud.store) as s:
        assert s.get("instances", name="vm2") is None and not s.select("snapshots")
