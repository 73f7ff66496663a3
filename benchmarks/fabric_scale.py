# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scale benchmark of the fabric engine, optionally against pyavd.

For 100, 500 and 1000 racks (4 spines, one ToR per rack with 4 uplinks, 40 hosts per rack) it
measures validate (YAML file -> Fabric), plan and render_all (every output: FRR configs when the
FRR renderer is present, topology.json, plan.csv, fabric.md, rack pages, fabric.svg) into a fresh
directory, then prints wall and CPU time, peak memory and the growth ratio 1000/100.

With --compare-avd it also runs pyavd (``pip install -r benchmarks/requirements.txt``) on the
same switch count -- 4 spines + N leaves, an L3LS design with eBGP underlay and no EVPN overlay --
timing get_avd_facts + get_device_structured_config + get_device_config for every device, and
prints our time / pyavd time.

Every measurement runs in a fresh Python process (so peak RSS is per size).  Times are the best
of --repeat runs; the machine may be shared, so CPU time (user + system of the process) is printed
next to wall time and the ratios are given for both.  Outputs are written below --tmp, by default
a tmpfs (/dev/shm) when there is one, so the numbers measure the engine rather than the disk.

    .venv/bin/python benchmarks/fabric_scale.py [--sizes 100,500,1000] [--repeat 3] [--tmp DIR]
        [--compare-avd [--avd-sizes 100,500,1000]] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPINES = 4
UPLINKS = 4
HOSTS = 40


# ------------------------------------------------------------------------------------ inputs
def fabric_doc(racks: int) -> dict[str, Any]:
    """The benchmark fabric: ``racks`` racks declared compactly, law limits for 1023 racks."""
    return {
        "name": f"bench{racks}",
        "routing": "bgp",
        "limits": {
            "max_racks": 1024,
            "tors_per_rack": 2,
            "uplinks_per_tor": 4,
            "hosts_per_rack": 48,
            "spines": 16,
        },
        "pools": {"loopbacks": "10.255.0.0/16", "links": "10.254.0.0/16"},
        "networks": {
            "mgmt": {"pool": "10.0.0.0/14", "prefix_len": 24, "vlan": 10, "mtu": 1500},
            "storage": {"pool": "10.4.0.0/14", "prefix_len": 24, "vlan": 20, "mtu": 9000},
            "service": {"pool": "10.8.0.0/14", "prefix_len": 24, "vlan": 30, "mtu": 1500},
            "vm": {"pool": "10.64.0.0/10", "prefix_len": 22, "vlan": 40, "mtu": 9000},
        },
        "spines": [{"id": i} for i in range(1, SPINES + 1)],
        "defaults": {"tors": 1, "uplinks": UPLINKS, "hosts": HOSTS},
        "racks": [{"range": [1, racks]}],
        "bgp": {"bfd": True},
        "dhcp_relay": {"servers": ["10.0.1.10"]},
    }


def avd_inputs(leaves: int) -> dict[str, dict[str, Any]]:
    """pyavd inputs per hostname: 4 spines + ``leaves`` L3 leaves, eBGP underlay, no EVPN."""
    spines = [f"spine{i}" for i in range(1, SPINES + 1)]
    common = {
        "fabric_name": "BENCH",
        "underlay_routing_protocol": "ebgp",
        "overlay_routing_protocol": "none",
        "spine": {
            "defaults": {
                "platform": "vEOS-lab",
                "loopback_ipv4_pool": "10.255.0.0/24",
                "bgp_as": "4200000000",
            },
            "nodes": [
                {"name": name, "id": i, "mgmt_ip": f"192.168.0.{i}/16"} for i, name in enumerate(spines, 1)
            ],
        },
        "l3leaf": {
            "defaults": {
                "platform": "vEOS-lab",
                "loopback_ipv4_pool": "10.255.16.0/20",
                "uplink_ipv4_pool": "10.254.0.0/16",
                "uplink_switches": spines,
                "uplink_interfaces": [f"Ethernet{u}" for u in range(1, UPLINKS + 1)],
                "mlag": False,
                "vtep": False,
            },
            "nodes": [
                {
                    "name": f"leaf{i}",
                    "id": i,
                    "bgp_as": str(4200001000 + i),
                    "mgmt_ip": f"192.168.{1 + i // 250}.{i % 250 + 1}/16",
                    "uplink_switch_interfaces": [f"Ethernet{i}"] * UPLINKS,
                }
                for i in range(1, leaves + 1)
            ],
        },
    }
    inputs = {name: {**common, "type": "spine"} for name in spines}
    inputs.update({f"leaf{i}": {**common, "type": "l3leaf"} for i in range(1, leaves + 1)})
    return inputs


