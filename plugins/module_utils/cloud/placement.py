# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Placement: filter the hosts that can take an instance, weigh them, allocate atomically.

The pure part (``filter_hosts``, ``weigh``, ``select_host``, ``place_many``) works on immutable
``HostState`` values.  Capacity is what the store records as *committed*: the sum of vCPU/RAM of
every instance row that names the host, whatever its power state, so a stopped instance keeps its
slot.  Limits apply overcommit to the host's capacity minus its reservation::

    vcpu_limit = floor((vcpus - reserved_vcpus) * cpu_ratio)
    ram_limit  = floor((ram_mb - reserved_ram_mb) * ram_ratio)

Weights use normalisers computed from the whole host list (largest limits), never from the
filtered set, so a host's score only changes when its own allocations change.  That makes the
heap-based ``place_many`` give exactly the answers of repeated ``select_host`` calls.

``allocate`` reads the hosts and the committed usage and writes the allocation in ONE write
transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE`` on the host rows),
so two concurrent runs can never both take the last slot.

Heavy-workload offerings also take *dedicated resources* (``resources.py``): pinned pCPUs from a
host's dedicated set, hugepages from its pool, whole PCI devices by class.  The dedicated set and
the hugepage pool are taken out of the shared vCPU and RAM limits; a pinned instance commits no
shared vCPU, a hugepage-backed one no shared RAM.  The filter checks every resource a request
needs (``Request.resources``) against the host's free amounts (``HostState.free``) and names the
missing one; ``allocate`` assigns the exact pCPUs and devices in the same write transaction.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol

from . import resources as res
from .errors import NoCapacity
from .store import Store

REASONS = ("excluded", "not_up", "maintenance", "hypervisor", "anti_affinity", "vcpu", "ram")
_REASON_TEXT = {
    "excluded": "excluded",
    "not_up": "not up",
    "maintenance": "in maintenance",
    "hypervisor": "other hypervisor type",
    "anti_affinity": "anti-affinity group already there",
    "vcpu": "not enough vCPU",
    "ram": "not enough RAM",
}


@dataclass(frozen=True, slots=True)
class HostState:
    """A host's capacity and what is committed on it."""

    name: str
    state: str
    hypervisor: str
    vcpus: int
    ram_mb: int
    reserved_vcpus: int = 0
    reserved_ram_mb: int = 0
    cpu_ratio: float = 1.0
    ram_ratio: float = 1.0
    used_vcpus: int = 0
    used_ram_mb: int = 0
    instances: int = 0
    groups: frozenset[str] = frozenset()
    host_id: int | None = None
    maintenance: bool = False
    dedicated_cpus: int = 0
    hugepage_mb: int = 0
    free: tuple[tuple[str, int], ...] = ()

    @property
    def vcpu_limit(self) -> int:
        """Shared vCPUs that may be committed (overcommit applied; the dedicated set is not shared)."""
        shared = self.vcpus - self.reserved_vcpus - self.dedicated_cpus
        return max(0, math.floor(shared * self.cpu_ratio + 1e-9))

    @property
    def ram_limit_mb(self) -> int:
        """Shared RAM (MiB) that may be committed (overcommit applied; the hugepage pool is not shared)."""
        shared = self.ram_mb - self.reserved_ram_mb - self.hugepage_mb
        return max(0, math.floor(shared * self.ram_ratio + 1e-9))

    @property
    def free_resources(self) -> dict[str, int]:
        """Free amount of every dedicated resource (``pcpu``, ``hugepages:SIZE``, ``pci:CLASS``)."""
        return dict(self.free)

    @property
    def free_vcpus(self) -> int:
        """Uncommitted vCPUs."""
        return self.vcpu_limit - self.used_vcpus

    @property
    def free_ram_mb(self) -> int:
        """Uncommitted RAM in MiB."""
        return self.ram_limit_mb - self.used_ram_mb

    def with_allocation(self, request: Request) -> HostState:
        """This host after committing ``request``."""
        groups = self.groups | {request.anti_affinity_group} if request.anti_affinity_group else self.groups
        free = self.free
        if request.resources:
            left = dict(self.free)
            for key, amount in request.resources:
                left[key] = left.get(key, 0) - amount
            free = tuple(sorted(left.items()))
        return dataclasses.replace(
            self,
            used_vcpus=self.used_vcpus + request.shared_vcpus,
            used_ram_mb=self.used_ram_mb + request.shared_ram_mb,
            instances=self.instances + 1,
            groups=frozenset(groups),
            free=free,
        )


