# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.instance on libvirt's test driver and a temp SQLite store."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import instance

BASE = {
    "name": "vm1",
    "template": "tpl",
    "offering": "small",
    "tenant": "acme",
    "ssh_keys": ["ops"],
    "networks": [{"source": "default"}],
    "first_boot_script": "#!/bin/sh\ntrue\n",
}


def backing_of(path):
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out).get("backing-filename")


def store_row(cloud, name="vm1"):
    with Store.open(cloud.store) as s:
        return s.get("instances", name=name)


def test_check_mode_creates_nothing(cloud, libvirt_test):
    res = cloud.ok(instance, check=True, diff=True, state="running", **BASE)
    assert res["changed"] and any(a.startswith("place on hv1") for a in res["actions"])
    assert res["instance"]["state"] == "running"
    assert store_row(cloud) is None
    assert "vm1" not in virt.domain_names(libvirt_test)
    assert not os.listdir(cloud.tmp / "hv1")


def test_create_start_idempotent_stop_absent(cloud, libvirt_test):
    res = cloud.ok(instance, state="running", diff=True, **BASE)
    assert res["changed"]
    inst = res["instance"]
    assert (
        inst["host"] == "hv1" and inst["state"] == "running" and inst["instance_id"] == f"iid-{inst['uuid']}"
    )
    assert backing_of(inst["root_disk"]).endswith("tpl.qcow2")
    assert os.path.getsize(inst["root_disk"]) < 1024 * 1024  # an overlay, not a copy
    assert os.path.exists(inst["seed_path"])
    dom = libvirt_test.lookupByName("vm1")
    assert dom.isActive() and dom.UUIDString() == inst["uuid"]
    assert res["console"]["command"] == "virsh -c test:///default console vm1"
    assert res["diff"]["after"]["domain"]["memory_kib"] == 512 * 1024

    again = cloud.ok(instance, state="running", **BASE)
    assert not again["changed"], again["actions"]
    assert cloud.ok(instance, state="present", **BASE)["changed"] is False

    stopped = cloud.ok(instance, state="stopped", name="vm1")
    assert stopped["changed"] and stopped["power_action"] in ("graceful", "forced")
    assert not dom.isActive() and store_row(cloud)["state"] == "stopped"
    assert not cloud.ok(instance, state="stopped", name="vm1")["changed"]

    check = cloud.ok(instance, state="absent", name="vm1", check=True)
    assert check["changed"] and store_row(cloud) is not None
    gone = cloud.ok(instance, state="absent", name="vm1")
    assert gone["changed"] and store_row(cloud) is None
    assert "vm1" not in virt.domain_names(libvirt_test)
    assert not os.path.exists(inst["root_disk"]) and not os.path.exists(inst["seed_path"])
    assert not cloud.ok(instance, state="absent", name="vm1")["changed"]
    with Store.open(cloud.store) as s:
        assert [e["event"] for e in s.select("usage_events")] == ["create", "start", "stop", "delete"]


def test_drift_in_owned_field_is_repaired(cloud, libvirt_test):
    cloud.ok(instance, **BASE)
    dom = libvirt_test.lookupByName("vm1")
    xml = dom.XMLDesc(virt.XML_INACTIVE).replace(
        "<vcpu placement='static'>1</vcpu>", "<vcpu placement='static'>3</vcpu>"
    )
    libvirt_test.defineXML(xml)
    res = cloud.ok(instance, diff=True, **BASE)
    assert res["changed"] and any("vcpus" in a for a in res["actions"])
    assert res["diff"]["before"]["domain"]["vcpus"] == 3 and res["diff"]["after"]["domain"]["vcpus"] == 1
    assert not cloud.ok(instance, **BASE)["changed"]


def test_seed_changes_when_keys_change(cloud):
    first = cloud.ok(instance, **BASE)["instance"]
    res = cloud.ok(instance, **{**BASE, "ssh_authorized_keys": ["ssh-ed25519 AAAAB3 other@x"]})
    assert res["changed"] and any("seed" in a for a in res["actions"])
    assert store_row(cloud)["cloud_init"]["ssh_keys"][-1] == "ssh-ed25519 AAAAB3 other@x"
    assert store_row(cloud)["instance_id"] == first["instance_id"]


def test_resize_within_capacity_and_refused_beyond(cloud):
    cloud.ok(instance, **BASE)
    res = cloud.ok(instance, name="vm1", offering="large", diff=True)
    assert res["changed"] and res["instance"]["vcpus"] == 4 and res["instance"]["ram_mb"] == 8192
    cloud.ok(instance, name="vm2", template="tpl", offering="large")
    from ansible_collections.compleat.cloud.plugins.modules import offering

    cloud.ok(offering, name="huge", vcpus=8, ram_mb=1024, disk_gb=1)
    res = cloud.fails(instance, name="vm1", offering="huge")
    assert "vCPU" in res["msg"] and res["hint"]
    assert store_row(cloud)["vcpus"] == 4


def test_error_paths(cloud):
    res = cloud.fails(instance, name="x", template="nope", offering="small")
    assert "Unknown template 'nope'" in res["msg"] and "compleat.cloud.image" in res["hint"]
    res = cloud.fails(instance, name="x", template="tpl", offering="nope")
    assert "Unknown offering" in res["msg"]
    res = cloud.fails(instance, name="x", template="tpl")
    assert "needs offering" in res["msg"]
    res = cloud.fails(instance, name="x", template="tpl", offering="small", ssh_keys=["missing"])
    assert "Unknown key" in res["msg"]
    res = cloud.fails(instance, name="x", template="tpl", offering="small", host="ghost")
    assert "Unknown host" in res["msg"]
    res = cloud.fails(instance, name="x", template="tpl", offering="small", hypervisor="xen")
    assert "other hypervisor type" in res["msg"]
    cloud.ok(instance, **BASE)
    res = cloud.fails(instance, **{**BASE, "tenant": "other"})
    assert "cannot change" in res["msg"]