# ------------------------------------------------------------------------------------ workers
def _clock(func: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: min(run[key] for run in runs) for key in runs[0]}


def worker_ours(racks: int, repeat: int, tmp: str | None) -> dict[str, Any]:
    """Time validate + plan + render_all for one size; then one traced run for peak memory."""
    import yaml

    sys.path.insert(0, str(ROOT / "build" / "collections"))
    from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
    from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import (
        render_all,
    )

    work = Path(tempfile.mkdtemp(prefix="fabric-bench-", dir=tmp))
    try:
        source = work / "fabric.yml"
        source.write_text(yaml.safe_dump(fabric_doc(racks), sort_keys=False))
        frr = True  # the FRR renderer is part of the engine: a broken one fails here

        def once(index: int) -> tuple[dict[str, float], Any, Any]:
            fabric, v_wall, v_cpu = _clock(lambda: load_fabric(source))
            plan, p_wall, p_cpu = _clock(lambda: build_plan(fabric))
            out = work / f"out{index}"
            result, r_wall, r_cpu = _clock(lambda: render_all(plan, out, frr=frr))
            times = {
                "validate_wall": v_wall,
                "validate_cpu": v_cpu,
                "plan_wall": p_wall,
                "plan_cpu": p_cpu,
                "render_wall": r_wall,
                "render_cpu": r_cpu,
                "total_wall": v_wall + p_wall + r_wall,
                "total_cpu": v_cpu + p_cpu + r_cpu,
            }
            shutil.rmtree(out)
            return times, plan, result

        runs = []
        for index in range(repeat):
            times, plan, result = once(index)
            runs.append(times)
            devices, files, routers = len(plan.devices), len(result.files), len(plan.routers())
            del plan, result  # never hold two plans at once
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = work / "sized"
        render_all(build_plan(load_fabric(source)), out, frr=frr)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        shutil.rmtree(out)
        tracemalloc.start()
        once(repeat + 1)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "racks": racks,
        "devices": devices,
        "routers": routers,
        "files": files,
        "bytes": size,
        "frr": frr,
        **_best(runs),
        "peak_rss_mib": rss_kib / 1024,
        "peak_traced_mib": traced_peak / 2**20,
    }


