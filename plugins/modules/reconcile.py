#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make every host's libvirt agree with the metadata store; release stale ``building`` rows."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: reconcile
short_description: Repair drift between the metadata store and libvirt, and reap stale builds
version_added: "0.1.0"
description:
  - The store is the source of truth. For every instance on every reachable host (or on O(hosts)),
    the module compares the domain with what the store records, field by field (disks and
    volumes, NICs and their MACs, vCPUs, memory, metadata, power state), in the persistent
    definition and in the running guest, and repairs the domain in the store's direction. A
    missing overlay, seed or definition is rebuilt, a changed definition is redefined (devices
    added by hand outside the owned fields are kept), a volume that the running guest has but the
    store does not is detached live and a missing one is hot-plugged.
  - NIC, vCPU and memory changes of a running guest need a restart; they are listed in
    RV(instances[].restart_required) and applied at the next start.
  - Power state follows O(power). A guest that shut itself down is a legitimate change, so by
    default the store records what libvirt reports (and metering follows); V(enforce) starts or
    stops domains to the store's state instead.
  - Instance rows left in state C(building) by a run that was killed are older than
    O(building_ttl); they are released (no capacity held), with their domain, overlay and seed.
    Younger ones may belong to a run in progress and are left alone.
  - Domains that carry compleat.cloud metadata but are unknown to the store are listed in
    RV(orphans), never removed.
  - In check mode everything is compared and reported and nothing is changed.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
  - compleat.cloud.cloud_store.libvirt
attributes:
  diff_mode:
    details: The diff shows, per instance, the drifted fields before and after.
options:
  hosts:
    description: Only these hosts (store names). Default every host whose state is C(up).
    type: list
    elements: str
  power:
    description: V(observe) records libvirt's power state in the store; V(enforce) starts or stops the
      domain to the state the store records.
    type: str
    choices: [observe, enforce]
    default: observe
  building_ttl:
    description: Seconds after which an instance still in state C(building) is considered abandoned and
      released. V(0) disables the reaper.
    type: int
    default: 3600
  timeout:
    description: Seconds to wait for each host's libvirt.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Show the drift of every host without touching anything
  compleat.cloud.reconcile:
  check_mode: true
  diff: true
  register: drift

- name: Repair drift on hv3 and start what the store says should run
  compleat.cloud.reconcile:
    hosts: [hv3]
    power: enforce

- name: Release builds abandoned for more than 10 minutes
  compleat.cloud.reconcile:
    building_ttl: 600
"""

RETURN = r"""
instances:
  description: Per instance that drifted or was repaired, what differed and what was done.
  returned: always
  type: list
  elements: dict
  sample: [{"instance": "web1", "host": "hv1", "config": ["disks"], "live": ["disks"],
            "disks": {"extra": ["vdb"], "missing": [], "other_source": []},
            "power": {"store": "running", "libvirt": "running"}, "repaired": true,
            "restart_required": []}]
  contains:
    instance:
      description: Instance name.
      type: str
    host:
      description: Host name.
      type: str
    missing:
      description: The domain was not defined (it is rebuilt).
      type: bool
    config:
      description: Owned fields of the persistent definition that differed.
      type: list
      elements: str
    live:
      description: Fields of the running guest that differed (disks, nics, vcpus, memory_kib).
      type: list
      elements: str
    disks:
      description: Disk targets of the definition that were C(extra), C(missing) or had C(other_source).
      type: dict
    live_disks:
      description: The same for the running guest.
      type: dict
    power:
      description: The store's and libvirt's power state before the run.
      type: dict
    repaired:
      description: Whether anything was changed (or would be, in check mode) for this instance.
      type: bool
    restart_required:
      description: Fields of a running guest that take effect at its next start.
      type: list
      elements: str
reaped:
  description: Abandoned C(building) instances released (or that would be, in check mode).
  returned: always
  type: list
  elements: str
unreachable:
  description: Hosts whose libvirt did not answer (skipped), with the error.
  returned: always
  type: dict
orphans:
  description: Per host, domains with compleat.cloud metadata that the store does not know.
  returned: always
  type: dict
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, errors, lifecycle, virt  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "hosts": {"type": "list", "elements": "str"},
    "power": {"type": "str", "choices": ["observe", "enforce"], "default": "observe"},
    "building_ttl": {"type": "int", "default": 3600},
    "timeout": {"type": "int", "default": 10},
}


