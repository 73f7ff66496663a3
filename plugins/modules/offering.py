#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Define a compute offering (vCPU, RAM, root disk size) in the cloud metadata store."""

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
author:
  - compleat.cloud developers (@compleat-cloud)
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.full
  - compleat.cloud.attributes.platform
  - compleat.cloud.cloud_store
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
"""

EXAMPLES = r"""
- name: A small offering
  compleat.cloud.offering:
    name: small
    vcpus: 1
    ram_mb: 1024
    disk_gb: 10
"""

RETURN = r"""
offering:
  description: The offering as stored.
  returned: state is present
  type: dict
  sample: {"name": "small", "vcpus": 1, "ram_mb": 1024, "disk_gb": 10}
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

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
    "vcpus": {"type": "int"},
    "ram_mb": {"type": "int"},
    "disk_gb": {"type": "int"},
}


def handle(module: AnsibleModule) -> dict[str, Any]:
    """Converge the offering row."""
    p = module.params
    key = {"name": p["name"]}
    with open_store(module) as store:
        if p["state"] == "absent":

            def guard(row: dict[str, Any]) -> None:
                users = store.select("instances", order_by="name", offering_id=row["id"])
                if users:
                    raise Conflict(
                        f"Offering {row['name']} is used by {', '.join(u['name'] for u in users)}.",
                        "Resize or delete those instances first.",
                    )

            changed, before = delete_row(store, "offerings", key, module.check_mode, guard)
            return {"changed": changed, "diff": make_diff(public(before), {}, p["name"])}
        for opt in ("vcpus", "ram_mb", "disk_gb"):
            if p[opt] is not None and p[opt] < (0 if opt == "disk_gb" else 1):
                raise Conflict(f"{opt}={p[opt]} is not a valid size.", f"Give a positive {opt}.")
        desired = {"vcpus": p["vcpus"], "ram_mb": p["ram_mb"], "disk_gb": p["disk_gb"]}
        if store.get("offerings", **key) is None:
            if p["vcpus"] is None or p["ram_mb"] is None:
                raise NotFound(f"Offering {p['name']} is new and needs vcpus and ram_mb.", "Give both.")
            desired["disk_gb"] = p["disk_gb"] or 0
        changed, before, after = ensure_row(store, "offerings", key, desired, module.check_mode)
        return {
            "changed": changed,
            "offering": public(after),
            "diff": make_diff(public(before), public(after), p["name"]),
        }


def main() -> None:
    """Module entry point."""
    run_module(new_module(ARGUMENT_SPEC), handle)


if __name__ == "__main__":
    main()
