#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recreate the instances of a dead, fenced hypervisor on other hosts; clean up when it returns."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: evacuate
short_description: Recreate the instances of a dead hypervisor elsewhere (fence first), clean up later
version_added: "0.1.0"
description:
  - V(evacuated) recreates every instance the store places on O(host) on other hosts, with placement
    (the dead host excluded, anti-affinity kept), a root overlay on the template (or the old one
    with O(root_disk=reuse) on shared primary storage), the same NoCloud seed (same instance-id),
    the same volumes and NICs (same MACs), and the same power state.
  - It refuses to run unless O(host) is fenced, so that an instance never runs twice on shared
    volumes. The fence step is pluggable. With O(fence_method=command) the module runs
    O(fence_command) (a power-off through a BMC or a PDU, for example C(fence_ipmilan)) and marks
    the host V(fenced) when the command succeeds. With O(fence_method=mark) it requires the mark
    that an operator set with M(compleat.cloud.hypervisor)
    (O(compleat.cloud.hypervisor#module:host_state=fenced)).
  - With O(verify_dead=true) it also refuses when the host's libvirt still answers and runs any of
    the instances.
  - The old definitions cannot be removed while the host is down; they are recorded and
    V(cleaned) removes them (and the old overlays and seeds) once the host answers again.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.cloud_store.no_diff
  - compleat.cloud.cloud_store.libvirt
  - compleat.cloud.dns_update
attributes:
  check_mode:
    details: Runs no fence command; the plan shows where each instance would go.
options:
  host:
    description: The dead (V(evacuated)) or returned (V(cleaned)) host, by store name.
    type: str
    required: true
  state:
    description: V(evacuated) moves the instances away; V(cleaned) removes their old definitions from the
      returned host.
    type: str
    choices: [evacuated, cleaned]
    default: evacuated
  fence_method:
    description: How the host is known to be off (see the description).
    type: str
    choices: [mark, command]
    default: mark
  fence_command:
    description:
      - Command (argv list, no shell) that powers the host off and exits 0 only when it is off.
        C({host}) and C({uri}) are replaced by the host's name and libvirt URI.
      - Never logged (it may carry BMC credentials).
    type: list
    elements: str
  verify_dead:
    description: Refuse when the host's libvirt answers within O(verify_timeout) seconds and runs one of the
      instances.
    type: bool
    default: true
  verify_timeout:
    description: Seconds to wait for the host's libvirt in O(verify_dead).
    type: int
    default: 10
  root_disk:
    description:
      - V(recreate) builds a fresh root overlay on the template (the design default, data lives on
        volumes); V(reuse) points the new definition at the old overlay, which must be on shared storage.
    type: str
    choices: [recreate, reuse]
    default: recreate
  instances:
    description: Only these instances (default every instance on the host).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Fence hv3 through its BMC, then move its instances away
  compleat.cloud.evacuate:
    host: hv3
    fence_method: command
    fence_command: [fence_ipmilan, --ip, 10.0.9.3, --username, admin, --password, "{{ bmc_password }}",
                    --action, "off"]

- name: The operator confirmed hv3 is off and marked it fenced
  compleat.cloud.evacuate:
    host: hv3

- name: hv3 is back; remove the stale definitions before it takes instances again
  compleat.cloud.evacuate:
    host: hv3
    state: cleaned
"""

RETURN = r"""
evacuated:
  description: One entry per instance moved (or that would move in check mode).
  returned: state is evacuated
  type: list
  elements: dict
  sample: [{"instance": "web1", "from": "hv3", "to": "hv1", "instance_id": "iid-4f0c...",
            "volumes": ["web1-data"], "state": "running"}]
failures:
  description: Instances that could not be moved, with the reason.
  returned: state is evacuated
  type: list
  elements: dict
cleaned:
  description: Old definitions removed from the returned host.
  returned: state is cleaned
  type: list
  elements: str
fenced:
  description: How the host was found or made fenced (V(mark), V(command)).
  returned: state is evacuated
  type: str
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    dns_update,
    evacuation,
    lifecycle,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec("evacuated", "cleaned", name="host"),
    "fence_method": {"type": "str", "choices": ["mark", "command"], "default": "mark"},
    "fence_command": {"type": "list", "elements": "str", "no_log": True},
    "verify_dead": {"type": "bool", "default": True},
    "verify_timeout": {"type": "int", "default": 10},
    "root_disk": {"type": "str", "choices": ["recreate", "reuse"], "default": "recreate"},
    "instances": {"type": "list", "elements": "str"},
    "dns_update": {"type": "dict", "options": dns_update.OPTION_SPEC},
}


def options(params: dict[str, Any]) -> evacuation.Options:
    """The evacuation options from the module parameters."""
    return evacuation.Options(
        fence_method=params["fence_method"],
        fence_command=tuple(params["fence_command"] or ()),
        verify_dead=params["verify_dead"],
        verify_timeout=float(params["verify_timeout"]),
        root_disk=params["root_disk"],
        instances=frozenset(params["instances"] or ()),
    )


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Dispatch on state; the work is done by module_utils/cloud/evacuation.py."""
    p = module.params
    actions: list[str] = []
    host = lifecycle.need(
        store, "hosts", "host", "Check the name (compleat.cloud.cloud_info).", name=p["host"]
    )
    if p["state"] == "cleaned":
        cleaned = evacuation.clean(
            store, host, _common.runner(module), check_mode=module.check_mode, actions=actions
        )
        return {"changed": bool(cleaned), "cleaned": cleaned, "actions": actions}
    result = evacuation.evacuate_host(
        store, host, options(p), _common.runner(module), check_mode=module.check_mode, actions=actions
    )
    cfg = dns_update.config_from(p["dns_update"])
    for entry in result["evacuated"] if cfg and not module.check_mode else []:
        # a tenant-network address stays; a rack-network address changes with the rack
        actions.extend(
            dns_update.sync(cfg, entry["instance"], entry.get("previous_address"), entry.get("address"))
        )
    changed = bool(actions)
    if result["failures"] and not module.check_mode:
        names = ", ".join(f["instance"] for f in result["failures"])
        module.fail_json(
            msg=f"Could not evacuate {names} from {host['name']}.",
            hint="See failures[].reason; add capacity and run again (moved instances stay moved).",
            changed=changed,
            actions=actions,
            **result,
        )
    return {"changed": changed, "actions": actions, **result}


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True)


if __name__ == "__main__":
    main()
