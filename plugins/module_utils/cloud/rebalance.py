# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rebalancing planner: the fewest cold moves that even out committed load across hosts.

Pure: it reads ``placement.HostState`` values and ``Instance`` values and returns a ``Plan``;
no store, no libvirt.  ``compleat.cloud.rebalance`` feeds it from the store and performs the moves.

Load
    A host's *load* is ``max(committed vCPU / vcpu_limit, committed RAM / ram_limit)``: the
    fraction of its binding resource.  The *level* ``T`` is the same fraction over the whole
    balanced set (hosts that are up, not in maintenance, with capacity), with the instances of
    the hosts being drained counted in.  A host is *even* when its load is within ``tolerance``
    of ``T``; ``deviation`` is how far outside that window it is (0 inside).

Roles
    Hosts that are not ``up`` are skipped entirely (neither source nor target, their instances
    ignored).  Hosts that are up and in ``maintenance`` are *drained*: every movable instance on
    them moves off first, and they never receive one.  The rest are *balanced*.

Plan
    1. Drain, largest instance first, each to the least loaded host that can take it (capacity,
       anti-affinity, hypervisor family), preferring one that stays inside the window.
    2. Shed: repeatedly take the most loaded host above the window and move its largest instance
       whose removal does not drop it below the window to the least loaded host that stays inside
       the window (or, failing that, any move that lowers the larger deviation of the pair).
    3. Fill: repeatedly take the least loaded host below the window and pull the largest fitting
       instance from the most loaded hosts.
    Every balancing move strictly lowers the larger deviation of its two hosts, so the sorted
    vector of deviations decreases lexicographically and the plan always terminates; moves that
    do not help are never made, so an even cloud gives no moves.  ``max_moves`` cuts the plan
    after that many moves: drains first, then the most overloaded hosts, so the most useful moves
    come first.  Every choice breaks ties by name: the same input gives the same plan.

Lower bound
    Every move takes one instance off one host and puts it on one host, so the plan needs at
    least ``max(R, A)`` moves, where ``R`` sums, over drained hosts, their movable instances and,
    over hosts above the window, the fewest of their own instances (largest first, per resource)
    whose removal brings them under the window; and ``A`` sums, over hosts below the window, the
    fewest of the cloud's largest instances that would bring them into it.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from .placement import HostState

EPS = 1e-9
DEFAULT_TOLERANCE = 0.05
DRAIN, BALANCE, SKIP = "drain", "balance", "skip"
_CANDIDATES = 16  # instances tried per step on one host, sources tried per fill step
_SCAN = 64  # target hosts examined per search (heap pops), so a full cloud stays fast
_ROUNDS = 4  # shed-then-fill rounds at most (a round without a move ends the plan)


