"""Network namespaces for labs: create, wire, run commands in, and always tear down.

Every namespace of a run is called ``<prefix><name>``; the prefix is per run, so leftovers of a
crashed run are found (and removed) with :func:`cleanup` and never collide with a new run.

Teardown is reliable: :class:`Netns` is a context manager, every live instance is also closed by
an ``atexit`` hook, and SIGTERM/SIGHUP are turned into ``SystemExit`` (so ``finally`` blocks and
the hooks run) unless the program installed its own handlers.  Closing kills every process still
running inside the run's namespaces (``ip netns pids``), then deletes the namespaces and the run
directory.  Only processes inside namespaces created by this module are ever signalled.

Example::

    with Netns("t1-") as lab:
        lab.add("a"); lab.add("b")
        lab.veth("a", "eth0", "b", "eth0")
        lab.addr("a", "eth0", "192.0.2.1/31"); lab.addr("b", "eth0", "192.0.2.0/31")
        lab.exec("a", "ping", "-c1", "192.0.2.0")
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .proc import kill_pids

IP = shutil.which("ip") or "/usr/sbin/ip"
NETNS_DIR = Path("/run/netns")
RUN_ROOT = Path("/run/compleat-lab")
PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
IFNAME_MAX = 15


class NetnsError(RuntimeError):
    """A command of the lab failed; the message carries the command and its stderr."""


def sh(
    cmd: Sequence[str], *, check: bool = True, timeout: float = 30.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (no shell), capture text output; raise :class:`NetnsError` when ``check`` fails."""
    try:
        proc = subprocess.run(
            list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"timeout after {timeout}s: {' '.join(cmd)}") from exc
    if check and proc.returncode != 0:
        raise NetnsError(
            f"rc={proc.returncode}: {' '.join(cmd)}\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` expires.

    The interval grows gently (x1.5, at most 1 s) so a slow condition costs few polls.
    Raises :class:`TimeoutError` naming ``what``.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.1f}s")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 1.0)


