# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dedicated resources of heavy-workload offerings: pinned pCPUs, hugepages, PCI devices, NIC queues.

Placement counts them as *resources* besides the shared vCPU and RAM pools:

* ``pcpu``: a host's dedicated set (``hosts.dedicated_cpus``, a cpuset such as ``4-15``) is taken
  out of its shared vCPU pool; a pinned instance takes one whole pCPU of it per vCPU
  (``pinned_cpus`` rows, ``UNIQUE (host_id, cpu)``: never two instances on one pCPU).
* ``hugepages:SIZE``: a host's hugepage pool (``hosts.hugepages``, pages per size) is taken out
  of its shared RAM; a hugepage-backed instance takes ``ceil(RAM / SIZE)`` pages of its size.
* ``pci:CLASS``: a host's registered PCI devices (``pci_devices`` rows); an instance holds whole
  devices (``pci_devices.instance_id``).  A device is free only while no other instance holds a
  device of the same IOMMU group (a group is handed to one guest as a whole).

Everything that writes (``release``, ``assign``) runs inside placement's write transaction,
after the host rows are locked, so two runs can never take the same pCPU or device.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import InvalidInput, NoCapacity
from .store import Store

HUGEPAGE_SIZES_KIB: dict[str, int] = {"2M": 2048, "1G": 1024 * 1024}
AUTO_QUEUE_CAP = 8  # nic_queues 0 (auto): one queue pair per vCPU, at most this many
MAX_NIC_QUEUES = 256  # virtio-net's limit
MAX_CPU = 4095
MAX_DEVICES_PER_CLASS = 16
_CLASS = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")
_VENDOR_DEVICE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


# ------------------------------------------------------------------------------------------------
# Values (pure)
# ------------------------------------------------------------------------------------------------
def parse_cpuset(text: str, key: str = "dedicated_cpus") -> frozenset[int]:
    """The pCPUs of a cpuset such as ``4-7,12`` (empty text: none); InvalidInput naming ``key``."""
    cpus: set[int] = set()
    for part in (p.strip() for p in str(text or "").split(",")):
        if not part:
            continue
        m = _RANGE.match(part)
        first, last = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (-1, -1)
        if not m or first > last or last > MAX_CPU:
            raise InvalidInput(
                f"{key}={text!r} is not a cpuset ({part!r}).",
                f"Give CPU numbers and ranges 0..{MAX_CPU} separated by commas, for example 4-15,20-31.",
                key=key,
                value=text,
            )
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_cpuset(cpus: Iterable[int]) -> str:
    """Canonical cpuset text: sorted ranges, ``4-7,12`` (empty for none)."""
    out: list[str] = []
    run: list[int] = []
    for cpu in sorted(set(cpus)):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [cpu]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def pages_for(ram_mb: int, size: str) -> int:
    """Hugepages of ``size`` that back ``ram_mb`` MiB of guest RAM."""
    return math.ceil(int(ram_mb) * 1024 / HUGEPAGE_SIZES_KIB[size])