def selected_hosts(store: Store, names: list[str] | None) -> list[dict[str, Any]]:
    """The hosts to reconcile: the named ones (all must exist) or every host that is up."""
    rows = store.select("hosts", order_by="name")
    if not names:
        return [h for h in rows if h["state"] == "up"]
    known = {h["name"]: h for h in rows}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise errors.NotFound(
            f"hosts: unknown host(s) {', '.join(unknown)}.",
            "List the registered hosts with compleat.cloud.cloud_info (gather: [hosts]).",
        )
    return [known[n] for n in sorted(set(names))]


def abandoned(inst: dict[str, Any], now: int, ttl: int) -> bool:
    """A ``building`` row untouched for longer than ``ttl`` seconds (``ttl`` 0: never)."""
    return ttl > 0 and inst["state"] == "building" and now - int(inst["updated_at"]) > ttl


def orphans(conn: Any, known: set[str]) -> list[str]:
    """Names of domains with our metadata whose UUID the store does not know."""
    out = []
    for dom in virt.call("list domains", conn.listAllDomains, 0):
        if dom.UUIDString().lower() not in known and virt.metadata_of(dom).get("instance-id"):
            out.append(dom.name())
    return sorted(out)


def reconcile_instance(
    env: lifecycle.Env, conn: Any, inst: dict[str, Any], host: dict[str, Any], power: str
) -> dict[str, Any] | None:
    """Repair one instance; returns its report, or None when it already agreed."""
    store = env.store
    dom = virt.lookup(conn, inst["uuid"])
    found = lifecycle.drift(store, inst, host, dom)
    if found["agrees"]:
        return None
    report: dict[str, Any] = {"instance": inst["name"], "host": host["name"], "repaired": False}
    report.update({k: found[k] for k in ("missing", "config", "live", "disks", "live_disks", "power")})
    marker = len(env.actions)
    if found["missing"]:
        image = store.get("images", id=inst["image_id"]) if inst.get("image_id") else None
        want = inst["state"] if power == "enforce" else None
        summary = lifecycle.converge(env, conn, inst, host, image, power=want)
        dom, report["restart_required"] = summary["dom"], []
    else:
        repaired = lifecycle.restore_store_view(env, conn, inst, host, dom, found=found)
        dom, report["restart_required"] = repaired["dom"] or dom, repaired["restart_required"]
        if power == "enforce":
            lifecycle.ensure_power(env, dom, "running" if inst["state"] == "running" else "stopped")
    observed = virt.power_state(dom)
    new_state = (inst["state"] if power == "enforce" else observed) if env.check_mode else observed
    new_state = "running" if new_state == "running" else "stopped"
    if new_state != inst["state"]:
        env.did(f"record {inst['name']} as {new_state} (was {inst['state']})")
        if not env.check_mode:
            with store.transaction(write=True):
                store.update("instances", inst["id"], {"state": new_state})
                lifecycle.record_power_change(store, inst, new_state, host["name"])
    report["repaired"] = len(env.actions) > marker
    return report


def reconcile_host(
    env: lifecycle.Env, host: dict[str, Any], params: dict[str, Any], out: dict[str, Any]
) -> None:
    """Reap, repair and list orphans on one host; an unreachable host is recorded and skipped."""
    conn, error = virt.try_connect(host["uri"], float(params["timeout"]))
    if conn is None:
        out["unreachable"][host["name"]] = error
        return
    now = env.store.now()
    rows = env.store.select("instances", order_by="name", host_id=host["id"])
    for inst in rows:
        if abandoned(inst, now, params["building_ttl"]):
            lifecycle.discard_instance(env, conn, inst)
            out["reaped"].append(inst["name"])
        elif inst["state"] != "building":
            report = reconcile_instance(env, conn, inst, host, params["power"])
            if report:
                out["instances"].append(report)
    known = {r["uuid"].lower() for r in env.store.query("SELECT uuid FROM instances")}
    found = orphans(conn, known)
    if found:
        out["orphans"][host["name"]] = found


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Reconcile the selected hosts."""
    p = module.params
    out: dict[str, Any] = {"instances": [], "reaped": [], "unreachable": {}, "orphans": {}}
    env = lifecycle.Env(store, module.check_mode, _common.runner(module))
    for host in selected_hosts(store, p["hosts"]):
        reconcile_host(env, host, p, out)
    before = {
        r["instance"]: {k: r[k] for k in ("config", "live", "disks", "power")} for r in out["instances"]
    }
    after = {name: "agrees with the store" for name in before}
    return {
        "changed": bool(env.actions),
        "actions": env.actions,
        **out,
        "diff": _common.make_diff(before, after, "drift"),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True)


if __name__ == "__main__":
    main()