def worker_avd(leaves: int, repeat: int) -> dict[str, Any]:
    """Time pyavd facts + structured config + EOS config for 4 spines + ``leaves`` leaves."""
    import pyavd

    inputs = avd_inputs(leaves)

    def once() -> dict[str, float]:
        facts, f_wall, f_cpu = _clock(lambda: pyavd.get_avd_facts(inputs))

        def configs() -> int:
            total = 0
            for host, host_inputs in inputs.items():
                structured = pyavd.get_device_structured_config(host, host_inputs, facts)
                total += len(pyavd.get_device_config(structured))
            return total

        c_wall, c_cpu = _clock(configs)[1:]
        return {
            "facts_wall": f_wall,
            "facts_cpu": f_cpu,
            "configs_wall": c_wall,
            "configs_cpu": c_cpu,
            "total_wall": f_wall + c_wall,
            "total_cpu": f_cpu + c_cpu,
        }

    runs = [once() for _run in range(repeat)]
    return {
        "leaves": leaves,
        "devices": len(inputs),
        "pyavd": pyavd.__version__,
        **_best(runs),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(kind: str, size: int, repeat: int, tmp: str | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, __file__, "--worker", kind, str(size), "--repeat", str(repeat)]
    if tmp:
        cmd += ["--tmp", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker {kind} {size} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ report
def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def report_ours(results: list[dict[str, Any]]) -> None:
    print(f"fabric engine: {SPINES} spines, 1 ToR/rack with {UPLINKS} uplinks, {HOSTS} hosts/rack")
    frr = "with" if results and results[0]["frr"] else "WITHOUT (render/frr.py missing)"
    print(f"validate + plan + render_all ({frr} FRR configs, plus topology/csv/docs/svg); best of runs")
    header = (
        f"{'racks':>6} {'devices':>8} {'files':>6} {'MiB out':>8} {'validate':>9} {'plan':>7} {'render':>7} "
        f"{'total':>7} {'cpu':>7} {'traced':>8} {'rss':>7}"
    )
    print(header)
    for row in results:
        print(
            f"{row['racks']:>6} {row['devices']:>8} {row['files']:>6} {row['bytes'] / 2**20:>8.1f} "
            f"{row['validate_wall']:>8.3f}s {row['plan_wall']:>6.3f}s {row['render_wall']:>6.3f}s "
            f"{row['total_wall']:>6.3f}s {row['total_cpu']:>6.3f}s {row['peak_traced_mib']:>6.0f}Mi "
            f"{row['peak_rss_mib']:>5.0f}Mi"
        )
    by_size = {row["racks"]: row for row in results}
    if 100 in by_size and 1000 in by_size:
        small, big = by_size[100], by_size[1000]
        print(
            f"growth 1000/100 racks: wall x{big['total_wall'] / small['total_wall']:.1f}, "
            f"cpu x{big['total_cpu'] / small['total_cpu']:.1f} (linear = x10; acceptance <= x12)"
        )


def report_avd_header(version: str) -> None:
    print(f"\npyavd {version}: {SPINES} spines + N leaves, get_avd_facts + structured config + EOS config")
    print(
        f"{'leaves':>6} {'devices':>8} {'facts':>8} {'configs':>8} {'total':>8} {'cpu':>8} {'ours':>7} "
        f"{'ours/avd':>9}"
    )


def report_avd(avd: list[dict[str, Any]], ours: list[dict[str, Any]]) -> None:
    ours_by_size = {row["racks"]: row for row in ours}
    for row in avd:
        mine = ours_by_size.get(row["leaves"])
        ratio = f"{mine['total_wall'] / row['total_wall']:.4f}" if mine else "-"
        ours_text = f"{mine['total_wall']:.3f}s" if mine else "-"
        print(
            f"{row['leaves']:>6} {row['devices']:>8} {row['facts_wall']:>7.2f}s {row['configs_wall']:>7.2f}s "
            f"{row['total_wall']:>7.2f}s {row['total_cpu']:>7.2f}s {ours_text:>7} {ratio:>9}"
        )
        if mine:
            wall = row["total_wall"] / mine["total_wall"]
            cpu = row["total_cpu"] / mine["total_cpu"]
            size = row["leaves"]
            print(f"{'':>6} -> ours is {wall:.0f}x faster (wall), {cpu:.0f}x in CPU time at {size} racks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,500,1000", help="rack counts (default 100,500,1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best is reported")
    parser.add_argument("--compare-avd", action="store_true", help="also run pyavd on 4 spines + N leaves")
    parser.add_argument("--avd-sizes", default=None, help="leaf counts for pyavd (default: --sizes)")
    parser.add_argument("--avd-repeat", type=int, default=1, help="pyavd runs per size (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    default_tmp = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    parser.add_argument("--tmp", default=default_tmp, help="where outputs are written (default: /dev/shm)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, size = args.worker[0], int(args.worker[1])
        result = worker_ours(size, args.repeat, args.tmp) if kind == "ours" else worker_avd(size, args.repeat)
        print(json.dumps(result))
        return 0
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"outputs written below {args.tmp or tempfile.gettempdir()}")
    ours = [run_worker("ours", size, args.repeat, args.tmp) for size in _sizes(args.sizes)]
    report_ours(ours)
    avd: list[dict[str, Any]] = []
    if args.compare_avd:
        for size in _sizes(args.avd_sizes or args.sizes):
            avd.append(run_worker("avd", size, args.avd_repeat))
            if len(avd) == 1:
                report_avd_header(avd[0]["pyavd"])
            report_avd(avd[-1:], ours)
            sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps({"ours": ours, "pyavd": avd}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
