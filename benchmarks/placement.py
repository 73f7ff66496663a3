# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks of the cloud stack: placement at scale, and qcow2 overlays against full copies.

1. Placement: 10,000 instances (a mix of offerings, some in anti-affinity groups, two hypervisor
   families) over 1,000 hosts of mixed sizes, placed one after another with ``place_many`` (the
   same answers as repeated filter-then-weigh ``select_host``, checked on a sample).  Target
   <= 1 s.  For scale, the per-placement cost of the naive ``select_host`` and of the store-backed
   ``allocate`` (one SQLite write transaction each, 1,000 host rows) are printed too.
2. Overlay vs full copy: for 1 GiB and 4 GiB templates (fully allocated qcow2), the time of
   ``qemu-img create -b TEMPLATE -F qcow2`` against ``cp --sparse=never`` (each followed by a
   sync of the new file), and the ratio.  Every file is removed afterwards.

    .venv/bin/python benchmarks/placement.py [--hosts 1000] [--instances 10000] [--repeat 3]
        [--sizes 1,4] [--tmp DIR] [--skip-overlay] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from cloud_workload import make_requests  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import overlay  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import NoCapacity  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402


def make_hosts(count: int, rng: random.Random) -> list[pl.HostState]:
    """Mixed hardware: 16-64 threads, 64-512 GiB, mostly KVM, a tenth Xen, a few down."""
    hosts = []
    for i in range(count):
        hosts.append(
            pl.HostState(
                name=f"hv{i:04d}",
                state="down" if rng.random() < 0.02 else "up",
                hypervisor="xen" if i % 10 == 9 else "kvm",
                vcpus=rng.choice((16, 32, 48, 64)),
                ram_mb=rng.choice((64, 128, 256, 512)) * 1024,
                reserved_vcpus=2,
                reserved_ram_mb=4096,
                cpu_ratio=4.0,
                ram_ratio=1.0,
                host_id=i + 1,
            )
        )
    return hosts


def bench_place_many(hosts: list[pl.HostState], requests: list[pl.Request], repeat: int) -> dict[str, Any]:
    best = float("inf")
    placed: list[str | None] = []
    for _attempt in range(repeat):
        start = time.perf_counter()
        placed = pl.place_many(hosts, requests)[0]
        best = min(best, time.perf_counter() - start)
    return {
        "seconds": round(best, 4),
        "placed": sum(1 for p in placed if p),
        "unplaced": placed.count(None),
        "hosts_used": len({p for p in placed if p}),
    }, placed


def bench_select_host(
    hosts: list[pl.HostState], requests: list[pl.Request], sample: int, expected: list[str | None]
) -> dict[str, Any]:
    """Naive filter+weigh per request on the first ``sample`` requests (and the same answers)."""
    states = list(hosts)
    index = {h.name: i for i, h in enumerate(states)}
    got: list[str | None] = []
    start = time.perf_counter()
    for req in requests[:sample]:
        try:
            chosen = pl.select_host(states, req)
        except NoCapacity:
            got.append(None)
            continue
        states[index[chosen.name]] = states[index[chosen.name]].with_allocation(req)
        got.append(chosen.name)
    elapsed = time.perf_counter() - start
    assert got == expected[:sample], "place_many and select_host disagree"
    return {
        "sample": sample,
        "ms_per_placement": round(elapsed / sample * 1000, 3),
        "extrapolated_seconds": round(elapsed / sample * len(requests), 2),
    }


def bench_allocate(
    hosts: list[pl.HostState], requests: list[pl.Request], sample: int, tmp: Path
) -> dict[str, Any]:
    """Store-backed allocate: one write transaction per placement on a SQLite store with every host."""
    path = tmp / "bench.db"
    with Store.open(str(path)) as store:
        with store.transaction(write=True):
            for h in hosts:
                store.insert(
                    "hosts",
                    {
                        "name": h.name,
                        "uri": "test:///default",
                        "hypervisor": h.hypervisor,
                        "vcpus": h.vcpus,
                        "ram_mb": h.ram_mb,
                        "reserved_vcpus": h.reserved_vcpus,
                        "reserved_ram_mb": h.reserved_ram_mb,
                        "cpu_ratio": h.cpu_ratio,
                        "ram_ratio": h.ram_ratio,
                        "state": h.state,
                        "storage_dir": "/srv",
                    },
                )
            off = store.insert("offerings", {"name": "o", "vcpus": 1, "ram_mb": 1024})
        start = time.perf_counter()
        for i, req in enumerate(requests[:sample]):
            pl.allocate(
                store,
                req,
                new_row={
                    "uuid": f"u{i}",
                    "name": f"i{i}",
                    "instance_id": f"iid-u{i}",
                    "tenant": "t",
                    "offering_id": off["id"],
                    "state": "building",
                    "domain_type": "kvm",
                },
            )
        elapsed = time.perf_counter() - start
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return {"sample": sample, "ms_per_allocation": round(elapsed / sample * 1000, 2)}


