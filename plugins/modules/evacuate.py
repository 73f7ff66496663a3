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
author:
  - compleat.cloud developers (@compleat-cloud)
requirements:
  - libvirt-python (Debian python3-libvirt)
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.platform
  - compleat.cloud.cloud_store
attributes:
  check_mode:
    support: full
    details: Runs no fence command; the plan shows where each instance would go.
  diff_mode:
    support: none
  platform:
    platforms: posix
    support: full
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

import os  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    lifecycle,
    placement,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud._common import (  # noqa: E402
    new_module,
    open_store,
    run_module,
    runner,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import (  # noqa: E402
    CloudError,
    CommandError,
    Conflict,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "host": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["evacuated", "cleaned"], "default": "evacuated"},
    "fence_method": {"type": "str", "choices": ["mark", "command"], "default": "mark"},
    "fence_command": {"type": "list", "elements": "str", "no_log": True},
    "verify_dead": {"type": "bool", "default": True},
    "verify_timeout": {"type": "int", "default": 10},
    "root_disk": {"type": "str", "choices": ["recreate", "reuse"], "default": "recreate"},
    "instances": {"type": "list", "elements": "str"},
}
FAMILY_OF = {"kvm": "kvm", "qemu": "kvm", "xen": "xen"}


# ------------------------------------------------------------------------------------------------
# Fencing
# ------------------------------------------------------------------------------------------------
def fence_argv(command: list[str], host: dict[str, Any]) -> list[str]:
    """The fence command with ``{host}`` and ``{uri}`` filled in."""
    return [arg.replace("{host}", host["name"]).replace("{uri}", host["uri"]) for arg in command]


def ensure_fenced(module: AnsibleModule, store: Store, host: dict[str, Any], actions: list[str]) -> str:
    """Make sure ``host`` is fenced (running the fence command when asked); returns how."""
    p = module.params
    if p["fence_method"] == "command":
        if not p["fence_command"]:
            raise Conflict(
                "fence_method=command needs fence_command.", "Give the power-off command as a list."
            )
        actions.append(f"fence {host['name']} with its fence command")
        if module.check_mode:
            return "command"
        rc, _out, err = module.run_command(fence_argv(p["fence_command"], host))
        if rc != 0:
            raise CommandError(
                f"The fence command for {host['name']} failed (rc={rc}): {err.strip()[-300:]}",
                "The host may still run its instances: nothing was moved. Fix the fence "
                "device, or power the host off by hand and mark it (host_state=fenced).",
            )
        store.update("hosts", host["id"], {"state": "fenced", "fenced_at": store.now()})
        return "command"
    if host["state"] != "fenced":
        raise Conflict(
            f"Refusing to evacuate {host['name']}: it is '{host['state']}', not fenced. Recreating its "
            "instances while it might still run them would corrupt their volumes.",
            "Fence it first: fence_method=command with a fence_command (BMC/PDU power-off), or, once "
            f"you have confirmed it is off, mark it: compleat.cloud.hypervisor name={host['name']} "
            "host_state=fenced.",
        )
    return "mark"


def verify_dead(module: AnsibleModule, host: dict[str, Any], insts: list[dict[str, Any]]) -> None:
    """Refuse when the host answers and still runs one of ``insts``."""
    conn, _reason = virt.try_connect(host["uri"], module.params["verify_timeout"])
    if conn is None:
        return
    running = []
    for inst in insts:
        dom = virt.lookup(conn, inst["uuid"])
        if dom is not None and dom.isActive() and virt.metadata_of(dom).get("host") == host["name"]:
            running.append(inst["name"])
    if running:
        raise Conflict(
            f"Host {host['name']} answers and still runs {', '.join(running)}: fencing did not take effect.",
            "Power the host off for real, then run this again.",
        )


# ------------------------------------------------------------------------------------------------
# Evacuation
# ------------------------------------------------------------------------------------------------
def request_for(inst: dict[str, Any], dead: str) -> placement.Request:
    """Same size, same hypervisor family, same anti-affinity group, never the dead host."""
    family = FAMILY_OF.get(inst["domain_type"], "kvm")
    return placement.Request(
        vcpus=int(inst["vcpus"]),
        ram_mb=int(inst["ram_mb"]),
        hypervisors=virt.HYPERVISOR_FAMILIES[family],
        anti_affinity_group=inst["anti_affinity_group"],
        exclude=frozenset({dead}),
    )


def plan_all(store: Store, insts: list[dict[str, Any]], dead: str) -> list[str | None]:
    """Check mode: where each instance would go, placed one after another."""
    hosts = placement.load_hosts(store)
    return placement.place_many(hosts, [request_for(i, dead) for i in insts])[0]


