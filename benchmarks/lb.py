# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of an LB node: HTTP requests/s through HAProxy vs straight to the backend, same run.

One network namespace with only its loopback (root needed), three processes in it:

* the backend: an HAProxy answering ``200 ok`` itself (``http-request return``), so the backend is
  never the bottleneck;
* the LB node: HAProxy with the lb_node role's base ``haproxy.cfg`` and the balancer file that
  ``cloud.lb.render_config`` renders for one HTTP listener on VIP 127.0.0.10 with the backend as
  its only member (health-checked, as in production);
* the client: ``--workers`` processes, each opening a new TCP connection per request (no
  keep-alive, as the ECMP lab does) for ``--seconds``.

Rounds alternate direct and through the LB (``--repeat``), so both see the same machine load; the
median requests/s of each and their ratio (LB / direct) are printed.  The figures are indicative:
client, LB and backend share the machine's cores with whatever else runs.

    sudo .venv/bin/python benchmarks/lb.py [--seconds 3] [--workers 2] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lb  # noqa: E402
from lab.lb_lab import render_haproxy_base  # noqa: E402
from lab.netns import IP, Netns, kill_pids, netns_pids, wait_for  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
VIP, LB_PORT, BACKEND_PORT = "127.0.0.10", 18081, 18080
BACKEND_CFG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend backend
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok
"""
CLIENT = r"""
import http.client, multiprocessing, sys, time
host, port, seconds, workers = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
def run(q):
    ok = bad = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection(host, port, timeout=2)
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            c.close()
            ok += r.status == 200
            bad += r.status != 200
        except Exception:
            bad += 1
    q.put((ok, bad))
q = multiprocessing.Queue()
procs = [multiprocessing.Process(target=run, args=(q,)) for _ in range(workers)]
for p in procs:
    p.start()
res = [q.get() for _ in procs]
for p in procs:
    p.join()
print(sum(r[0] for r in res), sum(r[1] for r in res))
"""


def balancer_config() -> str:
    """The LB node's balancer file: one HTTP listener, the backend as the only member."""
    balancer = lb.Balancer(
        tenant="bench",
        name="web",
        vip=VIP,
        algorithm="roundrobin",
        listeners=({"port": LB_PORT, "protocol": "http", "backend_port": BACKEND_PORT},),
        health={**lb.DEFAULT_HEALTH, "type": "http", "interval": 1000},
        members=(lb.Member("b1", "127.0.0.1"),),
    )
    return lb.render_config([balancer], node="bench")


def start(ns: Netns, name: str, run_dir: Path, files: list[Path]) -> None:
    """An HAProxy (daemon) in the namespace with ``files``."""
    argv = [HAPROXY, "-D", "-p", str(run_dir / f"{name}.pid")]
    for path in files:
        argv += ["-f", str(path)]
    subprocess.run([IP, "netns", "exec", ns.ns("bench"), *argv], check=True, stdout=DEVNULL, stderr=DEVNULL)


def rate(ns: Netns, port: int, seconds: float, workers: int) -> tuple[float, int]:
    """Requests/s of one round against 127.0.0.1/VIP:port, and the failed requests."""
    host = VIP if port == LB_PORT else "127.0.0.1"
    argv = [sys.executable, "-c", CLIENT, host, str(port), str(seconds), str(workers)]
    out = ns.exec("bench", *argv, timeout=seconds + 60).stdout.split()
    return int(out[0]) / seconds, int(out[1])


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespace)", file=sys.stderr)
        return 2
    with Netns(f"ccb{os.getpid()}-") as ns:
        ns.add("bench")
        ns.ip("bench", "addr", "add", f"{VIP}/32", "dev", "lo")
        run_dir = ns.node_dir("bench")
        (run_dir / "backend.cfg").write_text(BACKEND_CFG.format(port=BACKEND_PORT), encoding="utf-8")
        (run_dir / "haproxy.cfg").write_text(render_haproxy_base(run_dir), encoding="utf-8")
        (run_dir / "balancers.cfg").write_text(balancer_config(), encoding="utf-8")
        try:
            start(ns, "backend", run_dir, [run_dir / "backend.cfg"])
            start(ns, "lb", run_dir, [run_dir / "haproxy.cfg", run_dir / "balancers.cfg"])
            api = lb.RuntimeApi(str(run_dir / "admin.sock"))
            wait_for(
                lambda: any(
                    r["svname"] == "b1" and r["status"] == "UP" for r in lb.parse_stat(api.send("show stat"))
                ),
                timeout=15,
                what="the member up",
            )
            direct: list[float] = []
            through: list[float] = []
            failed = 0
            for _round in range(args.repeat):
                value, bad = rate(ns, BACKEND_PORT, args.seconds, args.workers)
                direct.append(value)
                failed += bad
                value, bad = rate(ns, LB_PORT, args.seconds, args.workers)
                through.append(value)
                failed += bad
        finally:
            kill_pids(netns_pids(ns.ns("bench")), timeout=3)
    result: dict[str, Any] = {
        "seconds": args.seconds,
        "workers": args.workers,
        "repeat": args.repeat,
        "direct_rps": statistics.median(direct),
        "via_lb_rps": statistics.median(through),
        "failed": failed,
    }
    result["ratio"] = result["via_lb_rps"] / result["direct_rps"] if result["direct_rps"] else 0.0
    print(
        f"new connection per request, {args.workers} client processes, "
        f"{args.repeat} x {args.seconds:g}s rounds: "
        f"direct {result['direct_rps']:.0f} req/s, through the LB node {result['via_lb_rps']:.0f} req/s, "
        f"ratio {result['ratio']:.2f}, failed {failed} (indicative: shared machine)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