@dataclass(frozen=True, slots=True)
class Request:
    """What an instance needs.  Empty ``hypervisors`` accepts any; ``only`` pins the candidates.

    ``cpu_pinning`` (one dedicated pCPU per vCPU), ``hugepages`` (page size backing the RAM) and
    ``pci`` (``(class, count)`` pairs) are dedicated resources; ``nic_queues`` is only recorded.
    """

    vcpus: int
    ram_mb: int
    hypervisors: frozenset[str] = frozenset()
    anti_affinity_group: str | None = None
    exclude: frozenset[str] = frozenset()
    only: frozenset[str] = frozenset()
    cpu_pinning: bool = False
    hugepages: str = ""
    pci: tuple[tuple[str, int], ...] = ()
    nic_queues: int = 1
    resources: tuple[tuple[str, int], ...] = dataclasses.field(init=False, default=())

    def __post_init__(self) -> None:
        needs = res.needs(self.vcpus, self.ram_mb, self.cpu_pinning, self.hugepages, self.pci)
        object.__setattr__(self, "resources", needs)

    @property
    def shared_vcpus(self) -> int:
        """vCPUs committed from the shared (overcommitted) pool: none when pinned."""
        return 0 if self.cpu_pinning else self.vcpus

    @property
    def shared_ram_mb(self) -> int:
        """RAM committed from the shared pool: none when backed by hugepages."""
        return 0 if self.hugepages else self.ram_mb


def offering_needs(offering: dict[str, Any]) -> dict[str, Any]:
    """The dedicated-resource part of a ``Request`` for an offering row (defaults for old rows)."""
    return {
        "cpu_pinning": bool(offering.get("cpu_pinning")),
        "hugepages": offering.get("hugepages") or "",
        "pci": res.pci_pairs(offering.get("pci_devices") or []),
        "nic_queues": res.effective_queues(offering.get("nic_queues", 1), int(offering["vcpus"])),
    }


def instance_needs(inst: dict[str, Any]) -> dict[str, Any]:
    """The same for an instance row (what it was given when placed: evacuation and moves keep it)."""
    return {
        "cpu_pinning": bool(inst.get("cpu_pinning")),
        "hugepages": inst.get("hugepages") or "",
        "pci": res.pci_pairs(inst.get("pci_devices") or []),
        "nic_queues": int(inst.get("nic_queues") or 1),
    }


def allocation_columns(request: Request) -> dict[str, Any]:
    """Instance columns a placement writes besides the host (the committed allocation)."""
    return {
        "vcpus": request.vcpus,
        "ram_mb": request.ram_mb,
        "anti_affinity_group": request.anti_affinity_group,
        "nic_queues": request.nic_queues,
        "cpu_pinning": int(request.cpu_pinning),
        "hugepages": request.hugepages,
        "pci_devices": [{"class": c, "count": n} for c, n in request.pci],
    }


@dataclass(frozen=True, slots=True)
class Weights:
    """Multipliers of the normalised weighers; positive values spread instances out."""

    ram: float = 1.0
    vcpu: float = 0.5
    instances: float = 0.25


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True, slots=True)
class Normalisers:
    """Largest limits over the whole host list (never zero)."""

    ram_mb: float
    vcpus: float


class Capacity(Protocol):
    """What the filter and the weigher read: a HostState, or place_many's working copy."""

    @property
    def name(self) -> str:
        """Host name."""

    @property
    def state(self) -> str:
        """Host state (up, down, fenced)."""

    @property
    def hypervisor(self) -> str:
        """Hypervisor family."""

    @property
    def free_vcpus(self) -> int:
        """vCPUs left (overcommit applied)."""

    @property
    def free_ram_mb(self) -> int:
        """MiB of RAM left (overcommit applied)."""

    @property
    def instances(self) -> int:
        """Instances on the host."""

    @property
    def groups(self) -> Set[str]:
        """Anti-affinity groups present on the host."""

    @property
    def maintenance(self) -> bool:
        """True while the host takes no new instance."""

    @property
    def free_resources(self) -> dict[str, int]:
        """Free dedicated resources by kind (pCPUs, hugepages, PCI classes)."""