@dataclass(frozen=True, slots=True)
class Instance:
    """An instance as the planner sees it.

    ``hypervisors`` are the host hypervisor types it may run on (empty: any).  An instance that is
    not ``movable`` (being built, in error) keeps its host and its capacity.  ``vcpus`` and
    ``ram_mb`` are what it commits from the shared pools (0 vCPU when pinned, 0 MiB when backed by
    hugepages); ``resources`` are the dedicated ones it takes (``pcpu``, ``hugepages:SIZE``,
    ``pci:CLASS`` amounts, see ``resources.py``): a target must have them free.
    """

    name: str
    host: str
    vcpus: int
    ram_mb: int
    anti_affinity_group: str | None = None
    hypervisors: frozenset[str] = frozenset()
    movable: bool = True
    resources: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Move:
    """One cold move.  ``reason`` is ``drain`` (off a host in maintenance) or ``balance``."""

    instance: str
    source: str
    target: str
    reason: str = "balance"

    def as_dict(self) -> dict[str, str]:
        """The move as module output."""
        return {"instance": self.instance, "from": self.source, "to": self.target, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Evenness:
    """How even the balanced hosts are: their loads against the level and its window."""

    level: float
    tolerance: float
    hosts: int
    min: float
    max: float
    mean: float
    stddev: float
    spread: float
    outside: int
    draining: int
    levels: dict[str, float] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Rounded values for module output and reports."""
        out: dict[str, Any] = {}
        for key in self.__slots__:
            value = getattr(self, key)
            out[key] = round(value, 4) if isinstance(value, float) else value
        out["levels"] = {k: round(v, 4) for k, v in self.levels.items()}
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    """The moves in execution order and what they achieve."""

    moves: tuple[Move, ...]
    lower_bound: int
    before: Evenness
    after: Evenness
    unplaced: tuple[tuple[str, str], ...] = ()
    complete: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The plan as module output."""
        return {
            "moves": [m.as_dict() for m in self.moves],
            "lower_bound": self.lower_bound,
            "evenness_before": self.before.as_dict(),
            "evenness_after": self.after.as_dict(),
            "unplaced": [{"instance": n, "reason": r} for n, r in self.unplaced],
            "complete": self.complete,
        }


# ------------------------------------------------------------------------------------------------
# Working state
# ------------------------------------------------------------------------------------------------
def frac(used: float, limit: float) -> float:
    """``used / limit``; a host without that resource is empty (0) or infinitely loaded."""
    if limit > 0:
        return used / limit
    return 0.0 if used <= 0 else math.inf


class _Host:
    """Mutable working copy of a host (plain attributes: the inner loops read them often)."""

    __slots__ = (
        "free",
        "groups",
        "hi",
        "hypervisor",
        "idx",
        "ir",
        "items",
        "iv",
        "level",
        "lo",
        "name",
        "pool",
        "rlim",
        "role",
        "ur",
        "uv",
        "version",
        "vlim",
    )

    def __init__(self, idx: int, host: HostState, role: str) -> None:
        self.idx, self.name, self.hypervisor, self.role = idx, host.name, host.hypervisor, role
        self.vlim, self.rlim = host.vcpu_limit, host.ram_limit_mb
        # inverse limits: only hosts with both resources take part (role_of skips the others)
        self.iv = 1.0 / self.vlim if self.vlim > 0 else 0.0
        self.ir = 1.0 / self.rlim if self.rlim > 0 else 0.0
        self.uv, self.ur = host.used_vcpus, host.used_ram_mb
        self.free = dict(host.free)  # dedicated resources left (pCPUs, hugepages, PCI devices)
        self.groups: dict[str, int] = {}
        self.items: list[tuple[float, str, int]] = []  # (-size here, name, instance index), sorted
        self.version = 0
        self.level = self.lo = self.hi = 0.0  # set by _Cloud from the host's pool
        self.pool = ""

    def dev(self, load: float) -> float:
        """How far ``load`` is outside this host's window (0 inside)."""
        if load > self.hi:
            return load - self.hi
        return self.lo - load if load < self.lo else 0.0

    def load(self, dv: int = 0, dr: int = 0) -> float:
        """Load after adding ``dv`` vCPU and ``dr`` MiB (negative to remove)."""
        cpu, ram = (self.uv + dv) * self.iv, (self.ur + dr) * self.ir
        return cpu if cpu > ram else ram

    def size(self, inst: Instance) -> float:
        """The share of this host one instance takes."""
        return max(frac(inst.vcpus, self.vlim), frac(inst.ram_mb, self.rlim))

    def fits(self, inst: Instance) -> bool:
        """Capacity, dedicated resources, anti-affinity and hypervisor family allow ``inst`` here."""
        return (
            self.uv + inst.vcpus <= self.vlim
            and self.ur + inst.ram_mb <= self.rlim
            and not (inst.anti_affinity_group and self.groups.get(inst.anti_affinity_group))
            and (not inst.hypervisors or self.hypervisor in inst.hypervisors)
            and all(self.free.get(key, 0) >= amount for key, amount in inst.resources)
        )


def role_of(host: HostState) -> str:
    """``skip`` (not up, or no capacity), ``drain`` (maintenance) or ``balance``."""
    if host.state != "up" or host.vcpu_limit <= 0 or host.ram_limit_mb <= 0:
        return SKIP
    return DRAIN if host.maintenance else BALANCE


class _Cloud:
    """Hosts and instances in working form, with the level and window."""

    def __init__(self, hosts: Sequence[HostState], instances: Iterable[Instance], tolerance: float) -> None:
        ordered = sorted(hosts, key=lambda h: h.name)
        self.hosts = [_Host(i, h, role_of(h)) for i, h in enumerate(ordered)]
        self.by_name = {h.name: h for h in self.hosts}
        self.insts: list[Instance] = []
        self.where: list[int] = []  # current host index per instance
        for inst in sorted(instances, key=lambda i: i.name):
            host = self.by_name.get(inst.host)
            if host is None or host.role == SKIP:
                continue
            self.insts.append(inst)
            self.where.append(host.idx)
            if inst.anti_affinity_group:
                host.groups[inst.anti_affinity_group] = host.groups.get(inst.anti_affinity_group, 0) + 1
            if inst.movable:
                host.items.append((-host.size(inst), inst.name, len(self.insts) - 1))
        for src, host in zip(ordered, self.hosts, strict=True):
            host.items.sort()
            for group in src.groups:  # groups of instances the caller did not list: pinned
                host.groups.setdefault(group, 1)
        self.tolerance = tolerance
        self.level = self._level([h for h in self.hosts if h.role != SKIP])
        self.levels: dict[str, float] = {}
        for label, members in self._pools().items():
            level = self._level(members)
            if any(h.role == BALANCE for h in members):
                self.levels[label] = level
            for h in members:
                h.pool, h.level, h.lo, h.hi = label, level, level - tolerance, level + tolerance

    def _level(self, hosts: list[_Host]) -> float:
        """Fraction of the binding resource of the balanced ``hosts``, drained instances included."""
        bal = [h for h in hosts if h.role == BALANCE]
        moving = [self.insts[j] for h in hosts if h.role == DRAIN for _s, _n, j in h.items]
        uv = sum(h.uv for h in bal) + sum(i.vcpus for i in moving)
        ur = sum(h.ur for h in bal) + sum(i.ram_mb for i in moving)
        if not bal:
            return 0.0
        return max(frac(uv, sum(h.vlim for h in bal)), frac(ur, sum(h.rlim for h in bal)))

    def _pools(self) -> dict[str, list[_Host]]:
        """Hosts grouped into pools: hypervisor types linked by an instance that may run on both.

        Instances never cross pools (hypervisor family), so each pool is evened out on its own level.
        """
        types = sorted({h.hypervisor for h in self.hosts if h.role != SKIP})
        parent = {t: t for t in types}

        def root(t: str) -> str:
            while parent[t] != t:
                t = parent[t]
            return t

        for inst, idx in zip(self.insts, self.where, strict=True):
            linked = {self.hosts[idx].hypervisor} | (set(inst.hypervisors) & parent.keys() or set(types))
            first, *rest = sorted(linked)
            for other in rest:
                a, b = root(first), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        pools: dict[str, list[_Host]] = {}
        for h in self.hosts:
            if h.role != SKIP:
                pools.setdefault(root(h.hypervisor), []).append(h)
        return {"+".join(sorted({h.hypervisor for h in members})): members for members in pools.values()}

    def balanced(self) -> list[_Host]:
        """Hosts that are balanced (up, not in maintenance), by name."""
        return [h for h in self.hosts if h.role == BALANCE]

    def move(self, j: int, target: _Host) -> None:
        """Move instance ``j`` to ``target`` (bookkeeping only); it stays there for the rest of the plan."""
        inst, source = self.insts[j], self.hosts[self.where[j]]
        source.items.remove((-source.size(inst), inst.name, j))
        source.uv -= inst.vcpus
        source.ur -= inst.ram_mb
        target.uv += inst.vcpus
        target.ur += inst.ram_mb
        for key, amount in inst.resources:
            source.free[key] = source.free.get(key, 0) + amount
            target.free[key] = target.free.get(key, 0) - amount
        group = inst.anti_affinity_group
        if group:
            source.groups[group] -= 1
            if not source.groups[group]:
                del source.groups[group]
            target.groups[group] = target.groups.get(group, 0) + 1
        # not added to target.items: an instance moves at most once per plan (one cold move each)
        self.where[j] = target.idx
        source.version += 1
        target.version += 1


# ------------------------------------------------------------------------------------------------
# Measures
# ------------------------------------------------------------------------------------------------
def _evenness(cloud: _Cloud) -> Evenness:
    """Evenness of a working cloud."""
    balanced = cloud.balanced()
    loads = [h.load() for h in balanced]
    draining = sum(len(h.items) for h in cloud.hosts if h.role == DRAIN)
    if not loads:
        return Evenness(cloud.level, cloud.tolerance, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, draining, {})
    mean = sum(loads) / len(loads)
    return Evenness(
        level=cloud.level,
        tolerance=cloud.tolerance,
        hosts=len(loads),
        min=min(loads),
        max=max(loads),
        mean=mean,
        stddev=math.sqrt(sum((x - mean) ** 2 for x in loads) / len(loads)),
        spread=max(loads) - min(loads),
        outside=sum(1 for h, x in zip(balanced, loads, strict=True) if h.dev(x) > EPS),
        draining=draining,
        levels=dict(cloud.levels),
    )


def evenness(
    hosts: Sequence[HostState], instances: Iterable[Instance], tolerance: float = DEFAULT_TOLERANCE
) -> Evenness:
    """Evenness of the balanced hosts as they are (``HostState.used_*`` is the committed load)."""
    return _evenness(_Cloud(hosts, instances, tolerance))


def _fewest(sizes: Sequence[int], need: float) -> int | None:
    """Fewest of ``sizes`` (sorted largest first) whose sum reaches ``need`` (None: not even all)."""
    if need <= EPS:
        return 0
    total = 0
    for count, size in enumerate(sizes, 1):
        total += size
        if total >= need - EPS:
            return count
    return None


def _removals(cloud: _Cloud, host: _Host) -> int:
    """Fewest of the host's own movable instances to remove to get under the window."""
    own = [cloud.insts[j] for _s, _n, j in host.items]
    if host.role == DRAIN:
        return len(own)
    upper = host.hi
    counts = []
    for used, limit, sizes in (
        (host.uv, host.vlim, sorted((i.vcpus for i in own), reverse=True)),
        (host.ur, host.rlim, sorted((i.ram_mb for i in own), reverse=True)),
    ):
        needed = _fewest(sizes, used - upper * limit)
        counts.append(len(own) if needed is None else needed)
    return max(counts)


def _additions(cloud: _Cloud, host: _Host, prefix: tuple[list[int], list[int]]) -> int:
    """Fewest of the cloud's largest instances to add to get into the window (either resource)."""
    lower = host.lo
    counts = []
    for used, limit, sums in ((host.uv, host.vlim, prefix[0]), (host.ur, host.rlim, prefix[1])):
        need = lower * limit - used
        if need <= EPS:
            return 0
        pos = bisect.bisect_left(sums, need - EPS)
        counts.append(pos + 1 if pos < len(sums) else len(sums))
    return min(counts)


def _lower_bound(cloud: _Cloud) -> int:
    """``max(R, A)`` (see the module docstring)."""
    removals = sum(_removals(cloud, h) for h in cloud.hosts if h.role == DRAIN)
    removals += sum(_removals(cloud, h) for h in cloud.balanced() if h.load() > h.hi + EPS)
    movable = [i for i in cloud.insts if i.movable]
    prefix = (
        list(accumulate(sorted((i.vcpus for i in movable), reverse=True))),
        list(accumulate(sorted((i.ram_mb for i in movable), reverse=True))),
    )
    additions = sum(_additions(cloud, h, prefix) for h in cloud.balanced() if h.load() < h.lo - EPS)
    return max(removals, additions)


def lower_bound(
    hosts: Sequence[HostState], instances: Iterable[Instance], tolerance: float = DEFAULT_TOLERANCE
) -> int:
    """The fewest moves any plan needs to drain the hosts in maintenance and make the cloud even."""
    return _lower_bound(_Cloud(hosts, instances, tolerance))


# ------------------------------------------------------------------------------------------------
# Planner
# ------------------------------------------------------------------------------------------------
Entry = tuple[float, str, int, int]  # (key, name, version, host index)


def _distinct(insts: Sequence[Instance], order: Iterable[int], limit: int) -> list[int]:
    """The first ``limit`` instances of ``order`` that differ in shape (size, group, family).

    Two instances of one shape on one host are interchangeable for a target: trying the second
    after the first failed is wasted work.
    """
    seen: set[tuple[int, int, str | None, frozenset[str]]] = set()
    out: list[int] = []
    for j in order:
        inst = insts[j]
        shape = (inst.vcpus, inst.ram_mb, inst.anti_affinity_group, inst.hypervisors)
        if shape in seen:
            continue
        seen.add(shape)
        out.append(j)
        if len(out) >= limit:
            break
    return out


class _BudgetSpent(Exception):
    """A useful move was found after ``max_moves`` moves: the plan stops there."""


class _Planner:
    """The greedy of the module docstring over one working cloud."""

    def __init__(self, cloud: _Cloud, max_moves: int | None) -> None:
        self.cloud = cloud
        self.budget = math.inf if max_moves is None else max_moves
        self.cut = False
        self.moves: list[Move] = []
        self.unplaced: list[tuple[str, str]] = []
        self.targets: dict[str, list[Entry]] = {}  # least loaded first, one heap per hypervisor type
        for h in cloud.balanced():
            self.targets.setdefault(h.hypervisor, []).append((h.load(), h.name, h.version, h.idx))
        for heap in self.targets.values():
            heapq.heapify(heap)
        self.loaded: dict[str, list[Entry]] = {}  # most loaded first per pool (fill sources)
        for h in cloud.balanced():
            self.loaded.setdefault(h.pool, []).append((-h.load(), h.name, h.version, h.idx))
        for heap in self.loaded.values():
            heapq.heapify(heap)
        self.over: list[Entry] = []  # hosts above the window, most loaded first
        self.under: list[Entry] = []  # hosts below the window, least loaded first

    # ------------------------------------------------------------ bookkeeping
    def _live(self, entry: Entry) -> bool:
        return self.cloud.hosts[entry[3]].version == entry[2]

    def _push(self, host: _Host) -> None:
        """Queue a host again after its load changed."""
        load = host.load()
        entry = (load, host.name, host.version, host.idx)
        heapq.heappush(self.targets[host.hypervisor], entry)
        heapq.heappush(self.loaded[host.pool], (-load, host.name, host.version, host.idx))
        if load > host.hi + EPS:
            heapq.heappush(self.over, (-load, host.name, host.version, host.idx))
        elif load < host.lo - EPS:
            heapq.heappush(self.under, entry)

    def _do(self, j: int, target: _Host, reason: str) -> None:
        """Record the move (or stop the plan when the budget is spent)."""
        if self.budget <= 0:
            self.cut = True
            raise _BudgetSpent
        source = self.cloud.hosts[self.cloud.where[j]]
        self.moves.append(Move(self.cloud.insts[j].name, source.name, target.name, reason))
        self.cloud.move(j, target)
        self.budget -= 1
        for host in (source, target):
            if host.role == BALANCE:
                self._push(host)

    def _seed_queues(self) -> None:
        """Fill the over/under queues from the current loads."""
        self.over, self.under = [], []
        for h in self.cloud.balanced():
            load = h.load()
            if load > h.hi + EPS:
                self.over.append((-load, h.name, h.version, h.idx))
            elif load < h.lo - EPS:
                self.under.append((load, h.name, h.version, h.idx))
        heapq.heapify(self.over)
        heapq.heapify(self.under)

    # ------------------------------------------------------------ target search
    def _target(
        self,
        inst: Instance,
        source: _Host,
        ceiling: float,
        ok: Callable[[_Host], bool],
        *,
        best: bool = False,
        scan: int = _SCAN,
    ) -> _Host | None:
        """A host that can take ``inst`` and passes ``ok``, examined least loaded first (then by name).

        The first such host, or with ``best`` the one of lowest load after the move among the hosts
        examined.  Hosts whose current load is at or above ``ceiling`` are not examined (the result
        could only be worse); at most ``scan`` hosts are.
        """
        heaps = [
            heap for kind, heap in self.targets.items() if not inst.hypervisors or kind in inst.hypervisors
        ]
        popped: list[tuple[list[Entry], Entry]] = []
        found, found_load = None, math.inf
        while len(popped) < scan:
            live = [h for h in heaps if h]
            if not live:
                break
            heap = min(live, key=lambda h: h[0]) if len(live) > 1 else live[0]
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            popped.append((heap, entry))
            if entry[0] >= min(ceiling, found_load) - EPS:
                break
            host = self.cloud.hosts[entry[3]]
            if host is not source and host.fits(inst) and ok(host):
                after = host.load(inst.vcpus, inst.ram_mb)
                if after < found_load - EPS:
                    found, found_load = host, after
                if not best:
                    break
        for heap, entry in popped:
            heapq.heappush(heap, entry)
        return found

    def _improves(self, source: _Host, target: _Host, inst: Instance) -> bool:
        """The move lowers the larger deviation of the two hosts."""
        before = max(source.dev(source.load()), target.dev(target.load()))
        after = max(
            source.dev(source.load(-inst.vcpus, -inst.ram_mb)),
            target.dev(target.load(inst.vcpus, inst.ram_mb)),
        )
        return after < before - EPS

    def _stays_even(self, target: _Host, inst: Instance) -> bool:
        return target.load(inst.vcpus, inst.ram_mb) <= target.hi + EPS

    # ------------------------------------------------------------ phases
    def drain(self) -> None:
        """Move every movable instance off the hosts in maintenance, largest first."""
        for host in self.cloud.hosts:
            if host.role != DRAIN:
                continue
            order = sorted(
                host.items,
                key=lambda e: (-self.cloud.insts[e[2]].ram_mb, -self.cloud.insts[e[2]].vcpus, e[1]),
            )
            for _s, name, j in order:
                inst = self.cloud.insts[j]
                target = self._target(inst, host, host.hi, lambda t, i=inst: self._stays_even(t, i))
                everywhere = len(self.cloud.hosts)
                target = target or self._target(
                    inst, host, math.inf, lambda _t: True, best=True, scan=everywhere
                )
                if target is None:
                    self.unplaced.append((name, f"no host can take it off {host.name} (maintenance)"))
                    continue
                self._do(j, target, "drain")
        for inst in self.cloud.insts:
            if not inst.movable and self.cloud.by_name[inst.host].role == DRAIN:
                self.unplaced.append((inst.name, f"not movable, stays on {inst.host} (maintenance)"))

    def _candidates(self, host: _Host) -> list[int]:
        """Instances to try moving off ``host``, best first: the largest ones whose removal keeps it
        inside the window, then the ones that would take it below the window, least overshoot first."""
        items = host.items
        room = host.load() - host.lo  # removing a share <= room never overshoots
        start = bisect.bisect_left(items, (-room - EPS,))
        while start > 0:
            inst = self.cloud.insts[items[start - 1][2]]
            if host.load(-inst.vcpus, -inst.ram_mb) < host.lo - EPS:
                break
            start -= 1
        keep = _distinct(self.cloud.insts, (j for _s, _n, j in items[start:]), _CANDIDATES)
        over = _distinct(self.cloud.insts, (j for _s, _n, j in reversed(items[:start])), _CANDIDATES)
        return keep + over

    def _shed_one(self, source: _Host) -> bool:
        """One move off an overloaded host; False when no move helps.

        First a target that stays inside its window (the first, least loaded); failing that, the
        target of lowest resulting load among the moves that lower the pair's larger deviation.
        """
        candidates = self._candidates(source)
        for strict in (True, False):
            ceiling = source.hi if strict else source.load()
            for j in candidates:
                inst = self.cloud.insts[j]

                def ok(t: _Host, i: Instance = inst, strict: bool = strict) -> bool:
                    return (not strict or self._stays_even(t, i)) and self._improves(source, t, i)

                target = self._target(inst, source, ceiling, ok, best=not strict)
                if target is not None:
                    self._do(j, target, "balance")
                    return True
        return False

    def _work_off(
        self, queue: list[Entry], settled: Callable[[_Host], bool], step: Callable[[_Host], bool]
    ) -> int:
        """Pop the hosts of ``queue`` (a heap) and make one ``step`` on each one that is still in it
        and not ``settled`` by earlier moves; returns the moves made."""
        made = 0
        while queue:
            entry = heapq.heappop(queue)
            host = self.cloud.hosts[entry[3]]
            if not self._live(entry) or settled(host):
                continue
            if step(host):
                made += 1
        return made

    def shed(self) -> int:
        """Relieve the hosts above the window, the most loaded first; returns the moves made."""
        return self._work_off(self.over, lambda h: h.load() <= h.hi + EPS, self._shed_one)

    def _fill_one(self, target: _Host) -> bool:
        """One move into an underloaded host from the most loaded hosts; False when none helps."""
        popped: list[Entry] = []
        chosen: tuple[int, bool] | None = None  # (instance, strict)
        loaded = self.loaded[target.pool]
        while loaded and len(popped) < _CANDIDATES:
            entry = heapq.heappop(loaded)
            if not self._live(entry):
                continue
            popped.append(entry)
            source = self.cloud.hosts[entry[3]]
            if -entry[0] <= target.load() + EPS:
                break
            if source is target:
                continue
            chosen = self._pick_from(source, target)
            if chosen is not None and chosen[1]:
                break
        for entry in popped:
            heapq.heappush(loaded, entry)
        if chosen is None:
            return False
        self._do(chosen[0], target, "balance")
        return True

    def _pick_from(self, source: _Host, target: _Host) -> tuple[int, bool] | None:
        """Largest instance of ``source`` that may go to ``target`` (strict: both end in the window)."""
        fallback = None
        for j in _distinct(self.cloud.insts, (j for _s, _n, j in source.items), len(source.items)):
            inst = self.cloud.insts[j]
            if not target.fits(inst) or not self._improves(source, target, inst):
                continue
            strict = (
                self._stays_even(target, inst) and source.load(-inst.vcpus, -inst.ram_mb) >= source.lo - EPS
            )
            if strict:
                return j, True
            if fallback is None:
                fallback = (j, False)
        return fallback

    def fill(self) -> int:
        """Bring the hosts below the window up, the least loaded first; returns the moves made."""
        return self._work_off(self.under, lambda h: h.load() >= h.lo - EPS, self._fill_one)

    def run(self) -> None:
        """Drain, then shed and fill until a round makes no move."""
        self.drain()
        for _round in range(_ROUNDS):
            self._seed_queues()
            if not self.shed() + self.fill():
                break


def apply_moves(
    hosts: Sequence[HostState], instances: Iterable[Instance], moves: Iterable[Move]
) -> tuple[list[HostState], list[Instance]]:
    """Hosts and instances after ``moves`` (used, instance counts and groups follow the instances)."""
    by_name = {i.name: i for i in instances}
    delta: dict[str, list[int]] = {}
    for move in moves:
        inst = by_name[move.instance]
        by_name[move.instance] = dataclasses.replace(inst, host=move.target)
        for host, sign in ((move.source, -1), (move.target, 1)):
            d = delta.setdefault(host, [0, 0, 0])
            d[0] += sign * inst.vcpus
            d[1] += sign * inst.ram_mb
            d[2] += sign
    groups: dict[str, set[str]] = {}
    for inst in by_name.values():
        if inst.anti_affinity_group:
            groups.setdefault(inst.host, set()).add(inst.anti_affinity_group)
    out = []
    for h in hosts:
        dv, dr, dn = delta.get(h.name, (0, 0, 0))
        out.append(
            dataclasses.replace(
                h,
                used_vcpus=h.used_vcpus + dv,
                used_ram_mb=h.used_ram_mb + dr,
                instances=h.instances + dn,
                groups=frozenset(groups.get(h.name, ())) if h.name in delta else h.groups,
            )
        )
    return out, sorted(by_name.values(), key=lambda i: i.name)


def plan(
    hosts: Sequence[HostState],
    instances: Iterable[Instance],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_moves: int | None = None,
) -> Plan:
    """The moves that drain the hosts in maintenance and even out the cloud (see the module docstring).

    ``max_moves`` (None: no cap) stops the plan early; ``Plan.complete`` is then False when
    another useful move was left out.
    """
    cloud = _Cloud(hosts, instances, tolerance)
    before = _evenness(cloud)
    bound = _lower_bound(cloud)
    planner = _Planner(cloud, max_moves)
    with contextlib.suppress(_BudgetSpent):
        planner.run()
    return Plan(
        moves=tuple(planner.moves),
        lower_bound=bound,
        before=before,
        after=_evenness(cloud),
        unplaced=tuple(planner.unplaced),
        complete=not planner.cut,
    )
