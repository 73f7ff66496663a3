"""A whole rendered fabric in network namespaces, running only the generated FRR configurations.

Input is a render output directory (``fabric_out``): ``topology.json`` plus ``<device>/frr.conf``.

- one namespace per spine, ToR and host (``<prefix><device>``);
- one veth per fabric link, named as in the plan (``up1`` on the ToR, ``r1t1u1`` on the spine),
  MTU of the link (its ``mtu`` in topology.json, ``fabric.link_mtu`` for older renders); no
  addresses: the FRR configuration adds them;
- every rack network is a Linux bridge called after the role (``mgmt``, ``storage``, ...) in the
  namespace of the ToR that owns the gateway; the bridge is that ToR's L3 interface.  Hosts and
  further ToRs of the rack attach with a veth whose far end carries the role name.  A stub port
  keeps the bridge's carrier up in racks without hosts.  With an anycast gateway
  (``gateway_devices`` in topology.json) the bridge sits in a namespace of its own per rack
  (``r<rack>-l2``), every ToR attaches like a host and its end carries the gateway MAC;
- hosts without FRR (no BGP-to-host) get their planned addresses, a default route via the
  gateway of their first network (``mgmt`` when present) and, per other network, routes to that
  network's prefixes in the other racks via their own gateway on it;
- FRR (zebra, staticd/bfdd as needed, bgpd or ospfd) per router, started empty and then loaded
  with ``vtysh -f <device>/frr.conf``.

Convergence is checked with the intent module (the same code as ``playbooks/fabric_validate.yml``):
sessions, prefixes and ECMP path counts in FRR's RIB and in the kernel FIB, with bounded polling.

CLI (root; ``--prefix P`` before the action overrides the namespace prefix ``ccf-<fabric>-``)::

    python -m lab.fabric_lab up OUTDIR [--timeout S] [--inventory FILE]
    python -m lab.fabric_lab status OUTDIR
    python -m lab.fabric_lab vtysh OUTDIR r001-tor1 'show ip route' ['show bgp summary' ...]
    python -m lab.fabric_lab inventory OUTDIR [--output FILE]
    python -m lab.fabric_lab down OUTDIR
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent
from ansible_collections.compleat.cloud.plugins.module_utils.fabric import law as fabric_law

from .frr import FrrNode, daemons_for_config, stop_pids
from .netns import IP, NETNS_DIR, Netns, NetnsError, cleanup, wait_for

DEFAULT_TIMEOUT = 90.0


@dataclass(frozen=True)
class Topology:
    """The parts of ``topology.json`` the lab uses."""

    outdir: Path
    data: dict[str, Any]
    devices: dict[str, dict[str, Any]]
    links: list[dict[str, Any]]
    networks: list[dict[str, Any]]

    @property
    def name(self) -> str:
        """Fabric name."""
        return str(self.data.get("fabric", {}).get("name", "fabric"))

    @property
    def routing(self) -> str:
        """``bgp`` or ``ospf``."""
        return str(self.data.get("fabric", {}).get("routing", "bgp"))

    @property
    def link_mtu(self) -> int | None:
        """MTU of fabric links (None: kernel default)."""
        value = self.data.get("fabric", {}).get("link_mtu")
        return int(value) if value else None

    @property
    def ipv6(self) -> bool:
        """True for a dual-stack render (``ipv6.prefix``: every address has an IPv6 twin)."""
        return bool(self.data.get("fabric", {}).get("ipv6_prefix"))

    def mtu_of(self, link: dict[str, Any]) -> int | None:
        """MTU of one link: its own ``mtu`` (topology.json of this engine), else ``link_mtu``."""
        value = link.get("mtu")
        return int(value) if value else self.link_mtu

    def config(self, device: str) -> Path | None:
        """The device's rendered frr.conf, None when it has none."""
        rel = self.devices[device].get("config")
        if not rel:
            return None
        path = Path(rel) if Path(rel).is_absolute() else self.outdir / rel
        return path if path.exists() else None

    def routers(self) -> list[str]:
        """Devices that run FRR (have a rendered config), in topology order."""
        return [name for name in self.devices if self.config(name) is not None]

    def hosts(self) -> list[str]:
        """Host devices, in topology order."""
        return [name for name, dev in self.devices.items() if dev.get("role") == "host"]


def load_topology(outdir: str | Path) -> Topology:
    """Read ``OUTDIR/topology.json``."""
    out = Path(outdir).resolve()
    data = json.loads((out / "topology.json").read_text(encoding="utf-8"))
    devices = {dev["name"]: dev for dev in data.get("devices", [])}
    return Topology(out, data, devices, list(data.get("links", [])), list(data.get("networks", [])))


def default_prefix(topology: Topology) -> str:
    """Namespace prefix of a fabric's lab: ``ccf-<name>-`` (name cut to stay short)."""
    name = re.sub(r"[^a-z0-9-]", "-", topology.name.lower())[:12].strip("-") or "fabric"
    return f"ccf-{name}-"


