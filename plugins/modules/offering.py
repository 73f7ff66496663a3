#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Define a compute offering (vCPU, RAM, root disk, heavy-workload options) in the cloud metadata store."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: offering
short_description: Define a compute offering (vCPU, RAM, disk) in the cloud metadata store
version_added: "0.1.0"
description:
  - Creates, updates or removes a compute offering. Instances name an offering; placement
    reserves its vCPU and RAM on a host, and its disk size is the minimum virtual size of the
    instance's root overlay.
  - Changing an offering does not resize running instances; M(compleat.cloud.instance) resizes an
    instance when its O(compleat.cloud.instance#module:offering) changes.
  - Heavy-workload options (O(nic_queues), O(cpu_pinning), O(hugepages), O(pci_devices)) are copied
    to an instance when it is placed, like its vCPU and RAM; changing them later does not change
    existing instances. Pinned pCPUs, hugepages and PCI devices are resources of the hosts
    (M(compleat.cloud.hypervisor) O(compleat.cloud.hypervisor#module:dedicated_cpus),
    O(compleat.cloud.hypervisor#module:hugepages) and O(compleat.cloud.hypervisor#module:pci_devices));
    placement only picks a host that has them free. See docs/cloud-heavy-workloads.md.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
options:
  name:
    description: Offering name, unique in the store.
    type: str
    required: true
  state:
    description: V(absent) is refused while instances use the offering.
    type: str
    choices: [present, absent]
    default: present
  vcpus:
    description: vCPUs of an instance. Required for a new offering.
    type: int
  ram_mb:
    description: RAM of an instance in MiB. Required for a new offering.
    type: int
  disk_gb:
    description: Minimum root disk size in GiB (0 keeps the template's size).
    type: int
  nic_queues:
    description:
      - Queue pairs of every virtio NIC (virtio-net multiqueue, C(<driver queues='N'>)), so that
        several vCPUs handle packets at once. V(0) means one per vCPU, at most 8; V(1) is a single
        queue (no C(queues) attribute).
      - A new offering defaults to V(0). Offerings stored before this option existed keep V(1).
      - Range 0 to 256. The guest uses them with C(ethtool -L eth0 combined N) (recent kernels
        and cloud images enable them at boot).
    type: int
  cpu_pinning:
    description:
      - V(true) gives every vCPU a dedicated physical CPU of the host's dedicated set
        (O(compleat.cloud.hypervisor#module:dedicated_cpus)), never shared with another instance
        (C(<cputune>) C(vcpupin), the emulator threads on the same pCPUs). Pinned vCPUs are not
        overcommitted and do not count against the host's shared vCPU limit.
      - A new offering defaults to V(false).
    type: bool
  hugepages:
    description:
      - Back the instance's memory with hugepages of this size (C(<memoryBacking><hugepages>))
        taken from the host's pool (O(compleat.cloud.hypervisor#module:hugepages)) instead of its
        shared RAM. O(ram_mb) must be a multiple of the page size.
      - V(none) (the default of a new offering) uses normal pages.
    type: str
    choices: [none, 2M, 1G]
  pci_devices:
    description:
      - Whole host PCI devices handed to the instance (C(<hostdev mode='subsystem' type='pci'
        managed='yes'>)), by device class as the hosts registered them
        (O(compleat.cloud.hypervisor#module:pci_devices)). An empty list removes them.
      - A new offering defaults to none.
    type: list
    elements: dict
    suboptions:
      class:
        description: Device class, for example V(gpu-a100) (1-63 lower-case letters, digits, hyphens).
        type: str
        required: true
      count:
        description: How many devices of the class (1 to 16).
        type: int
        default: 1
"""

EXAMPLES = r"""
- name: A small offering
  compleat.cloud.offering:
    name: small
    vcpus: 1
    ram_mb: 1024
    disk_gb: 10

- name: A packet-heavy offering with 4 queue pairs per NIC
  compleat.cloud.offering:
    name: net-4
    vcpus: 4
    ram_mb: 8192
    nic_queues: 4

- name: An HPC offering with pinned vCPUs and 1 GiB hugepages
  compleat.cloud.offering:
    name: hpc-16
    vcpus: 16
    ram_mb: 65536
    cpu_pinning: true
    hugepages: 1G

- name: One A100 GPU per instance
  compleat.cloud.offering:
    name: gpu-a100-1
    vcpus: 8
    ram_mb: 65536
    cpu_pinning: true
    hugepages: 1G
    pci_devices:
      - class: gpu-a100
        count: 1
"""

RETURN = r"""
offering:
  description: The offering as stored.
  returned: state is present
  type: dict
  sample: {"name": "gpu-a100-1", "vcpus": 8, "ram_mb": 65536, "disk_gb": 0, "nic_queues": 0,
           "cpu_pinning": true, "hugepages": "1G", "pci_devices": [{"class": "gpu-a100", "count": 1}]}
  contains:
    nic_queues:
      description: Queue pairs per virtio NIC (0 one per vCPU, at most 8).
      type: int
    cpu_pinning:
      description: Whether vCPUs get dedicated pCPUs.
      type: bool
    hugepages:
      description: Page size backing the memory, V(none) for normal pages.
      type: str
    pci_devices:
      description: PCI devices by class and count.
      type: list
      elements: dict
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, errors, resources  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec(),
    "vcpus": {"type": "int"},
    "ram_mb": {"type": "int"},
    "disk_gb": {"type": "int"},
    "nic_queues": {"type": "int"},
    "cpu_pinning": {"type": "bool"},
    "hugepages": {"type": "str", "choices": ["none", "2M", "1G"]},
    "pci_devices": {
        "type": "list",
        "elements": "dict",
        "options": {"class": {"type": "str", "required": True}, "count": {"type": "int", "default": 1}},
    },
}
NEW_DEFAULTS: dict[str, Any] = {
    "disk_gb": 0,
    "nic_queues": 0,
    "cpu_pinning": 0,
    "hugepages": "",
    "pci_devices": [],
}


def heavy_columns(params: dict[str, Any]) -> dict[str, Any]:
    """The heavy-workload columns the options ask for (None: keep), checked."""
    return {
        "nic_queues": params["nic_queues"],
        "cpu_pinning": None if params["cpu_pinning"] is None else int(params["cpu_pinning"]),
        "hugepages": None
        if params["hugepages"] is None
        else {"none": ""}.get(params["hugepages"], params["hugepages"]),
        "pci_devices": None
        if params["pci_devices"] is None
        else resources.pci_request(params["pci_devices"]),
    }


def check_hugepage_size(row: dict[str, Any]) -> None:
    """Refuse RAM that is not a whole number of the offering's hugepages (QEMU cannot map it)."""
    size = row.get("hugepages") or ""
    if size and int(row["ram_mb"]) * 1024 % resources.HUGEPAGE_SIZES_KIB[size]:
        raise errors.InvalidInput(
            f"ram_mb={row['ram_mb']} is not a multiple of the {size} hugepage size (hugepages={size}).",
            f"Give ram_mb as a multiple of {resources.HUGEPAGE_SIZES_KIB[size] // 1024} MiB, or another "
            "hugepages size.",
            key="ram_mb",
            value=row["ram_mb"],
        )


def offering_view(row: dict[str, Any] | None) -> dict[str, Any]:
    """The offering as returned: stable columns, ``cpu_pinning`` a bool, ``hugepages`` none/2M/1G."""
    out = _common.public(row)
    if out:
        out["cpu_pinning"] = bool(out.get("cpu_pinning"))
        out["hugepages"] = out.get("hugepages") or "none"
    return out


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the offering row."""
    p = module.params
    key = {"name": p["name"]}
    if p["state"] == "absent":
        guard = _common.instances_guard(
            store,
            "offering_id",
            "Offering {name} is used by {users}.",
            "Resize or delete those instances first.",
        )
        changed, before = _common.delete_row(store, "offerings", key, module.check_mode, guard)
        return {"changed": changed, "diff": _common.make_diff(offering_view(before), {}, p["name"])}
    for opt in ("vcpus", "ram_mb", "disk_gb"):
        if p[opt] is not None and p[opt] < (0 if opt == "disk_gb" else 1):
            raise errors.Conflict(f"{opt}={p[opt]} is not a valid size.", f"Give a positive {opt}.")
    desired = {"vcpus": p["vcpus"], "ram_mb": p["ram_mb"], "disk_gb": p["disk_gb"], **heavy_columns(p)}
    current = store.get("offerings", **key)
    if current is None:
        if p["vcpus"] is None or p["ram_mb"] is None:
            raise errors.NotFound(f"Offering {p['name']} is new and needs vcpus and ram_mb.", "Give both.")
        desired.update({k: v for k, v in NEW_DEFAULTS.items() if desired[k] is None})
    check_hugepage_size({**(current or {}), **{k: v for k, v in desired.items() if v is not None}})
    changed, before, after = _common.ensure_row(store, "offerings", key, desired, module.check_mode)
    return {
        "changed": changed,
        "offering": offering_view(after),
        "diff": _common.make_diff(offering_view(before), offering_view(after), p["name"]),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle)


if __name__ == "__main__":
    main()