def pool_mb(pool: Mapping[str, int]) -> int:
    """MiB held by a hugepage pool (pages per size); that RAM is not in the shared pool."""
    return sum(int(n) * HUGEPAGE_SIZES_KIB[size] // 1024 for size, n in pool.items())


def effective_queues(nic_queues: int, vcpus: int) -> int:
    """Queue pairs per virtio NIC: ``0`` means one per vCPU, at most ``AUTO_QUEUE_CAP``."""
    if int(nic_queues) == 0:
        return max(1, min(int(vcpus), AUTO_QUEUE_CAP))
    return int(nic_queues)


def needs(
    vcpus: int, ram_mb: int, cpu_pinning: bool, hugepages: str, pci: Sequence[tuple[str, int]]
) -> tuple[tuple[str, int], ...]:
    """The dedicated resources an instance takes, as ``(key, amount)``; empty for a plain one."""
    out: list[tuple[str, int]] = []
    if cpu_pinning:
        out.append(("pcpu", int(vcpus)))
    if hugepages:
        out.append((f"hugepages:{hugepages}", pages_for(ram_mb, hugepages)))
    out.extend((f"pci:{cls}", int(count)) for cls, count in sorted(pci))
    return tuple(out)


def resource_text(key: str) -> str:
    """What a missing resource is called in a no-capacity message."""
    kind, _sep, what = key.partition(":")
    if kind == "pcpu":
        return "not enough free dedicated pCPUs"
    if kind == "hugepages":
        return f"not enough free {what} hugepages"
    return f"no free {what} PCI device"


def describe_needs(resources: Sequence[tuple[str, int]]) -> str:
    """``4 pinned pCPUs, 4096 x 2M hugepages, 1 x gpu-a100`` for messages."""
    parts = []
    for key, amount in resources:
        kind, _sep, what = key.partition(":")
        if kind == "pcpu":
            parts.append(f"{amount} pinned pCPUs")
        elif kind == "hugepages":
            parts.append(f"{amount} x {what} hugepages")
        else:
            parts.append(f"{amount} x {what}")
    return ", ".join(parts)


def pci_request(value: Any, key: str = "pci_devices") -> list[dict[str, Any]]:
    """An offering's ``pci_devices`` as a canonical list ``[{class, count}]`` sorted by class."""
    out: dict[str, int] = {}
    for i, item in enumerate(value or []):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where} must be a dict with class and count.", "Give class and count.")
        cls = str(item.get("class") or "")
        if not _CLASS.match(cls):
            raise InvalidInput(
                f"{where}.class={cls!r} is not a device class name.",
                "Use 1-63 lower-case letters, digits and hyphens, for example gpu-a100.",
                key=f"{where}.class",
                value=cls,
            )
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DEVICES_PER_CLASS:
            raise InvalidInput(
                f"{where}.count={count!r} is out of range.",
                f"Give a whole number of devices 1..{MAX_DEVICES_PER_CLASS}.",
                key=f"{where}.count",
                value=count,
            )
        if cls in out:
            raise InvalidInput(f"{where}.class={cls} is listed twice.", "Give each class once.")
        out[cls] = count
    return [{"class": c, "count": out[c]} for c in sorted(out)]


def pci_pairs(value: Sequence[Mapping[str, Any]] | str) -> tuple[tuple[str, int], ...]:
    """``[{class, count}]`` (or its JSON text, as a raw query returns it) as ``((class, count), ...)``."""
    items = json.loads(value) if isinstance(value, str) else value
    return tuple((str(d["class"]), int(d["count"])) for d in items or ())


def host_devices(value: Any, key: str = "pci_devices") -> list[dict[str, Any]]:
    """A host's ``pci_devices`` (address, class, vendor_device, iommu_group) checked and canonical."""
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(value or []):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where} must be a dict.", "Give address, class, vendor_device, iommu_group.")
        address = str(item.get("address") or "").lower()
        if len(address) == 7:  # 01:00.0 means domain 0000
            address = "0000:" + address
        checks = (
            ("address", address, _ADDRESS, "a PCI address such as 0000:3b:00.0"),
            ("class", str(item.get("class") or ""), _CLASS, "1-63 lower-case letters, digits, hyphens"),
            ("vendor_device", str(item.get("vendor_device") or "").lower(), _VENDOR_DEVICE, "like 10de:20b5"),
        )
        for name, text, pattern, what in checks:
            if not pattern.match(text):
                raise InvalidInput(
                    f"{where}.{name}={item.get(name)!r} is not valid.",
                    f"Give {what} (the kvm_host role's fact kvm_host_pci_devices lists them).",
                    key=f"{where}.{name}",
                    value=item.get(name),
                )
        group = item.get("iommu_group")
        if group is not None and (isinstance(group, bool) or not isinstance(group, int) or group < 0):
            raise InvalidInput(
                f"{where}.iommu_group={group!r} is not a group number.",
                "Give the number of /sys/bus/pci/devices/ADDRESS/iommu_group, or omit it.",
                key=f"{where}.iommu_group",
                value=group,
            )
        if address in out:
            raise InvalidInput(f"{where}.address={address} is listed twice.", "Give each device once.")
        out[address] = {
            "address": address,
            "class": str(item["class"]),
            "vendor_device": str(item["vendor_device"]).lower(),
            "iommu_group": group,
        }
    return [out[a] for a in sorted(out)]


