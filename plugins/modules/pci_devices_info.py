#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: the host's PCI devices and IOMMU state, read from sysfs."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pci_devices_info
short_description: List a host's PCI devices with vendor:device, IOMMU group and bound driver
version_added: 0.1.0
author: compleat.cloud developers (@compleat-cloud)
description:
  - Reads C(/sys/bus/pci/devices) and returns every PCI device by address, with its
    C(vendor:device) pair (hex, lower case), its IOMMU group (null without an IOMMU) and the
    driver bound to it now (null when none), and whether the IOMMU is active (IOMMU groups exist).
  - The kvm_host role uses it to choose the devices to pass through to instances by
    C(vendor:device) and to tell whether VFIO can work yet (docs/cloud-heavy-workloads.md).
  - Read-only; it changes nothing and reports C(changed=false).
options:
  vendor_device:
    description:
      - Return only devices whose C(vendor:device) is in this list (case-insensitive, for example
        C(10de:1eb8)). Empty returns every device.
    type: list
    elements: str
    default: []
  sysfs:
    description:
      - Root of sysfs, for tests and chroots; the devices are read from C(<sysfs>/bus/pci/devices)
        and the IOMMU groups from C(<sysfs>/kernel/iommu_groups).
    type: path
    default: /sys
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.platform
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: linux
    support: full
notes:
  - A device that disappears while it is being read (hot unplug) is left out.
"""

EXAMPLES = r"""
- name: Find the GPUs to pass through
  compleat.cloud.pci_devices_info:
    vendor_device: [10de:1eb8]
  register: gpus

- name: Fail early when the IOMMU is off
  ansible.builtin.assert:
    that: gpus.iommu
    fail_msg: enable intel_iommu=on / amd_iommu=on on the kernel command line first
"""

RETURN = r"""
devices:
  description: The devices, sorted by address.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: PCI address (domain:bus:slot.function).
      type: str
      sample: "0000:3b:00.0"
    vendor_device:
      description: Vendor and device id, hex, lower case.
      type: str
      sample: "10de:1eb8"
    iommu_group:
      description: IOMMU group number; null without an IOMMU.
      type: int
      sample: 42
    driver:
      description: The driver bound now (for example C(nvidia), C(vfio-pci)); null when none.
      type: str
      sample: vfio-pci
iommu:
  description: Whether the IOMMU is active (the kernel created IOMMU groups).
  returned: always
  type: bool
  sample: true
"""

import os  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


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


def device(devices: str, address: str) -> dict[str, Any]:
    """One device: address, vendor:device (hex, lower case), IOMMU group number, driver name."""
    path = os.path.join(devices, address)
    vendor, dev = (hex_id(read(os.path.join(path, name))) for name in ("vendor", "device"))
    group = link_name(os.path.join(path, "iommu_group"))
    return {
        "address": address,
        "vendor_device": f"{vendor}:{dev}",
        "iommu_group": int(group) if group is not None else None,
        "driver": link_name(os.path.join(path, "driver")),
    }


def scan(sysfs: str, wanted: list[str]) -> dict[str, Any]:
    """Every PCI device (or those whose vendor:device is wanted) and whether the IOMMU is active."""
    devices = os.path.join(sysfs, "bus/pci/devices")
    groups = os.path.join(sysfs, "kernel/iommu_groups")
    want = {w.lower() for w in wanted}
    found = []
    for address in sorted(os.listdir(devices)):
        try:
            entry = device(devices, address)
        except FileNotFoundError:  # unplugged while we read it
            continue
        if not want or entry["vendor_device"] in want:
            found.append(entry)
    return {"devices": found, "iommu": os.path.isdir(groups) and bool(os.listdir(groups))}


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "vendor_device": {"type": "list", "elements": "str", "default": []},
            "sysfs": {"type": "path", "default": "/sys"},
        },
        supports_check_mode=True,
    )
    devices = os.path.join(module.params["sysfs"], "bus/pci/devices")
    if not os.path.isdir(devices):
        module.fail_json(
            msg=f"sysfs: {devices} is not a directory (is sysfs mounted at sysfs={module.params['sysfs']}?)"
        )
    try:
        result = scan(module.params["sysfs"], module.params["vendor_device"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the PCI devices below {devices}: {exc}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
