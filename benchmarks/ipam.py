# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of the IPAM: 100,000 allocations over 1,000 networks, time and memory.

1. The allocation rule (``ipam.Allocator``: lowest free address, gateway and a reserved range
   skipped, releases reused lowest first) for 100,000 allocations spread over 1,000 /22 tenant
   networks in a random order, with one release for every ten allocations; against a naive
   baseline in the same run that scans ``ipaddress`` host addresses for the first one not used and
   not reserved.  Both must hand out exactly the same addresses (checked); the ratio is printed.
   Memory: peak traced by ``tracemalloc`` during the run and the allocators' final size.
2. The store: the same kind of workload (10,000 steps by default; ``--store-allocations 100000``
   for the full count, about 4 minutes here) through ``ipam.allocate`` in a SQLite store, one
   write transaction each (``BEGIN IMMEDIATE``, lock the network row, read its used addresses,
   insert, commit with its fsync): the figure a module run pays per address.  Then the peak RSS.

    .venv/bin/python benchmarks/ipam.py [--networks 1000] [--allocations 100000] [--repeat 3]
        [--store-allocations 10000] [--tmp DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import ipam  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402


def network_specs(count: int) -> list[dict[str, Any]]:
    """/22 networks 10.x.y.0/22 with the gateway .1 and a reserved range .2-.9."""
    out = []
    for i in range(count):
        base = int(ipaddress.IPv4Address("10.0.0.0")) + i * 1024
        net = ipaddress.IPv4Network((base, 22))
        first = net.network_address
        out.append(
            {
                "name": f"net{i:04d}",
                "cidr": str(net),
                "gateway": str(first + 1),
                "reserved": [f"{first + 2}-{first + 9}"],
            }
        )
    return out


def workload(networks: int, allocations: int, seed: int = 7) -> list[tuple[str, int]]:
    """("alloc", network) and, every tenth step, ("release", network): a deterministic random mix."""
    rng = random.Random(seed)
    ops: list[tuple[str, int]] = []
    for i in range(allocations):
        ops.append(("alloc", rng.randrange(networks)))
        if i % 10 == 9:
            ops.append(("release", rng.randrange(networks)))
    return ops


class NaiveAllocator:
    """The baseline: walk the network's host addresses until one is neither used nor reserved."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.net = ipaddress.IPv4Network(spec["cidr"])
        lo, hi = spec["reserved"][0].split("-")
        self.reserved = {ipaddress.IPv4Address(spec["gateway"])} | {
            ipaddress.IPv4Address(a)
            for a in range(int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi)) + 1)
        }
        self.used: set[ipaddress.IPv4Address] = set()

    def allocate(self) -> int:
        for addr in self.net.hosts():
            if addr not in self.used and addr not in self.reserved:
                self.used.add(addr)
                return int(addr)
        raise RuntimeError("full")

    def release(self, address: int) -> None:
        self.used.discard(ipaddress.IPv4Address(address))


def run_rule(
    specs: list[dict[str, Any]], ops: list[tuple[str, int]], naive: bool, trace: bool = False
) -> tuple[float, list[int], int, Any]:
    """Run ``ops``; returns (seconds, addresses handed out, peak traced bytes, the allocators).

    Timed runs do not trace (tracemalloc slows every allocation); ``trace`` measures memory only.
    """
    allocators: list[Any] = [
        NaiveAllocator(s)
        if naive
        else ipam.Allocator(ipam.make_pool(s["name"], s["cidr"], s["gateway"], s["reserved"]))
        for s in specs
    ]
    held: list[list[int]] = [[] for _spec in specs]
    out: list[int] = []
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    for op, i in ops:
        if op == "alloc":
            address = allocators[i].allocate()
            held[i].append(address)
            out.append(address)
        elif held[i]:
            allocators[i].release(held[i].pop(len(held[i]) // 2))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return elapsed, out, peak, allocators


def deep_size(allocators: list[ipam.Allocator]) -> int:
    """Bytes of the allocators' state (lists of ints and the pools' tuples)."""
    total = 0
    for a in allocators:
        total += sys.getsizeof(a.used) + sum(sys.getsizeof(x) for x in a.used)
        total += sys.getsizeof(a.pool.blocked) + sum(sys.getsizeof(t) for t in a.pool.blocked)
    return total


def run_store(specs: list[dict[str, Any]], ops: list[tuple[str, int]], path: str) -> tuple[float, int]:
    """The same allocations (and releases) through the store, one write transaction each."""
    with Store.open(path) as store:
        with store.transaction(write=True):
            rows = [
                store.insert(
                    "networks",
                    {**s, "tenant": "bench", "kind": "tenant", "vni": i + 1, "mtu": 1450},
                )
                for i, s in enumerate(specs)
            ]
        done = 0
        started = time.perf_counter()
        for step, (op, i) in enumerate(ops):
            with store.transaction(write=True):
                if op == "alloc":
                    ipam.allocate(store, rows[i], instance_id=None, nic_index=step)  # type: ignore[arg-type]
                    done += 1
                else:
                    row = store.query_one(
                        "SELECT id FROM ip_allocations WHERE network_id = ? ORDER BY address DESC",
                        (rows[i]["id"],),
                    )
                    if row:
                        store.delete("ip_allocations", id=row["id"])
        elapsed = time.perf_counter() - started
        count = store.query_one("SELECT count(*) AS n FROM ip_allocations")
    return elapsed, int(count["n"]) if count else done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--allocations", type=int, default=100_000)
    parser.add_argument("--store-allocations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    specs = network_specs(args.networks)
    ops = workload(args.networks, args.allocations)
    results: dict[str, Any] = {
        "networks": args.networks,
        "allocations": args.allocations,
        "releases": sum(1 for op, _value in ops if op == "release"),
        "load": os.getloadavg()[0],
    }
    best: dict[str, float] = {}
    for _round in range(args.repeat):
        fast_s, fast_out, _peak, allocators = run_rule(specs, ops, naive=False)
        naive_s, naive_out, _peak, _naive = run_rule(specs, ops, naive=True)
        if fast_out != naive_out:
            print("MISMATCH: the allocator and the naive scan handed out different addresses")
            return 1
        best["fast"] = min(best.get("fast", fast_s), fast_s)
        best["naive"] = min(best.get("naive", naive_s), naive_s)
    fast_peak = run_rule(specs, ops, naive=False, trace=True)[2]
    naive_peak = run_rule(specs, ops, naive=True, trace=True)[2]
    results.update(fast_peak_mib=fast_peak / 2**20, naive_peak_mib=naive_peak / 2**20)
    results["state_mib"] = deep_size(allocators) / 2**20
    results.update(
        rule_s=best["fast"],
        naive_s=best["naive"],
        ratio=best["naive"] / best["fast"],
        per_allocation_us=best["fast"] / args.allocations * 1e6,
    )
    print(
        f"{args.allocations:,} allocations (+{results['releases']:,} releases) over {args.networks:,} "
        f"networks, best of {args.repeat}: allocator {best['fast']:.3f} s "
        f"({results['per_allocation_us']:.1f} us each), naive scan {best['naive']:.3f} s: "
        f"{results['ratio']:.1f}x; same addresses"
    )
    print(
        f"memory: peak traced {results['fast_peak_mib']:.1f} MiB (naive "
        f"{results['naive_peak_mib']:.1f} MiB), allocator state {results['state_mib']:.1f} MiB"
    )
    if args.store_allocations:
        store_ops = workload(args.networks, args.store_allocations)
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            store_s, held = run_store(specs, store_ops, os.path.join(tmp, "ipam.db"))
        results.update(
            store_s=store_s,
            store_allocations=args.store_allocations,
            store_per_allocation_ms=store_s / len(store_ops) * 1e3,
            store_held=held,
        )
        print(
            f"store (SQLite, one write transaction per step): {args.store_allocations:,} allocations in "
            f"{store_s:.1f} s ({results['store_per_allocation_ms']:.2f} ms per step), "
            f"{held:,} held at the end"
        )
    results["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of the run: {results['max_rss_mib']:.0f} MiB; load average at start {results['load']:.1f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
