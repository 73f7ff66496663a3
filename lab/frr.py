"""FRR daemons inside a lab namespace: start, load a rendered frr.conf, query JSON, stop.

Each node gets a private directory (from :meth:`lab.netns.Netns.node_dir`) holding the zebra API
socket, every daemon's vty socket, pid files and log files, so any number of FRR instances run side
by side (one per namespace) without touching ``/etc/frr`` or ``/run/frr``:

    ip netns exec NS /usr/lib/frr/zebra -d -u frr -g frr -P 0 -f /dev/null \\
        -i DIR/zebra.pid -z DIR/zserv.api --vty_socket DIR --log file:DIR/zebra.log

Daemons start with an empty configuration; the node's rendered ``frr.conf`` is then applied as a
whole with ``vtysh --vty_socket DIR -f frr.conf`` (the integrated-config path ``vtysh -b`` takes), so
the lab runs exactly the generated configuration and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .netns import IP, Netns, NetnsError, kill_pids, sh, wait_for

FRR_LIBDIR = Path(os.environ.get("FRR_LIBDIR", "/usr/lib/frr"))
VTYSH = shutil.which("vtysh") or "/usr/bin/vtysh"
FRR_USER = "frr"
FRR_GROUP = "frr"
# start order matters: zebra first (others connect to it), staticd/bfdd before the protocols
DAEMON_ORDER = ("zebra", "staticd", "bfdd", "bgpd", "ospfd")


def daemons_for_config(text: str) -> tuple[str, ...]:
    """The FRR daemons a configuration needs, in start order (zebra always)."""
    wanted = {"zebra"}
    if re.search(r"^router bgp ", text, re.M):
        wanted.add("bgpd")
    if re.search(r"^router ospf\b", text, re.M):
        wanted.add("ospfd")
    if re.search(r"^bfd$|\sbfd$|\sbfd profile ", text, re.M):
        wanted.add("bfdd")
    if re.search(r"^ip route ", text, re.M):
        wanted.add("staticd")
    return tuple(d for d in DAEMON_ORDER if d in wanted)


def frr_available() -> bool:
    """True when FRR daemons and vtysh are installed."""
    return (FRR_LIBDIR / "zebra").exists() and Path(VTYSH).exists()


def stop_pids(pids: list[int], *, timeout: float = 3.0) -> None:
    """Stop FRR daemons together: SIGTERM, SIGKILL after ``timeout``.

    FRR daemons can take seconds to exit gracefully (zebra withdraws routes, ospfd flushes its
    LSAs); signalling every daemon of a lab at once bounds teardown by the slowest one.
    """
    kill_pids(pids, timeout=timeout)


@dataclass
class FrrNode:
    """FRR running in one namespace of a :class:`~lab.netns.Netns` lab."""

    lab: Netns
    name: str
    daemons: tuple[str, ...] = ("zebra", "bgpd")
    directory: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory = self.lab.run_dir / self.name

    # -- lifecycle ------------------------------------------------------------------------------
    def _daemon_argv(self, daemon: str) -> list[str]:
        d = self.directory
        argv = [
            str(FRR_LIBDIR / daemon),
            "-d",
            "-u",
            FRR_USER,
            "-g",
            FRR_GROUP,
            "-P",
            "0",
            "-f",
            "/dev/null",
            "-i",
            str(d / f"{daemon}.pid"),
            "--vty_socket",
            str(d),
            "-z",
            str(d / "zserv.api"),
            "--log",
            f"file:{d / daemon}.log",
        ]
        if daemon == "bfdd":
            argv += ["--bfdctl", str(d / "bfdd.sock")]
        return argv

    def start(self, *, timeout: float = 15.0) -> None:
        """Start the daemons in order; each one is up when its vty socket exists.

        Each daemon runs in its own UTS namespace whose hostname is the node name: FRR takes the
        hostname from the system (``vtysh -f`` does not pass ``hostname`` on), and peers show it
        in ``show bgp summary`` through the hostname capability.
        """
        self.directory = self.lab.node_dir(self.name)
        shutil.chown(self.directory, FRR_USER, FRR_GROUP)
        os.chmod(self.directory, 0o755)
        for daemon in self.daemons:
            argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.name]
            self.lab.exec(self.name, *argv, *self._daemon_argv(daemon), timeout=timeout)
            sock = self.directory / f"{daemon}.vty"
            wait_for(sock.exists, timeout=timeout, what=f"{self.name}: {daemon} vty socket")

    def load(self, config: Path, *, timeout: float = 30.0) -> None:
        """Apply a whole integrated ``frr.conf`` through vtysh (fails on any rejected line)."""
        proc = sh(self.vtysh_argv("-f", str(config)), check=False, timeout=timeout)
        if proc.returncode != 0:
            raise NetnsError(
                f"{self.name}: vtysh -f {config} rc={proc.returncode}\n{proc.stdout}{proc.stderr}"
            )

    def pids(self) -> list[int]:
        """PIDs of the running daemons (from their pid files)."""
        pids = []
        for daemon in self.daemons:
            try:
                pid = int((self.directory / f"{daemon}.pid").read_text().strip())
            except (OSError, ValueError):
                continue
            if Path(f"/proc/{pid}").exists():
                pids.append(pid)
        return pids

    def stop(self, *, timeout: float = 3.0) -> None:
        """Stop the daemons: SIGTERM, then SIGKILL what is still running after ``timeout``."""
        stop_pids(self.pids(), timeout=timeout)

    # -- queries --------------------------------------------------------------------------------
    def vtysh_argv(self, *args: str) -> list[str]:
        """argv running vtysh against this node (from the root namespace: sockets are files)."""
        return [VTYSH, "--vty_socket", str(self.directory), *args]

    def vtysh(self, *commands: str, timeout: float = 15.0) -> str:
        """Run vtysh commands, return their output."""
        argv = self.vtysh_argv()
        for cmd in commands:
            argv += ["-c", cmd]
        return sh(argv, timeout=timeout).stdout

    def json(self, command: str) -> Any:
        """Run one ``show ... json`` command and parse its output (``{}`` when empty)."""
        out = self.vtysh(command).strip()
        return json.loads(out) if out else {}

    def kernel_routes(self) -> list[dict[str, Any]]:
        """The namespace's main IPv4 routing table (``ip -j route``)."""
        out = sh([IP, "-j", "-n", self.lab.ns(self.name), "route", "show"]).stdout.strip()
        return json.loads(out) if out else []

    def logs(self, lines: int = 40) -> str:
        """The tail of every daemon log (for failure reports)."""
        parts = []
        for daemon in self.daemons:
            path = self.directory / f"{daemon}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {self.name} {daemon}.log ---\n" + "\n".join(tail))
        return "\n".join(parts)
