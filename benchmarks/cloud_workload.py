# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The instance mix of the cloud-stack benchmarks (placement.py, rebalance.py): offerings, the
hypervisor families and the random requests both place; and the independent replay of a
rebalancing plan that rebalance.py and the rebalance unit tests check plans with."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "build" / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import rebalance as rb  # noqa: E402

OFFERINGS = ((1, 1024), (2, 2048), (2, 4096), (4, 8192), (8, 16384))
KVM = frozenset({"kvm", "qemu"})
XEN = frozenset({"xen"})


def make_requests(count: int, rng: random.Random) -> list[pl.Request]:
    """Offerings mixed, 10 % in one of 500 anti-affinity groups, 10 % on Xen."""
    out = []
    for _n in range(count):
        vcpus, ram = rng.choice(OFFERINGS)
        group = f"g{rng.randrange(500)}" if rng.random() < 0.1 else None
        out.append(
            pl.Request(vcpus, ram, hypervisors=XEN if rng.random() < 0.1 else KVM, anti_affinity_group=group)
        )
    return out


def replay(hosts: list[pl.HostState], instances: list[rb.Instance], moves: tuple[rb.Move, ...]) -> list[str]:
    """Replay the moves one by one through placement's own filter; every problem found, as text
    (a move from elsewhere than the instance is, off a host that is not up, of an instance that is
    not movable, or one placement would refuse)."""
    states = {h.name: h for h in hosts}
    where = {i.name: i.host for i in instances}
    by_name = {i.name: i for i in instances}
    members: dict[str, dict[str, int]] = {}  # host -> anti-affinity group -> instances of it there
    for inst in instances:
        if inst.anti_affinity_group:
            per = members.setdefault(inst.host, {})
            per[inst.anti_affinity_group] = per.get(inst.anti_affinity_group, 0) + 1
    problems = []
    for move in moves:
        inst = by_name[move.instance]
        if where[move.instance] != move.source:
            problems.append(f"{move.instance} is on {where[move.instance]}, not {move.source}")
        if states[move.source].state != "up":
            problems.append(f"{move.instance} moved off {move.source}, which is not up")
        if not inst.movable:
            problems.append(f"{move.instance} is not movable")
        groups = frozenset(g for g, n in members.get(move.target, {}).items() if n)
        target = dataclasses.replace(states[move.target], groups=groups)
        request = pl.Request(inst.vcpus, inst.ram_mb, inst.hypervisors, inst.anti_affinity_group)
        reason = pl.rejection(target, request)
        if reason:
            problems.append(f"{move.instance} -> {move.target}: {reason}")
        for name, sign in ((move.source, -1), (move.target, 1)):
            h = states[name]
            states[name] = dataclasses.replace(
                h, used_vcpus=h.used_vcpus + sign * inst.vcpus, used_ram_mb=h.used_ram_mb + sign * inst.ram_mb
            )
        if inst.anti_affinity_group:  # the group leaves where the instance really was
            for name, sign in ((where[move.instance], -1), (move.target, 1)):
                per = members.setdefault(name, {})
                per[inst.anti_affinity_group] = per.get(inst.anti_affinity_group, 0) + sign
        where[move.instance] = move.target
    return problems