def test_no_capacity(cloud):
    for i in range(2):
        cloud.ok(instance, name=f"big{i}", template="tpl", offering="large")
    res = cloud.fails(instance, name="big2", template="tpl", offering="large")
    assert "No host can take 4 vCPU" in res["msg"] and "not enough vCPU [hv1]" in res["msg"]
    res = cloud.fails(instance, name="big2", template="tpl", offering="large", check=True)
    assert "No host can take" in res["msg"]
    with Store.open(cloud.store) as s:
        assert s.get("instances", name="big2") is None


def test_corrupt_store_fails_cleanly(cloud):
    with open(cloud.store, "r+b") as handle:
        handle.write(b"garbage" * 20)
    res = cloud.fails(instance, **BASE)
    assert "corrupt" in res["msg"] and "backup" in res["hint"]


def test_stopped_and_running_on_fenced_host(cloud):
    from ansible_collections.compleat.cloud.plugins.modules import hypervisor

    cloud.ok(instance, **BASE)
    cloud.ok(hypervisor, name="hv1", host_state="fenced")
    res = cloud.fails(instance, name="vm1", state="running")
    assert "fenced" in res["msg"] and "evacuate" in res["hint"]


@pytest.mark.parametrize("fmt", ["iso", "vfat"])
def test_seed_formats(cloud, libvirt_test, fmt):
    res = cloud.ok(instance, seed_format=fmt, **BASE)
    seed = res["instance"]["seed_path"]
    assert seed.endswith(".iso" if fmt == "iso" else ".img")
    fields = virt.owned_fields(libvirt_test.lookupByName("vm1").XMLDesc(virt.XML_INACTIVE))
    seed_disk = next(d for d in fields["disks"] if d["source"] == seed)
    assert seed_disk["readonly"] and seed_disk["device"] == ("cdrom" if fmt == "iso" else "disk")
    # left out later, the format is kept (no conflict with the create-time default); a change is refused
    assert cloud.ok(instance, name="vm1", state="stopped")["instance"]["seed_format"] == fmt
    other = "vfat" if fmt == "iso" else "iso"
    assert "cannot change" in cloud.fails(instance, name="vm1", seed_format=other)["msg"]


def test_foreign_domain_with_same_name_is_refused(cloud, libvirt_test):
    libvirt_test.defineXML(
        "<domain type='qemu'><name>vm1</name><memory>131072</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os></domain>"
    )
    res = cloud.fails(instance, **BASE)
    assert "another UUID" in res["msg"] and "virsh undefine" in res["hint"]


def test_crash_is_metered_and_pinned_host_ignored_later(cloud, libvirt_test):
    cloud.ok(instance, state="running", host="hv1", **BASE)
    libvirt_test.lookupByName("vm1").destroy()  # the guest died on its own
    res = cloud.ok(instance, host="hv1", **BASE)  # state=present: power left alone, store follows
    assert res["changed"] and res["instance"]["state"] == "stopped"
    with Store.open(cloud.store) as s:
        assert [e["event"] for e in s.select("usage_events")] == ["create", "start", "stop"]
    assert not cloud.ok(instance, host="hv1", **BASE)["changed"]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../x", "DNS label"),
        ("/", "DNS label"),
        ("a/b", "DNS label"),
        ("-web", "DNS label"),
        ("web_1", "DNS label"),
        ("wéb", "non-ASCII"),
        ("x" * 300, "300 characters"),
        ("", "empty"),
    ],
)
def test_bad_names_are_refused_before_anything_is_written(cloud, libvirt_test, name, why):
    files_before = sorted(str(p) for p in cloud.tmp.rglob("*"))
    domains_before = virt.domain_names(libvirt_test)
    res = cloud.fails(instance, state="running", **{**BASE, "name": name})
    assert res["key"] == "name" and res["value"] == name
    assert why in res["msg"] and "name:" in res["msg"], res["msg"]
    assert "Traceback" not in res["msg"] and "exception" not in res
    assert store_row(cloud, name) is None
    with Store.open(cloud.store) as s:
        assert not s.select("instances")
    assert not os.listdir(cloud.tmp / "hv1")
    assert sorted(str(p) for p in cloud.tmp.rglob("*")) == files_before
    assert not os.path.exists(cloud.tmp / "x.qcow2") and not os.path.exists(cloud.tmp / "x-seed.img")
    assert virt.domain_names(libvirt_test) == domains_before


def test_a_63_character_name_is_accepted(cloud, libvirt_test):
    name = "a" * 62 + "1"
    res = cloud.ok(instance, state="present", **{**BASE, "name": name})
    assert res["instance"]["root_disk"] == str(cloud.tmp / "hv1" / f"{name}.qcow2")


def test_an_instance_stored_before_names_were_checked_keeps_working(cloud, libvirt_test, monkeypatch):
    with monkeypatch.context() as m:  # as created by a release that did not check names
        m.setattr(instance, "check_name", lambda key, value: value)
        cloud.ok(instance, state="running", **{**BASE, "name": "legacy_1"})
    assert cloud.fails(instance, state="running", **{**BASE, "name": "new_1"})["key"] == "name"
    assert not cloud.ok(instance, state="running", **{**BASE, "name": "legacy_1"})["changed"]
    assert cloud.ok(instance, state="stopped", name="legacy_1")["changed"]
    assert cloud.ok(instance, state="absent", name="legacy_1")["changed"]
    assert store_row(cloud, "legacy_1") is None
