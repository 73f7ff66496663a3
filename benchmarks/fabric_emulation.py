# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Emulation benchmark: N racks of the rendered fabric routed by FRR in network namespaces.

For each size in --racks it renders the fabric of ``fabric_scale.py`` without hosts (4 spines,
one ToR per rack with 4 uplinks, four rack networks per rack; BFD off unless --bfd), brings it up
with ``lab/fabric_lab.py`` (namespaces, veths and bridges made by one ``ip -batch`` per namespace;
zebra + bgpd per router with ``--limit-fds`` sized to its sessions; every daemon started, then the
spines' configs loaded, then the ToRs') and measures:

- converge: seconds from the first namespace until every BGP session is Established (read on the
  spines, which hold one end of every session) and every router's kernel FIB -- ``ip -j route`` in
  its namespace, not FRR's RIB -- holds every prefix it must learn with its full ECMP width (a
  ToR: each other rack's five prefixes over its 4 uplinks; a spine: each rack's prefixes) and no
  BGP route it must not have.  Split into build (namespaces, links), start (daemons running,
  configs loaded) and the wait.  Polled every --interval s: the FIBs once the sessions are up,
  only those not yet complete, then all of them once more to confirm; the time is the end of the
  poll that found the last one complete (late by at most one poll);
- FIB completeness: routes (prefix with the full width) and next hops found / expected over all
  routers when converged or at the timeout;
- memory: the FRR daemons' summed RSS (peak of samples every 0.5 s) and PSS (shared library pages
  split between the processes; at convergence), and the peak drop of the host's MemAvailable from
  just before the build (namespaces, links and daemons together);
- one failover: the first rack's ToR takes its uplink 1 down.  Every affected FIB must then drop
  that path: the ToR's routes to every other rack, every other ToR's routes to the first rack
  (no longer offered by that spine) and the spine's routes to the first rack (gone).  The time
  from the link change to the last such kernel route change (``ip -ts monitor route`` in every
  affected namespace), once a poll confirmed every FIB; then the link is restored and the time
  until the full ECMP is back is measured the same way.

The machine may be shared: next to the figures it prints the 1-minute load average before each
size and how many cores the rest of the machine used during the bring-up (busy time from
/proc/stat minus the FRR daemons' and this program's own, so kernel work not charged to them
counts too).  Beyond 128 racks the host's ARP table thresholds (shared by all namespaces) are
raised for the run and put back after it.

The sizes run one after the other in this process, --pause s apart; every namespace
(``cce<pid>-<device>``) and FRR process of a size is removed before the next one starts, also when
it fails, times out or is interrupted (Ctrl-C, SIGTERM); leftovers of a killed run are removed at
the start.  Needs root and FRR (Debian ``frr``).

    .venv/bin/python benchmarks/fabric_emulation.py --racks 25,50,100 [--timeout 300]
        [--interval 1] [--pause 20] [--workers 16] [--bfd] [--default-fds] [--no-failover] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _entry in (ROOT, ROOT / "build" / "collections", Path(__file__).resolve().parent):
    if str(_entry) not in sys.path:
        sys.path.insert(0, str(_entry))

from fabric_scale import SPINES, UPLINKS, fabric_doc  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all  # noqa: E402
from lab.fabric_lab import FabricLab  # noqa: E402
from lab.netns import wait_for  # noqa: E402

PREFIX_RE = re.compile(r"^cce(\d+)-")
TARGET_RACKS, TARGET_SECONDS = 100, 60.0
SUMMARY = "show bgp vrf default ipv4 unicast summary json"


# ------------------------------------------------------------------------------------ pure helpers
def emulation_doc(racks: int, *, bfd: bool = False) -> dict[str, Any]:
    """The fabric of ``fabric_scale.py`` for ``racks`` racks, without hosts (routers only)."""
    doc = fabric_doc(racks)
    doc["name"] = f"emu{racks}"
    doc["defaults"] = {**doc["defaults"], "hosts": 0}
    doc["bgp"] = {**doc.get("bgp", {}), "bfd": bfd}
    doc.pop("dhcp_relay", None)  # no hosts, nothing to relay
    return doc


