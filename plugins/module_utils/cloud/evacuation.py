# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fence a dead hypervisor, recreate its instances on other hosts, clean up when it returns.

The core of ``compleat.cloud.evacuate``, shared with ``compleat.cloud.host_health`` (modules
cannot import each other).  Nothing here knows AnsibleModule: callers pass the store, an
``Options`` value, a ``Runner`` for external commands (``module.run_command``), the check-mode
flag and a list that collects the actions done (or that would be done in check mode).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import ipam, lifecycle, placement, virt
from .errors import CloudError, CommandError, Conflict
from .overlay import Runner
from .store import Store

FAMILY_OF = {"kvm": "kvm", "qemu": "kvm", "xen": "xen"}


@dataclass(frozen=True, slots=True)
class Options:
    """How to fence and evacuate (the options of ``compleat.cloud.evacuate``)."""

    fence_method: str = "mark"
    fence_command: tuple[str, ...] = ()
    verify_dead: bool = True
    verify_timeout: float = 10.0
    root_disk: str = "recreate"
    instances: frozenset[str] = frozenset()
    avoid: frozenset[str] = frozenset()


# ------------------------------------------------------------------------------------------------
# Fencing
# ------------------------------------------------------------------------------------------------
def fence_argv(command: Sequence[str], host: dict[str, Any]) -> list[str]:
    """The fence command with ``{host}`` and ``{uri}`` filled in."""
    return [arg.replace("{host}", host["name"]).replace("{uri}", host["uri"]) for arg in command]


