#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Spread instances evenly over the hosts (cold moves), draining the hosts in maintenance."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rebalance
short_description: Even out the committed load of the cloud with cold moves; drain hosts in maintenance
version_added: "0.1.0"
description:
  - Plans the fewest cold moves that bring every host's load (the larger of its committed vCPU and
    RAM fractions of its limits, overcommit applied) within O(tolerance) of the level of the whole
    cloud, then performs at most O(max_moves) of them, the most useful first. Typical use is new
    racks added while the old hosts hold every instance.
  - Hosts that are not V(up) are left alone (use M(compleat.cloud.evacuate) for a dead host).
    Hosts in maintenance (O(compleat.cloud.hypervisor#module:maintenance=true)) are drained first,
    every instance on them is moved off, and they never receive one.
  - A move never breaks capacity (committed vCPU and RAM stay within each host's limits), an
    anti-affinity group (never two of a group on one host) or the hypervisor family, and moves an
    instance at most once per run.
  - Each move is cold. The domain is shut down on the source (ACPI, forced off after
    O(stop_timeout) seconds), the instance is allocated to the target in one write transaction
    (capacity is checked again there, so concurrent runs cannot overbook), the root overlay is
    copied to the target's storage directory (the backing template path stays the same) or reused
    on shared primary storage (O(root_disk)), the seed is rebuilt and the domain defined on the
    target with the same UUID, instance-id, MACs and volumes, started if it was running, then
    undefined on the source, whose overlay and seed are removed.
  - When a move fails before the instance runs on the target, it is put back on the source (store,
    files and power state) and the module fails naming the instance; the moves already done stay
    done. Run it again to continue.
  - Idempotent. A run on an even cloud plans no move and changes nothing.
requirements:
  - libvirt-python (Debian python3-libvirt)
  - cp (coreutils), qemu-img (qemu-utils), and genisoimage or xorriso (or dosfstools and mtools for vfat
    seeds) on the machine that runs the module, which must see the storage directories of the source
    and target hosts (keep primary storage shared, or mounted at the same paths on the controller)
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.cloud_store.no_diff
attributes:
  check_mode:
    details: Returns the plan (moves, lower bound, evenness before and after); nothing is stopped,
      copied or written.
options:
  max_moves:
    description:
      - Moves done (or planned in check mode) at most in this run, drains first, then the moves that
        relieve the most loaded hosts. RV(complete) says whether more moves are needed.
      - Each move stops its instance for the time of a copy of its root overlay.
    type: int
    default: 10
  tolerance:
    description:
      - How far from the level a host's load may be and still count as even, as a fraction of its
        limits (V(0.05) is five percentage points). Between V(0.01) and V(0.5).
      - Keep it above half the share of a typical instance on a host, or the hosts can never all
        be even.
    type: float
    default: 0.05
  hosts:
    description:
      - Only these hosts (store names) take part, as sources and as targets. Default every host.
    type: list
    elements: str
  root_disk:
    description:
      - V(copy) copies the root overlay into the target's storage directory (the template it is backed
        by must be at the same path on the target, as on secondary storage).
      - V(reuse) keeps the overlay where it is; the primary storage must be shared by the hosts.
        When the source and target storage directories are the same path, V(copy) reuses as well.
    type: str
    choices: [copy, reuse]
    default: copy
  stop_timeout:
    description: Seconds to wait for a guest to shut down before forcing it off.
    type: int
    default: 60
notes:
  - Attached volumes move with the instance unchanged (same path or iSCSI LUN); volumes in a pool
    on a host's local disk must be on shared storage.
seealso:
  - module: compleat.cloud.hypervisor
  - module: compleat.cloud.evacuate
"""

EXAMPLES = r"""
- name: See what rebalancing would do
  compleat.cloud.rebalance:
    max_moves: 1000
  check_mode: true
  register: plan

- name: Spread the instances over the new racks, 20 moves per run, until the cloud is even
  compleat.cloud.rebalance:
    max_moves: 20
    tolerance: 0.05
  register: step
  until: step.complete
  retries: 100
  delay: 0

- name: Drain hv7 before a kernel update (maintenance set with compleat.cloud.hypervisor)
  compleat.cloud.rebalance:
    hosts: [hv5, hv6, hv7, hv8]
    max_moves: 50
    root_disk: reuse
"""

RETURN = r"""
moves:
  description: Moves done (with the instance's C(state) and C(instance_id)), or planned in check mode.
  returned: always
  type: list
  elements: dict
  sample: [{"instance": "web1", "from": "hv1", "to": "hv9", "reason": "balance", "state": "running",
            "instance_id": "iid-4f0c..."}]
lower_bound:
  description: The fewest moves any plan needs to drain the hosts in maintenance and make the cloud even.
  returned: always
  type: int
planned:
  description: Number of moves in this run's plan (O(max_moves) at most).
  returned: always
  type: int
complete:
  description: False when O(max_moves) stopped the plan before the cloud was even (run it again).
  returned: always
  type: bool
evenness_before:
  description: Loads of the balanced hosts before the run; C(level) is the cloud's load, C(levels) per
    hypervisor pool, C(outside) the number of hosts farther than O(tolerance) from it, C(draining)
    the instances left on hosts in maintenance.
  returned: always
  type: dict
  sample: {"level": 0.141, "levels": {"kvm+qemu": 0.141}, "tolerance": 0.05, "hosts": 400, "min": 0.0,
           "max": 0.686, "mean": 0.172, "stddev": 0.29, "spread": 0.686, "outside": 400, "draining": 0}
evenness_after:
  description: The same after the moves (predicted in check mode, read from the store otherwise).
  returned: always
  type: dict
unplaced:
  description: Instances of hosts in maintenance that cannot be moved, with the reason.
  returned: always
  type: list
  elements: dict
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

import os  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    errors,
    ipam,
    lifecycle,
    placement,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    rebalance as planner,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.overlay import Runner  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "max_moves": {"type": "int", "default": 10},
    "tolerance": {"type": "float", "default": planner.DEFAULT_TOLERANCE},
    "hosts": {"type": "list", "elements": "str"},
    "root_disk": {"type": "str", "choices": ["copy", "reuse"], "default": "copy"},
    "stop_timeout": {"type": "int", "default": 60},
}
FAMILY_OF = {"kvm": "kvm", "qemu": "kvm", "xen": "xen"}
MOVABLE_STATES = frozenset({"running", "stopped"})
TOLERANCE_RANGE = (0.01, 0.5)
STATUS_HINT = (
    "Check it with compleat.cloud.cloud_info; compleat.cloud.instance converges it where the store says."
)


# ------------------------------------------------------------------------------------------------
# The cloud as the planner sees it
# ------------------------------------------------------------------------------------------------
def check_params(params: dict[str, Any]) -> None:
    """Refuse option values the planner cannot use."""
    low, high = TOLERANCE_RANGE
    if not low <= params["tolerance"] <= high:
        raise errors.InvalidInput(
            f"tolerance={params['tolerance']} is out of range.",
            f"Give a fraction between {low} and {high} (0.05 = within five percentage points of the level).",
        )
    if params["max_moves"] < 1:
        raise errors.InvalidInput(
            f"max_moves={params['max_moves']} must be at least 1.", "Use check mode to only plan."
        )
    if params["stop_timeout"] < 0:
        raise errors.InvalidInput(
            "stop_timeout must not be negative.", "Give the seconds to wait for a shutdown."
        )


def family_of(domain_type: str) -> frozenset[str]:
    """Host hypervisor types an instance of ``domain_type`` may run on."""
    return virt.HYPERVISOR_FAMILIES[FAMILY_OF.get(domain_type, "kvm")]


def planner_instance(row: dict[str, Any], host: str) -> planner.Instance:
    """An instance row as the planner sees it; only running or stopped instances move.

    Its shared vCPU and RAM (none for pinned or hugepage-backed ones) and the dedicated resources
    it takes, so a move only targets a host that has them free.
    """
    req = placement.Request(int(row["vcpus"]), int(row["ram_mb"]), **placement.instance_needs(row))
    return planner.Instance(
        name=row["name"],
        host=host,
        vcpus=req.shared_vcpus,
        ram_mb=req.shared_ram_mb,
        anti_affinity_group=row["anti_affinity_group"],
        hypervisors=family_of(row["domain_type"]),
        movable=row["state"] in MOVABLE_STATES,
        resources=req.resources,
    )


def cloud_view(
    store: Store, only: list[str] | None
) -> tuple[list[placement.HostState], list[planner.Instance]]:
    """Hosts (with committed usage) and instances, limited to the hosts in ``only`` when given."""
    with store.transaction():
        hosts = placement.load_hosts(store)
        rows = store.query(
            "SELECT name, host_id, vcpus, ram_mb, anti_affinity_group, domain_type, state, cpu_pinning,"
            " hugepages, pci_devices FROM instances WHERE host_id IS NOT NULL ORDER BY name"
        )
    if only:
        missing = sorted(set(only) - {h.name for h in hosts})
        if missing:
            raise errors.NotFound(
                f"Unknown host(s) {', '.join(missing)}.", "Check the names (compleat.cloud.cloud_info)."
            )
        hosts = [h for h in hosts if h.name in set(only)]
    names = {h.host_id: h.name for h in hosts}
    return hosts, [planner_instance(r, names[r["host_id"]]) for r in rows if r["host_id"] in names]


# ------------------------------------------------------------------------------------------------
# One cold move
# ------------------------------------------------------------------------------------------------
@dataclass
class Mover:
    """What every move of a run shares."""

    store: Store
    run: Runner
    reuse: bool
    stop_timeout: float

    def env(self) -> lifecycle.Env:
        """A lifecycle environment for this run."""
        return lifecycle.Env(self.store, False, self.run, stop_timeout=self.stop_timeout)


@dataclass
class Undo:
    """How to put a failed move back: the source domain, its power state, what was made on the target."""

    dom: Any | None
    was_running: bool
    conn: Any | None = None
    target_had: bool = True
    files: list[str] = field(default_factory=list)


def same_file(a: str | None, b: str | None) -> bool:
    """Whether two paths name the same file (shared storage mounted at one path)."""
    return bool(a and b) and os.path.realpath(a) == os.path.realpath(b)


def copy_overlay(run: Runner, src: str, dest: str) -> None:
    """Copy a root overlay (sparse, atomically: a partial copy never has the final name)."""
    part = dest + ".part"
    rc, out, err = run(["cp", "--sparse=always", "--", src, part])
    if rc != 0:
        if os.path.exists(part):
            os.unlink(part)
        raise errors.CommandError(
            f"Copying the root overlay {src} to {part} failed (rc={rc}): {(err or out).strip()}",
            "Check free space and permissions of the target's storage directory.",
        )
    os.replace(part, dest)


def preflight(mover: Mover, inst: dict[str, Any], source: dict[str, Any], target: dict[str, Any]) -> None:
    """Refuse a move that cannot work before the instance is stopped."""
    if inst["host_id"] != source["id"]:
        raise errors.Conflict(
            f"{inst['name']} is no longer on {source['name']} (another run moved it).",
            "Run compleat.cloud.rebalance again: it plans from the current store.",
        )
    if not os.path.exists(inst["root_disk"] or ""):
        raise errors.Conflict(
            f"The root overlay of {inst['name']} ({inst['root_disk']}) is not reachable from here.",
            "Run the module where the hosts' primary storage is mounted (shared storage, same paths).",
        )
    if not mover.reuse and not os.path.isdir(target["storage_dir"]):
        raise errors.Conflict(
            f"The storage directory {target['storage_dir']} of {target['name']} is not reachable from here.",
            "Mount the target's primary storage at that path, or use root_disk=reuse on shared storage.",
        )


def request_to(inst: dict[str, Any], target: str) -> placement.Request:
    """Same size, family and anti-affinity group, on ``target`` only."""
    return placement.Request(
        vcpus=int(inst["vcpus"]),
        ram_mb=int(inst["ram_mb"]),
        hypervisors=family_of(inst["domain_type"]),
        anti_affinity_group=inst["anti_affinity_group"],
        only=frozenset({target}),
        **placement.instance_needs(inst),
    )


def allocate_to(mover: Mover, inst: dict[str, Any], target: dict[str, Any], paths: tuple[str, str]) -> None:
    """Re-allocate ``inst`` to ``target`` in one write transaction (capacity checked again there)."""
    store = mover.store
    with store.transaction(write=True):
        placement.allocate(
            store,
            request_to(inst, target["name"]),
            instance_id=inst["id"],
            changes={
                "state": "building",
                "root_disk": paths[0],
                "seed_path": paths[1],
                "domain_type": virt.DOMAIN_TYPES[target["hypervisor"]],
            },
        )
        # an old definition left there by an evacuation is this very domain now: never clean it
        store.delete("stale_definitions", instance_uuid=inst["uuid"], host_id=target["id"])
        ipam.follow(store, inst, target)  # same MACs and tenant addresses; rack addresses follow the rack


def build_on_target(
    mover: Mover, inst: dict[str, Any], target: dict[str, Any], conn: Any, power: str
) -> dict[str, Any]:
    """Copy (or reuse) the overlay, rebuild the seed, define and power the domain on the target."""
    store = mover.store
    row = store.get("instances", id=inst["id"]) or {}
    if not mover.reuse and not same_file(inst["root_disk"], row["root_disk"]):
        copy_overlay(mover.run, inst["root_disk"], row["root_disk"])
    image = store.get("images", id=row["image_id"]) if row["image_id"] else None
    summary = lifecycle.converge(mover.env(), conn, row, target, image, power=power)
    store.update("instances", row["id"], {"state": summary["state"], "seed_hash": summary["seed_hash"]})
    if summary["state"] == "running":
        store.record_usage("start", row, lifecycle.offering_name(store, row), target["name"])
    return {**row, "state": summary["state"]}


def put_back(mover: Mover, inst: dict[str, Any], source: dict[str, Any], undo: Undo) -> str:
    """Undo a failed move: target domain and files, store row, power on the source.  Returns what happened."""
    store = mover.store
    try:
        if undo.conn is not None and not undo.target_had:
            stray = virt.lookup(undo.conn, inst["uuid"])
            if stray is not None:
                virt.undefine(stray)
        for path in undo.files:
            if os.path.exists(path):
                os.unlink(path)
        with store.transaction(write=True):
            # the instance never left the source: write back what the store had (its slot there)
            store.update(
                "instances",
                inst["id"],
                {k: inst[k] for k in ("host_id", "root_disk", "seed_path", "domain_type", "state")},
            )
            ipam.restore(store, inst, source)  # its addresses (and NICs) as they were
        if undo.was_running and undo.dom is not None and not undo.dom.isActive():
            virt.start(undo.dom)
            store.record_usage("start", inst, lifecycle.offering_name(store, inst), source["name"])
    except (errors.CloudError, OSError) as exc:
        reason = exc.msg if isinstance(exc, errors.CloudError) else str(exc)
        return f"Putting it back on {source['name']} failed too ({reason}): check it before anything else."
    return f"It is back on {source['name']} ({'running' if undo.was_running else 'stopped'})."


def clean_source(
    mover: Mover, inst: dict[str, Any], moved: dict[str, Any], source: dict[str, Any], dom: Any | None
) -> None:
    """Undefine the old domain and remove the old overlay and seed (those not in use any more)."""
    try:
        # Only a definition that still names the source: when both hosts are one libvirt (one
        # daemon registered twice, or a URI that reaches the target), it is the moved domain.
        if dom is not None and virt.metadata_of(dom).get("host") == source["name"]:
            virt.undefine(dom)
        old = [p for p in (inst["root_disk"], inst["seed_path"]) if p]
        lifecycle.remove_files(
            mover.env(),
            *(p for p in old if not any(same_file(p, q) for q in (moved["root_disk"], moved["seed_path"]))),
        )
    except (errors.CloudError, OSError) as exc:
        mover.store.insert(
            "stale_definitions",
            {
                "instance_uuid": inst["uuid"],
                "instance_name": inst["name"],
                "host_id": source["id"],
                "root_disk": None if same_file(inst["root_disk"], moved["root_disk"]) else inst["root_disk"],
                "seed_path": None if same_file(inst["seed_path"], moved["seed_path"]) else inst["seed_path"],
            },
        )
        reason = exc.msg if isinstance(exc, errors.CloudError) else str(exc)
        kind = type(exc) if isinstance(exc, errors.CloudError) else errors.CloudError
        raise kind(
            f"{inst['name']} was moved to {moved['host']} and runs from there, but its old definition or "
            f"files on {source['name']} could not be removed: {reason}",
            f"compleat.cloud.evacuate host={source['name']} state=cleaned removes them.",
        ) from exc


def failed(exc: Exception, move: planner.Move, outcome: str) -> errors.CloudError:
    """The error of a failed move: what failed, for which instance, and where it is now."""
    head = f"Moving {move.instance} from {move.source} to {move.target} failed:"
    if isinstance(exc, errors.CloudError):
        return type(exc)(f"{head} {exc.msg} {outcome}", exc.hint or STATUS_HINT, **exc.details)
    return errors.CloudError(f"{head} {exc} {outcome}", STATUS_HINT)


def move_one(mover: Mover, move: planner.Move) -> dict[str, Any]:
    """Perform one cold move; on failure the instance is left on the source (or on the target)."""
    store = mover.store
    hint = "Check the name (compleat.cloud.cloud_info)."
    inst = lifecycle.need(store, "instances", "instance", hint, name=move.instance)
    source = lifecycle.need(store, "hosts", "host", hint, name=move.source)
    target = lifecycle.need(store, "hosts", "host", hint, name=move.target)
    preflight(mover, inst, source, target)
    root, seed_path = lifecycle.instance_paths(target["storage_dir"], inst["name"], inst["seed_format"])
    if mover.reuse:
        root = inst["root_disk"]
    dom = virt.lookup(virt.connect(source["uri"]), inst["uuid"])
    was_running = dom is not None and bool(dom.isActive())
    undo = Undo(dom, was_running)
    try:
        if was_running:
            virt.stop(dom, mover.stop_timeout)
            store.record_usage("stop", inst, lifecycle.offering_name(store, inst), source["name"])
        allocate_to(mover, inst, target, (root, seed_path))
        undo.files = [
            p
            for p, old in ((root, inst["root_disk"]), (seed_path, inst["seed_path"]))
            if not same_file(p, old)
        ]
        undo.conn = virt.connect(target["uri"])
        undo.target_had = virt.lookup(undo.conn, inst["uuid"]) is not None
        moved = build_on_target(mover, inst, target, undo.conn, "running" if was_running else "stopped")
    except (errors.CloudError, OSError) as exc:
        raise failed(exc, move, put_back(mover, inst, source, undo)) from exc
    clean_source(mover, inst, {**moved, "host": target["name"]}, source, dom)
    return {**move.as_dict(), "state": moved["state"], "instance_id": inst["instance_id"]}


# ------------------------------------------------------------------------------------------------
# Module
# ------------------------------------------------------------------------------------------------
def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Plan, then (unless in check mode) perform the moves one by one."""
    p = module.params
    hosts, instances = cloud_view(store, p["hosts"])
    plan = planner.plan(hosts, instances, tolerance=p["tolerance"], max_moves=p["max_moves"])
    report = plan.as_dict()
    report["planned"] = len(plan.moves)
    actions = [f"move {m.instance} from {m.source} to {m.target} ({m.reason})" for m in plan.moves]
    if module.check_mode or not plan.moves:
        return {"changed": bool(plan.moves), "actions": actions, **report}
    mover = Mover(store, _common.runner(module), p["root_disk"] == "reuse", float(p["stop_timeout"]))
    done: list[dict[str, Any]] = []
    for move in plan.moves:
        try:
            done.append(move_one(mover, move))
        except errors.CloudError as exc:
            exc.details.update(
                changed=bool(done), moves=done, actions=actions[: len(done)], lower_bound=plan.lower_bound
            )
            raise
    after = planner.evenness(*cloud_view(store, p["hosts"]), tolerance=p["tolerance"])
    report.update(moves=done, evenness_after=after.as_dict())
    return {"changed": True, "actions": actions, **report}


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True, precheck=check_params)


if __name__ == "__main__":
    main()