def limit_fds(sessions: int) -> int:
    """``--limit-fds`` for a daemon with ``sessions`` BGP sessions (0: not bgpd).

    FRR sizes per-fd tables by this limit (by default the process's open-file limit, 20 000
    here): 256 saves ~2.4 MiB RSS per zebra and ~1.6 MiB per bgpd.  bgpd needs a socket per
    session plus one for a colliding connection, listeners and vty: 2 per session + 64, rounded
    up to a multiple of 128, at least 256.
    """
    return max(256, 128 * math.ceil((2 * sessions + 64) / 128))


def fib_widths(kernel_routes: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Prefix -> number of next hops of every BGP route in ``ip -j route`` output (/32 spelled out)."""
    widths: dict[str, int] = {}
    for route in kernel_routes:
        if route.get("protocol") != "bgp":
            continue
        dst = str(route.get("dst", ""))
        key = dst if "/" in dst or dst == "default" else f"{dst}/32"
        widths[key] = len(route.get("nexthops") or [route])
    return widths


@dataclass
class FibCount:
    """How a kernel FIB compares with the routes a router must have."""

    complete: int = 0  # prefixes present with exactly the expected number of next hops
    short: int = 0  # present with another number of next hops
    missing: int = 0  # expected, absent
    extra: int = 0  # BGP routes present that must not be
    hops: int = 0  # next hops of the complete prefixes
    expected_hops: int = 0  # next hops expected in all

    @property
    def expected(self) -> int:
        """Prefixes expected."""
        return self.complete + self.short + self.missing

    @property
    def ok(self) -> bool:
        """Every expected prefix complete and nothing extra."""
        return not (self.short or self.missing or self.extra)

    def __add__(self, other: FibCount) -> FibCount:
        return FibCount(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def fib_check(expected: Mapping[str, int], widths: Mapping[str, int]) -> FibCount:
    """Compare a FIB (:func:`fib_widths`) with the expected prefix -> next-hop counts.

    A count of ``fabric.intent.PRESENT`` (or any count < 1) asks for presence only.
    """
    count = FibCount()
    for prefix, want in expected.items():
        got = widths.get(prefix)
        count.expected_hops += max(want, 1)
        if got is None:
            count.missing += 1
        elif want < 1 or got == want:
            count.complete += 1
            count.hops += got
        else:
            count.short += 1
    count.extra = sum(1 for prefix in widths if prefix not in expected)
    return count


_MONITOR_DST = re.compile(
    r"^(?:Deleted\s+)?(?:(?:unicast|local|broadcast|unreachable|blackhole|prohibit|multicast)\s+)?"
    r"(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?\s"
)


def monitor_prefix(event: str) -> str | None:
    """The destination of one ``ip monitor route`` event (``10.0.2.0/24``, host routes as /32)."""
    match = _MONITOR_DST.match(event)
    if match is None:
        return None
    return f"{match.group(1)}{match.group(2) or '/32'}"


def changed_prefixes(before: Mapping[str, int], after: Mapping[str, int]) -> set[str]:
    """Prefixes whose expected next-hop count differs (appearing and disappearing ones too)."""
    return {prefix for prefix in {*before, *after} if before.get(prefix) != after.get(prefix)}


def last_change(events: Iterable[tuple[float, str]], prefixes: set[str], since: float) -> float | None:
    """Time of the last event at or after ``since`` touching one of ``prefixes`` (None: none)."""
    times = [stamp for stamp, text in events if stamp >= since and monitor_prefix(text) in prefixes]
    return max(times) if times else None


def without_link(topology: Mapping[str, Any], device: str, interface: str) -> dict[str, Any]:
    """``topology.json`` data with the link that has ``device:interface`` at one end removed."""
    links = [
        link
        for link in topology.get("links", [])
        if (device, interface) not in {(end["device"], end["interface"]) for end in (link["a"], link["b"])}
    ]
    if len(links) == len(topology.get("links", [])):
        raise KeyError(f"no link at {device} {interface}")
    return {**topology, "links": links}


def meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` (or ``/proc/PID/status``, ``smaps_rollup``) as key -> KiB."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        parts = value.split()
        if sep and parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


# ------------------------------------------------------------------------------------ sampling
def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def mem_available_kib() -> int:
    """The host's MemAvailable now."""
    return meminfo(_read("/proc/meminfo")).get("MemAvailable", 0)


def rss_kib(pids: Iterable[int]) -> int:
    """Summed VmRSS of ``pids`` (vanished ones count 0)."""
    return sum(meminfo(_read(f"/proc/{pid}/status")).get("VmRSS", 0) for pid in pids)


def pss_kib(pids: Iterable[int]) -> tuple[int, int]:
    """Summed (Rss, Pss) of ``pids`` from smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        values = meminfo(_read(f"/proc/{pid}/smaps_rollup"))
        rss += values.get("Rss", 0)
        pss += values.get("Pss", 0)
    return rss, pss


def stat_cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks) from the text of ``/proc/PID/stat`` (0 when unreadable)."""
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12]) if len(fields) > 12 else 0


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) ``pids`` have used so far."""
    ticks = sum(stat_cpu_ticks(_read(f"/proc/{pid}/stat")) for pid in pids)
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this process and of its reaped children (ip, vtysh, daemon launches)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def neighbour_thresholds(links: int, current: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """ARP garbage-collection thresholds for a lab with ``links`` /31 links (None: ``current`` do).

    The kernel's neighbour table and its ``gc_thresh1..3`` are shared by every namespace (the
    sysctls exist only in the root namespace); each link adds an entry at both ends, and past
    ``gc_thresh3`` (1024 by default: 128 racks of 4 uplinks) new entries fail and sessions with
    them.  Keeps 128 entries of room for the host and other labs.
    """
    need = 2 * links + 128
    low, soft, hard = current
    if hard >= need:
        return None
    soft = max(soft, 1024 * math.ceil(need / 1024))
    return low, soft, max(hard, 2 * soft)


NEIGH_DIR = Path("/proc/sys/net/ipv4/neigh/default")


@contextlib.contextmanager
def neighbour_room(links: int) -> Iterator[tuple[int, int, int] | None]:
    """Raise the host's ARP thresholds when ``links`` need it (:func:`neighbour_thresholds`);
    the previous values are always written back."""
    paths = [NEIGH_DIR / f"gc_thresh{i}" for i in (1, 2, 3)]
    current = (int(paths[0].read_text()), int(paths[1].read_text()), int(paths[2].read_text()))
    wanted = neighbour_thresholds(links, current)
    if wanted is None:
        yield None
        return
    try:
        for path, value in zip(reversed(paths), reversed(wanted), strict=True):  # thresh3 first
            path.write_text(f"{value}\n")
        yield wanted
    finally:
        for path, value in zip(paths, current, strict=True):  # thresh1 first: never above thresh3
            path.write_text(f"{value}\n")


def cpu_busy_seconds(stat: str) -> float:
    """Seconds all CPUs were busy (not idle, not waiting for I/O), from ``/proc/stat``."""
    fields = [int(value) for value in stat.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def listening(pid: int) -> bool:
    """Whether ``ip monitor`` (``pid``) has opened its second netlink socket, the subscribed one
    (the first is ip's general handle)."""
    try:
        links = [os.readlink(entry) for entry in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return sum(1 for link in links if link.startswith("socket:")) >= 2


class Sampler:
    """Samples MemAvailable and the FRR daemons' RSS every ``interval`` s in a thread; keeps peaks."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.5) -> None:
        self.pids, self.interval = pids, interval
        self.baseline = mem_available_kib()
        self.min_available = self.baseline
        self.peak_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        """Take one sample now."""
        self.min_available = min(self.min_available, mem_available_kib())
        self.peak_rss = max(self.peak_rss, rss_kib(self.pids()))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a sample must never kill the run
                self.sample()

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        self._thread.join(5)
        self.sample()

    @property
    def drop_kib(self) -> int:
        """Peak drop of MemAvailable since the sampler started."""
        return self.baseline - self.min_available


# ------------------------------------------------------------------------------------ the run
@dataclass
class Poll:
    """One convergence poll."""

    at: float  # seconds since the build started, when the poll ended
    took: float  # seconds the poll took
    sessions: int  # sessions Established (spine side)
    fib: FibCount = field(default_factory=FibCount)

    def as_dict(self) -> dict[str, Any]:
        """Compact form for the JSON report."""
        return {
            "at": round(self.at, 2),
            "took": round(self.took, 2),
            "sessions": self.sessions,
            **asdict(self.fib),
        }


class Emulation:
    """One size: render, bring up, measure, fail over, tear down."""

    def __init__(self, racks: int, args: argparse.Namespace) -> None:
        self.racks, self.args = racks, args
        self.result: dict[str, Any] = {"racks": racks, "load_before": os.getloadavg()[0]}

    # -- helpers ------------------------------------------------------------------------------
    def _sessions_up(self, lab: FabricLab, spines: list[str]) -> int:
        up = 0
        for spine in spines:
            try:
                peers = fabric_intent.bgp_peers(lab.nodes[spine].json(SUMMARY))
            except Exception:  # bgpd not answering yet
                continue
            up += sum(1 for key in lab.intent[spine].sessions if peers.get(key) == "Established")
        return up

    def _fibs(
        self,
        lab: FabricLab,
        expected: Mapping[str, Mapping[str, int]],
        names: Iterable[str],
        pool: ThreadPoolExecutor,
    ) -> dict[str, FibCount]:
        def one(name: str) -> FibCount:
            try:
                routes = lab.nodes[name].kernel_routes()
            except Exception:  # namespace not ready
                routes = []
            return fib_check(expected[name], fib_widths(routes))

        names = list(names)
        return dict(zip(names, pool.map(one, names), strict=True))

    def _poll_until(
        self,
        lab: FabricLab,
        expected: Mapping[str, Mapping[str, int]],
        started: float,
        timeout: float,
        *,
        sessions: int | None = None,
        spines: list[str] | None = None,
    ) -> tuple[bool, list[Poll]]:
        """Poll until every session is up (with ``sessions``) and every FIB matches ``expected``.

        FIBs are read once the sessions are up, and only those not yet complete (a poll of all
        104 FIBs of 100 racks costs ~1 s of CPU, taken from the routers); when none is left, one
        more round reads every FIB and confirms it (a FIB that regressed is polled on).  The
        time is the end of the round that found the last FIB complete.
        """
        polls: list[Poll] = []
        deadline = time.monotonic() + timeout
        counts = {name: fib_check(want, {}) for name, want in expected.items()}
        pending: set[str] = set(expected)
        found_at: float | None = None
        with ThreadPoolExecutor(max_workers=4) as pool:
            while True:
                begun = time.monotonic()
                up = self._sessions_up(lab, spines or []) if sessions is not None else 0
                if sessions is None or up == sessions:
                    confirming = not pending
                    counts.update(self._fibs(lab, expected, list(expected) if confirming else pending, pool))
                    pending = {name for name, count in counts.items() if not count.ok}
                    if confirming and not pending and found_at is not None:
                        total = sum(counts.values(), FibCount())
                        polls.append(Poll(found_at, time.monotonic() - begun, up, total))
                        return True, polls
                    found_at = time.monotonic() - started if not pending else None
                now = time.monotonic()
                polls.append(Poll(now - started, now - begun, up, sum(counts.values(), FibCount())))
                if now >= deadline:
                    return False, polls
                if not pending and found_at is not None:
                    continue  # confirm at once
                time.sleep(max(0.0, self.args.interval - (now - begun)))

    # -- one size -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Everything for one size; the lab is always torn down."""
        work = Path(tempfile.mkdtemp(prefix=f"fabric-emu{self.racks}-", dir=self.args.tmp))
        try:
            out = work / "out"
            began = time.monotonic()
            render_all(build_plan(load_fabric(emulation_doc(self.racks, bfd=self.args.bfd))), out)
            self.result["render_s"] = time.monotonic() - began
            sessions_of = {}
            topology = json.loads((out / "topology.json").read_text(encoding="utf-8"))
            for dev in topology["devices"]:
                sessions_of[dev["name"]] = len(dev.get("bgp_neighbors") or ())

            def daemon_args(device: str, daemon: str) -> list[str]:
                return ["--limit-fds", str(limit_fds(sessions_of[device] if daemon == "bgpd" else 0))]

            prefix = f"cce{os.getpid()}-"
            lab = FabricLab(out, prefix=prefix, daemon_args=None if self.args.default_fds else daemon_args)
            with neighbour_room(len(topology["links"])) as raised:
                if raised:
                    self.result["gc_thresh_raised"] = raised
                    print(f"  raised {NEIGH_DIR}/gc_thresh1..3 to {raised} for this size", flush=True)
                try:
                    self._measure(lab)
                finally:
                    began = time.monotonic()
                    lab.down()
                    self.result["teardown_s"] = time.monotonic() - began
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self.result

    def _measure(self, lab: FabricLab) -> None:
        result = self.result
        spines = [n for n in lab.nodes if lab.topology.devices[n]["role"] == "spine"]
        tors = [n for n in lab.nodes if lab.topology.devices[n]["role"] == "tor"]
        sessions = sum(len(lab.intent[s].sessions) for s in spines)
        expected = {name: lab.intent[name].routes for name in lab.nodes}
        result.update(
            routers=len(lab.nodes),
            spines=len(spines),
            tors=len(tors),
            sessions=sessions,
            daemons=sum(len(node.daemons) for node in lab.nodes.values()),
            daemon_names=sorted({d for node in lab.nodes.values() for d in node.daemons}),
        )
        print(
            f"  {self.racks} racks: {len(lab.nodes)} routers, {sessions} sessions, "
            f"{result['daemons']} daemons; load {result['load_before']:.2f}",
            flush=True,
        )

        def pids() -> list[int]:
            return [pid for node in lab.nodes.values() for pid in node.pids()]

        sampler = Sampler(pids)
        started, own_cpu, busy = time.monotonic(), _own_cpu(), cpu_busy_seconds(_read("/proc/stat"))
        try:
            lab.build_batched()
            result["build_s"] = time.monotonic() - started
            lab.start_routers(spines_first=True, workers=self.args.workers, load_timeout=self.args.timeout)
            result["start_s"] = time.monotonic() - started - result["build_s"]
            print(
                f"  built in {result['build_s']:.1f}s, FRR started+loaded in {result['start_s']:.1f}s",
                flush=True,
            )
            done, polls = self._poll_until(
                lab, expected, started, self.args.timeout, sessions=sessions, spines=spines
            )
        finally:
            sampler.stop()
        last = polls[-1]
        result.update(
            converged=done,
            converge_s=last.at if done else None,
            # resolution: the poll that found the last FIB complete (the confirming one follows it)
            poll_s=polls[-2].took if done and len(polls) > 1 else last.took,
            sessions_up=last.sessions,
            fib=asdict(last.fib),
            fib_expected=last.fib.expected,
            polls=[p.as_dict() for p in polls],
            frr_rss_peak_mib=sampler.peak_rss / 1024,
            mem_available_drop_mib=sampler.drop_kib / 1024,
            load_converged=os.getloadavg()[0],
            frr_cpu_s=cpu_seconds(pids()),
            tools_cpu_s=_own_cpu() - own_cpu,
        )
        # what everything else on the machine took meanwhile (kernel work of the lab included)
        others = cpu_busy_seconds(_read("/proc/stat")) - busy - result["frr_cpu_s"] - result["tools_cpu_s"]
        result["others_cores"] = max(0.0, others) / max(0.001, time.monotonic() - started)
        rss, pss = pss_kib(pids())
        result.update(frr_rss_mib=rss / 1024, frr_pss_mib=pss / 1024)
        state = (
            f"converged in {last.at:.1f}s (that poll took {result['poll_s']:.1f}s)"
            if done
            else f"NOT converged after {last.at:.1f}s"
        )
        print(
            f"  {state}: sessions {last.sessions}/{sessions}, FIB routes {last.fib.complete}/"
            f"{last.fib.expected} (short {last.fib.short}, missing {last.fib.missing}, extra "
            f"{last.fib.extra}), next hops {last.fib.hops}/{last.fib.expected_hops}; FRR RSS "
            f"{rss / 1024:.0f} MiB, PSS {pss / 1024:.0f} MiB, "
            f"MemAvailable -{sampler.drop_kib / 1024:.0f} MiB; CPU FRR {result['frr_cpu_s']:.1f}s + "
            f"lab/polls {result['tools_cpu_s']:.1f}s; the rest of the machine used "
            f"{result['others_cores']:.2f} cores meanwhile",
            flush=True,
        )
        if done and not self.args.no_failover:
            self._failover(lab, tors, expected)

    def _failover(self, lab: FabricLab, tors: list[str], expected: Mapping[str, Mapping[str, int]]) -> None:
        """Uplink 1 of the first ToR down, then up; time until every affected FIB follows."""
        tor = sorted(tors, key=lambda n: int(lab.topology.devices[n]["rack"]))[0]
        iface = next(i["name"] for i in lab.topology.devices[tor]["interfaces"] if i["kind"] == "uplink")
        failed = {
            name: want.routes
            for name, want in fabric_intent.intent_from_topology(
                without_link(lab.topology.data, tor, iface), only=lab.nodes
            ).items()
        }
        affected = {name: changed_prefixes(expected[name], failed[name]) for name in lab.nodes}
        affected = {name: prefixes for name, prefixes in affected.items() if prefixes}
        self.result["failover_link"] = f"{tor} {iface}"
        self.result["failover_affected_routers"] = len(affected)
        self.result["failover_affected_routes"] = sum(len(p) for p in affected.values())
        for phase, up, want in (("failover", False, failed), ("restore", True, expected)):
            monitors = {name: lab.monitor_routes(name) for name in affected}
            try:
                pids = [monitor.proc.pid for monitor in monitors.values()]
                wait_for(
                    lambda pids=pids: all(listening(pid) for pid in pids),
                    timeout=30,
                    what="ip monitor processes to listen",
                )
                changed_at = time.time()
                began = time.monotonic()
                lab.set_link(tor, iface, up=up)
                done, polls = self._poll_until(lab, want, began, self.args.timeout)
            finally:
                events = {name: monitor.stop() for name, monitor in monitors.items()}
            lasts = [last_change(events[name], affected[name], changed_at) for name in affected]
            seen = [stamp for stamp in lasts if stamp is not None]
            self.result[f"{phase}_ok"] = done
            self.result[f"{phase}_poll_s"] = polls[-1].at
            self.result[f"{phase}_s"] = (max(seen) - changed_at) if done and seen else None
            self.result[f"{phase}_fib_unseen"] = len(lasts) - len(seen)
            self.result[f"{phase}_fib"] = asdict(polls[-1].fib)
            measured = self.result[f"{phase}_s"]
            text = f"{measured:.2f}s" if measured is not None else "-"
            print(
                f"  {phase} ({tor} {iface} {'up' if up else 'down'}): every affected FIB "
                f"({len(affected)} routers) in {text} (confirmed by poll at {polls[-1].at:.1f}s)"
                + ("" if done else " NOT REACHED"),
                flush=True,
            )


# ------------------------------------------------------------------------------------ report
def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def remove_leftovers() -> list[str]:
    """Remove namespaces (and their FRR) of earlier runs whose process is gone."""
    from lab.netns import cleanup, netns_list

    removed: list[str] = []
    for pid in sorted({m.group(1) for m in map(PREFIX_RE.match, netns_list()) if m}):
        if int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            removed += cleanup(f"cce{pid}-")
    return removed


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def report(results: list[dict[str, Any]]) -> None:
    """The table of every size measured."""
    print(f"\nemulation: {SPINES} spines, 1 ToR/rack with {UPLINKS} uplinks, 4 rack networks, no hosts")
    print(
        f"{'racks':>5} {'routers':>7} {'build':>6} {'start':>6} {'converge':>8} {'FIB routes':>15} "
        f"{'next hops':>15} {'cpu':>6} {'RSS':>7} {'PSS':>7} {'MemAv-':>7} {'failover':>8} {'restore':>7} "
        f"{'load':>5} {'others':>6}"
    )
    for row in results:
        fib = row.get("fib") or {}
        expected = fib.get("complete", 0) + fib.get("short", 0) + fib.get("missing", 0)
        cpu = row["frr_cpu_s"] + row["tools_cpu_s"] if "frr_cpu_s" in row else None
        print(
            f"{row['racks']:>5} {row.get('routers', 0):>7} {_fmt(row.get('build_s'), '5.1f', 's'):>6} "
            f"{_fmt(row.get('start_s'), '5.1f', 's'):>6} {_fmt(row.get('converge_s'), '7.1f', 's'):>8} "
            f"{fib.get('complete', 0):>7}/{expected:<7} "
            f"{fib.get('hops', 0):>7}/{fib.get('expected_hops', 0):<7} "
            f"{_fmt(cpu, '5.1f', 's'):>6} {row.get('frr_rss_peak_mib', 0):>5.0f}Mi "
            f"{row.get('frr_pss_mib', 0):>5.0f}Mi "
            f"{row.get('mem_available_drop_mib', 0):>5.0f}Mi {_fmt(row.get('failover_s'), '7.2f', 's'):>8} "
            f"{_fmt(row.get('restore_s'), '6.2f', 's'):>7} {row.get('load_before', 0):>5.2f} "
            f"{_fmt(row.get('others_cores'), '5.2f'):>6}"
        )
    by_size = {row["racks"]: row for row in results}
    target = by_size.get(TARGET_RACKS)
    if target:
        seconds = target.get("converge_s")
        verdict = "met" if seconds is not None and seconds <= TARGET_SECONDS else "NOT met"
        print(
            f"target {TARGET_RACKS} racks with full ECMP in every kernel FIB within "
            f"{TARGET_SECONDS:.0f}s: {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--racks", default="25,50,100", help="rack counts, comma separated (default 25,50,100)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="convergence timeout per size (s)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between FIB polls")
    parser.add_argument("--bfd", action="store_true", help="BFD on the sessions (bfdd in every router)")
    parser.add_argument("--default-fds", action="store_true", help="no --limit-fds (FRR's default tables)")
    parser.add_argument("--no-failover", action="store_true", help="skip the failover measurement")
    parser.add_argument(
        "--workers", type=int, default=16, help="routers started or loaded at once (default 16)"
    )
    parser.add_argument("--pause", type=float, default=20.0, help="seconds of rest between sizes")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    default_tmp = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    parser.add_argument("--tmp", default=default_tmp, help="where the fabric is rendered (default: /dev/shm)")
    args = parser.parse_args(argv)

    from lab.frr import frr_available

    if os.geteuid() != 0 or not frr_available():
        print("needs root and FRR (Debian package frr)", file=sys.stderr)
        return 2
    leftovers = remove_leftovers()
    if leftovers:
        print(f"removed {len(leftovers)} leftover namespaces of killed runs")
    load1, load5, load15 = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {load1:.2f} {load5:.2f} {load15:.2f}"
    )
    print(f"MemTotal {meminfo(_read('/proc/meminfo')).get('MemTotal', 0) / 2**20:.1f} GiB")
    results: list[dict[str, Any]] = []
    try:
        for index, racks in enumerate(_sizes(args.racks)):
            if index and args.pause:
                time.sleep(args.pause)  # the kernel frees the last size's namespaces meanwhile
            results.append(Emulation(racks, args).run())
            if args.json:
                Path(args.json).write_text(json.dumps({"runs": results}, indent=1) + "\n")
    except KeyboardInterrupt:
        print("\ninterrupted: the namespaces and FRR processes of this run were removed", file=sys.stderr)
        return 130
    finally:
        report(results)
    return 0 if all(row.get("converged") for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())