def ensure_fenced(
    store: Store, host: dict[str, Any], opts: Options, run: Runner, *, check_mode: bool, actions: list[str]
) -> str:
    """Make sure ``host`` is fenced (running the fence command when asked); returns how."""
    if opts.fence_method == "command":
        if not opts.fence_command:
            raise Conflict(
                "fence_method=command needs fence_command.", "Give the power-off command as a list."
            )
        actions.append(f"fence {host['name']} with its fence command")
        if check_mode:
            return "command"
        rc, _out, err = run(fence_argv(opts.fence_command, host))
        if rc != 0:
            raise CommandError(
                f"The fence command for {host['name']} failed (rc={rc}): {err.strip()[-300:]}",
                "The host may still run its instances: nothing was moved. Fix the fence device, or "
                "power the host off by hand and mark it: compleat.cloud.hypervisor "
                f"name={host['name']} host_state=fenced.",
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


def verify_dead(host: dict[str, Any], insts: list[dict[str, Any]], timeout: float) -> None:
    """Refuse when the host answers within ``timeout`` seconds and still runs one of ``insts``."""
    conn, _reason = virt.try_connect(host["uri"], timeout)
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
def request_for(inst: dict[str, Any], dead: str, avoid: frozenset[str] = frozenset()) -> placement.Request:
    """Same size, hypervisor family, anti-affinity group and dedicated resources (pinned pCPUs,
    hugepages, PCI devices: only hosts that have them free), never the dead host."""
    family = FAMILY_OF.get(inst["domain_type"], "kvm")
    return placement.Request(
        vcpus=int(inst["vcpus"]),
        ram_mb=int(inst["ram_mb"]),
        hypervisors=virt.HYPERVISOR_FAMILIES[family],
        anti_affinity_group=inst["anti_affinity_group"],
        exclude=frozenset({dead}) | avoid,
        **placement.instance_needs(inst),
    )


def plan_all(
    store: Store, insts: list[dict[str, Any]], dead: str, avoid: frozenset[str] = frozenset()
) -> list[str | None]:
    """Check mode: where each instance would go, placed one after another."""
    hosts = placement.load_hosts(store)
    return placement.place_many(hosts, [request_for(i, dead, avoid) for i in insts])[0]


def instances_on(
    store: Store, host: dict[str, Any], wanted: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The instances the store places on ``host`` (only ``wanted`` ones when given), by name."""
    return [
        i
        for i in store.select("instances", order_by="name", host_id=host["id"])
        if not wanted or i["name"] in wanted
    ]


def _reallocate(
    store: Store, inst: dict[str, Any], dead: dict[str, Any], reuse: bool, avoid: frozenset[str]
) -> dict[str, Any]:
    """Move the instance row to a new host and record the old definition; returns the new host row."""
    with store.transaction(write=True):
        chosen, _row = placement.allocate(
            store,
            request_for(inst, dead["name"], avoid),
            instance_id=inst["id"],
            changes={"state": "building"},
        )
        new_host = store.get("hosts", id=chosen.host_id) or {}
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
        # same MACs and tenant addresses; a rack-network address follows the new host's rack
        ipam.follow(store, inst, new_host)
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
        if inst["state"] == "running":
            store.record_usage("stop", inst, lifecycle.offering_name(store, inst), dead["name"])
    return new_host


def move(
    store: Store, inst: dict[str, Any], dead: dict[str, Any], opts: Options, run: Runner
) -> dict[str, Any]:
    """Allocate ``inst`` elsewhere and rebuild it there; returns the report entry."""
    reuse = opts.root_disk == "reuse"
    if reuse and not os.path.exists(inst["root_disk"] or ""):
        raise Conflict(
            f"root_disk=reuse but {inst['root_disk']} is not reachable from here.",
            "Use root_disk=recreate, or mount the shared primary storage.",
        )
    was_running = inst["state"] == "running"
    new_host = _reallocate(store, inst, dead, reuse, opts.avoid)
    row = store.get("instances", id=inst["id"]) or {}
    image = store.get("images", id=row["image_id"]) if row["image_id"] else None
    env = lifecycle.Env(store, False, run)
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
    entry = {
        "instance": row["name"],
        "from": dead["name"],
        "to": new_host["name"],
        "instance_id": row["instance_id"],
        "state": summary["state"],
        "volumes": [v["name"] for v in lifecycle.volumes_of(store, row)],
    }
    if ipam.primary_address(inst["networks"]):  # instances on IPAM networks: for the DNS records
        entry.update(
            address=ipam.primary_address(row["networks"]),
            previous_address=ipam.primary_address(inst["networks"]),
        )
    return entry


def _plan_report(
    store: Store, host: dict[str, Any], insts: list[dict[str, Any]], avoid: frozenset[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check mode: the entries that would move and the instances that would not fit."""
    plan = plan_all(store, insts, host["name"], avoid)
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
        {"instance": i["name"], "reason": "no capacity"} for i, to in zip(insts, plan, strict=True) if not to
    ]
    return moved, failures


def evacuate_host(
    store: Store, host: dict[str, Any], opts: Options, run: Runner, *, check_mode: bool, actions: list[str]
) -> dict[str, Any]:
    """Fence, verify, then move every instance of ``host``.

    Returns ``{"evacuated": [...], "failures": [...], "fenced": "mark"|"command"}``.  Fence and
    verification refusals raise (nothing moved); an instance that cannot be moved is a failure
    entry (with the reason and hint) and the others still move.
    """
    insts = instances_on(store, host, opts.instances)
    fenced = ensure_fenced(store, host, opts, run, check_mode=check_mode, actions=actions)
    if opts.verify_dead:
        verify_dead(host, insts, opts.verify_timeout)
    if check_mode:
        moved, failures = _plan_report(store, host, insts, opts.avoid)
        actions.extend(f"recreate {m['instance']} on {m['to']}" for m in moved)
        return {"evacuated": moved, "failures": failures, "fenced": fenced}
    moved, failures = [], []
    for inst in insts:
        try:
            entry = move(store, inst, host, opts, run)
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


def clean(
    store: Store, host: dict[str, Any], run: Runner, *, check_mode: bool, actions: list[str]
) -> list[str]:
    """Remove the stale definitions (and their files) from a host that answers again."""
    stale = store.select("stale_definitions", order_by="instance_name", host_id=host["id"])
    if not stale:
        return []
    conn = virt.connect(host["uri"])
    env = lifecycle.Env(store, check_mode, run)
    in_use = referenced_paths(store)
    cleaned = []
    for row in stale:
        dom = virt.lookup(conn, row["instance_uuid"])
        if dom is not None and virt.metadata_of(dom).get("host") == host["name"]:
            env.did(f"undefine old definition of {row['instance_name']}")
            if not check_mode:
                virt.undefine(dom)
        lifecycle.remove_files(
            env, *(p for p in (row["root_disk"], row["seed_path"]) if p and p not in in_use)
        )
        if not check_mode:
            store.delete("stale_definitions", id=row["id"])
        cleaned.append(row["instance_name"])
    actions.extend(env.actions or [f"forget old definition of {n}" for n in cleaned])
    return cleaned