# ------------------------------------------------------------------------------------------------
# Pure filter and weigh
# ------------------------------------------------------------------------------------------------
def rejection(host: Capacity, request: Request) -> str | None:  # noqa: PLR0911 - one return per filter
    """Why ``host`` cannot take ``request`` (one of ``REASONS`` or a resource key), or None when it can."""
    if host.name in request.exclude or (request.only and host.name not in request.only):
        return "excluded"
    if host.state != "up":
        return "not_up"
    if host.maintenance:
        return "maintenance"
    if request.hypervisors and host.hypervisor not in request.hypervisors:
        return "hypervisor"
    if request.anti_affinity_group and request.anti_affinity_group in host.groups:
        return "anti_affinity"
    # a pinned or hugepage-backed request takes nothing from that shared pool (even an overfull one)
    if request.shared_vcpus and host.free_vcpus < request.shared_vcpus:
        return "vcpu"
    if request.shared_ram_mb and host.free_ram_mb < request.shared_ram_mb:
        return "ram"
    if request.resources:
        free = host.free_resources
        for key, amount in request.resources:
            if free.get(key, 0) < amount:
                return key  # pcpu, hugepages:SIZE or pci:CLASS: the message names it
    return None


def filter_hosts(
    hosts: Iterable[HostState], request: Request
) -> tuple[list[HostState], dict[str, list[str]]]:
    """Hosts that can take ``request`` and, per reason, the names of the ones that cannot."""
    passed: list[HostState] = []
    rejected: dict[str, list[str]] = {}
    for host in hosts:
        reason = rejection(host, request)
        if reason is None:
            passed.append(host)
        else:
            rejected.setdefault(reason, []).append(host.name)
    return passed, rejected


def normalisers(hosts: Sequence[HostState]) -> Normalisers:
    """Normalisers of a host list."""
    return Normalisers(
        ram_mb=float(max((h.ram_limit_mb for h in hosts), default=0) or 1),
        vcpus=float(max((h.vcpu_limit for h in hosts), default=0) or 1),
    )


def score(host: Capacity, weights: Weights, norm: Normalisers) -> float:
    """Higher is better: free RAM, free vCPU, fewer instances."""
    return (
        weights.ram * host.free_ram_mb / norm.ram_mb
        + weights.vcpu * host.free_vcpus / norm.vcpus
        - weights.instances * host.instances / norm.vcpus
    )


def _key(host: Capacity, weights: Weights, norm: Normalisers) -> tuple[float, str]:
    """Sort key, best first; ties go to the lower name so results are deterministic."""
    return (-score(host, weights, norm), host.name)


def weigh(hosts: Iterable[HostState], weights: Weights, norm: Normalisers) -> list[HostState]:
    """Hosts ordered best first."""
    return sorted(hosts, key=lambda h: _key(h, weights, norm))


def explain(request: Request, rejected: dict[str, list[str]]) -> str:
    """One line that says why no host fits, by reason, with a few host names each."""
    if not rejected:
        return "no hosts are registered in the store"
    parts = []
    order = [*REASONS, *sorted(set(rejected) - set(REASONS))]
    for reason in order:
        names = rejected.get(reason)
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
            text = _REASON_TEXT.get(reason) or res.resource_text(reason)
            parts.append(f"{len(names)} {text} [{shown}]")
    return (
        f"no host can take {request.vcpus} vCPU / {request.ram_mb} MiB"
        f"{' with ' + res.describe_needs(request.resources) if request.resources else ''}"
        f"{' in anti-affinity group ' + request.anti_affinity_group if request.anti_affinity_group else ''}"
        f": {'; '.join(parts)}"
    )


def select_host(
    hosts: Sequence[HostState], request: Request, weights: Weights = DEFAULT_WEIGHTS
) -> HostState:
    """The best host for ``request``; raises NoCapacity (with the reasons) when none fits."""
    passed, rejected = filter_hosts(hosts, request)
    if not passed:
        text = explain(request, rejected)
        raise NoCapacity(
            text[0].upper() + text[1:] + ".",
            "Register or bring up a host (compleat.cloud.hypervisor host_state=up, maintenance=false), "
            "raise its cpu_ratio/ram_ratio, free capacity, or choose a smaller offering"
            + (
                "; dedicated pCPUs, hugepages and PCI devices come from the hosts' registration "
                "(compleat.cloud.hypervisor dedicated_cpus, hugepages, pci_devices)."
                if request.resources
                else "."
            ),
            rejected=rejected,
        )
    norm = normalisers(hosts)
    return min(passed, key=lambda h: _key(h, weights, norm))