def netns_list() -> list[str]:
    """Names of all named network namespaces (``/run/netns``), sorted."""
    try:
        return sorted(entry.name for entry in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def netns_pids(ns: str) -> list[int]:
    """PIDs of the processes running inside namespace ``ns`` (empty when it does not exist)."""
    proc = sh([IP, "netns", "pids", ns], check=False)
    return sorted(int(tok) for tok in proc.stdout.split() if tok.isdigit())


def kill_netns_processes(ns: str, *, timeout: float = 5.0) -> list[int]:
    """Stop every process inside ``ns`` (SIGTERM, then SIGKILL after ``timeout``); return the PIDs."""
    pids = netns_pids(ns)
    kill_pids(pids, timeout=timeout)
    return pids


def delete_netns(ns: str) -> None:
    """Kill the processes inside ``ns`` and delete it (no error when it is already gone)."""
    if not (NETNS_DIR / ns).exists():
        return
    kill_netns_processes(ns)
    sh([IP, "netns", "delete", ns], check=False)


def cleanup(prefix: str) -> list[str]:
    """Remove everything a run with names starting with ``prefix`` left behind; return the names.

    Safe to call at any time (also with no leftovers): deletes matching namespaces (after killing
    the processes inside them) and matching run directories under ``/run/compleat-lab``.
    """
    if not prefix:
        raise ValueError("cleanup needs a non-empty prefix")
    removed = [ns for ns in netns_list() if ns.startswith(prefix)]
    # stop the processes of every namespace at once: graceful exits then overlap
    kill_pids([pid for ns in removed for pid in netns_pids(ns)], timeout=3.0)
    for ns in removed:
        delete_netns(ns)
    if RUN_ROOT.is_dir():
        for entry in sorted(RUN_ROOT.iterdir()):
            if entry.name.startswith(prefix):
                shutil.rmtree(entry, ignore_errors=True)
    return removed


_LIVE: list[Netns] = []
_HOOKS: dict[str, bool] = {"installed": False}


def _close_all() -> None:
    for lab in reversed(list(_LIVE)):
        lab.close()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _install_hooks() -> None:
    """Register the atexit hook once; map SIGTERM/SIGHUP to SystemExit if they have no handler."""
    if _HOOKS["installed"]:
        return
    _HOOKS["installed"] = True
    atexit.register(_close_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread: atexit still covers normal exits
            pass


class Netns:
    """One lab run: the namespaces it created, their links and a private run directory.

    ``keep=True`` leaves everything in place at interpreter exit (for ``lab up`` commands);
    :meth:`close` (or :func:`cleanup` with the same prefix) still removes it.
    """

    def __init__(self, prefix: str, *, keep: bool = False) -> None:
        if not PREFIX_RE.match(prefix):
            raise ValueError(f"prefix {prefix!r} must match {PREFIX_RE.pattern}")
        self.prefix = prefix
        self.keep = keep
        self.namespaces: list[str] = []
        self.run_dir = RUN_ROOT / prefix
        self.closed = False
        if not keep:
            _install_hooks()
            _LIVE.append(self)

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> Netns:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- names ----------------------------------------------------------------------------------
    def ns(self, name: str) -> str:
        """Full namespace name of lab node ``name``."""
        return name if name.startswith(self.prefix) else self.prefix + name

    def node_dir(self, name: str) -> Path:
        """A private directory of node ``name`` (created on demand) for sockets, pids and logs."""
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- namespaces -----------------------------------------------------------------------------
    def add(self, name: str) -> str:
        """Create namespace ``<prefix><name>`` with ``lo`` up; return its full name."""
        full = self.ns(name)
        if full in self.namespaces:
            return full
        if (NETNS_DIR / full).exists():
            raise NetnsError(f"namespace {full} already exists (leftover? run cleanup({self.prefix!r}))")
        sh([IP, "netns", "add", full])
        self.namespaces.append(full)
        self.ip(name, "link", "set", "lo", "up")
        return full

    def add_many(self, names: Iterable[str], *, lo_up: bool = True) -> list[str]:
        """Create many namespaces with one ``ip -batch`` process; return their full names.

        Same result as :meth:`add` per name.  ``lo_up=False`` leaves ``lo`` down for a caller that
        brings it up in its own per-namespace batch (one process per namespace less).
        """
        fulls = list(dict.fromkeys(self.ns(name) for name in names if self.ns(name) not in self.namespaces))
        for full in fulls:
            if (NETNS_DIR / full).exists():
                raise NetnsError(f"namespace {full} already exists (leftover? run cleanup({self.prefix!r}))")
        try:
            self.root_batch(f"netns add {full}" for full in fulls)
        finally:
            # recorded even when the batch stopped half-way: close() removes what exists
            self.namespaces.extend(fulls)
        if lo_up:
            for full in fulls:
                self.ip(full, "link", "set", "lo", "up")
        return fulls

    def exec(
        self, name: str, *cmd: str, check: bool = True, timeout: float = 30.0, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace of node ``name``."""
        return sh([IP, "netns", "exec", self.ns(name), *cmd], check=check, timeout=timeout, stdin=stdin)

    def ip(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ip -n <ns> ARGS``."""
        return sh([IP, "-n", self.ns(name), *args], check=check)

    def ip_json(self, name: str, *args: str) -> Any:
        """Run ``ip -j -n <ns> ARGS`` and parse its JSON (``[]`` for empty output)."""
        out = sh([IP, "-j", "-n", self.ns(name), *args]).stdout.strip()
        return json.loads(out) if out else []

    def batch(self, name: str, commands: Iterable[str]) -> None:
        """Run many ``ip`` commands in one process (``ip -n NS -batch -``)."""
        text = "\n".join(commands)
        if text:
            sh([IP, "-n", self.ns(name), "-batch", "-"], stdin=text + "\n")

    def root_batch(self, commands: Iterable[str], *, timeout: float = 120.0) -> None:
        """Run many ``ip`` commands in the root namespace in one process (``ip -batch -``).

        For commands that name this run's namespaces themselves (``netns add``, ``link add ...
        netns NS type veth peer ... netns NS2``).  Stops at the first failing command.
        """
        text = "\n".join(commands)
        if text:
            sh([IP, "-batch", "-"], stdin=text + "\n", timeout=timeout)

    def sysctl(self, name: str, key: str, value: str | int) -> None:
        """Set a sysctl inside the namespace (``/proc/sys`` is per namespace for net.*)."""
        path = "/proc/sys/" + key.replace(".", "/")
        self.exec(name, "sh", "-c", f"echo {value} > {path}")

    # -- links ----------------------------------------------------------------------------------
    @staticmethod
    def _check_ifname(ifname: str) -> None:
        if not ifname or len(ifname) > IFNAME_MAX or "/" in ifname or " " in ifname:
            raise ValueError(f"invalid interface name {ifname!r} (1..{IFNAME_MAX} chars)")

    def veth(self, a: str, a_if: str, b: str, b_if: str, *, mtu: int | None = None, up: bool = True) -> None:
        """A veth pair ``a:a_if <-> b:b_if`` created directly inside both namespaces.

        ``a == b`` is allowed (both ends in one namespace).
        """
        self._check_ifname(a_if)
        self._check_ifname(b_if)
        cmd = [IP, "link", "add", "name", a_if, "netns", self.ns(a)]
        if mtu:
            cmd += ["mtu", str(mtu)]
        cmd += ["type", "veth", "peer", "name", b_if, "netns", self.ns(b)]
        if mtu:
            cmd += ["mtu", str(mtu)]
        sh(cmd)
        if up:
            self.ip(a, "link", "set", a_if, "up")
            self.ip(b, "link", "set", b_if, "up")

    def bridge(self, name: str, ifname: str, *, mtu: int | None = None) -> None:
        """A Linux bridge ``ifname`` in node ``name`` (up; no STP, forwarding at once)."""
        self._check_ifname(ifname)
        cmd = ["link", "add", "name", ifname]
        if mtu:
            cmd += ["mtu", str(mtu)]
        cmd += ["type", "bridge", "stp_state", "0", "forward_delay", "0"]
        self.ip(name, *cmd)
        self.ip(name, "link", "set", ifname, "up")

    def attach(self, name: str, ifname: str, bridge: str) -> None:
        """Make ``ifname`` a port of ``bridge`` (both in node ``name``)."""
        self.ip(name, "link", "set", ifname, "master", bridge)
        self.ip(name, "link", "set", ifname, "up")

    def link_set(self, name: str, ifname: str, *, up: bool) -> None:
        """Set a link administratively up or down."""
        self.ip(name, "link", "set", ifname, "up" if up else "down")

    def addr(self, name: str, ifname: str, cidr: str) -> None:
        """Add address ``cidr`` to ``ifname`` (idempotent)."""
        self.ip(name, "addr", "replace", cidr, "dev", ifname)

    def route(self, name: str, dst: str, via: str) -> None:
        """Add or replace a static route in node ``name``."""
        self.ip(name, "route", "replace", dst, "via", via)

    def ping(self, name: str, dst: str, *, count: int = 1, timeout: float = 2.0) -> bool:
        """True when ``dst`` answers a ping from node ``name``."""
        proc = self.exec(
            name,
            "ping",
            "-n",
            "-q",
            "-c",
            str(count),
            "-W",
            str(max(1, int(timeout))),
            dst,
            check=False,
            timeout=timeout * count + 5,
        )
        return proc.returncode == 0

    # -- teardown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill processes in, then delete, every namespace of this run; remove the run dir."""
        if self.closed:
            return
        self.closed = True
        try:
            for full in reversed(self.namespaces):
                delete_netns(full)
            # namespaces that another process of the same run created (lab up/down)
            cleanup(self.prefix)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
