#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""List the snapshots and backups of a cloud instance."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snapshot_info
short_description: List the snapshots and backups of a cloud instance
version_added: "0.1.0"
description:
  - Returns the internal snapshots and the backups the metadata store records for an instance,
    and the internal snapshot names libvirt reports for its domain, so that the two can be compared.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.cloud_store.read_only
  - compleat.cloud.cloud_store.libvirt
options:
  instance:
    description: Instance name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Snapshots and backups of web1
  compleat.cloud.snapshot_info:
    instance: web1
  register: web1_snapshots
"""

RETURN = r"""
snapshots:
  description: Snapshots (C(kind=internal)) and backups (C(kind=backup)) the store records, by name.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "before-upgrade", "kind": "internal", "path": null, "size_bytes": 0,
            "created_at": 1795312000}]
libvirt_snapshots:
  description: Internal snapshot names libvirt reports for the domain (empty when the domain is missing).
  returned: always
  type: list
  elements: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, lifecycle  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {"instance": {"type": "str", "required": True}}


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """List."""
    inst = lifecycle.need(
        store,
        "instances",
        "instance",
        "Check the name (compleat.cloud.cloud_info).",
        name=module.params["instance"],
    )
    dom = lifecycle.domain_of(store, inst)
    return {"changed": False, **lifecycle.snapshot_listing(store, inst["uuid"], dom)}


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True, write=False)


if __name__ == "__main__":
    main()
