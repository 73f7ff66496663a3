# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of the rebalancing planner: the cloud grows from 100 to 400 hosts.

10,000 instances (a mix of offerings, a tenth in one of 500 anti-affinity groups, a tenth on Xen)
are packed onto 100 hosts with ``place_many``; then 300 empty hosts of a newer generation are
added (a tenth of every rack Xen, as before) and ``rebalance.plan`` computes the cold moves that
even the cloud out.  Reported: the planning time (best of ``--repeat``), the moves against the
lower bound, and the evenness (load = max of the vCPU and RAM fractions) before and after.
Targets: <= 1 s and moves <= 1.1 x the lower bound.  The plan is also checked: capacity and
anti-affinity hold after every move (replayed independently), and hosts end inside the window.

    .venv/bin/python benchmarks/rebalance.py [--old 100] [--new 300] [--instances 10000]
        [--tolerance 0.05] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from cloud_workload import make_requests, replay  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import rebalance as rb  # noqa: E402

TARGET_SECONDS = 1.0
TARGET_RATIO = 1.1


def host(name: str, hypervisor: str, vcpus: int, ram_gib: int, host_id: int) -> pl.HostState:
    """A host with the usual reservation (2 vCPU, 8 GiB) and 4x CPU overcommit."""
    return pl.HostState(
        name=name,
        state="up",
        hypervisor=hypervisor,
        vcpus=vcpus,
        ram_mb=ram_gib * 1024,
        reserved_vcpus=2,
        reserved_ram_mb=8192,
        cpu_ratio=4.0,
        ram_ratio=1.0,
        host_id=host_id,
    )


def make_old(count: int) -> list[pl.HostState]:
    """The first racks: 128 threads / 1 TiB each (a tenth Xen)."""
    return [host(f"a{i:03d}", "xen" if i % 10 == 9 else "kvm", 128, 1024, i + 1) for i in range(count)]


def make_new(count: int, first_id: int) -> list[pl.HostState]:
    """The new racks: alternately 128 threads / 1 TiB and 192 threads / 1.5 TiB (a tenth Xen)."""
    return [
        host(
            f"b{i:03d}",
            "xen" if i % 10 == 9 else "kvm",
            128 if i % 2 == 0 else 192,
            1024 if i % 2 == 0 else 1536,
            first_id + i,
        )
        for i in range(count)
    ]


def packed_cloud(
    old: int, new: int, count: int, rng: random.Random
) -> tuple[list[pl.HostState], list[rb.Instance], int]:
    """Place ``count`` instances on the old hosts, then add the new ones; returns the unplaced count."""
    requests = make_requests(count, rng)
    placed, states = pl.place_many(make_old(old), requests)
    instances = [
        rb.Instance(
            name=f"vm{n:05d}",
            host=where,
            vcpus=req.vcpus,
            ram_mb=req.ram_mb,
            anti_affinity_group=req.anti_affinity_group,
            hypervisors=req.hypervisors,
        )
        for n, (req, where) in enumerate(zip(requests, placed, strict=True))
        if where is not None
    ]
    return states + make_new(new, old + 1), instances, placed.count(None)


def bench(
    hosts: list[pl.HostState], instances: list[rb.Instance], tolerance: float, repeat: int
) -> dict[str, Any]:
    """Time the plan (best of ``repeat``) and check it."""
    best = float("inf")
    result = None
    for _attempt in range(repeat):
        start = time.perf_counter()
        result = rb.plan(hosts, instances, tolerance=tolerance)
        best = min(best, time.perf_counter() - start)
    assert result is not None
    problems = replay(hosts, instances, result.moves)
    moved = {m.instance for m in result.moves}
    return {
        "seconds": round(best, 4),
        "moves": len(result.moves),
        "distinct_instances_moved": len(moved),
        "lower_bound": result.lower_bound,
        "ratio": round(len(result.moves) / result.lower_bound, 4) if result.lower_bound else 1.0,
        "evenness_before": result.before.as_dict(),
        "evenness_after": result.after.as_dict(),
        "unplaced": len(result.unplaced),
        "replay_problems": problems[:10],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--old", type=int, default=100, help="hosts the instances are packed on")
    parser.add_argument("--new", type=int, default=300, help="empty hosts added")
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--tolerance", type=float, default=rb.DEFAULT_TOLERANCE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    rng = random.Random(20261122)
    hosts, instances, not_packed = packed_cloud(args.old, args.new, args.instances, rng)
    res = bench(hosts, instances, args.tolerance, args.repeat)
    res.update(
        {
            "old_hosts": args.old,
            "new_hosts": args.new,
            "instances": len(instances),
            "not_packed": not_packed,
            "tolerance": args.tolerance,
            "repeat": args.repeat,
        }
    )
    checks = {
        "time": res["seconds"] <= TARGET_SECONDS,
        "ratio": res["ratio"] <= TARGET_RATIO,
        "valid": not res["replay_problems"],
        "even": res["evenness_after"]["outside"] == 0,
    }
    res["checks"] = checks
    verdict = "PASS" if all(checks.values()) else "FAIL"
    res["verdict"] = verdict
    b, a = res["evenness_before"], res["evenness_after"]
    print(
        f"rebalance: {len(instances)} instances from {args.old} hosts onto {args.old + args.new}: "
        f"planned in {res['seconds']:.3f} s (best of {args.repeat}; target <= {TARGET_SECONDS:g} s: "
        f"{'PASS' if checks['time'] else 'FAIL'})"
    )
    print(
        f"  moves {res['moves']} vs lower bound {res['lower_bound']}: ratio {res['ratio']:.3f} "
        f"(target <= {TARGET_RATIO:g}: {'PASS' if checks['ratio'] else 'FAIL'}); unplaced {res['unplaced']}"
    )
    pools = ", ".join(f"{k} {v:.3f}" for k, v in b["levels"].items())
    for label, ev in (("before", b), ("after", a)):
        print(
            f"  evenness {label}: level {ev['level']:.3f} ({pools}) +/- {ev['tolerance']:g}, load min "
            f"{ev['min']:.3f} max {ev['max']:.3f} stddev {ev['stddev']:.4f}, "
            f"{ev['outside']} of {ev['hosts']} hosts outside"
        )
    replayed = "PASS" if checks["valid"] else f"FAIL {res['replay_problems']}"
    print(
        f"  replayed through placement's filter: {replayed}; "
        f"all hosts inside the window: {'PASS' if checks['even'] else 'FAIL'}"
    )
    print(verdict)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
