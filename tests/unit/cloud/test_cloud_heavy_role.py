# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kvm_host role's PCI scan (roles/kvm_host/files/pci_devices.py) on a fake sysfs tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from role_files import ROOT, load_role_file

SCRIPT = ROOT / "roles" / "kvm_host" / "files" / "pci_devices.py"


def fake_sysfs(tmp: Path, iommu: bool) -> tuple[Path, Path]:
    """Two devices: a GPU (on vfio-pci, in IOMMU group 27 when there is an IOMMU) and a bridge."""
    devices, groups, drivers = tmp / "devices", tmp / "iommu_groups", tmp / "drivers"
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
    return devices, groups


def test_scan_with_an_iommu(tmp_path):
    devices, groups = fake_sysfs(tmp_path, iommu=True)
    out = load_role_file("kvm_host", "pci_devices.py").scan(str(devices), str(groups))
    assert out == {
        "devices": [
            {"address": "0000:00:00.0", "vendor_device": "8086:1237", "iommu_group": 0, "driver": None},
            {
                "address": "0000:3b:00.0",
                "vendor_device": "10de:20b5",
                "iommu_group": 27,
                "driver": "vfio-pci",
            },
        ],
        "iommu": True,
    }


def test_scan_without_an_iommu_as_the_role_runs_it(tmp_path):
    devices, groups = fake_sysfs(tmp_path, iommu=False)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(devices), str(groups)], capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout)
    assert out["iommu"] is False
    assert [d["iommu_group"] for d in out["devices"]] == [None, None]
    assert [d["vendor_device"] for d in out["devices"]] == ["8086:1237", "10de:20b5"]