def timed(argv: list[str], sync_path: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    subprocess.run(["sync", sync_path], check=True)
    return time.perf_counter() - start


def bench_overlay(size_gib: int, tmp: Path, repeat: int) -> dict[str, Any]:
    """Overlay creation against a full copy of a fully allocated template of ``size_gib``."""
    template = tmp / f"template-{size_gib}g.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            "preallocation=falloc",
            str(template),
            f"{size_gib}G",
        ],
        check=True,
    )
    try:
        overlay_s, copy_s = float("inf"), float("inf")
        for i in range(repeat):
            ov = tmp / f"overlay-{i}.qcow2"
            overlay_s = min(overlay_s, timed(overlay.create_command(str(template), str(ov)), str(ov)))
            ov_bytes = os.stat(ov).st_blocks * 512
            ov.unlink()
            cp = tmp / f"copy-{i}.qcow2"
            copy_s = min(copy_s, timed(overlay.full_copy_command(str(template), str(cp)), str(cp)))
            cp_bytes = os.stat(cp).st_blocks * 512
            cp.unlink()
    finally:
        template.unlink(missing_ok=True)
    return {
        "template_gib": size_gib,
        "overlay_seconds": round(overlay_s, 4),
        "copy_seconds": round(copy_s, 3),
        "ratio_copy_over_overlay": round(copy_s / overlay_s, 1),
        "overlay_kib": ov_bytes // 1024,
        "copy_mib": cp_bytes // 1024**2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1,4", help="template sizes in GiB")
    parser.add_argument("--tmp", default="/var/tmp", help="directory for the overlay benchmark (a real disk)")
    parser.add_argument("--skip-overlay", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    rng = random.Random(20261122)
    hosts = make_hosts(args.hosts, rng)
    requests = make_requests(args.instances, rng)
    results: dict[str, Any] = {}
    results["place_many"], placed = bench_place_many(hosts, requests, args.repeat)
    results["select_host"] = bench_select_host(hosts, requests, min(300, len(requests)), placed)
    work = Path(tempfile.mkdtemp(prefix="compleat-bench-", dir=args.tmp))
    try:
        results["allocate_sqlite"] = bench_allocate(hosts, requests, 200, work)
        if not args.skip_overlay:
            results["overlay"] = [bench_overlay(int(s), work, args.repeat) for s in args.sizes.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    pm = results["place_many"]
    verdict = "PASS" if pm["seconds"] <= 1.0 else "FAIL"
    print(
        f"placement: {args.instances} instances over {args.hosts} hosts in {pm['seconds']:.3f} s "
        f"(best of {args.repeat}; target <= 1 s: {verdict}); placed {pm['placed']}, "
        f"unplaced {pm['unplaced']}, {pm['hosts_used']} hosts used"
    )
    sh = results["select_host"]
    print(
        f"  naive select_host: {sh['ms_per_placement']} ms/placement "
        f"(would take ~{sh['extrapolated_seconds']} s; same answers on {sh['sample']} requests)"
    )
    print(
        f"  store-backed allocate (SQLite, {args.hosts} host rows): "
        f"{results['allocate_sqlite']['ms_per_allocation']} ms/allocation"
    )
    for row in results.get("overlay", []):
        print(
            f"overlay vs full copy, {row['template_gib']} GiB template: "
            f"overlay {row['overlay_seconds'] * 1000:.1f} ms ({row['overlay_kib']} KiB), "
            f"copy {row['copy_seconds']:.2f} s ({row['copy_mib']} MiB): "
            f"ratio {row['ratio_copy_over_overlay']}x"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
