#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Register a hypervisor host in the cloud metadata store: capacity, ratios and up/down/fenced mark."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hypervisor
short_description: Register a hypervisor host in the cloud metadata store
version_added: "0.1.0"
description:
  - Creates, updates or removes the store row of one hypervisor host (its libvirt URI, hypervisor
    type, capacity (vCPU, RAM), reservations for the host itself, overcommit ratios, the primary
    storage directory where instance overlays and seeds live, and its state).
  - The state V(fenced) is the fence mark that M(compleat.cloud.evacuate) accepts (O(host_state=fenced)
    after the operator or a power controller made sure the host is off).
  - When O(vcpus) or O(ram_mb) are not given for a new host they are read from libvirt at O(uri).
author:
  - compleat.cloud developers (@compleat-cloud)
requirements:
  - libvirt-python, only to discover the capacity of a new host
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.full
  - compleat.cloud.attributes.platform
  - compleat.cloud.cloud_store
options:
  name:
    description: Host name, unique in the store.
    type: str
    required: true
  state:
    description: V(present) registers or updates the host; V(absent) removes it (refused while instances are
      on it).
    type: str
    choices: [present, absent]
    default: present
  uri:
    description: libvirt URI of the host, for example C(qemu+ssh://root@hv1/system) or C(xen:///system).
      Required for a new host.
    type: str
  hypervisor:
    description:
      - Hypervisor type; V(qemu) is QEMU without KVM (TCG), V(test) is libvirt's test driver (unit tests
        only).
      - A new host defaults to V(kvm); omitted keeps the current type.
    type: str
    choices: [kvm, qemu, xen, test]
  vcpus:
    description: Physical vCPU count (threads). Discovered from libvirt when omitted for a new host.
    type: int
  ram_mb:
    description: Physical RAM in MiB. Discovered from libvirt when omitted for a new host.
    type: int
  reserved_vcpus:
    description: vCPUs kept for the host itself (taken off before overcommit).
    type: int
  reserved_ram_mb:
    description: RAM in MiB kept for the host itself (taken off before overcommit).
    type: int
  cpu_ratio:
    description: vCPU overcommit ratio (C(limit = (vcpus - reserved_vcpus) * cpu_ratio)). New hosts default
      to 4.0.
    type: float
  ram_ratio:
    description: RAM overcommit ratio. New hosts default to 1.0.
    type: float
  storage_dir:
    description: Primary storage directory on the host for instance overlays and seed images. Required for a
      new host.
    type: path
  host_state:
    description:
      - V(up) takes new instances; V(down) takes none (maintenance, failure); V(fenced) marks the host
        as powered off for sure, which allows M(compleat.cloud.evacuate).
      - Omitted keeps the current state (V(up) for a new host).
    type: str
    choices: [up, down, fenced]
"""

EXAMPLES = r"""
- name: Register a KVM host, capacity read from libvirt
  compleat.cloud.hypervisor:
    name: hv1
    uri: qemu+ssh://root@hv1.example.net/system
    storage_dir: /var/lib/compleat-cloud/primary
    reserved_ram_mb: 2048
    cpu_ratio: 4.0

- name: Mark a dead host as fenced after its BMC confirmed power off
  compleat.cloud.hypervisor:
    name: hv1
    host_state: fenced

- name: Back in service after repair and cleanup
  compleat.cloud.hypervisor:
    name: hv1
    host_state: up
"""

RETURN = r"""
host:
  description: The host row as stored (after the change; in check mode, as it would be).
  returned: state is present
  type: dict
  sample: {"name": "hv1", "uri": "qemu:///system", "hypervisor": "kvm", "vcpus": 16, "ram_mb": 65536,
           "reserved_vcpus": 0, "reserved_ram_mb": 2048, "cpu_ratio": 4.0, "ram_ratio": 1.0,
           "state": "up", "storage_dir": "/var/lib/compleat-cloud/primary", "fenced_at": null}
