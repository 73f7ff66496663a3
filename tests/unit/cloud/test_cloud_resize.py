# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Resizing grows the root overlay and volumes, never shrinks them (libvirt's test driver, temp store).

The test driver has neither ``virDomainBlockResize`` nor ``virStorageVolResize``: the online and
pool paths are exercised for real in tests/integration_libvirt/test_resize.py; here they must fail
cleanly (with the hint) and leave a state that the next run repairs.
"""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lifecycle, overlay
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import Conflict
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import instance, offering, volume

GIB, MIB = 1024**3, 1024**2
VM = {"name": "vm1", "template": "tpl", "tenant": "acme"}
ISCSI = {
    "backend": "iscsi",
    "iscsi_portal": "192.0.2.5:3260",
    "iscsi_iqn": "iqn.2026-01.cloud.compleat:s1.grow",
}


def virtual_size(path: str) -> int:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)["virtual-size"]


def row(cloud, table: str, name: str) -> dict:
    with Store.open(cloud.store) as s:
        return s.get(table, name=name)


def offering_of(cloud, name: str = "vm1") -> str:
    with Store.open(cloud.store) as s:
        return s.get("offerings", id=s.get("instances", name=name)["offering_id"])["name"]


# ------------------------------------------------------------------------------------------------
# Pure functions
# ------------------------------------------------------------------------------------------------
def test_sizes_and_commands():
    assert overlay.wanted_size(64 * MIB, 0) == 64 * MIB  # the template's size when the offering has none
    assert overlay.wanted_size(64 * MIB, 2) == 2 * GIB
    assert overlay.wanted_size(4 * GIB, 2) == 4 * GIB  # never below the template
    assert overlay.needed_growth(GIB, 2 * GIB) == 2 * GIB
    assert overlay.needed_growth(2 * GIB, 2 * GIB) is None
    assert overlay.needed_growth(3 * GIB, 2 * GIB) is None
    assert [overlay.human_size(n) for n in (GIB, 3 * GIB // 2, 64 * MIB, 0)] == [
        "1 GiB",
        "1.5 GiB",
        "64 MiB",
        "0 GiB",
    ]
    assert overlay.resize_command("/p/vm.qcow2", GIB) == [
        "qemu-img",
        "resize",
        "-q",
        "-f",
        "qcow2",
        "/p/vm.qcow2",
        str(GIB),
    ]
    overlay.refuse_shrink("Disk d", GIB, GIB, "h")  # equal is fine
    with pytest.raises(Conflict) as info:
        overlay.refuse_shrink("Disk d", 2 * GIB, GIB, "use a bigger one")
    assert "Disk d is 2 GiB; 1 GiB was asked" in info.value.msg and info.value.hint == "use a bigger one"
    assert info.value.details == {"current_bytes": 2 * GIB, "wanted_bytes": GIB}


def test_ensure_root_size_reports_in_check_mode_and_skips_missing_files(cloud, tmp_path):
    path = tmp_path / "o.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    with Store.open(cloud.store) as s:
        inst = {"name": "x", "root_disk": str(path), "image_id": None, "disk_gb": 1, "domain_type": "qemu"}
        env = lifecycle.Env(s, check_mode=True)
        assert lifecycle.ensure_root_size(env, inst, None)
        assert env.actions == [f"grow root disk {path} from 64 MiB to 1 GiB (offline)"]
        assert virtual_size(str(path)) == 64 * MIB
        assert not lifecycle.ensure_root_size(env, {**inst, "root_disk": str(tmp_path / "none")}, None)
        assert not lifecycle.ensure_root_size(env, {**inst, "disk_gb": 0}, None)  # 0: no growth asked
        env = lifecycle.Env(s)
        assert lifecycle.ensure_root_size(env, inst, None)
        assert virtual_size(str(path)) == GIB
        assert not lifecycle.ensure_root_size(env, inst, None)


# ------------------------------------------------------------------------------------------------
# Root overlay through compleat.cloud.instance
# ------------------------------------------------------------------------------------------------
def test_resize_grows_the_root_overlay_of_a_stopped_instance(cloud):
    first = cloud.ok(instance, offering="small", **VM)["instance"]
    root = first["root_disk"]
    assert virtual_size(root) == 64 * MIB  # the template's size: small has disk_gb 0

    check = cloud.ok(instance, check=True, diff=True, offering="large", name="vm1")
    assert check["changed"]
    assert f"grow root disk {root} from 64 MiB to 1 GiB (offline)" in check["actions"]
    assert check["diff"]["before"]["store"]["disk_gb"] == 0
    assert check["diff"]["after"]["store"]["disk_gb"] == 1
    assert virtual_size(root) == 64 * MIB and offering_of(cloud) == "small"  # nothing changed

    res = cloud.ok(instance, offering="large", name="vm1")
    assert res["changed"] and f"grow root disk {root} from 64 MiB to 1 GiB (offline)" in res["actions"]
    assert virtual_size(root) == GIB and offering_of(cloud) == "large"
    assert overlay.image_info(root, overlay.subprocess_runner)["backing_file"].endswith("tpl.qcow2")
    again = cloud.ok(instance, offering="large", name="vm1")
    assert not again["changed"] and not any("grow" in a for a in again["actions"])


def test_shrinking_the_root_disk_is_refused_before_the_store_changes(cloud):
    root = cloud.ok(instance, offering="large", **VM)["instance"]["root_disk"]
    assert virtual_size(root) == GIB
    for check in (True, False):
        res = cloud.fails(instance, check=check, name="vm1", offering="small")
        assert "instance vm1" in res["msg"] and "offering small" in res["msg"], res["msg"]
        assert "is 1 GiB; 64 MiB was asked" in res["msg"]
        assert "disk_gb >= 1" in res["hint"] and "new instance" in res["hint"]
    assert offering_of(cloud) == "large" and row(cloud, "instances", "vm1")["disk_gb"] == 1
    assert virtual_size(root) == GIB
    # an offering of the same disk size is a resize, not a shrink
    cloud.ok(offering, name="same-disk", vcpus=2, ram_mb=1024, disk_gb=1)
    res = cloud.ok(instance, name="vm1", offering="same-disk")
    assert res["changed"] and not any("grow" in a for a in res["actions"]) and virtual_size(root) == GIB


def test_a_disk_larger_than_the_store_asks_is_left_alone(cloud):
    root = cloud.ok(instance, offering="small", **VM)["instance"]["root_disk"]
    subprocess.run(["qemu-img", "resize", "-q", root, "2G"], check=True)  # grown by hand
    assert not cloud.ok(instance, offering="small", **VM)["changed"]
    assert virtual_size(root) == 2 * GIB


def test_running_instance_grows_online_or_fails_with_a_hint_and_recovers_offline(cloud):
    root = cloud.ok(instance, offering="small", state="running", **VM)["instance"]["root_disk"]
    check = cloud.ok(instance, check=True, name="vm1", offering="large")
    assert f"grow root disk {root} from 64 MiB to 1 GiB (online)" in check["actions"]
    # libvirt's test driver has no virDomainBlockResize: refused with the way out, disk untouched
    res = cloud.fails(instance, name="vm1", offering="large")
    assert "grow disk vda online" in res["msg"] and "state=stopped" in res["hint"]
    assert virtual_size(root) == 64 * MIB
    # the store already has the new offering; the stopped run grows the disk offline
    res = cloud.ok(instance, name="vm1", state="stopped", stop_timeout=1)
    assert f"grow root disk {root} from 64 MiB to 1 GiB (offline)" in res["actions"]
    assert virtual_size(root) == GIB and row(cloud, "instances", "vm1")["state"] == "stopped"


# ------------------------------------------------------------------------------------------------
# Volumes
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def pool_volume(cloud, libvirt_test):
    pool = libvirt_test.storagePoolLookupByName("default-pool")
    with contextlib.suppress(Exception):
        pool.storageVolLookupByName("grow1.qcow2").delete(0)
    cloud.ok(volume, name="grow1", size_gb=2, pool="default-pool", host="hv1")
    yield {"name": "grow1", "pool": "default-pool", "host": "hv1"}
    with contextlib.suppress(Exception):
        pool.storageVolLookupByName("grow1.qcow2").delete(0)


def test_pool_volume_grow_check_mode_and_shrink(cloud, pool_volume, libvirt_test):
    vol = libvirt_test.storageVolLookupByPath("/default-pool/grow1.qcow2")
    res = cloud.ok(volume, check=True, diff=True, size_gb=3, **pool_volume)
    assert res["changed"] and res["actions"] == ["grow from 2 GiB to 3 GiB (offline)"]
    assert res["diff"]["before"]["size_gb"] == 2 and res["diff"]["after"]["size_gb"] == 3
    assert row(cloud, "volumes", "grow1")["size_gb"] == 2 and vol.info()[1] == 2 * GIB
    # the test driver cannot resize volumes: refused with the hint, the store keeps 2 GiB
    res = cloud.fails(volume, size_gb=3, **pool_volume)
    assert "grow the volume" in res["msg"] and "storage side" in res["hint"]
    assert row(cloud, "volumes", "grow1")["size_gb"] == 2
    assert not cloud.ok(volume, size_gb=2, **pool_volume)["changed"]
    for check in (True, False):
        res = cloud.fails(volume, check=check, size_gb=1, **pool_volume)
        assert res["msg"].startswith("Volume grow1 is 2 GiB; 1 GiB was asked: shrinking")
        assert "size_gb >= 2" in res["hint"]


def test_pool_volume_attached_to_a_running_instance_grows_online(cloud, pool_volume):
    cloud.ok(instance, offering="small", **VM)
    cloud.ok(volume, name="grow1", instance="vm1", state="attached")
    cloud.ok(instance, name="vm1", state="running")
    res = cloud.ok(volume, check=True, name="grow1", size_gb=3)
    assert res["actions"] == ["grow from 2 GiB to 3 GiB (online)"]
    res = cloud.fails(volume, name="grow1", size_gb=3)
    assert "grow disk vdb online" in res["msg"] and res["hint"]
    assert row(cloud, "volumes", "grow1")["size_gb"] == 2


def test_iscsi_volume_records_a_grown_lun(cloud, monkeypatch):
    from ansible.module_utils import basic

    warned: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, msg: warned.append(msg))
    cloud.ok(volume, name="lun1", size_gb=10, **ISCSI)
    res = cloud.ok(volume, check=True, name="lun1", size_gb=20, **ISCSI)
    assert res["changed"] and res["actions"] == ["record 20 GiB (was 10 GiB)"]
    assert row(cloud, "volumes", "lun1")["size_gb"] == 10
    res = cloud.ok(volume, name="lun1", size_gb=20, **ISCSI)
    assert res["changed"] and res["volume"]["size_gb"] == 20 == row(cloud, "volumes", "lun1")["size_gb"]
    assert not cloud.ok(volume, name="lun1", size_gb=20, **ISCSI)["changed"]
    res = cloud.fails(volume, name="lun1", size_gb=5, **ISCSI)
    assert "shrinking" in res["msg"] and "size_gb >= 20" in res["hint"]

    # attached to a running guest: told online; a driver without online resize only warns
    cloud.ok(instance, offering="small", **VM)
    cloud.ok(volume, name="lun1", instance="vm1", state="attached", **ISCSI)
    cloud.ok(instance, name="vm1", state="running")
    res = cloud.ok(volume, name="lun1", size_gb=30, **ISCSI)
    assert res["actions"] == ["record 30 GiB (was 20 GiB); grow vdb online"]
    assert row(cloud, "volumes", "lun1")["size_gb"] == 30
    assert warned and "vdb" in warned[0] and "next boot" in warned[0]
