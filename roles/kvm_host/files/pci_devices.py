# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print the host's PCI devices as JSON: address, vendor:device, IOMMU group (null without an
IOMMU) and bound driver (null when none), from /sys/bus/pci/devices; and whether IOMMU groups
exist at all. Read-only; run by the kvm_host role (ansible.builtin.script)."""

from __future__ import annotations

import json
import os
import sys

DEVICES = "/sys/bus/pci/devices"
GROUPS = "/sys/kernel/iommu_groups"


def read(path: str) -> str:
    """A sysfs attribute without its newline."""
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()


def link_name(path: str) -> str | None:
    """The last component of a symlink's target (driver, iommu_group), None when there is none."""
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else None


def hex_id(text: str) -> str:
    """``0x10DE`` as ``10de``."""
    text = text.lower()
    return text[2:] if text.startswith("0x") else text


def device(base: str, address: str) -> dict[str, object]:
    """One device: address, vendor:device (hex, lower case), IOMMU group number, driver name."""
    path = os.path.join(base, address)
    vendor, dev = (hex_id(read(os.path.join(path, name))) for name in ("vendor", "device"))
    group = link_name(os.path.join(path, "iommu_group"))
    return {
        "address": address,
        "vendor_device": f"{vendor}:{dev}",
        "iommu_group": int(group) if group is not None else None,
        "driver": link_name(os.path.join(path, "driver")),
    }


def scan(base: str = DEVICES, groups: str = GROUPS) -> dict[str, object]:
    """Every PCI device by address, and whether the IOMMU is active (IOMMU groups exist)."""
    return {
        "devices": [device(base, a) for a in sorted(os.listdir(base))],
        "iommu": os.path.isdir(groups) and bool(os.listdir(groups)),
    }


if __name__ == "__main__":
    json.dump(scan(*sys.argv[1:3]), sys.stdout)
    sys.stdout.write("\n")