stale_definitions:
  description: Instances evacuated away whose old definitions still wait on this host for
    M(compleat.cloud.evacuate) V(state=cleaned).
  returned: state is present
  type: list
  elements: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud._common import (  # noqa: E402
    delete_row,
    ensure_row,
    make_diff,
    new_module,
    open_store,
    public,
    run_module,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import Conflict, NotFound  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "uri": {"type": "str"},
    "hypervisor": {"type": "str", "choices": ["kvm", "qemu", "xen", "test"]},
    "vcpus": {"type": "int"},
    "ram_mb": {"type": "int"},
    "reserved_vcpus": {"type": "int"},
    "reserved_ram_mb": {"type": "int"},
    "cpu_ratio": {"type": "float"},
    "ram_ratio": {"type": "float"},
    "storage_dir": {"type": "path"},
    "host_state": {"type": "str", "choices": ["up", "down", "fenced"]},
}
FIELDS = (
    "uri",
    "hypervisor",
    "vcpus",
    "ram_mb",
    "reserved_vcpus",
    "reserved_ram_mb",
    "cpu_ratio",
    "ram_ratio",
    "storage_dir",
)


def discover(uri: str) -> tuple[int, int]:
    """(vCPUs, RAM MiB) of the host behind ``uri``."""
    info = virt.call("read the host's capacity", virt.connect(uri).getInfo)
    return int(info[2]), int(info[1])


def desired_row(params: dict[str, Any], current: dict[str, Any] | None, now: int) -> dict[str, Any]:
    """The columns to write: given options only, plus defaults and discovery for a new host."""
    row = {k: params[k] for k in FIELDS if params[k] is not None}
    if current is None:
        missing = [k for k in ("uri", "storage_dir") if not params[k]]
        if missing:
            raise NotFound(
                f"Host {params['name']} is new and needs {' and '.join(missing)}.",
                "Give uri and storage_dir when registering a host.",
            )
        row.setdefault("hypervisor", "kvm")
        row.setdefault("cpu_ratio", 4.0)
        row.setdefault("ram_ratio", 1.0)
        if params["vcpus"] is None or params["ram_mb"] is None:
            vcpus, ram = discover(params["uri"])
            row.setdefault("vcpus", vcpus)
            row.setdefault("ram_mb", ram)
    if params["host_state"] and (current is None or current["state"] != params["host_state"]):
        row["state"] = params["host_state"]
        row["fenced_at"] = now if params["host_state"] == "fenced" else None
    return row


def handle(module: AnsibleModule) -> dict[str, Any]:
    """Converge the host row."""
    params = module.params
    with open_store(module) as store:
        key = {"name": params["name"]}
        if params["state"] == "absent":

            def guard(row: dict[str, Any]) -> None:
                users = store.select("instances", order_by="name", host_id=row["id"])
                if users:
                    raise Conflict(
                        f"Host {row['name']} still has instances: {', '.join(u['name'] for u in users)}.",
                        "Delete or evacuate them first (compleat.cloud.evacuate).",
                    )
                store.delete("stale_definitions", host_id=row["id"])

            changed, before = delete_row(store, "hosts", key, module.check_mode, guard)
            return {"changed": changed, "diff": make_diff(public(before), {}, params["name"])}
        current = store.get("hosts", **key)
        row = desired_row(params, current, store.now())
        changed, before, after = ensure_row(
            store, "hosts", key, row, module.check_mode, nullable=frozenset({"fenced_at"})
        )
        stale = []
        if current is not None:
            stale = sorted(
                r["instance_name"] for r in store.select("stale_definitions", host_id=current["id"])
            )
        if stale and (after.get("state") == "up"):
            module.warn(
                f"Host {params['name']} still holds old definitions of {', '.join(stale)}; run "
                "compleat.cloud.evacuate with state=cleaned before it takes new instances."
            )
        return {
            "changed": changed,
            "host": public(after),
            "stale_definitions": stale,
            "diff": make_diff(public(before), public(after), params["name"]),
        }


def main() -> None:
    """Module entry point."""
    run_module(new_module(ARGUMENT_SPEC), handle)


if __name__ == "__main__":
    main()
