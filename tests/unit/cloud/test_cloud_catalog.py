# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hypervisor, offering, keypair and image modules: states, idempotence, check mode, errors."""

from __future__ import annotations

import hashlib
import subprocess

from cloud_testlib import KEY, make_template

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import overlay
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import hypervisor, image, instance, keypair, offering


def test_hypervisor_states(cloud):
    args = {"name": "hv9", "uri": "test:///default", "hypervisor": "test", "storage_dir": str(cloud.tmp)}
    res = cloud.ok(hypervisor, check=True, diff=True, **args)
    assert res["changed"] and res["host"]["vcpus"] == 16  # discovered from test:///default
    with Store.open(cloud.store) as s:
        assert s.get("hosts", name="hv9") is None
    res = cloud.ok(hypervisor, **args)
    assert res["host"]["cpu_ratio"] == 4.0 and res["host"]["state"] == "up"
    assert not cloud.ok(hypervisor, **args)["changed"]
    res = cloud.ok(hypervisor, name="hv9", host_state="fenced", diff=True)
    assert res["changed"] and res["host"]["fenced_at"] and res["diff"]["before"]["state"] == "up"
    assert res["host"]["hypervisor"] == "test"  # omitted options keep their values
    assert not cloud.ok(hypervisor, name="hv9", host_state="fenced")["changed"]
    assert cloud.ok(hypervisor, name="hv9", host_state="up")["host"]["fenced_at"] is None
    assert cloud.ok(hypervisor, name="hv9", state="absent")["changed"]
    assert not cloud.ok(hypervisor, name="hv9", state="absent")["changed"]
    assert "needs uri and storage_dir" in cloud.fails(hypervisor, name="new")["msg"]


def test_hypervisor_with_instances_cannot_go(cloud):
    cloud.ok(instance, name="vm1", template="tpl", offering="small")
    res = cloud.fails(hypervisor, name="hv1", state="absent")
    assert "still has instances: vm1" in res["msg"] and "evacuate" in res["hint"]


def test_offering_states(cloud):
    assert cloud.ok(offering, name="m", vcpus=2, ram_mb=2048, check=True)["changed"]
    res = cloud.ok(offering, name="m", vcpus=2, ram_mb=2048)
    assert res["offering"] == {
        "name": "m",
        "vcpus": 2,
        "ram_mb": 2048,
        "disk_gb": 0,
        "nic_queues": 0,
        "cpu_pinning": False,
        "hugepages": "none",
        "pci_devices": [],
    }
    assert not cloud.ok(offering, name="m", vcpus=2, ram_mb=2048)["changed"]
    assert cloud.ok(offering, name="m", ram_mb=4096)["offering"]["ram_mb"] == 4096
    assert "needs vcpus" in cloud.fails(offering, name="n", vcpus=1)["msg"]
    assert "not a valid size" in cloud.fails(offering, name="n", vcpus=0, ram_mb=1)["msg"]
    cloud.ok(instance, name="vm1", template="tpl", offering="m")
    assert "used by vm1" in cloud.fails(offering, name="m", state="absent")["msg"]


def test_keypair_states(cloud):
    res = cloud.ok(keypair, name="k2", public_key=KEY + "\n", tenant="acme")
    assert res["keypair"]["fingerprint"].startswith("SHA256:") and res["keypair"]["public_key"] == KEY
    expected = hashlib.sha256(__import__("base64").b64decode(KEY.split()[1])).digest()
    assert res["keypair"]["fingerprint"] == "SHA256:" + __import__("base64").b64encode(
        expected
    ).decode().rstrip("=")
    assert not cloud.ok(keypair, name="k2", public_key=KEY, tenant="acme")["changed"]
    assert (
        "public_key is not an OpenSSH public key"
        in cloud.fails(keypair, name="bad", public_key="hello world")["msg"]
    )
    assert cloud.ok(keypair, name="k2", state="absent")["changed"]


def test_image_register_verify_copy(cloud, tmp_path):
    src = make_template(tmp_path / "build.qcow2", "32M")
    with open(src, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    dest = str(cloud.tmp / "secondary" / "t2.qcow2")
    args = {
        "name": "t2",
        "src": src,
        "path": dest,
        "os": "debian",
        "os_version": "12",
        "checksum": f"sha256:{digest}",
    }
    res = cloud.ok(image, check=True, **args)
    assert res["changed"] and res["copied"]
    res = cloud.ok(image, diff=True, **args)
    assert (
        res["copied"] and res["image"]["checksum"] == f"sha256:{digest}" and res["image"]["format"] == "qcow2"
    )
    assert res["image"]["virtual_size"] == 32 * 1024**2
    again = cloud.ok(image, **args)
    assert not again["changed"] and not again["copied"]
    res = cloud.fails(image, **{**args, "name": "t3", "path": dest + "x", "checksum": "sha256:" + "0" * 64})
    assert "Checksum mismatch" in res["msg"] and "corrupt" in res["hint"]
    assert (
        "Unsupported checksum" in cloud.fails(image, name="t4", path=dest, os="x", checksum="md5:00")["msg"]
    )


def test_image_kinds_and_errors(cloud, tmp_path):
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"\0" * 4096)
    res = cloud.ok(image, name="inst", kind="iso", path=str(iso), os="debian")
    assert res["image"]["format"] == "iso" and res["image"]["os_version"] == ""
    assert not cloud.ok(image, name="inst", kind="iso", path=str(iso), verify="always")["changed"]
    assert "No file" in cloud.fails(image, name="gone", path=str(tmp_path / "nope"), os="x")["msg"]
    ov = tmp_path / "ov.qcow2"
    subprocess.run(overlay.create_command(str(cloud.tmp / "secondary" / "tpl.qcow2"), str(ov)), check=True)
    assert "self-contained" in cloud.fails(image, name="ov", path=str(ov), os="x")["msg"]
    res = cloud.fails(instance, name="vmx", template="inst", offering="small")
    assert "ISO, not a template" in res["msg"]
    cloud.ok(instance, name="vm1", template="tpl", offering="small")
    assert "backs vm1" in cloud.fails(image, name="tpl", state="absent")["msg"]
    assert cloud.ok(image, name="inst", state="absent", remove_file=True)["changed"] and not iso.exists()