class _Slot:
    """Mutable working copy of a host for ``place_many``.

    It exposes the attributes ``rejection`` and ``score`` read (``free_vcpus``, ``free_ram_mb``,
    ``instances``, ``groups``...), so the batch path runs the very same filter and weigher as
    ``select_host`` without rebuilding a frozen HostState per placement.
    """

    __slots__ = (
        "free_ram_mb",
        "free_resources",
        "free_vcpus",
        "groups",
        "host",
        "hypervisor",
        "instances",
        "maintenance",
        "name",
        "state",
    )

    def __init__(self, host: HostState) -> None:
        self.host = host
        self.name, self.state, self.hypervisor = host.name, host.state, host.hypervisor
        self.maintenance = host.maintenance
        self.free_vcpus, self.free_ram_mb = host.free_vcpus, host.free_ram_mb
        self.instances, self.groups = host.instances, set(host.groups)
        self.free_resources = dict(host.free)

    def take(self, request: Request) -> None:
        """Commit ``request`` here."""
        self.free_vcpus -= request.shared_vcpus
        self.free_ram_mb -= request.shared_ram_mb
        for key, amount in request.resources:
            self.free_resources[key] = self.free_resources.get(key, 0) - amount
        self.instances += 1
        if request.anti_affinity_group:
            self.groups.add(request.anti_affinity_group)

    def freeze(self) -> HostState:
        """The final HostState."""
        h = self.host
        return dataclasses.replace(
            h,
            used_vcpus=h.vcpu_limit - self.free_vcpus,
            used_ram_mb=h.ram_limit_mb - self.free_ram_mb,
            instances=self.instances,
            groups=frozenset(self.groups),
            free=tuple(sorted(self.free_resources.items())),
        )


def place_many(
    hosts: Sequence[HostState], requests: Iterable[Request], weights: Weights = DEFAULT_WEIGHTS
) -> tuple[list[str | None], list[HostState]]:
    """Place requests one after another (same answers as repeated ``select_host``), fast.

    Returns the chosen host name per request (None when nothing fits) and the final host states.
    Hosts that are up sit in one heap per hypervisor type keyed on (-score, name); hosts that are
    not up or in maintenance can never be chosen and stay out.  A request pops the best top among
    the heaps of its hypervisor family until a host passes the filter, and pushes the skipped ones
    back.  A host's
    score depends only on its own allocations (static normalisers), so only the chosen host's key
    changes.
    """
    norm = normalisers(hosts)
    slots = [_Slot(h) for h in hosts]
    heaps: dict[str, list[tuple[float, str, int]]] = {}
    for i, slot in enumerate(slots):
        if slot.state == "up" and not slot.maintenance:
            heaps.setdefault(slot.hypervisor, []).append((*_key(slot, weights, norm), i))
    for heap in heaps.values():
        heapq.heapify(heap)
    out: list[str | None] = []
    for request in requests:
        allowed = [h for t, h in heaps.items() if not request.hypervisors or t in request.hypervisors]
        chosen = _pop_first_fit(allowed, slots, request)
        if chosen < 0:
            out.append(None)
            continue
        slot = slots[chosen]
        slot.take(request)
        heapq.heappush(heaps[slot.hypervisor], (*_key(slot, weights, norm), chosen))
        out.append(slot.name)
    return out, [s.freeze() for s in slots]


def _pop_first_fit(heaps: list[list[tuple[float, str, int]]], slots: list[_Slot], request: Request) -> int:
    """Pop the best host that passes the filter from ``heaps`` (-1 if none); others go back."""
    skipped: list[tuple[list[tuple[float, str, int]], tuple[float, str, int]]] = []
    chosen = -1
    while True:
        live = [h for h in heaps if h]
        if not live:
            break
        heap = min(live, key=lambda h: h[0]) if len(live) > 1 else live[0]
        entry = heapq.heappop(heap)
        if rejection(slots[entry[2]], request) is None:
            chosen = entry[2]
            break
        skipped.append((heap, entry))
    for heap, entry in skipped:
        heapq.heappush(heap, entry)
    return chosen


