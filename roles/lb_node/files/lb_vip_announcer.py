# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Managed by Ansible: compleat.cloud.lb_node
"""Health-tracked BGP announcement of an LB node's VIPs (compleat.cloud.lb_node).

Every ``--interval`` seconds:

1. ask HAProxy's runtime API for ``show stat``: the status of every backend (``UP`` while at
   least one server takes traffic);
2. read HAProxy's configuration files for which backends serve which VIP (``bind VIP:PORT`` and
   ``default_backend`` of each frontend);
3. a VIP is *healthy* when HAProxy answers, at least one backend of its frontends is ``UP``, and
   the node is not drained (the drain file does not exist);
4. make FRR agree: ``network VIP/32`` under ``router bgp`` for every healthy VIP, ``no network``
   for the others (vtysh).  The VIP addresses themselves stay on ``lo`` so established flows
   still reach this node while BGP converges; only the announcement moves.

So a node whose HAProxy dies, whose backends are all down, or that is drained for maintenance
withdraws its VIPs within one interval plus BGP propagation, and ECMP on the fabric sends the
flows to the remaining LB nodes.  Standard library only; runs as a systemd service.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

ROUTER_BGP_RE = re.compile(r"^router bgp (\d+)\s*$", re.M)


# ------------------------------------------------------------------------------------------------
# Pure decisions
# ------------------------------------------------------------------------------------------------
def backend_status(stat_csv: str) -> dict[str, str]:
    """{backend: status} from ``show stat`` CSV (the BACKEND rows)."""
    body = stat_csv.lstrip("# ")
    out: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(body)):
        if row.get("svname") == "BACKEND" and row.get("pxname"):
            out[row["pxname"]] = row.get("status") or ""
    return out


def vip_backends(config_texts: Iterable[str]) -> dict[str, set[str]]:
    """{VIP: backends} from HAProxy configuration texts (each frontend's binds and default_backend)."""
    out: dict[str, set[str]] = {}
    for text in config_texts:
        vips: list[str] = []
        backend: str | None = None
        section = ""
        for raw in [*text.splitlines(), "end-of-file"]:
            words = raw.split()
            if not words or words[0].startswith("#"):
                continue
            if not raw[:1].isspace():
                if section == "frontend":
                    for vip in vips:
                        out.setdefault(vip, set()).update({backend} if backend else set())
                section, vips, backend = words[0], [], None
                continue
            if words[0] == "bind" and len(words) > 1:
                vips.append(words[1].rpartition(":")[0].removeprefix("ipv4@"))
            elif words[0] == "default_backend" and len(words) > 1:
                backend = words[1]
    return out


def healthy_vips(
    vips: Iterable[str], backends: dict[str, set[str]], status: dict[str, str] | None, drained: bool
) -> set[str]:
    """VIPs to announce: HAProxy answers (``status`` not None), not drained, some backend of the VIP UP."""
    if drained or status is None:
        return set()
    return {vip for vip in vips if any(status.get(be) == "UP" for be in backends.get(vip, ()))}


def bgp_asn(running_config: str) -> int | None:
    """The ASN of ``router bgp`` in FRR's running configuration."""
    match = ROUTER_BGP_RE.search(running_config)
    return int(match.group(1)) if match else None


def announced(running_config: str, vips: Iterable[str]) -> set[str]:
    """Which of ``vips`` have a ``network VIP/32`` statement in the running configuration."""
    present = set(re.findall(r"^\s+network (\S+)/32\s*$", running_config, re.M))
    return {vip for vip in vips if vip in present}


def vtysh_commands(asn: int, add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """vtysh ``-c`` commands that announce ``add`` and withdraw ``remove`` (empty when both are)."""
    body = [f"network {vip}/32" for vip in sorted(add)] + [f"no network {vip}/32" for vip in sorted(remove)]
    if not body:
        return []
    return ["configure terminal", f"router bgp {asn}", "address-family ipv4 unicast", *body, "end"]


# ------------------------------------------------------------------------------------------------
# I/O
# ------------------------------------------------------------------------------------------------
def runtime_api(address: str, command: str, timeout: float = 2.0) -> str:
    """One command on HAProxy's runtime API (unix socket path or host:port)."""
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = address
    else:
        host, _sep, port = address.removeprefix("ipv4@").rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    with sock:
        sock.settimeout(timeout)
        sock.connect(target)  # type: ignore[arg-type]
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def haproxy_status(address: str) -> dict[str, str] | None:
    """Backend status, or None when HAProxy does not answer."""
    try:
        return backend_status(runtime_api(address, "show stat"))
    except (OSError, ValueError):
        return None


def config_texts(paths: Sequence[str]) -> list[str]:
    """Texts of the configuration files and of the ``*.cfg`` files in configuration directories."""
    out = []
    for path in paths:
        p = Path(path)
        files = sorted(p.glob("*.cfg")) if p.is_dir() else [p]
        for file in files:
            try:
                out.append(file.read_text(encoding="utf-8"))
            except OSError:
                continue
    return out


def vtysh(argv: list[str], commands: Sequence[str]) -> str:
    """Run vtysh with ``-c`` commands; the output."""
    full = list(argv)
    for command in commands:
        full += ["-c", command]
    return subprocess.run(full, check=True, capture_output=True, text=True, timeout=30).stdout


def ensure_addresses(vips: Iterable[str], device: str) -> None:
    """The VIPs on ``device`` (``lo``): HAProxy binds them, traffic to them is local."""
    for vip in vips:
        subprocess.run(["ip", "addr", "replace", f"{vip}/32", "dev", device], check=True)


def step(args: argparse.Namespace, asn: int, state: set[str] | None) -> set[str]:
    """One round: decide, and change FRR when the decision differs from ``state`` (None: read FRR)."""
    status = haproxy_status(args.socket)
    backends = vip_backends(config_texts(args.config))
    want = healthy_vips(args.vip, backends, status, os.path.exists(args.drain_file))
    have = state if state is not None else announced(vtysh(args.vtysh, ["show running-config"]), args.vip)
    commands = vtysh_commands(asn, want - have, have - want)
    if commands:
        vtysh(args.vtysh, commands)
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} announce {sorted(want - have)} withdraw {sorted(have - want)}", flush=True)
    return want


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="HAProxy runtime API (path or host:port)")
    parser.add_argument("--config", action="append", default=[], help="HAProxy config file or directory")
    parser.add_argument("--vip", action="append", default=[], help="a VIP of this node (repeat)")
    parser.add_argument("--drain-file", default="/etc/haproxy/lb-node.drain", help="exists: withdraw all")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--resync", type=float, default=30.0, help="seconds between reads of FRR's config")
    parser.add_argument("--device", default="lo", help="interface that holds the VIPs")
    parser.add_argument("--vtysh", default="vtysh", help="the vtysh program")
    parser.add_argument("--vty-socket", default="", help="directory of FRR's vty sockets (default FRR's)")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Loop forever (or once): keep FRR's VIP announcements equal to the healthy VIPs."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.vtysh = [args.vtysh, "--vty_socket", args.vty_socket] if args.vty_socket else [args.vtysh]
    ensure_addresses(args.vip, args.device)
    asn = None
    while asn is None:
        asn = bgp_asn(vtysh(args.vtysh, ["show running-config"]))
        if asn is None:
            if args.once:
                print("FRR has no 'router bgp' yet", file=sys.stderr)
                return 1
            time.sleep(args.interval)
    state: set[str] | None = None
    last_read = 0.0
    while True:
        if time.monotonic() - last_read >= args.resync:
            state, last_read = None, time.monotonic()
        try:
            state = step(args, asn, state)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"round failed: {exc}", file=sys.stderr, flush=True)
            state = None
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