def host_hugepages(value: Any, key: str = "hugepages") -> dict[str, int]:
    """A host's hugepage pool ``{size: pages}`` checked (sizes 2M and 1G; zero counts dropped)."""
    out: dict[str, int] = {}
    for size, raw in sorted((value or {}).items()):
        count = int(raw) if isinstance(raw, str) and raw.strip().isdigit() else raw  # "64" from a file
        if size not in HUGEPAGE_SIZES_KIB:
            raise InvalidInput(
                f"{key}.{size} is not a hugepage size.",
                f"Use {' or '.join(HUGEPAGE_SIZES_KIB)}.",
                key=f"{key}.{size}",
                value=size,
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1 << 24:
            raise InvalidInput(
                f"{key}.{size}={count!r} is out of range.",
                "Give the number of pages reserved on the host (0..16777216).",
                key=f"{key}.{size}",
                value=count,
            )
        if count:
            out[size] = count
    return out


# ------------------------------------------------------------------------------------------------
# Usage in the store
# ------------------------------------------------------------------------------------------------
def _busy_groups(devices: list[dict[str, Any]], ignore: int | None) -> set[tuple[int, int]]:
    """(host, IOMMU group) pairs in which another instance holds a device."""
    return {
        (d["host_id"], d["iommu_group"])
        for d in devices
        if d["instance_id"] is not None and d["instance_id"] != ignore and d["iommu_group"] is not None
    }


def device_free(d: dict[str, Any], busy: set[tuple[int, int]], ignore: int | None) -> bool:
    """A device no other instance holds, in an IOMMU group no other instance uses."""
    if d["instance_id"] is not None and d["instance_id"] != ignore:
        return False
    return d["iommu_group"] is None or (d["host_id"], d["iommu_group"]) not in busy


def free_by_host(
    store: Store, hosts: Sequence[dict[str, Any]], ignore: int | None
) -> dict[int, dict[str, Any]]:
    """Per host id: dedicated pCPU count, hugepage pool MiB and free amount of every resource key.

    ``ignore`` leaves one instance's holdings out (resize, evacuation, a move).
    """
    extra, params = ("", []) if ignore is None else (" WHERE instance_id <> ?", [ignore])
    pinned: dict[int, set[int]] = {}
    for r in store.query("SELECT host_id, cpu FROM pinned_cpus" + extra, params):
        pinned.setdefault(r["host_id"], set()).add(int(r["cpu"]))
    pages: dict[tuple[int, str], int] = {}
    iextra = "" if ignore is None else " AND id <> ?"
    for r in store.query(
        "SELECT host_id, hugepages, ram_mb FROM instances WHERE host_id IS NOT NULL AND hugepages <> ''"
        + iextra,
        params,
    ):
        k = (r["host_id"], r["hugepages"])
        pages[k] = pages.get(k, 0) + pages_for(int(r["ram_mb"]), r["hugepages"])
    devices = store.query("SELECT host_id, device_class, iommu_group, instance_id FROM pci_devices")
    busy = _busy_groups(devices, ignore)
    free_devices: dict[int, dict[str, int]] = {}
    for d in devices:
        per = free_devices.setdefault(d["host_id"], {})
        per[d["device_class"]] = per.get(d["device_class"], 0) + int(device_free(d, busy, ignore))
    out: dict[int, dict[str, Any]] = {}
    for h in hosts:
        hid = int(h["id"])
        dedicated = parse_cpuset(h.get("dedicated_cpus") or "")
        pool = h.get("hugepages") or {}
        free = {"pcpu": len(dedicated - pinned.get(hid, set()))} if dedicated else {}
        for size, n in pool.items():
            free[f"hugepages:{size}"] = int(n) - pages.get((hid, size), 0)
        for cls, n in free_devices.get(hid, {}).items():
            free[f"pci:{cls}"] = n
        out[hid] = {
            "dedicated": len(dedicated),
            "hugepage_mb": pool_mb(pool),
            "free": tuple(sorted(free.items())),
        }
    return out


# ------------------------------------------------------------------------------------------------
# Assignment (inside placement's write transaction)
# ------------------------------------------------------------------------------------------------
def release(store: Store, instance_id: int) -> None:
    """Give back every pCPU and device ``instance_id`` holds."""
    store.execute("DELETE FROM pinned_cpus WHERE instance_id = ?", (instance_id,))
    store.execute(
        "UPDATE pci_devices SET instance_id = NULL, updated_at = ? WHERE instance_id = ?",
        (store.now(), instance_id),
    )


def _refuse(host: str, what: str) -> NoCapacity:
    return NoCapacity(
        f"Host {host} has no {what} left for this instance.",
        "Another run took it first, or the host's registration changed; run again to place elsewhere.",
    )


def assign(
    store: Store,
    instance_id: int,
    host: dict[str, Any],
    *,
    vcpus: int,
    cpu_pinning: bool,
    pci: Sequence[tuple[str, int]],
) -> None:
    """Pin ``vcpus`` dedicated pCPUs (lowest free first) and hand out the PCI devices asked for."""
    hid = int(host["id"])
    if cpu_pinning:
        taken = {int(r["cpu"]) for r in store.query("SELECT cpu FROM pinned_cpus WHERE host_id = ?", (hid,))}
        free = sorted(parse_cpuset(host.get("dedicated_cpus") or "") - taken)
        if len(free) < vcpus:
            raise _refuse(host["name"], f"{vcpus} free dedicated pCPUs")
        for vcpu, cpu in enumerate(free[:vcpus]):
            row = {"host_id": hid, "cpu": cpu, "vcpu": vcpu, "instance_id": instance_id}
            store.insert("pinned_cpus", row)
    if not pci:
        return
    devices = store.query(
        "SELECT id, host_id, address, device_class, iommu_group, instance_id FROM pci_devices"
        " WHERE host_id = ? ORDER BY address",
        (hid,),
    )
    for cls, count in pci:
        busy = _busy_groups(devices, instance_id)
        # prefer groups this instance already uses, then the lowest address
        candidates = [d for d in devices if d["device_class"] == cls and device_free(d, busy, instance_id)]
        mine = {d["iommu_group"] for d in devices if d["instance_id"] == instance_id}
        candidates.sort(key=lambda d: (d["iommu_group"] not in mine, d["address"]))
        chosen = [d for d in candidates if d["instance_id"] is None][:count]
        if len(chosen) < count:
            raise _refuse(host["name"], f"{count} free {cls} PCI devices")
        for d in chosen:
            if not store.execute(
                "UPDATE pci_devices SET instance_id = ?, updated_at = ? WHERE id = ? AND instance_id IS NULL",
                (instance_id, store.now(), d["id"]),
            ):
                raise _refuse(host["name"], f"free {cls} device {d['address']}")
            d["instance_id"] = instance_id


# ------------------------------------------------------------------------------------------------
# What a domain definition needs
# ------------------------------------------------------------------------------------------------
def pins_of(store: Store, instance_id: int | None) -> tuple[tuple[int, int], ...]:
    """``(vcpu, pcpu)`` pairs pinned for an instance, by vCPU."""
    if instance_id is None:
        return ()
    rows = store.query(
        "SELECT vcpu, cpu FROM pinned_cpus WHERE instance_id = ? ORDER BY vcpu", (instance_id,)
    )
    return tuple((int(r["vcpu"]), int(r["cpu"])) for r in rows)


def devices_of(store: Store, instance_id: int | None) -> tuple[str, ...]:
    """PCI addresses an instance holds, sorted."""
    if instance_id is None:
        return ()
    rows = store.query(
        "SELECT address FROM pci_devices WHERE instance_id = ? ORDER BY address", (instance_id,)
    )
    return tuple(r["address"] for r in rows)


def domain_extras(store: Store, inst: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``virt.DomainSpec`` for an instance's pins, hugepages and devices."""
    size = inst.get("hugepages") or ""
    return {
        "cpu_pins": pins_of(store, inst.get("id")),
        "hugepage_kib": HUGEPAGE_SIZES_KIB.get(size, 0),
        "hostdevs": devices_of(store, inst.get("id")),
    }