def without_configs(topology: dict[str, Any], devices: frozenset[str]) -> dict[str, Any]:
    """``topology`` with the FRR config of ``devices`` removed (they count as plain hosts)."""
    if not devices:
        return topology
    return {
        **topology,
        "devices": [
            {k: v for k, v in dev.items() if k != "config"} if dev["name"] in devices else dev
            for dev in topology.get("devices", [])
        ],
    }


@dataclass(frozen=True)
class Wiring:
    """The ``ip`` commands that build a lab's links (see :func:`wiring_commands`)."""

    root: list[str]  # run in the root namespace: veths whose ends sit in two namespaces
    per_device: dict[str, list[str]]  # run inside each device's namespace, after ``root``


def _mtu(mtu: int | None) -> str:
    return f" mtu {mtu}" if mtu else ""


def batchable(topology: Topology) -> bool:
    """Whether :func:`wiring_commands` builds this fabric exactly: IPv4 only (no IPv6 host
    addresses or DAD settings) and gateways on one ToR (no anycast-gateway bridge namespaces)."""
    dual_stack = bool(topology.data.get("fabric", {}).get("ipv6_prefix"))
    return not dual_stack and not any(net.get("gateway_devices") for net in topology.networks)


def wiring_commands(
    topology: Topology, ns: Callable[[str], str], external_hosts: frozenset[str] = frozenset()
) -> Wiring:
    """Every fabric link and rack network of ``topology`` as ``ip -batch`` commands.

    The same interfaces, bridges, MTUs and ports :meth:`FabricLab.up` creates one ``ip`` call at
    a time, in two stages: ``root`` creates every veth with both ends placed directly in their
    namespaces (``ns`` maps a device to its namespace name); then each device's own batch brings
    ``lo`` and its ends up, creates its bridges and stub ports and enslaves the ports.  One
    process per namespace instead of about a dozen per rack.
    """
    devices = [name for name in topology.devices if name not in external_hosts]
    root: list[str] = []
    per_device: dict[str, list[str]] = {name: ["link set lo up"] for name in devices}

    def veth(a: str, a_if: str, b: str, b_if: str, mtu: int | None) -> None:
        end_a, end_b = f"{a_if} netns {ns(a)}{_mtu(mtu)}", f"{b_if} netns {ns(b)}{_mtu(mtu)}"
        root.append(f"link add name {end_a} type veth peer name {end_b}")
        per_device[a].append(f"link set {a_if} up")
        per_device[b].append(f"link set {b_if} up")

    for link in topology.links:
        a, b = link["a"], link["b"]
        veth(a["device"], a["interface"], b["device"], b["interface"], topology.mtu_of(link))
    by_rack: dict[int, list[str]] = {}
    for name, dev in topology.devices.items():
        if dev.get("role") in ("tor", "host") and dev.get("rack") is not None:
            by_rack.setdefault(int(dev["rack"]), []).append(name)
    for index, net in enumerate(topology.networks):
        owner, bridge, mtu = net["device"], net["interface"], net.get("mtu")
        stub_a, stub_b = f"stub{index}a", f"stub{index}b"
        per_device[owner] += [
            f"link add name {bridge}{_mtu(mtu)} type bridge stp_state 0 forward_delay 0",
            f"link set {bridge} up",
            f"link add name {stub_a}{_mtu(mtu)} type veth peer name {stub_b}{_mtu(mtu)}",
            f"link set {stub_a} up",
            f"link set {stub_b} up",
            f"link set {stub_a} master {bridge}",
        ]
        for member in by_rack.get(int(net["rack"]), []):
            if member == owner or member in external_hosts:
                continue
            dev = topology.devices[member]
            port = f"{'t' if dev['role'] == 'tor' else 'h'}{dev.get('index', 0)}n{index}"
            veth(owner, port, member, net["role"], mtu)
            per_device[owner].append(f"link set {port} master {bridge}")
    return Wiring(root, per_device)


def without_peers(
    intent: dict[str, fabric_intent.DeviceIntent], devices: frozenset[str]
) -> dict[str, fabric_intent.DeviceIntent]:
    """``intent`` without the BGP sessions to ``devices`` (external hosts come up later)."""
    if not devices:
        return intent
    return {
        name: replace(want, sessions={k: v for k, v in want.sessions.items() if v not in devices})
        for name, want in intent.items()
    }


# extra command-line arguments of one FRR daemon: (device, daemon) -> argv tail
DaemonArgs = Callable[[str, str], Sequence[str]]


@dataclass
class TunedFrrNode(FrrNode):
    """An :class:`FrrNode` whose daemons get extra arguments (e.g. ``--limit-fds`` in big labs)."""

    extra_args: DaemonArgs | None = None

    def _daemon_argv(self, daemon: str) -> list[str]:
        argv = super()._daemon_argv(daemon)
        if self.extra_args is not None:
            argv += list(self.extra_args(self.name, daemon))
        return argv