# ------------------------------------------------------------------------------------------------
# Store-backed
# ------------------------------------------------------------------------------------------------
def host_state(
    row: dict[str, Any],
    usage: dict[str, Any] | None,
    groups: Iterable[str],
    dedicated: dict[str, Any] | None = None,
) -> HostState:
    """A ``HostState`` from a ``hosts`` row, its usage aggregate, anti-affinity groups and
    dedicated resources (``resources.free_by_host``)."""
    usage = usage or {}
    dedicated = dedicated or {}
    return HostState(
        name=row["name"],
        state=row["state"],
        hypervisor=row["hypervisor"],
        vcpus=int(row["vcpus"]),
        ram_mb=int(row["ram_mb"]),
        reserved_vcpus=int(row["reserved_vcpus"]),
        reserved_ram_mb=int(row["reserved_ram_mb"]),
        cpu_ratio=float(row["cpu_ratio"]),
        ram_ratio=float(row["ram_ratio"]),
        used_vcpus=int(usage.get("vcpus") or 0),
        used_ram_mb=int(usage.get("ram_mb") or 0),
        instances=int(usage.get("n") or 0),
        groups=frozenset(groups),
        host_id=int(row["id"]),
        maintenance=bool(row.get("maintenance")),
        dedicated_cpus=int(dedicated.get("dedicated", 0)),
        hugepage_mb=int(dedicated.get("hugepage_mb", 0)),
        free=tuple(dedicated.get("free", ())),
    )


def load_hosts(store: Store, lock: bool = False, ignore_instance: int | None = None) -> list[HostState]:
    """Every host with its committed usage; ``lock`` locks the host rows (PostgreSQL).

    ``ignore_instance`` leaves one instance row out of the usage (resize, evacuation).
    """
    rows = store.select("hosts", order_by="name", lock=lock)
    extra, params = ("", []) if ignore_instance is None else (" AND id <> ?", [ignore_instance])
    usage = {
        r["host_id"]: r
        for r in store.query(
            "SELECT host_id, SUM(CASE WHEN cpu_pinning = 1 THEN 0 ELSE vcpus END) AS vcpus,"
            " SUM(CASE WHEN hugepages <> '' THEN 0 ELSE ram_mb END) AS ram_mb, COUNT(*) AS n FROM instances"
            " WHERE host_id IS NOT NULL" + extra + " GROUP BY host_id",
            params,
        )
    }
    groups: dict[int, set[str]] = {}
    for r in store.query(
        "SELECT DISTINCT host_id, anti_affinity_group AS g FROM instances WHERE host_id IS NOT NULL"
        " AND anti_affinity_group IS NOT NULL" + extra,
        params,
    ):
        groups.setdefault(r["host_id"], set()).add(r["g"])
    dedicated = res.free_by_host(store, rows, ignore_instance)
    return [host_state(r, usage.get(r["id"]), groups.get(r["id"], ()), dedicated.get(r["id"])) for r in rows]


def plan(
    store: Store, request: Request, ignore_instance: int | None = None, weights: Weights = DEFAULT_WEIGHTS
) -> HostState:
    """Where ``request`` would go now, without writing anything (check mode)."""
    with store.transaction():
        return select_host(load_hosts(store, ignore_instance=ignore_instance), request, weights)


def allocate(
    store: Store,
    request: Request,
    *,
    new_row: dict[str, Any] | None = None,
    instance_id: int | None = None,
    changes: dict[str, Any] | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> tuple[HostState, dict[str, Any]]:
    """Choose a host and write the allocation in one write transaction.

    Either insert ``new_row`` into ``instances`` or move/resize the existing ``instance_id``
    (``changes`` are written with it).  The instance's pinned pCPUs and PCI devices are released
    and assigned again on the chosen host in the same transaction.  Returns the chosen host and
    the stored instance row.
    """
    with store.transaction(write=True):
        hosts = load_hosts(store, lock=True, ignore_instance=instance_id)
        chosen = select_host(hosts, request, weights)
        alloc = {"host_id": chosen.host_id, **allocation_columns(request)}
        if instance_id is None:
            row = store.insert("instances", {**(new_row or {}), **alloc})
        else:
            res.release(store, instance_id)
            store.update("instances", instance_id, {**(changes or {}), **alloc})
            row = store.get("instances", id=instance_id) or {}
        if request.cpu_pinning or request.pci:
            host_row = store.get("hosts", id=chosen.host_id) or {}
            res.assign(
                store,
                int(row["id"]),
                host_row,
                vcpus=request.vcpus,
                cpu_pinning=request.cpu_pinning,
                pci=request.pci,
            )
    return chosen, row