def move(module: AnsibleModule, store: Store, inst: dict[str, Any], dead: dict[str, Any]) -> dict[str, Any]:
    """Allocate ``inst`` elsewhere and rebuild it there; returns the report entry."""
    reuse = module.params["root_disk"] == "reuse"
    if reuse and not os.path.exists(inst["root_disk"] or ""):
        raise Conflict(
            f"root_disk=reuse but {inst['root_disk']} is not reachable from here.",
            "Use root_disk=recreate, or mount the shared primary storage.",
        )
    was_running = inst["state"] == "running"
    with store.transaction(write=True):
        chosen, _row = placement.allocate(
            store, request_for(inst, dead["name"]), instance_id=inst["id"], changes={"state": "building"}
        )
        new_host = store.get("hosts", id=chosen.host_id)
        root, seed_path = lifecycle.instance_paths(new_host["storage_dir"], inst["name"], inst["seed_format"])
        store.update(
            "instances",
            inst["id"],
            {
                "root_disk": inst["root_disk"] if reuse else root,
                "seed_path": seed_path,
                "domain_type": virt.DOMAIN_TYPES[new_host["hypervisor"]],
            },
        )
        store.delete("stale_definitions", instance_uuid=inst["uuid"], host_id=dead["id"])
        store.insert(
            "stale_definitions",
            {
                "instance_uuid": inst["uuid"],
                "instance_name": inst["name"],
                "host_id": dead["id"],
                "root_disk": None if reuse else inst["root_disk"],
                "seed_path": inst["seed_path"],
            },
        )
        if was_running:
            store.record_usage("stop", inst, lifecycle.offering_name(store, inst), dead["name"])
    row = store.get("instances", id=inst["id"])
    image = store.get("images", id=row["image_id"]) if row["image_id"] else None
    env = lifecycle.Env(store, False, runner(module))
    summary = lifecycle.converge(
        env,
        virt.connect(new_host["uri"]),
        row,
        new_host,
        image,
        power="running" if was_running else "stopped",
    )
    store.update("instances", row["id"], {"state": summary["state"], "seed_hash": summary["seed_hash"]})
    if summary["state"] == "running":
        store.record_usage("start", row, lifecycle.offering_name(store, row), new_host["name"])
    return {
        "instance": row["name"],
        "from": dead["name"],
        "to": new_host["name"],
        "instance_id": row["instance_id"],
        "state": summary["state"],
        "volumes": [v["name"] for v in lifecycle.volumes_of(store, row)],
    }


def evacuate(module: AnsibleModule, store: Store, host: dict[str, Any], actions: list[str]) -> dict[str, Any]:
    """Fence, verify, then move every instance of ``host``."""
    wanted = set(module.params["instances"] or [])
    insts = [
        i
        for i in store.select("instances", order_by="name", host_id=host["id"])
        if not wanted or i["name"] in wanted
    ]
    fenced = ensure_fenced(module, store, host, actions)
    if module.params["verify_dead"]:
        verify_dead(module, host, insts)
    if module.check_mode:
        plan = plan_all(store, insts, host["name"])
        moved = [
            {
                "instance": i["name"],
                "from": host["name"],
                "to": to,
                "instance_id": i["instance_id"],
                "state": i["state"],
                "volumes": [v["name"] for v in lifecycle.volumes_of(store, i)],
            }
            for i, to in zip(insts, plan, strict=True)
            if to
        ]
        failures = [
            {"instance": i["name"], "reason": "no capacity"}
            for i, to in zip(insts, plan, strict=True)
            if not to
        ]
        actions.extend(f"recreate {m['instance']} on {m['to']}" for m in moved)
        return {"evacuated": moved, "failures": failures, "fenced": fenced}
    moved, failures = [], []
    for inst in insts:
        try:
            entry = move(module, store, inst, host)
        except CloudError as exc:
            failures.append({"instance": inst["name"], "reason": exc.msg, "hint": exc.hint})
            continue
        actions.append(f"recreate {entry['instance']} on {entry['to']}")
        moved.append(entry)
    return {"evacuated": moved, "failures": failures, "fenced": fenced}


# ------------------------------------------------------------------------------------------------
# Cleanup
# ------------------------------------------------------------------------------------------------
def referenced_paths(store: Store) -> set[str]:
    """Every root disk and seed path a current instance uses."""
    paths: set[str] = set()
    for row in store.query("SELECT root_disk, seed_path FROM instances"):
        paths.update(p for p in (row["root_disk"], row["seed_path"]) if p)
    return paths


def clean(module: AnsibleModule, store: Store, host: dict[str, Any], actions: list[str]) -> list[str]:
    """Remove the stale definitions (and their files) from a host that answers again."""
    stale = store.select("stale_definitions", order_by="instance_name", host_id=host["id"])
    if not stale:
        return []
    conn = virt.connect(host["uri"])
    env = lifecycle.Env(store, module.check_mode, runner(module))
    in_use = referenced_paths(store)
    cleaned = []
    for row in stale:
        dom = virt.lookup(conn, row["instance_uuid"])
        if dom is not None and virt.metadata_of(dom).get("host") == host["name"]:
            env.did(f"undefine old definition of {row['instance_name']}")
            if not module.check_mode:
                virt.undefine(dom)
        lifecycle.remove_files(
            env, *(p for p in (row["root_disk"], row["seed_path"]) if p and p not in in_use)
        )
        if not module.check_mode:
            store.delete("stale_definitions", id=row["id"])
        cleaned.append(row["instance_name"])
    actions.extend(env.actions or [f"forget old definition of {n}" for n in cleaned])
    return cleaned


def handle(module: AnsibleModule) -> dict[str, Any]:
    """Dispatch on state."""
    p = module.params
    actions: list[str] = []
    with open_store(module) as store:
        host = lifecycle.need(
            store, "hosts", "host", "Check the name (compleat.cloud.cloud_info).", name=p["host"]
        )
        if p["state"] == "cleaned":
            cleaned = clean(module, store, host, actions)
            return {"changed": bool(cleaned), "cleaned": cleaned, "actions": actions}
        result = evacuate(module, store, host, actions)
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
    run_module(new_module(ARGUMENT_SPEC), handle, libvirt=True)


if __name__ == "__main__":
    main()
