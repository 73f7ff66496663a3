# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tenant probe for ``make lab``: a client on a tenant network, in another rack than the instance.

The lab's namespace hosts (r001-h01, ...) run the rendered FRR host configuration, so with the lab
fabric's ``bgp.evpn`` they are VTEPs like the hypervisors.  ``up`` makes the tenant's bridge and
VXLAN device in such a host's namespace with the collection's own ``cloud.vtep`` (what the libvirt
hook does on a hypervisor) and plugs a probe namespace into it, with an address of the tenant
network: pings and HTTP requests from it to an instance cross the fabric over EVPN/VXLAN, from one
rack to another.

    python -m lab.tenant_probe up   --host r001-h01 --vni 10100 --mtu 8950 --cidr 10.200.0.250/24
    python -m lab.tenant_probe ping 10.200.0.2 [--count 3]
    python -m lab.tenant_probe get  http://10.200.0.2/cgi-bin/volume
    python -m lab.tenant_probe down --host r001-h01 --vni 10100

The probe namespace is ``<prefix>probe`` (prefix ``ccf-lab-`` by default), so ``make lab-down``
(``fabric_lab down``) removes it with the fabric.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
from pathlib import Path

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import vtep  # no Ansible needed

from .evpn_lab import GARP
from .netns import IP, Netns, sh

PROBE = "probe"
PORT = "t-probe"  # the probe's port in the host's tenant bridge (like a libvirt tap)
DEFAULT_FABRIC = Path(__file__).resolve().parent.parent / "build" / "lab" / "fabric"


def loopback(fabric: Path, host: str) -> str:
    """The plan's loopback (VTEP address) of ``host`` from the rendered ``topology.json``."""
    topology = json.loads((fabric / "topology.json").read_text(encoding="utf-8"))
    for dev in topology["devices"]:
        if dev["name"] == host:
            return str(dev["loopback"]).partition("/")[0]
    raise SystemExit(f"{host} is not a device of the fabric in {fabric}")


def runner(ns: str) -> vtep.Runner:
    """A ``cloud.vtep`` runner executing argv inside namespace ``ns``."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        proc = sh([IP, "netns", "exec", ns, *argv], check=False)
        return proc.returncode, proc.stdout, proc.stderr

    return run


def up(net: Netns, fabric: Path, host: str, *, vni: int, mtu: int, cidr: str, mac: str) -> None:
    """Tenant devices on ``host`` (idempotent) and the probe plugged into them."""
    vtep.ensure_network(runner(net.ns(host)), vni, loopback(fabric, host), mtu)
    down(net, host, vni, release=False)
    net.add(PROBE)
    net.veth(host, PORT, PROBE, "eth0", mtu=mtu, up=False)
    net.ip(PROBE, "link", "set", "eth0", "address", mac)
    net.ip(PROBE, "link", "set", "eth0", "up")
    net.addr(PROBE, "eth0", cidr)
    net.attach(host, PORT, vtep.bridge_name(vni))
    net.exec(PROBE, sys.executable, "-c", GARP, "eth0", mac, cidr.partition("/")[0])


def down(net: Netns, host: str, vni: int, *, release: bool = True) -> None:
    """Remove the probe (and the host's tenant devices when nothing else uses them)."""
    net.ip(host, "link", "del", PORT, check=False)
    sh([IP, "netns", "delete", net.ns(PROBE)], check=False)
    if release:
        vtep.release_network(runner(net.ns(host)), vni)


def ping(net: Netns, address: str, count: int, timeout: float) -> bool:
    """Ping ``address`` from the probe until one answer or ``timeout`` seconds; print the reply."""
    deadline = time.monotonic() + timeout
    while True:
        proc = sh(
            [IP, "netns", "exec", net.ns(PROBE), "ping", "-n", "-c", str(count), "-W", "1", address],
            check=False,
        )
        if proc.returncode == 0:
            print(proc.stdout.strip().splitlines()[-1])
            return True
        if time.monotonic() >= deadline:
            print(proc.stdout.strip() or proc.stderr.strip(), file=sys.stderr)
            return False
        time.sleep(0.5)


def get(net: Netns, url: str, timeout: float) -> str | None:
    """GET ``url`` from inside the probe namespace (retried until ``timeout``); the body or None."""
    code = (
        "import sys, urllib.request\n"
        "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())\n"
    )
    deadline = time.monotonic() + timeout
    while True:
        proc = sh([IP, "netns", "exec", net.ns(PROBE), sys.executable, "-c", code, url], check=False)
        if proc.returncode == 0:
            return proc.stdout.strip()
        if time.monotonic() >= deadline:
            print(
                proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no answer", file=sys.stderr
            )
            return None
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.tenant_probe", description=__doc__.split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--prefix", default="ccf-lab-", help="namespace prefix of the running lab")
    parser.add_argument("--fabric", type=Path, default=DEFAULT_FABRIC, help="rendered fabric directory")
    sub = parser.add_subparsers(dest="action", required=True)
    p_up = sub.add_parser("up", help="plug the probe into a tenant network on a host")
    p_up.add_argument("--host", required=True)
    p_up.add_argument("--vni", type=int, required=True)
    p_up.add_argument("--mtu", type=int, required=True)
    p_up.add_argument("--cidr", required=True)
    p_up.add_argument("--mac", default="52:54:00:fe:00:01")
    p_down = sub.add_parser("down", help="remove the probe")
    p_down.add_argument("--host", required=True)
    p_down.add_argument("--vni", type=int, required=True)
    p_ping = sub.add_parser("ping", help="ping from the probe (retried until --timeout)")
    p_ping.add_argument("address")
    p_ping.add_argument("--count", type=int, default=1)
    p_ping.add_argument("--timeout", type=float, default=60.0)
    p_get = sub.add_parser("get", help="HTTP GET from the probe, print the body")
    p_get.add_argument("url")
    p_get.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    net = Netns(args.prefix, keep=True)
    if args.action == "up":
        up(net, args.fabric, args.host, vni=args.vni, mtu=args.mtu, cidr=args.cidr, mac=args.mac)
        return 0
    if args.action == "down":
        down(net, args.host, args.vni)
        return 0
    if args.action == "ping":
        return 0 if ping(net, args.address, args.count, args.timeout) else 1
    try:
        body = get(net, args.url, args.timeout)
    except urllib.error.URLError as exc:  # pragma: no cover - get() runs the request in the namespace
        print(exc, file=sys.stderr)
        return 1
    if body is None:
        return 1
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
