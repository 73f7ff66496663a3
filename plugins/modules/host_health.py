#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Probe every hypervisor's libvirt; mark a host down after N failed probes; optionally fence + evacuate."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_health
short_description: Health policy of the hypervisor hosts (probe, mark down, optionally fence and evacuate)
version_added: "0.1.0"
description:
  - Probes every host of the store (or the O(hosts) given) by connecting to its libvirt URI within
    O(timeout) seconds and making a real call (C(getInfo) and C(listAllDomains)). All hosts are probed at
    the same time, so a run takes about O(timeout) seconds however many hosts are dead.
  - Records per host the consecutive failed probes (C(failed_probes), counted up to O(down_after)) and
    the time of the probe (C(last_probe_at)). A successful probe resets the counter.
  - A host that is V(up) and reaches O(down_after) consecutive failures is marked V(down), and placement
    no longer gives it new instances.
  - A host that answers again is B(not) brought back up by this module. It is reported with
    C(recovered=true) and a hint. Its instances may have been recreated elsewhere (by O(evacuate) or by
    M(compleat.cloud.evacuate)) while their old definitions, overlays and seeds are still on it; bringing
    it back automatically could let it boot them a second time on the same volumes, and a flapping host
    would bounce between up and down. Run M(compleat.cloud.evacuate) with V(state=cleaned), then
    M(compleat.cloud.hypervisor) with O(compleat.cloud.hypervisor#module:host_state=up).
  - With O(evacuate=true), a host that has failed O(down_after) consecutive probes, is V(down) or
    V(fenced) and still holds instances is fenced and its instances are recreated on other hosts,
    exactly like M(compleat.cloud.evacuate) does (same fence step, same checks, same placement; hosts
    that failed their probe in this run are never chosen). Off by default, since fencing powers a
    host off.
  - Hosts in maintenance (O(compleat.cloud.hypervisor#module:maintenance=true)) are probed and their
    counters recorded, but they are never marked down nor evacuated by this policy.
  - C(last_probe_at) is written on every run; like C(updated_at) it does not make the task changed.
    The task is changed when a counter, a host state or an instance placement changes.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.cloud_store.no_diff
  - compleat.cloud.cloud_store.libvirt
attributes:
  check_mode:
    details: The probes run (they are read-only); nothing is written and no fence command runs. The result
      says which hosts would be marked down and where their instances would go.
options:
  hosts:
    description: Probe only these hosts (store names). Default every host of the store.
    type: list
    elements: str
  down_after:
    description: Consecutive failed probes after which a host that is V(up) is marked V(down) (at least 1).
    type: int
    default: 3
  timeout:
    description: Seconds a host's libvirt has to accept the connection and answer the call.
    type: float
    default: 10
  evacuate:
    description:
      - Fence and evacuate the hosts that are down by this policy and still hold instances (see the
        description). With the default V(false) the module only probes and marks.
    type: bool
    default: false
  fence_method:
    description:
      - How a host is fenced before its instances move (O(evacuate=true)), as in
        M(compleat.cloud.evacuate). V(mark) requires the V(fenced) mark an operator sets with
        M(compleat.cloud.hypervisor) (O(compleat.cloud.hypervisor#module:host_state=fenced)); until then
        the host is reported in RV(failures). V(command) runs O(fence_command) and marks the host
        V(fenced) when it exits 0.
      - A host already marked V(fenced) is not fenced again.
    type: str
    choices: [mark, command]
    default: mark
  fence_command:
    description:
      - Command (argv list, no shell) that powers a host off and exits 0 only when it is off. C({host})
        and C({uri}) are replaced by the host's name and libvirt URI.
      - Never logged (it may carry BMC credentials).
    type: list
    elements: str
  root_disk:
    description: As in M(compleat.cloud.evacuate). V(recreate) builds a fresh root overlay on the
      template; V(reuse) points the new definition at the old overlay (shared primary storage only).
    type: str
    choices: [recreate, reuse]
    default: recreate
seealso:
  - module: compleat.cloud.evacuate
  - module: compleat.cloud.hypervisor
"""

EXAMPLES = r"""
- name: Probe every hypervisor; mark a host down after 3 consecutive failures
  compleat.cloud.host_health:
  register: health

- name: Probe two hosts with a short timeout; down after 2 failures
  compleat.cloud.host_health:
    hosts: [hv1, hv2]
    down_after: 2
    timeout: 5

- name: Self-healing policy (scheduled every 5 minutes), fence through the BMC and evacuate
  compleat.cloud.host_health:
    evacuate: true
    fence_method: command
    fence_command: [fence_ipmilan, --ip, "{{ bmc_ip[host] | default('') }}", --username, admin,
                    --password, "{{ bmc_password }}", --action, "off", --plug, "{host}"]

- name: Show the hosts that answer again but stay down
  ansible.builtin.debug:
    msg: "{{ health.hosts | selectattr('recovered') | map(attribute='hint') | list }}"
"""

RETURN = r"""
hosts:
  description: One entry per probed host, as stored after the run (in check mode, as it would be).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "hv3", "reachable": false, "reason": "Cannot connect to libvirt at qemu+ssh://...",
            "state": "down", "maintenance": false, "failed_probes": 3, "last_probe_at": 1767225600,
            "marked_down": true, "recovered": false, "hint": ""}]
  contains:
    name:
      description: Host name.
      type: str
    reachable:
      description: Whether libvirt answered the connection and the call within O(timeout).
      type: bool
    reason:
      description: Why the probe failed (empty when reachable).
      type: str
    state:
      description: The host state after the run (V(up), V(down), V(fenced)).
      type: str
    maintenance:
      description: Whether the host is in maintenance (never marked down by this policy).
      type: bool
    failed_probes:
      description: Consecutive failed probes (up to O(down_after)).
      type: int
    last_probe_at:
      description: Time of this probe, seconds since the epoch.
      type: int
    marked_down:
      description: The host was marked (or in check mode would be marked) V(down) by this run.
      type: bool
    recovered:
      description: The host answers while it is V(down) or V(fenced); it stays so until the operator brings
        it back (see RV(hosts[].hint)).
      type: bool
    hint:
      description: What to do next for this host (empty when nothing).
      type: str
marked_down:
  description: Hosts marked down by this run.
  returned: always
  type: list
  elements: str
recovered:
  description: Hosts that answer again but stay down or fenced.
  returned: always
  type: list
  elements: str
evacuated:
  description: Instances moved (or that would move in check mode), as returned by M(compleat.cloud.evacuate).
  returned: always
  type: list
  elements: dict
  sample: [{"instance": "web1", "from": "hv3", "to": "hv1", "instance_id": "iid-4f0c...",
            "volumes": ["web1-data"], "state": "running"}]
failures:
  description: Evacuations refused (for example a host not fenced yet, with a null C(instance)) or
    instances that could not be moved, with the reason and the hint. The task fails when there are any
    (outside check mode), after recording the probes.
  returned: always
  type: list
  elements: dict
  sample: [{"host": "hv3", "instance": null,
            "reason": "Refusing to evacuate hv3: it is 'down', not fenced...", "hint": "Fence it first: ..."}]
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, errors, evacuation, virt  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "hosts": {"type": "list", "elements": "str"},
    "down_after": {"type": "int", "default": 3},
    "timeout": {"type": "float", "default": 10.0},
    "evacuate": {"type": "bool", "default": False},
    "fence_method": {"type": "str", "choices": ["mark", "command"], "default": "mark"},
    "fence_command": {"type": "list", "elements": "str", "no_log": True},
    "root_disk": {"type": "str", "choices": ["recreate", "reuse"], "default": "recreate"},
}
WAVE = 64  # hosts probed at the same time


@dataclass(frozen=True, slots=True)
class Probe:
    """Result of probing one host: reachable or not, and why not."""

    ok: bool
    reason: str = ""


# ------------------------------------------------------------------------------------------------
# Probing (read-only)
# ------------------------------------------------------------------------------------------------
def probe(uri: str, timeout: float) -> Probe:
    """Connect to ``uri`` within ``timeout`` seconds, then make a real call within what is left."""
    start = time.monotonic()
    conn, reason = virt.try_connect(uri, timeout)
    if conn is None:
        return Probe(False, reason)
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            virt.call("read the host's information", conn.getInfo)
            box["domains"] = len(virt.call("list the domains", conn.listAllDomains, 0))
        except errors.CloudError as exc:
            box["error"] = exc.msg

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(max(0.1, timeout - (time.monotonic() - start)))
    if "domains" in box:
        return Probe(True)
    return Probe(False, box.get("error", f"connected, but no answer to a call within {timeout:g} s"))


def _probe_into(box: list[Probe], uri: str, timeout: float) -> None:
    """Thread target: probe ``uri`` and append the result to ``box``."""
    box.append(probe(uri, timeout))


def probe_all(hosts: list[dict[str, Any]], timeout: float) -> dict[str, Probe]:
    """Probe ``hosts`` concurrently (by waves of ``WAVE``); returns the result per host name."""
    results: dict[str, Probe] = {}
    for first in range(0, len(hosts), WAVE):
        wave = hosts[first : first + WAVE]
        boxes: dict[str, list[Probe]] = {h["name"]: [] for h in wave}
        threads = [
            threading.Thread(target=_probe_into, args=(boxes[h["name"]], h["uri"], timeout), daemon=True)
            for h in wave
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout + 1.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for h in wave:
            box = boxes[h["name"]]
            results[h["name"]] = box[0] if box else Probe(False, f"no answer within {timeout:g} s")
    return results


# ------------------------------------------------------------------------------------------------
# Policy (pure)
# ------------------------------------------------------------------------------------------------
def health_changes(row: dict[str, Any], ok: bool, down_after: int) -> dict[str, Any]:
    """The columns a probe result changes (besides ``last_probe_at``).

    A success resets the counter; a failure counts up to ``down_after`` and marks an up host
    that is not in maintenance ``down`` once it gets there.  A host is never brought back up.
    """
    count = int(row.get("failed_probes") or 0)
    if ok:
        return {"failed_probes": 0} if count else {}
    new = count + 1 if count < down_after else count
    changes: dict[str, Any] = {"failed_probes": new} if new != count else {}
    if row["state"] == "up" and not row.get("maintenance") and new >= down_after:
        changes["state"] = "down"
    return changes


def must_evacuate(row: dict[str, Any], ok: bool, down_after: int) -> bool:
    """Whether the policy fences and evacuates ``row`` (the host as it is after this run)."""
    return (
        not ok
        and not row.get("maintenance")
        and int(row.get("failed_probes") or 0) >= down_after
        and row["state"] in ("down", "fenced")
    )


def recovered_hint(name: str) -> str:
    """What to do with a host that answers again while it is down or fenced."""
    return (
        f"{name} answers again but stays out of placement: its instances may have been recreated "
        f"elsewhere. Remove the old definitions with compleat.cloud.evacuate host={name} state=cleaned, "
        f"then bring it back with compleat.cloud.hypervisor name={name} host_state=up."
    )


def action_for(name: str, changes: dict[str, Any], down_after: int, reason: str) -> list[str]:
    """Readable actions for the changes of one host."""
    out = []
    if changes.get("failed_probes") == 0:
        out.append(f"reset the failed probes of {name}")
    elif "failed_probes" in changes:
        out.append(f"count failed probe {changes['failed_probes']}/{down_after} of {name}: {reason}")
    if changes.get("state") == "down":
        out.append(f"mark {name} down after {down_after} failed probes")
    return out


def down_hint(name: str) -> str:
    """What to do with a host that is down by this policy and still holds instances."""
    return (
        f"{name} is down and still holds instances. Fence it and move them: compleat.cloud.evacuate "
        f"host={name} (fence_method=command, or mark it first with compleat.cloud.hypervisor name={name} "
        "host_state=fenced), or let compleat.cloud.host_health do it with evacuate=true."
    )


def report(
    row: dict[str, Any], result: Probe, marked: bool, occupied: bool, down_after: int
) -> dict[str, Any]:
    """The entry of one host in ``hosts`` (``occupied``: instances are still placed on it)."""
    recovered = result.ok and row["state"] in ("down", "fenced")
    hint = ""
    if recovered:
        hint = recovered_hint(row["name"])
    elif occupied and must_evacuate(row, result.ok, down_after):
        hint = down_hint(row["name"])
    return {
        "name": row["name"],
        "reachable": result.ok,
        "reason": result.reason,
        "state": row["state"],
        "maintenance": bool(row.get("maintenance")),
        "failed_probes": int(row.get("failed_probes") or 0),
        "last_probe_at": row.get("last_probe_at"),
        "marked_down": marked,
        "recovered": recovered,
        "hint": hint,
    }


# ------------------------------------------------------------------------------------------------
# Store
# ------------------------------------------------------------------------------------------------
def selected_hosts(store: Store, names: list[str] | None) -> list[dict[str, Any]]:
    """The host rows to probe (every host by default); unknown names are refused."""
    rows = store.select("hosts", order_by="name")
    if not names:
        return rows
    known = {r["name"] for r in rows}
    unknown = sorted(set(names) - known)
    if unknown:
        raise errors.NotFound(
            f"Unknown host(s): {', '.join(unknown)}.",
            "Check the names (compleat.cloud.cloud_info lists the hosts) or register them with "
            "compleat.cloud.hypervisor.",
        )
    return [r for r in rows if r["name"] in set(names)]


def record(
    store: Store, names: list[str], probes: dict[str, Probe], down_after: int, check_mode: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write the probe results in one transaction; returns (hosts after, their change sets)."""
    after: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    with store.transaction(write=not check_mode):
        now = store.now()
        for row in store.select("hosts", order_by="name", lock=not check_mode):
            if row["name"] not in names:
                continue
            changes = health_changes(row, probes[row["name"]].ok, down_after)
            if not check_mode:
                store.update("hosts", row["id"], {**changes, "last_probe_at": now})
            after.append({**row, **changes, "last_probe_at": now})
            changed.append(changes)
    return after, changed


def evacuate_down(
    module: AnsibleModule,
    store: Store,
    hosts: list[dict[str, Any]],
    probes: dict[str, Probe],
    actions: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fence and evacuate the hosts the policy says must go; returns (evacuated, failures)."""
    p = module.params
    unreachable = frozenset(n for n, r in probes.items() if not r.ok)
    moved: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for host in hosts:
        if not must_evacuate(host, probes[host["name"]].ok, p["down_after"]):
            continue
        if not evacuation.instances_on(store, host):
            continue
        opts = evacuation.Options(
            fence_method="mark" if host["state"] == "fenced" else p["fence_method"],
            fence_command=tuple(p["fence_command"] or ()),
            verify_timeout=p["timeout"],
            root_disk=p["root_disk"],
            avoid=unreachable,
        )
        try:
            result = evacuation.evacuate_host(
                store, host, opts, _common.runner(module), check_mode=module.check_mode, actions=actions
            )
        except errors.CloudError as exc:
            failures.append({"host": host["name"], "instance": None, "reason": exc.msg, "hint": exc.hint})
            continue
        moved.extend(result["evacuated"])
        failures.extend({"host": host["name"], "hint": "", **f} for f in result["failures"])
    return moved, failures


def occupied_hosts(store: Store) -> set[int]:
    """Ids of the hosts that instances are placed on."""
    rows = store.query("SELECT DISTINCT host_id FROM instances WHERE host_id IS NOT NULL")
    return {int(r["host_id"]) for r in rows}


def refreshed(store: Store, hosts: list[dict[str, Any]], check_mode: bool) -> list[dict[str, Any]]:
    """The host rows as stored now (an evacuation may have fenced some); unchanged in check mode."""
    if check_mode:
        return hosts
    by_name = {r["name"]: r for r in store.select("hosts", order_by="name")}
    return [by_name.get(h["name"], h) for h in hosts]


def check_params(p: dict[str, Any]) -> None:
    """Refuse a policy that cannot work, before the store is opened."""
    if p["down_after"] < 1:
        raise errors.InvalidInput(
            f"down_after must be at least 1, not {p['down_after']}.", "Use down_after=3."
        )
    if p["timeout"] <= 0:
        raise errors.InvalidInput(f"timeout must be positive, not {p['timeout']:g}.", "Use timeout=10.")


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Probe, record, mark down, and (optionally) fence and evacuate."""
    p = module.params
    actions: list[str] = []
    rows = selected_hosts(store, p["hosts"])
    probes = probe_all(rows, p["timeout"])
    hosts, changes = record(store, [r["name"] for r in rows], probes, p["down_after"], module.check_mode)
    marked = {h["name"] for h, c in zip(hosts, changes, strict=True) if c.get("state") == "down"}
    for host, change in zip(hosts, changes, strict=True):
        actions.extend(action_for(host["name"], change, p["down_after"], probes[host["name"]].reason))
        if host["name"] in marked:
            module.warn(f"Host {host['name']} marked down: {probes[host['name']].reason}")
    moved, failures = evacuate_down(module, store, hosts, probes, actions) if p["evacuate"] else ([], [])
    occupied = occupied_hosts(store)
    entries = [
        report(h, probes[h["name"]], h["name"] in marked, h["id"] in occupied, p["down_after"])
        for h in refreshed(store, hosts, module.check_mode)
    ]
    result = {
        "changed": bool(actions),
        "hosts": entries,
        "marked_down": sorted(marked),
        "recovered": [e["name"] for e in entries if e["recovered"]],
        "evacuated": moved,
        "failures": failures,
        "actions": actions,
    }
    if failures and not module.check_mode:
        module.fail_json(
            msg="Could not evacuate every down host: "
            + "; ".join(f"{f['host']}{'/' + f['instance'] if f['instance'] else ''}" for f in failures)
            + ".",
            hint="See failures[].reason and failures[].hint; the probes are recorded and moved "
            "instances stay moved. Run again once fixed.",
            **result,
        )
    return result


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True, precheck=check_params)


if __name__ == "__main__":
    main()
