# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Domain XML from owned fields, owned-field comparison, and lifecycle helpers on test:///default."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import VirtError

UUID = "0b7c1b6e-4d0e-4f7e-9a55-3f1f3e1c0001"


def spec(**kw):
    base = {
        "name": "vm1",
        "uuid": UUID,
        "domain_type": "qemu",
        "memory_mib": 512,
        "vcpus": 1,
        "disks": (
            virt.DiskSpec("vda", "/srv/vm1.qcow2"),
            virt.seed_disk("qemu", "/srv/vm1-seed.iso", "iso"),
            virt.DiskSpec(
                "vdb",
                "iqn.2026-01.cloud:vol/1",
                kind="network",
                fmt="raw",
                protocol="iscsi",
                hosts=(("192.0.2.10", 3260),),
            ),
        ),
        "nics": (virt.NicSpec("52:54:00:00:00:01"), virt.NicSpec("52:54:00:00:00:02", "bridge", "br0")),
        "metadata": {"instance-id": "iid-1", "tenant": "acme", "offering": "small", "host": "hv1"},
    }
    base.update(kw)
    return virt.DomainSpec(**base)


def test_build_xml_is_deterministic_and_complete():
    xml = virt.build_xml(spec())
    assert xml == virt.build_xml(spec())
    fields = virt.owned_fields(xml)
    assert fields["memory_kib"] == 512 * 1024 and fields["vcpus"] == 1 and fields["type"] == "qemu"
    assert [d["target"] for d in fields["disks"]] == ["sda", "vda", "vdb"]
    assert fields["disks"][0]["device"] == "cdrom" and fields["disks"][0]["readonly"]
    assert fields["disks"][2]["hosts"] == ["192.0.2.10:3260"] and fields["disks"][2]["protocol"] == "iscsi"
    assert fields["metadata"]["instance-id"] == "iid-1"
    assert fields["serial_console"] and not fields["vnc"]
    assert 'xmlns:compleat="https://compleat.cloud/xmlns/instance/1"' in xml


def test_xen_domain_uses_xen_bus_and_ide_cdrom():
    disks = (
        virt.DiskSpec(virt.disk_target("xen", 0), "/srv/x.qcow2", bus=virt.disk_bus("xen")),
        virt.seed_disk("xen", "/srv/x-seed.iso", "iso"),
    )
    fields = virt.owned_fields(virt.build_xml(spec(domain_type="xen", disks=disks, nics=())))
    assert fields["type"] == "xen"
    assert [(d["target"], d["bus"]) for d in fields["disks"]] == [("hdc", "ide"), ("xvda", "xen")]


def test_vfat_seed_is_a_readonly_paravirtual_disk():
    d = virt.seed_disk("kvm", "/s.img", "vfat")
    assert (d.target, d.device, d.readonly, d.bus) == ("vdz", "disk", True, "virtio")
    with pytest.raises(VirtError):
        virt.disk_target("kvm", 26)


def test_changed_fields_and_memory_units():
    a = virt.spec_fields(spec())
    b = virt.spec_fields(spec(memory_mib=1024, vcpus=2))
    assert virt.changed_fields(b, a) == ["memory_kib", "vcpus"]
    el = ET.fromstring("<memory unit='MiB'>2</memory>")
    assert virt._memory_kib(el) == 2048


def test_merge_owned_keeps_foreign_parts_and_addresses():
    existing = virt.build_xml(spec()).replace(
        '<target dev="vda" bus="virtio" />',
        "<target dev=\"vda\" bus=\"virtio\" /><address type='pci' domain='0x0000' bus='0x00' slot='0x07'/>",
    )
    existing = existing.replace(
        "</devices>", "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices>"
    ).replace("<on_crash>", "<cpu mode='host-model'/><on_crash>")
    merged = virt.merge_owned(existing, spec(vcpus=4))
    root = ET.fromstring(merged)
    assert root.find("cpu").get("mode") == "host-model"
    assert root.find("devices/rng") is not None
    vda = next(d for d in root.findall("devices/disk") if d.find("target").get("dev") == "vda")
    assert vda.find("address").get("slot") == "0x07"
    assert virt.owned_fields(merged) == virt.spec_fields(spec(vcpus=4))


def test_define_compare_start_stop_on_test_driver(libvirt_test):
    conn = libvirt_test
    dom = virt.define(conn, virt.build_xml(spec()))
    assert virt.owned_fields(virt.inactive_xml(dom)) == virt.spec_fields(spec())  # idempotence basis
    assert virt.lookup(conn, UUID).name() == "vm1"
    assert virt.lookup(conn, "00000000-0000-0000-0000-000000000000") is None
    assert virt.power_state(dom) == "stopped"
    virt.start(dom)
    assert virt.power_state(dom) == "running"
    info = virt.console_info("test:///default", dom, "vm1")
    assert info["command"] == "virsh -c test:///default console vm1"
    assert virt.stop(dom, timeout=5) == "graceful"
    assert virt.stop(dom, timeout=5) == "already"
    assert virt.metadata_of(dom)["tenant"] == "acme"
    virt.undefine(dom)
    assert virt.lookup(conn, UUID) is None


def test_snapshots_on_test_driver(libvirt_test):
    dom = virt.define(libvirt_test, virt.build_xml(spec()))
    dom.snapshotCreateXML(virt.snapshot_xml("s1", "first"), 0)
    assert virt.snapshot_names(dom) == ["s1"]
    assert virt.find_snapshot(dom, "s1") is not None and virt.find_snapshot(dom, "s2") is None
    virt.undefine(dom)  # removes snapshot metadata too


class FakeDomain:
    """A guest that ignores ACPI (like minbase without acpid)."""

    def __init__(self, obeys: bool) -> None:
        self.active, self.obeys, self.destroyed = True, obeys, False

    def isActive(self):
        return self.active

    def shutdown(self):
        if self.obeys:
            self.active = False

    def destroy(self):
        self.active, self.destroyed = False, True


def test_graceful_stop_then_force():
    clock = iter(range(1000)).__next__
    stubborn = FakeDomain(obeys=False)
    assert virt.stop(stubborn, timeout=3, sleep=lambda _s: None, clock=clock) == "forced"
    assert stubborn.destroyed
    polite = FakeDomain(obeys=True)
    assert virt.stop(polite, timeout=3, sleep=lambda _s: None, clock=clock) == "graceful"
    assert not polite.destroyed


def test_change_device_falls_back_to_redefine_when_stopped(libvirt_test):
    dom = virt.define(libvirt_test, virt.build_xml(spec()))
    called = []
    disk = virt.disk_xml(virt.DiskSpec("vdc", "/srv/v.qcow2"))
    assert virt.change_device(dom, disk, True, lambda: called.append(1)) == "config"
    assert called == [1]  # the test driver cannot attach: the fallback redefined
    dom.create()
    with pytest.raises(VirtError, match="attach"):
        virt.change_device(dom, disk, True, lambda: None)
    virt.undefine(dom)


def test_connect_error_is_actionable():
    with pytest.raises(VirtError, match="Cannot connect") as info:
        virt.connect("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    assert "libvirtd" in info.value.hint
