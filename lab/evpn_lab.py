"""Tenant networks over EVPN/VXLAN on the namespace fabric, with hypervisors as VTEPs.

Built on :class:`lab.fabric_lab.FabricLab`: the fabric file gets BGP-to-host and ``bgp.evpn``
(:func:`evpn_fabric_doc`), the engine renders every config (spines, ToRs and the hypervisors'
VTEP configs with ``advertise-all-vni``) and the fabric lab runs them unchanged: one namespace per
spine, ToR and hypervisor (host), FRR zebra + bgpd in each.

On top of that, per tenant network and hypervisor, the data plane of ``cloud.vtep`` -- the same
code the instance module calls -- creates the bridge ``brv<VNI>`` and the VXLAN device
``vxv<VNI>`` (``local`` = the hypervisor's loopback) inside the hypervisor's namespace, on demand,
and removes them when the last instance leaves.  An *instance* is a namespace with ``eth0`` (its
MAC and address) whose veth peer ``t-<name>`` is a port of the tenant bridge, like a libvirt tap.

A tenant *router* (:meth:`EvpnLab.add_router`) is a namespace with two legs: one on the tenant
segment holding the gateway address, one on a rack's ``service`` network (a veth into the ToR's
``service`` bridge) with an address of that network; it forwards and SNATs (nftables) tenant
traffic to the service network.  One router per tenant, so overlapping tenant
CIDRs never meet in one routing table (the host kernel has no VRF).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import vtep

from .fabric_lab import FabricLab
from .netns import IP, sh, wait_for

# BGP-to-host and EVPN; hosts peer over the 9000-byte vm network; BFD off (11 routers' timers
# on 2 shared cores; BFD is not what this lab measures)
EVPN_BGP = {"hosts": True, "evpn": True, "host_network": "vm", "bfd": False}

GARP = r"""
import socket, sys
ifname, mac, addr = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), socket.inet_aton(sys.argv[3])
arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + addr + b"\x00" * 6 + addr
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((ifname, 0))
sock.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
"""


def snat_ruleset(ifname: str, source: str) -> str:
    """nftables ruleset of a tenant router: everything leaving ``ifname`` gets source ``source``."""
    return (
        "table ip nat {\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "{ifname}" counter snat to {source}\n'
        "  }\n"
        "}\n"
    )


def snat_counter(listing: dict[str, Any]) -> int:
    """Packet count of the snat rule in ``nft -j list chain ip nat postrouting`` output."""
    for item in listing.get("nftables", []):
        rule = item.get("rule") if isinstance(item, dict) else None
        if not rule:
            continue
        exprs = rule.get("expr", [])
        if any("snat" in expr for expr in exprs):
            return sum(int(expr["counter"]["packets"]) for expr in exprs if "counter" in expr)
    return 0


def evpn_fabric_doc(base: dict[str, Any]) -> dict[str, Any]:
    """A copy of fabric document ``base`` with BGP-to-host and EVPN switched on (see EVPN_BGP)."""
    doc = copy.deepcopy(base)
    doc["routing"] = "bgp"
    doc.setdefault("bgp", {}).update(EVPN_BGP)
    return doc


@dataclass(frozen=True)
class Endpoint:
    """An instance or tenant router leg on a tenant segment."""

    name: str
    host: str  # hypervisor (VTEP) namespace name in the plan
    vni: int
    mac: str
    cidr: str  # "192.168.10.11/24"
    mtu: int

    @property
    def address(self) -> str:
        """Address without the prefix length."""
        return self.cidr.partition("/")[0]

    @property
    def port(self) -> str:
        """The hypervisor side of its veth (the bridge port, like a libvirt tap)."""
        return f"t-{self.name}"


class EvpnLab:
    """A rendered EVPN fabric in namespaces plus tenant segments, instances and routers."""

    def __init__(self, outdir: str | Path, *, prefix: str) -> None:
        self.fabric = FabricLab(Path(outdir), prefix=prefix)
        self.netns = self.fabric.netns
        topo = self.fabric.topology
        self.vteps = {
            name: str(dev["loopback"]).partition("/")[0]
            for name, dev in topo.devices.items()
            if dev.get("role") == "host" and name in self.fabric.nodes
        }
        if not self.vteps:
            raise ValueError("no VTEP hosts: render the fabric with bgp.hosts and bgp.evpn")
        self.endpoints: dict[str, Endpoint] = {}

    # -- fabric ---------------------------------------------------------------------------------
    def up(self, *, timeout: float = 120.0) -> float:
        """Bring the fabric up, wait for IPv4 intent and every l2vpn evpn session; return seconds."""
        started = time.monotonic()
        self.fabric.up(timeout=timeout)
        remaining = max(5.0, timeout - (time.monotonic() - started))
        wait_for(self.evpn_sessions_up, timeout=remaining, interval=0.2, what="l2vpn evpn sessions")
        return time.monotonic() - started

    def evpn_peers(self, device: str) -> dict[str, str]:
        """{peer: state} of the device's l2vpn evpn sessions."""
        data = self.fabric.nodes[device].json("show bgp l2vpn evpn summary json")
        peers = data.get("peers") or {}
        return {peer: str(info.get("state", "")) for peer, info in peers.items()}

    def evpn_sessions_up(self) -> bool:
        """True when every router has all its planned sessions Established in l2vpn evpn."""
        for name in self.fabric.nodes:
            planned = {
                n["address"] or n["interface"] for n in self.fabric.topology.devices[name]["bgp_neighbors"]
            }
            peers = self.evpn_peers(name)
            if set(peers) != planned or any(state != "Established" for state in peers.values()):
                return False
        return True

    # -- data plane (cloud.vtep in a hypervisor namespace) --------------------------------------
    def runner(self, host: str) -> vtep.Runner:
        """A ``cloud.vtep`` runner executing argv inside ``host``'s namespace."""
        ns = self.netns.ns(host)

        def run(argv: list[str]) -> tuple[int, str, str]:
            proc = sh([IP, "netns", "exec", ns, *argv], check=False)
            return proc.returncode, proc.stdout, proc.stderr

        return run

    def ensure_network(self, host: str, vni: int, mtu: int) -> bool:
        """Tenant bridge + VXLAN device on ``host`` (VTEP address = its loopback)."""
        return vtep.ensure_network(self.runner(host), vni, self.vteps[host], mtu)

    def release_network(self, host: str, vni: int) -> bool:
        """Remove the tenant devices from ``host`` when no port is left."""
        return vtep.release_network(self.runner(host), vni)

    def links(self, host: str) -> dict[str, vtep.Link]:
        """Kernel links of ``host`` as ``cloud.vtep`` sees them."""
        return vtep.read_links(self.runner(host))

    # -- instances and routers ------------------------------------------------------------------
    def attach(self, endpoint: Endpoint, *, gateway: str | None = None, garp: bool = True) -> float:
        """Create ``endpoint``'s namespace and plug it into its tenant bridge; return the attach time.

        Like a VM start: network on demand, NIC with the instance's MAC into the bridge, then a
        gratuitous ARP (what a booting guest sends) so the VTEP learns the MAC at once.
        """
        if endpoint.name in self.endpoints:
            raise ValueError(f"{endpoint.name} is already attached")
        self.ensure_network(endpoint.host, endpoint.vni, endpoint.mtu)
        inst = f"i-{endpoint.name}"
        self.netns.add(inst)
        self.netns.veth(endpoint.host, endpoint.port, inst, "eth0", mtu=endpoint.mtu, up=False)
        self.netns.ip(inst, "link", "set", "eth0", "address", endpoint.mac)
        self.netns.ip(inst, "link", "set", "eth0", "up")
        self.netns.addr(inst, "eth0", endpoint.cidr)
        if gateway:
            self.netns.ip(inst, "route", "replace", "default", "via", gateway)
        self.netns.attach(endpoint.host, endpoint.port, vtep.bridge_name(endpoint.vni))
        attached = time.monotonic()
        self.endpoints[endpoint.name] = endpoint
        if garp:
            self.garp(endpoint.name)
        return attached

    def garp(self, name: str) -> None:
        """Send one gratuitous ARP from the endpoint's eth0."""
        endpoint = self.endpoints[name]
        self.netns.exec(f"i-{name}", sys.executable, "-c", GARP, "eth0", endpoint.mac, endpoint.address)

    def detach(self, name: str, *, release: bool = True) -> bool:
        """Delete the endpoint's namespace (its veth goes with it); release the network if unused.

        Returns what ``release_network`` returned (True: the hypervisor's tenant devices are gone);
        ``release=False`` (a VM that died with its hypervisor) releases nothing and returns False.
        """
        endpoint = self.endpoints.pop(name)
        self.netns.ip(endpoint.host, "link", "del", endpoint.port, check=False)
        ns = self.netns.ns(f"i-{name}")
        sh([IP, "netns", "delete", ns], check=False)
        if ns in self.netns.namespaces:
            self.netns.namespaces.remove(ns)
        return self.release_network(endpoint.host, endpoint.vni) if release else False

    def add_router(self, leg: Endpoint, *, service_tor: str, service_cidr: str, service_gateway: str) -> None:
        """A tenant router: ``leg`` (the gateway address) on the tenant segment, ``svc0`` on the
        ``service`` bridge of ``service_tor`` with ``service_cidr``, default route via the service
        gateway, forwarding on, tenant traffic SNATed to its service address."""
        self.attach(leg)
        inst = f"i-{leg.name}"
        port = f"s-{leg.name}"
        self.netns.veth(service_tor, port, inst, "svc0")
        self.netns.attach(service_tor, port, "service")
        self.netns.addr(inst, "svc0", service_cidr)
        self.netns.ip(inst, "route", "replace", "default", "via", service_gateway)
        self.netns.sysctl(inst, "net.ipv4.ip_forward", 1)
        self.netns.exec(inst, "nft", "-f", "-", stdin=snat_ruleset("svc0", service_cidr.partition("/")[0]))

    def snat_packets(self, router: str) -> int:
        """Packets the tenant router ``router`` has SNATed so far (its nftables rule counter)."""
        out = self.netns.exec(f"i-{router}", "nft", "-j", "list", "chain", "ip", "nat", "postrouting").stdout
        return snat_counter(json.loads(out))

    def add_service(self, name: str, *, tor: str, cidr: str, gateway: str) -> None:
        """A plain service endpoint on ``tor``'s ``service`` bridge (no route to any tenant CIDR)."""
        self.netns.add(name)
        self.netns.veth(tor, f"s-{name}", name, "eth0")
        self.netns.attach(tor, f"s-{name}", "service")
        self.netns.addr(name, "eth0", cidr)
        self.netns.ip(name, "route", "replace", "default", "via", gateway)

    # -- observation ----------------------------------------------------------------------------
    def ping(self, src: str, dst: str, *, count: int = 1, size: int | None = None, df: bool = False) -> bool:
        """Ping from endpoint (or plain namespace) ``src``; ``df`` forbids fragmentation."""
        ns = f"i-{src}" if src in self.endpoints else src
        argv = ["ping", "-n", "-q", "-c", str(count), "-W", "2"]
        if size is not None:
            argv += ["-s", str(size)]
        if df:
            argv += ["-M", "do"]
        return self.netns.exec(ns, *argv, dst, check=False, timeout=2.0 * count + 5).returncode == 0

    def neighbor_mac(self, src: str, address: str) -> str | None:
        """The MAC ``src``'s ARP table holds for ``address`` (None when unresolved)."""
        for entry in self.netns.ip_json(f"i-{src}", "neigh", "show", "to", address):
            if entry.get("lladdr") and "FAILED" not in entry.get("state", []):
                return str(entry["lladdr"])
        return None

    def evpn_macs(self, host: str) -> dict[int, dict[str, dict[str, Any]]]:
        """``show evpn mac vni all json`` of ``host`` as {vni: {mac: entry}}."""
        data = self.fabric.nodes[host].json("show evpn mac vni all json")
        return {
            int(vni): dict(body.get("macs") or {}) for vni, body in data.items() if isinstance(body, dict)
        }

    def evpn_vni(self, host: str, vni: int) -> dict[str, Any]:
        """``show evpn vni <vni> json`` of ``host`` ({} when the VNI is unknown there)."""
        return self.fabric.nodes[host].json(f"show evpn vni {vni} json")

    def remote_vteps(self, host: str, vni: int) -> set[str]:
        """Remote VTEPs in ``host``'s flood list of ``vni`` (from type-3 routes)."""
        data = self.evpn_vni(host, vni)
        # FRR 8.4 lists them under "numRemoteVteps" (sic); later releases say "remoteVteps"
        vteps = data.get("remoteVteps") or data.get("numRemoteVteps") or []
        if not isinstance(vteps, list):
            return set()
        return {str(item.get("ip") if isinstance(item, dict) else item) for item in vteps}

    def expected_vteps(self, vni: int) -> dict[str, set[str]]:
        """{host with ``vni``: the VTEP addresses of the other hosts with ``vni``}."""
        hosts = {ep.host for ep in self.endpoints.values() if ep.vni == vni}
        return {host: {self.vteps[other] for other in hosts if other != host} for host in hosts}

    def flood_lists_complete(self, vnis: list[int]) -> bool:
        """True when every hypervisor of each VNI floods to exactly the other VTEPs of that VNI."""
        return all(
            self.remote_vteps(host, vni) == others
            for vni in vnis
            for host, others in self.expected_vteps(vni).items()
        )

    def wait_evpn(self, vnis: list[int], *, timeout: float = 60.0) -> float:
        """Poll until the flood lists of ``vnis`` are complete; return the seconds waited."""
        started = time.monotonic()
        wait_for(
            lambda: self.flood_lists_complete(vnis), timeout=timeout, interval=0.2, what="EVPN flood lists"
        )
        return time.monotonic() - started

    def ping_until_answered(self, src: str, dst: str, since: float, *, timeout: float = 30.0) -> float:
        """Ping ``dst`` from ``src`` every 50 ms until one reply; seconds from ``since`` to it."""
        ns = self.netns.ns(f"i-{src}")
        argv = [IP, "netns", "exec", ns, "ping", "-n", "-i", "0.05", "-W", "1", "-w", str(int(timeout)), dst]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "bytes from" in line:
                    return time.monotonic() - since
            raise TimeoutError(f"{src} -> {dst}: no reply within {timeout:.0f}s")
        finally:
            proc.kill()
            proc.wait()

    # -- teardown -------------------------------------------------------------------------------
    def logs(self) -> str:
        """Daemon log tails (for failure reports)."""
        return self.fabric.logs()

    def down(self) -> None:
        """Stop FRR, delete every namespace of the lab (instances and routers included)."""
        self.endpoints.clear()
        self.fabric.down()
