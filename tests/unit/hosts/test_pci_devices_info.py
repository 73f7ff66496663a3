# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.pci_devices_info (the kvm_host role's PCI scan) on a fake sysfs tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from module_run import module_runner

from ansible_collections.compleat.cloud.plugins.modules import pci_devices_info

GPU = {"address": "0000:3b:00.0", "vendor_device": "10de:20b5", "iommu_group": 27, "driver": "vfio-pci"}
BRIDGE = {"address": "0000:00:00.0", "vendor_device": "8086:1237", "iommu_group": 0, "driver": None}


def fake_sysfs(tmp: Path, iommu: bool) -> Path:
    """Two devices: a GPU (on vfio-pci, in IOMMU group 27 when there is an IOMMU) and a bridge."""
    devices, groups, drivers = tmp / "bus/pci/devices", tmp / "kernel/iommu_groups", tmp / "bus/pci/drivers"
    for path in (devices, groups, drivers / "vfio-pci"):
        path.mkdir(parents=True)
    for address, vendor, device, driver, group in (
        ("0000:3b:00.0", "0x10de", "0x20B5", "vfio-pci", 27),
        ("0000:00:00.0", "0x8086", "0x1237", None, 0),
    ):
        dev = devices / address
        dev.mkdir()
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "device").write_text(device + "\n")
        if driver:
            (dev / "driver").symlink_to(drivers / driver)
        if iommu:
            (groups / str(group)).mkdir(exist_ok=True)
            (dev / "iommu_group").symlink_to(groups / str(group))
    return tmp


@pytest.fixture
def run(capsys, monkeypatch):
    return module_runner(pci_devices_info, capsys, monkeypatch)


def test_every_device_with_an_iommu(tmp_path, run):
    out = run({"sysfs": str(fake_sysfs(tmp_path, iommu=True))}, check=True)
    assert out["changed"] is False
    assert out["iommu"] is True
    assert out["devices"] == [BRIDGE, GPU]


def test_without_an_iommu_groups_are_null(tmp_path, run):
    out = run({"sysfs": str(fake_sysfs(tmp_path, iommu=False))})
    assert out["iommu"] is False
    assert [d["iommu_group"] for d in out["devices"]] == [None, None]
    assert [d["vendor_device"] for d in out["devices"]] == ["8086:1237", "10de:20b5"]


def test_filter_by_vendor_device_ignores_case(tmp_path, run):
    out = run({"sysfs": str(fake_sysfs(tmp_path, iommu=True)), "vendor_device": ["10DE:20B5"]})
    assert out["devices"] == [GPU]


def test_missing_sysfs_is_actionable(tmp_path, run):
    out = run({"sysfs": str(tmp_path / "nowhere")})
    assert out["failed"] is True
    assert "bus/pci/devices is not a directory" in out["msg"]
    assert f"sysfs={tmp_path / 'nowhere'}" in out["msg"]