@dataclass
class FabricLab:
    """Bring a rendered fabric up in namespaces, query it, fail links, tear it down."""

    outdir: Path
    prefix: str = ""
    keep: bool = False
    # Plan hosts played by something else (a lab VM): no namespace, no veth, no addresses; the
    # VM's tap joins the ToR's bridge of each rack network instead (lab/vm.py netns= bridge=).
    external_hosts: frozenset[str] = frozenset()
    # Extra arguments per (device, daemon), e.g. a smaller ``--limit-fds`` (FRR sizes per-fd
    # tables by it; the default is the process's open-file limit): less memory per daemon.
    daemon_args: DaemonArgs | None = None
    topology: Topology = field(init=False)
    netns: Netns = field(init=False)
    nodes: dict[str, FrrNode] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.topology = load_topology(self.outdir)
        if not self.prefix:
            self.prefix = default_prefix(self.topology)
        self.netns = Netns(self.prefix, keep=self.keep)
        unknown = sorted(set(self.external_hosts) - set(self.topology.hosts()))
        if unknown:
            names = ", ".join(unknown)
            raise ValueError(f"external hosts {names} are not hosts of fabric {self.topology.name}")
        # External hosts (lab VMs) run their own FRR, if any, and come up later: the lab neither
        # starts nor waits for them (their sessions and routes are left out of the intent here;
        # fabric_validate.yml checks the whole fabric once they are up).
        self.intent = without_peers(
            fabric_intent.intent_from_topology(without_configs(self.topology.data, self.external_hosts)),
            self.external_hosts,
        )
        for name in self.topology.routers():
            if name not in self.external_hosts:
                self.nodes[name] = self._node(name)

    def _node(self, name: str) -> FrrNode:
        config = self.topology.config(name)
        text = config.read_text(encoding="utf-8") if config else ""
        if self.daemon_args is not None:
            return TunedFrrNode(self.netns, name, daemons_for_config(text), extra_args=self.daemon_args)
        return FrrNode(self.netns, name, daemons_for_config(text))

    def __enter__(self) -> FabricLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- bring-up -------------------------------------------------------------------------------
    def up(self, *, timeout: float = DEFAULT_TIMEOUT, wait: bool = True, batched: bool = False) -> float:
        """Build namespaces and links, start FRR with the rendered configs; return seconds taken.

        With ``wait`` it also waits until :meth:`differences` is empty.  ``batched`` (for large
        labs) builds the same namespaces and links with one ``ip -batch`` per namespace
        (:func:`wiring_commands`) and starts the spines before the other routers; fabrics it
        does not cover (:func:`batchable`) are built the step-by-step way.
        """
        started = time.monotonic()
        if batched and batchable(self.topology):
            self.build_batched()
            self.start_routers(spines_first=True)
            self._plain_hosts(bgp=True)
            if wait:
                self.wait_converged(timeout=max(1.0, timeout - (time.monotonic() - started)))
            return time.monotonic() - started
        topo = self.topology
        for name in topo.devices:
            if name not in self.external_hosts:
                self.netns.add(name)
                if topo.ipv6:
                    self._no_dad(name)
        for link in topo.links:
            a, b = link["a"], link["b"]
            mtu = topo.mtu_of(link)
            self.netns.veth(a["device"], a["interface"], b["device"], b["interface"], mtu=mtu)
        self._rack_networks()
        self._plain_hosts()
        if topo.ipv6:
            self._plain_hosts(v6=True)
        # routers start and load in parallel: bgpd on a spine retries a refused connection only
        # after its connect timer, so bringing every peer up together converges fastest
        with ThreadPoolExecutor(max_workers=max(1, len(self.nodes))) as pool:
            for future in [pool.submit(self._start_node, name) for name in self.nodes]:
                future.result()
        self._plain_hosts(bgp=True)
        if topo.ipv6:
            self._plain_hosts(bgp=True, v6=True)
        if wait:
            self.wait_converged(timeout=max(1.0, timeout - (time.monotonic() - started)))
        return time.monotonic() - started

    def build_batched(self, *, workers: int = 8) -> None:
        """Namespaces, links, rack networks and plain hosts, as :meth:`up` builds them, in batches.

        Only for :func:`batchable` fabrics (ValueError otherwise).
        """
        if not batchable(self.topology):
            raise ValueError(f"fabric {self.topology.name}: dual stack or anycast gateways need up()")
        wiring = wiring_commands(self.topology, self.netns.ns, self.external_hosts)
        self.netns.add_many(wiring.per_device, lo_up=False)
        self.netns.root_batch(wiring.root)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [
                pool.submit(self.netns.batch, name, commands) for name, commands in wiring.per_device.items()
            ]:
                future.result()
        self._plain_hosts()

    def start_routers(
        self, *, spines_first: bool = False, workers: int | None = None, load_timeout: float = 30.0
    ) -> None:
        """Start every router's FRR and load its rendered config, in parallel.

        ``spines_first``: every router's daemons start, then the spines' configs are loaded and
        only then the others', so every ToR's first connection attempt finds its spine sessions
        configured (no wait for a connect retry) and the big spine configs load while nothing
        else does.  ``workers`` bounds how many routers start (or load) at once (default: all);
        with hundreds of routers on a few cores, all at once makes every ``vtysh -f`` slow.
        ``load_timeout`` (with ``spines_first``): seconds one ``vtysh -f`` may take (a spine of
        300 racks has a 5 500-line configuration).
        """

        def run(job: Callable[[str], None], names: list[str]) -> None:
            if not names:
                return
            with ThreadPoolExecutor(max_workers=min(len(names), workers or len(names))) as pool:
                futures = [pool.submit(job, name) for name in names]
                try:
                    for future in futures:
                        future.result()
                except BaseException:  # a failure or Ctrl-C: start no more routers
                    for future in futures:
                        future.cancel()
                    raise

        if not spines_first:
            run(self._start_node, list(self.nodes))
            return
        configs: dict[str, Path] = {}
        for name in self.nodes:
            config = self.topology.config(name)
            if config is None:
                raise FileNotFoundError(f"{name}: rendered frr.conf missing")
            configs[name] = config
        spines = [n for n in self.nodes if self.topology.devices[n].get("role") == "spine"]
        run(lambda name: self.nodes[name].start(), list(self.nodes))
        for group in (spines, [n for n in self.nodes if n not in spines]):
            run(lambda name: self.nodes[name].load(configs[name], timeout=load_timeout), group)

    def _start_node(self, name: str) -> None:
        node = self.nodes[name]
        config = self.topology.config(name)
        if config is None:
            raise FileNotFoundError(f"{name}: rendered frr.conf missing")
        node.start()
        node.load(config)

    def _rack_networks(self) -> None:
        """Bridges per rack network in the gateway ToR; other ToRs and hosts attach by veth."""
        topo = self.topology
        by_rack: dict[int, list[str]] = {}
        for name, dev in topo.devices.items():
            if dev.get("role") in ("tor", "host") and dev.get("rack") is not None:
                by_rack.setdefault(int(dev["rack"]), []).append(name)
        for index, net in enumerate(topo.networks):
            if net.get("gateway_devices"):
                self._anycast_rack_network(index, net, by_rack.get(int(net["rack"]), []))
                continue
            owner, bridge, mtu = net["device"], net["interface"], net.get("mtu")
            self.netns.bridge(owner, bridge, mtu=mtu)
            stub_a, stub_b = f"stub{index}a", f"stub{index}b"
            self.netns.veth(owner, stub_a, owner, stub_b, mtu=mtu)
            self.netns.attach(owner, stub_a, bridge)
            for member in by_rack.get(int(net["rack"]), []):
                if member == owner or member in self.external_hosts:
                    continue
                dev = topo.devices[member]
                port = f"{'t' if dev['role'] == 'tor' else 'h'}{dev.get('index', 0)}n{index}"
                self.netns.veth(owner, port, member, net["role"], mtu=mtu)
                self.netns.attach(owner, port, bridge)

    def _anycast_rack_network(self, index: int, net: dict[str, Any], members: list[str]) -> None:
        """A rack network with an anycast gateway: its bridge sits in the rack's own L2 namespace
        (``r<rack>-l2``), so it outlives any ToR; every ToR and host attaches by veth, and every
        ToR's end carries the gateway MAC (FRR cannot set MACs)."""
        topo = self.topology
        switch, bridge, mtu = f"{fabric_law.rack_label(int(net['rack']))}-l2", net["role"], net.get("mtu")
        self.netns.add(switch)
        self.netns.bridge(switch, bridge, mtu=mtu)
        for member in members:
            if member in self.external_hosts:
                continue
            dev = topo.devices[member]
            port = f"{'t' if dev['role'] == 'tor' else 'h'}{dev.get('index', 0)}n{index}"
            self.netns.veth(switch, port, member, net["role"], mtu=mtu, up=False)
            if member in net["gateway_devices"]:
                self._anycast_port(member, net)
            self.netns.attach(switch, port, bridge)
            self.netns.link_set(member, net["role"], up=True)

    def _no_dad(self, name: str) -> None:
        """No IPv6 duplicate address detection in the namespace: addresses FRR or the lab add are
        usable at once instead of "tentative" for a second (every address is planned, unique)."""
        conf = "/proc/sys/net/ipv6/conf"
        self.netns.exec(
            name, "sh", "-c", f"echo 0 > {conf}/all/accept_dad; echo 0 > {conf}/default/accept_dad"
        )

    def _anycast_port(self, tor: str, net: dict[str, Any]) -> None:
        """A ToR's rack port as the host's network configuration leaves it before FRR starts: the
        gateway MAC, no IPv6 DAD (every ToR shares the MAC, so the link-local address too), and
        the planned addresses (own first, then the gateway), which zebra then finds in the kernel
        at start (on a loaded box zebra sometimes never confirmed addresses it added itself)."""
        role = net["role"]
        self.netns.ip(tor, "link", "set", role, "address", net["gateway_mac"])
        self.netns.sysctl(tor, f"net.ipv6.conf.{role}.accept_dad", 0)
        for iface in self.topology.devices[tor].get("interfaces", []):
            if iface["name"] == role:
                for cidr in (iface.get("address"), iface.get("gateway")):
                    if cidr:
                        self.netns.addr(tor, role, cidr)

    def _plain_hosts(self, *, bgp: bool = False, v6: bool = False) -> None:
        """Hosts without FRR: planned addresses, a default route via the gateway of their first
        network (``mgmt`` when present) and, for every other network, routes to that network in
        the other racks via its own gateway (storage traffic stays on the storage network).
        ``bgp``: the BGP hosts (FRR, started: zebra gave them their addresses) instead: routes to
        every network of the other racks via its own gateway except the network they peer over,
        whose subnets and the loopbacks their sessions carry (render.host); no default route, so
        a session never detours over another network when its own link fails. ``v6``: the same
        for the dual stack's addresses (``address6``, ``gateway6``, the racks' /64s)."""
        topo = self.topology
        key = "6" if v6 else ""
        gateways = {(int(n["rack"]), n["role"]): n.get(f"gateway{key}") for n in topo.networks}
        by_role: dict[str, list[tuple[int, str]]] = {}
        for net in topo.networks:
            by_role.setdefault(net["role"], []).append((int(net["rack"]), net.get(f"prefix{key}", "")))
        for name in topo.hosts():
            if name in self.external_hosts or (name in self.nodes) != bgp:
                continue
            dev = topo.devices[name]
            rack = int(dev["rack"])
            peered = {str(nbr.get("interface")) for nbr in dev.get("bgp_neighbors", ())} if bgp else set()
            ifnames: dict[str, str] = {}  # network role -> interface
            commands = []
            for iface in dev.get("interfaces", []):
                if iface.get(f"address{key}") and not bgp:
                    nodad = " nodad" if v6 else ""
                    commands.append(f"addr replace {iface[f'address{key}']} dev {iface['name']}{nodad}")
                if iface.get("kind") == "network":
                    ifnames[iface.get("network") or iface["name"]] = iface["name"]
            roles = list(ifnames)
            for role in roles:
                gateway = gateways.get((rack, role))
                if not gateway:
                    continue
                if role == ("mgmt" if "mgmt" in roles else roles[0]) and not bgp:
                    commands.append(f"route replace default via {gateway} dev {ifnames[role]} onlink")
                    continue
                if role in peered:
                    continue
                commands.extend(
                    f"route replace {prefix} via {gateway} dev {ifnames[role]} onlink"
                    for other, prefix in by_role[role]
                    if other != rack and prefix
                )
            if commands:
                self.netns.batch(name, commands)

    # -- state ----------------------------------------------------------------------------------
    def observe(self, device: str, *, kernel: bool = True) -> dict[str, Any]:
        """FRR JSON (and the kernel FIB) of one router, as the intent module expects it."""
        node = self.nodes[device]
        observed: dict[str, Any] = {"routes": node.json("show ip route json")}
        if self.topology.routing == "bgp":
            observed["bgp_summary"] = node.json("show bgp vrf default ipv4 unicast summary json")
        else:
            observed["ospf_neighbors"] = node.json("show ip ospf neighbor json")
        if kernel:
            observed["kernel_routes"] = node.kernel_routes()
        return observed

    def differences(self, devices: Iterable[str] | None = None) -> list[fabric_intent.Difference]:
        """Every difference between intent and the running lab (empty when converged)."""
        diffs: list[fabric_intent.Difference] = []
        for name in devices if devices is not None else self.nodes:
            if name in self.intent:
                diffs.extend(fabric_intent.compare(self.intent[name], self.observe(name)))
        return diffs

    def wait_converged(self, *, timeout: float = DEFAULT_TIMEOUT, settle: float = 1.5) -> float:
        """Poll until the lab matches intent and keeps matching for ``settle`` seconds.

        Returns the seconds waited.  The settle time catches link-state protocols that match
        intent for a moment while LSAs are still flooding.  Raises TimeoutError with the
        remaining differences.
        """
        started = time.monotonic()
        last: list[fabric_intent.Difference] = []
        since: list[float] = []

        def converged() -> bool:
            last[:] = self.differences()
            now = time.monotonic()
            if last:
                since.clear()
                return False
            if not since:
                since.append(now)
            return now - since[0] >= settle

        try:
            wait_for(converged, timeout=timeout, interval=0.2, what="fabric convergence")
        except TimeoutError as exc:
            detail = "\n".join(f"  {diff}" for diff in last[:40])
            raise TimeoutError(f"{exc}; {len(last)} differences left:\n{detail}") from exc
        return time.monotonic() - started

    def route_paths(self, device: str, prefix: str) -> dict[str, list[str]]:
        """Next hops of ``prefix`` on ``device``: FRR's RIB (installed) and the kernel FIB."""
        observed = self.observe(device)
        return {
            "rib": fabric_intent.rib_nexthops(observed["routes"], prefix),
            "fib": fabric_intent.fib_nexthops(observed["kernel_routes"], prefix),
        }

    def set_link(self, device: str, interface: str, *, up: bool) -> None:
        """Administratively fail or restore one interface (the veth peer loses carrier)."""
        self.netns.link_set(device, interface, up=up)

    def silent_failure(self, device: str, interface: str, *, on: bool) -> None:
        """Drop every packet ``interface`` sends or receives while its carrier stays up.

        nftables ``netdev`` table with ingress and egress chains of policy drop bound to the
        interface, so neither BFD nor data crosses the link in either direction and no link-down
        event tells anyone.  Off deletes the table.
        """
        table = f"silent_{re.sub(r'[^A-Za-z0-9_]', '_', interface)}"
        if not on:
            self.netns.exec(device, "nft", "delete", "table", "netdev", table, check=False)
            return
        chains = "".join(
            f'  chain {chain} {{\n    type filter hook {hook} device "{interface}" priority 0;'
            " policy drop;\n  }\n"
            for chain, hook in (("rx", "ingress"), ("tx", "egress"))
        )
        self.netns.exec(device, "nft", "-f", "-", stdin=f"table netdev {table} {{\n{chains}}}\n")

    def flow_uplink(self, tor: str, src_address: str, dst_address: str, iif: str = "mgmt") -> str:
        """The uplink the kernel of ``tor`` hashes the flow ``src -> dst`` (arriving on ``iif``) to."""
        out = self.netns.ip(tor, "route", "get", dst_address, "from", src_address, "iif", iif).stdout
        match = re.search(r"\bdev (\S+)", out)
        if match is None:
            raise NetnsError(f"{tor}: no route for {src_address} -> {dst_address}: {out}")
        return match.group(1)

    def ping_flood(self, src: str, dst_address: str, *, interval: float = 0.01) -> PingFlood:
        """Start pinging ``dst_address`` from ``src`` every ``interval`` s (stop with ``.stop()``)."""
        argv = [IP, "netns", "exec", self.netns.ns(src), "ping", "-n", "-q", "-i", f"{interval:g}"]
        argv += ["-W", "1", dst_address]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return PingFlood(proc, interval)

    def monitor_routes(self, device: str) -> RouteMonitor:
        """Start ``ip -ts monitor route`` in ``device`` (kernel FIB changes with timestamps)."""
        argv = [IP, "-n", self.netns.ns(device), "-ts", "monitor", "route"]
        return RouteMonitor(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    def watch_bfd(self, device: str, interface: str, *, timeout: float = 10.0) -> BfdWatch:
        """Poll (in a thread) until the BFD session of ``device`` on ``interface`` is not up."""
        return BfdWatch(self.nodes[device], interface, timeout)

    def apply_config(self, device: str, new_text: str) -> list[str]:
        """Move the running FRR of ``device`` from its loaded config to ``new_text`` (vtysh).

        The difference between the two rendered files, line by line inside their stanzas, is
        applied as configuration commands (``no LINE`` for removed lines), the way an operator
        applies a re-rendered config; returns the commands sent.
        """
        config = self.topology.config(device)
        old_text = config.read_text(encoding="utf-8") if config else ""
        commands = config_delta(old_text, new_text)
        if commands:
            self.nodes[device].vtysh("configure terminal", *commands)
        if config is not None:
            config.write_text(new_text, encoding="utf-8")
        return commands

    def ping(self, src: str, dst_address: str, *, count: int = 1) -> bool:
        """Ping from namespace ``src``."""
        return self.netns.ping(src, dst_address, count=count)

    def host_address(self, host: str, role: str = "mgmt") -> str:
        """Planned address (no prefix length) of ``host`` on network ``role``."""
        for iface in self.topology.devices[host].get("interfaces", []):
            if (iface.get("network") or iface["name"]) == role and iface.get("address"):
                return str(iface["address"]).partition("/")[0]
        raise KeyError(f"{host} has no address on {role}")

    def status(self) -> dict[str, Any]:
        """Per router: sessions/neighbors summary and the number of differences from intent."""
        report: dict[str, Any] = {}
        for name in self.nodes:
            if not (NETNS_DIR / self.netns.ns(name)).exists():
                report[name] = {"state": "absent"}
                continue
            try:
                diffs = self.differences([name])
            except Exception as exc:  # status must report, not crash
                report[name] = {"state": "error", "error": str(exc).splitlines()[0]}
                continue
            report[name] = {"state": "ok" if not diffs else "differs", "differences": [str(d) for d in diffs]}
        return report

    def inventory(self) -> dict[str, Any]:
        """An Ansible inventory of the lab routers for ``playbooks/fabric_validate.yml``.

        Local connection; each host runs vtysh against its node's socket directory and
        ``ip -n NS`` for the kernel FIB.
        """
        hosts: dict[str, Any] = {}
        for name, node in self.nodes.items():
            hosts[name] = {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "fabric_device": name,
                "fabric_vtysh": node.vtysh_argv(),
                "fabric_ip": ["ip", "-n", self.netns.ns(name)],
            }
        return {
            "all": {
                "children": {"fabric_routers": {"hosts": hosts}},
                "vars": {"fabric_out": str(self.topology.outdir)},
            }
        }

    def write_inventory(self, path: str | Path) -> Path:
        """Write :meth:`inventory` as JSON (a valid YAML inventory file)."""
        target = Path(path)
        target.write_text(json.dumps(self.inventory(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return target

    def logs(self) -> str:
        """Daemon log tails of every router (for failure reports)."""
        return "\n".join(node.logs() for node in self.nodes.values())

    # -- teardown -------------------------------------------------------------------------------
    def down(self) -> None:
        """Stop FRR and remove every namespace and run directory of this lab (idempotent)."""
        try:
            stop_pids([pid for node in self.nodes.values() for pid in node.pids()])
        finally:
            self.netns.close()


# ------------------------------------------------------------------------------------ operations
@dataclass
class PingStats:
    """What a :class:`PingFlood` counted."""

    sent: int
    received: int
    interval: float
    elapsed: float = 0.0  # seconds ping ran

    @property
    def lost(self) -> int:
        """Requests without an answer."""
        return self.sent - self.received

    @property
    def loss_window(self) -> float:
        """Seconds of lost traffic (lost requests x the nominal interval)."""
        return self.lost * self.interval

    @property
    def actual_interval(self) -> float:
        """Mean seconds between requests (longer than the nominal interval on a loaded box)."""
        return self.elapsed / self.sent if self.sent else self.interval

    @property
    def measured_loss_window(self) -> float:
        """Seconds of lost traffic at the interval ping actually kept."""
        return self.lost * self.actual_interval


@dataclass
class PingFlood:
    """A running ``ping -i INTERVAL`` (started by :meth:`FabricLab.ping_flood`)."""

    proc: subprocess.Popen[str]
    interval: float = 0.01
    started: float = field(default_factory=time.monotonic)

    def stop(self) -> PingStats:
        """Interrupt ping (it prints its summary on SIGINT) and return the counts."""
        elapsed = time.monotonic() - self.started
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        match = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        if match is None:
            raise NetnsError(f"ping printed no summary: {out}{err}")
        return PingStats(int(match.group(1)), int(match.group(2)), self.interval, elapsed)


class BfdWatch:
    """Wall-clock time at which a BFD session left ``up`` (polled through vtysh, ~10-30 ms apart)."""

    def __init__(self, node: FrrNode, interface: str, timeout: float) -> None:
        self.node, self.interface, self.timeout = node, interface, timeout
        self.down_at: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _status(self) -> str:
        for peer in self.node.json("show bfd peers json"):
            if peer.get("interface") == self.interface:
                return str(peer.get("status"))
        return "absent"

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._status() != "up":
                self.down_at = time.time()
                return

    def result(self) -> float | None:
        """The time the session was first seen not up (None: it stayed up until the timeout)."""
        self.thread.join(self.timeout + 5)
        return self.down_at


@dataclass
class RouteMonitor:
    """A running ``ip -ts monitor route``; :meth:`stop` returns (wall-clock time, event text)."""

    proc: subprocess.Popen[str]

    def stop(self) -> list[tuple[float, str]]:
        """Stop the monitor and parse its events (continuation lines join their event)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _err = self.proc.communicate(timeout=10)
        return parse_monitor(out)


_TS_RE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\]\s*(.*)$")


def parse_monitor(text: str) -> list[tuple[float, str]]:
    """Events of ``ip -ts monitor`` output as (epoch seconds, text); multipath lines joined."""
    events: list[tuple[float, str]] = []
    for line in text.splitlines():
        match = _TS_RE.match(line)
        if match:
            stamp = datetime.fromisoformat(match.group(1)).timestamp()
            events.append((stamp, match.group(2)))
        elif events and line.strip():
            events[-1] = (events[-1][0], f"{events[-1][1]} {line.strip()}")
    return events


def _stanzas(text: str) -> dict[tuple[str, ...], list[str]]:
    """Lines of an FRR config keyed by their context (the stanza headers they sit in)."""
    out: dict[tuple[str, ...], list[str]] = {}
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        body = line.strip()
        if not body or body == "!" or body.startswith("frr version") or body == "end":
            continue
        depth = len(line) - len(body)
        if body in ("exit", "exit-address-family", "exit-vrf"):
            while stack and stack[-1][0] >= depth:
                stack.pop()
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        context = tuple(header for _depth, header in stack)
        out.setdefault(context, []).append(body)
        if _opens_stanza(body):
            stack.append((depth, body))
            out.setdefault(tuple(header for _depth, header in stack), [])
    return out


_STANZA_RE = re.compile(
    r"^(interface |router |address-family |route-map |bfd$|profile |peer |vrf |segment-routing)"
)


def _opens_stanza(line: str) -> bool:
    return bool(_STANZA_RE.match(line))


def config_delta(old: str, new: str) -> list[str]:
    """vtysh ``configure`` commands turning running config ``old`` into ``new``.

    Per stanza: lines only in ``old`` become ``no LINE`` (in reverse order), lines only in ``new``
    are sent as they are; each group is entered through its headers and left with ``end``-free
    ``exit``s.  Enough for option changes inside existing stanzas (drain, timers); whole stanzas
    that appear are sent with their header, ones that disappear are negated by their header.
    """
    before, after = _stanzas(old), _stanzas(new)
    commands: list[str] = []
    for context in dict.fromkeys([*before, *after]):
        old_lines, new_lines = before.get(context, []), after.get(context, [])
        if context and context not in after:
            continue  # negated through its header in the parent context
        removed = [line for line in old_lines if line not in new_lines]
        added = [line for line in new_lines if line not in old_lines and not _opens_stanza(line)]
        if not removed and not added:
            continue
        commands.extend(context)
        commands.extend(f"no {line}" for line in reversed(removed))
        commands.extend(added)
        commands.extend("exit" for _header in context)
    return commands


# ------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m lab.fabric_lab up|down|status|inventory|vtysh OUTDIR ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.fabric_lab", description=__doc__.split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--prefix", default="", help="namespace prefix (default ccf-<fabric>-)")
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="build the lab and wait until it matches intent")
    up.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="convergence timeout (s)")
    up.add_argument("--inventory", type=Path, help="also write an Ansible inventory of the lab here")
    up.add_argument(
        "--external-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a plan host played by a VM: no namespace; its VM joins the ToR bridges (repeatable)",
    )
    sub.add_parser("down", help="remove every namespace, daemon and run directory of the lab")
    sub.add_parser("status", help="differences from intent per router (exit 1 if any)")
    inv = sub.add_parser("inventory", help="print (or write) the Ansible inventory of the lab")
    inv.add_argument("--output", type=Path, help="write here instead of printing")
    vty = sub.add_parser("vtysh", help="run vtysh commands on one router of the lab")
    for name, parsed in sub.choices.items():
        parsed.add_argument("outdir", type=Path, help="render output (topology.json, <device>/frr.conf)")
        if name == "vtysh":
            parsed.add_argument("device")
            parsed.add_argument("commands", nargs="+")
    vty.description = "e.g. vtysh OUTDIR r001-tor1 'show ip route'"
    args = parser.parse_args(argv)

    if args.action == "down" and not (args.outdir / "topology.json").exists():
        if args.prefix:
            print(f"removed {len(cleanup(args.prefix))} namespaces with prefix {args.prefix}")
        else:
            print(f"{args.outdir}/topology.json not found: nothing to tear down")
        return 0
    external = frozenset(getattr(args, "external_host", []))
    lab = FabricLab(args.outdir, prefix=args.prefix, keep=True, external_hosts=external)
    if args.action == "down":
        removed = cleanup(lab.prefix)
        print(f"removed {len(removed)} namespaces with prefix {lab.prefix}")
        return 0
    if args.action == "status":
        report = lab.status()
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0 if all(item.get("state") == "ok" for item in report.values()) else 1
    if args.action == "inventory":
        if args.output:
            print(lab.write_inventory(args.output))
        else:
            print(json.dumps(lab.inventory(), indent=2, sort_keys=True))
        return 0
    if args.action == "vtysh":
        if args.device not in lab.nodes:
            parser.error(f"{args.device} is not a router of this fabric ({', '.join(lab.nodes)})")
        print(lab.nodes[args.device].vtysh(*args.commands), end="")
        return 0
    return _up(lab, args.timeout, args.inventory)


def _up(lab: FabricLab, timeout: float, inventory: Path | None) -> int:
    """``up``: remove leftovers of the same lab, build, wait for convergence."""
    leftovers = cleanup(lab.prefix)
    if leftovers:
        print(f"removed {len(leftovers)} leftover namespaces of a previous run")
    try:
        seconds = lab.up(timeout=timeout)
    except BaseException:
        print(lab.logs(), file=sys.stderr)
        lab.down()
        raise
    print(f"fabric {lab.topology.name}: {len(lab.topology.devices)} namespaces, converged in {seconds:.1f}s")
    if inventory:
        print(f"inventory: {lab.write_inventory(inventory)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
