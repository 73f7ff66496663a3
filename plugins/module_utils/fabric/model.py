# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Frozen data model of the fabric engine: the validated input (``Fabric``) and the plan.

This module is the stable contract between the engine (law, plan, whois, non-FRR renderers) and
the FRR renderer / namespace lab.  Fields listed in ``docs/dev/fabric-contract.md`` never change
meaning; new fields are only ever appended with a default value.

Ordering is deterministic everywhere: ``Plan.devices`` is ordered spines (by id), then ToRs (by
rack id, ToR index), then hosts (by rack id, host index); links by (rack, tor, uplink); networks by
(rack, role order of the fabric file).  Addresses are plain strings: interface and loopback
addresses in CIDR form (``"10.254.0.1/31"``, ``"10.255.0.1/32"``), router ids and BGP neighbor
addresses without a prefix length (``"10.254.0.0"``).

Beside the text, the engine stores what the renderers compute with, typed, once (they never parse
the text back): a pool as a :class:`Block` (``Fabric.loopback_block``, ``NetworkSpec.pool_block``,
...), an interface address as an integer (``Interface.address_int`` / ``address6_int``), a rack
network as ``Network.start`` / ``prefix_len``.  The plain-data views (``export``) carry the text
only.  Whoever ``dataclasses.replace``-s an address text replaces its typed companion with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

_Item = TypeVar("_Item")

ROLE_SPINE = "spine"
ROLE_TOR = "tor"
ROLE_HOST = "host"

KIND_LOOPBACK = "loopback"
KIND_UPLINK = "uplink"
KIND_DOWNLINK = "downlink"
KIND_NETWORK = "network"


class Block(NamedTuple):
    """A prefix typed: its network address as an integer and its length (what ``law.parse_cidr``
    and ``ipv6.parse_cidr6`` return; tuples compare as address order, then length)."""

    start: int
    prefix_len: int


def typed(block: Block | None, pool: str) -> Block:
    """``block``, the typed form of pool ``pool``; ValueError when the plan was not built by the
    engine (only validation fills the typed pools)."""
    if block is None:
        raise ValueError(f"pool {pool}: no typed block (build the fabric with load_fabric)")
    return block


def _find(items: Iterable[_Item], attribute: str, key: object) -> _Item:
    """The first of ``items`` whose ``attribute`` equals ``key`` (KeyError when none does)."""
    for item in items:
        if getattr(item, attribute) == key:
            return item
    raise KeyError(key)


# --------------------------------------------------------------------------------------------------
# Validated input
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Limits:
    """Law constants: capacity of every index space (changing them renumbers the fabric)."""

    max_racks: int
    tors_per_rack: int
    uplinks_per_tor: int
    hosts_per_rack: int
    spines: int


@dataclass(frozen=True, slots=True)
class Timers:
    """BGP timers in seconds."""

    keepalive: int
    hold: int


@dataclass(frozen=True, slots=True)
class MaximumPrefix:
    """``maximum-prefix`` per BGP session: limit = ceil(legitimate prefixes x headroom / 100)."""

    enabled: bool = False
    headroom: int = 200  # percent
    basis: str = "capacity"  # "capacity" (limits: growth changes nothing) | "plan" (declared racks)
    restart: int = 0  # minutes; 0: a session torn down by the limit stays down
    warning_only: bool = False


@dataclass(frozen=True, slots=True)
class BgpOptions:
    """BGP options (RFC 7938: one ASN shared by all spines, one ASN per ToR / host)."""

    spine_asn: int
    tor_asn_base: int
    host_asn_base: int
    bfd: bool
    timers: Timers
    hosts: bool
    host_network: str = "mgmt"  # rack network role over which hosts peer with their ToRs
    bfd_interval: int = 300  # BFD transmit/receive interval in milliseconds
    bfd_multiplier: int = 3  # BFD detect multiplier
    maximum_paths: int = 64  # ECMP paths per prefix
    evpn: bool = False  # l2vpn evpn on every session; BGP hosts are VTEPs (advertise-all-vni)
    gtsm: bool = False  # ttl-security hops 1 on every session
    passwords: str = "none"  # "none" | "fabric" | "per_session" (the secret comes at render time)
    maximum_prefix: MaximumPrefix = MaximumPrefix()
    anycast: tuple[str, ...] = ()  # anycast pools (CIDR): BGP hosts may announce /32s out of them


@dataclass(frozen=True, slots=True)
class OspfOptions:
    """OSPFv2 options (single area, point-to-point fabric links)."""

    area: str
    hello: int
    dead: int
    bfd: bool = False


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """First-hop redundancy of the rack networks (``gateway``)."""

    redundancy: str = "none"  # "none" (ToR 1 holds the gateway) | "anycast" (every ToR holds it)
    mac: str = "02:00:00:00:01:01"  # the anycast gateway's MAC on every ToR


@dataclass(frozen=True, slots=True)
class BorderOptions:
    """The way out (``border``): border racks' ToRs peer eBGP with an upstream."""

    racks: tuple[int, ...] = ()  # border rack ids; empty: no border
    upstream_asn: int | None = None
    links: str = ""  # pool of the ToR-upstream /31s
    public: tuple[str, ...] = ()  # public prefixes originated upstream by every border ToR
    announce: tuple[str, ...] = ("service",)  # rack network roles announced upstream
    links_block: Block | None = None  # ``links`` typed (None without it)


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """One per-rack network role: the rack's subnet is the rack-id-th subnet of ``pool``."""

    role: str
    pool: str
    prefix_len: int
    vlan: int
    mtu: int
    pool_block: Block | None = None  # ``pool`` typed (filled by validation)


@dataclass(frozen=True, slots=True)
class SpineSpec:
    """A declared spine."""

    id: int
    name: str
    drain: bool = False  # maintenance drain (graceful-shutdown / max-metric)
    link_mtu: int | None = None  # MTU of this spine's links (None: the fabric's link_mtu)


@dataclass(frozen=True, slots=True)
class RackSpec:
    """A declared rack (after defaults are applied and compact ranges are expanded).

    ``uplink_spines`` is empty when uplinks are assigned round-robin over the spines; otherwise it
    names the spine of every uplink (``len(uplink_spines) == uplinks``).
    """

    id: int
    pod: int
    tors: int
    uplinks: int
    hosts: int
    uplink_spines: tuple[str, ...] = ()
    name: str = ""
    drain: bool = False  # maintenance drain of every ToR of the rack
    link_mtu: int | None = None  # MTU of the rack's uplinks (None: the fabric's link_mtu)


@dataclass(frozen=True, slots=True)
class Fabric:
    """The validated fabric file.  Spines and racks are sorted by id."""

    name: str
    routing: str  # "bgp" | "ospf"
    limits: Limits
    loopback_pool: str
    link_pool: str  # "" when the fabric is unnumbered and declares no links pool
    unnumbered: bool
    link_mtu: int
    networks: tuple[NetworkSpec, ...]
    spines: tuple[SpineSpec, ...]
    racks: tuple[RackSpec, ...]
    bgp: BgpOptions
    ospf: OspfOptions
    dhcp_relay_servers: tuple[str, ...]
    dhcp_relay_networks: tuple[str, ...] = ("mgmt",)
    gateway: GatewayOptions = GatewayOptions()
    border: BorderOptions = BorderOptions()
    ipv6_prefix: str = ""  # ipv6.prefix (dual stack by the law, fabric/ipv6.py); "" = IPv4 only
    # the pools typed (filled by validation; None: no such pool)
    loopback_block: Block | None = None
    link_block: Block | None = None
    ipv6_block: Block | None = None

    def link_mtu_of(self, rack: RackSpec, spine: SpineSpec) -> int:
        """MTU of a link between ``rack`` and ``spine``: the smaller of their overrides, if any."""
        overrides = [mtu for mtu in (rack.link_mtu, spine.link_mtu) if mtu is not None]
        return min(overrides) if overrides else self.link_mtu

    def min_link_mtu(self) -> int:
        """The smallest MTU any fabric link may have (the path MTU across the fabric)."""
        overrides = [item.link_mtu for item in (*self.racks, *self.spines) if item.link_mtu is not None]
        return min([self.link_mtu, *overrides])

    def network(self, role: str) -> NetworkSpec:
        """Return the network spec of ``role`` (KeyError when undeclared)."""
        return _find(self.networks, "role", role)

    def rack(self, rack_id: int) -> RackSpec:
        """Return the rack spec with id ``rack_id`` (KeyError when undeclared)."""
        return _find(self.racks, "id", rack_id)


# --------------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Interface:
    """An interface of a device with its address in CIDR form (None when unnumbered)."""

    name: str
    address: str | None
    kind: str  # "loopback" | "uplink" | "downlink" | "network"
    peer_device: str | None
    peer_interface: str | None
    mtu: int | None
    network_role: str | None
    gateway: str | None = None  # anycast gateway (CIDR) the interface holds besides its address
    address6: str | None = None  # IPv6 address (CIDR) with dual stack; None: none or unnumbered
    address_int: int | None = None  # ``address`` typed: the IPv4 address as an integer
    address6_int: int | None = None  # ``address6`` typed: the IPv6 address as an integer


@dataclass(frozen=True, slots=True)
class BgpNeighbor:
    """A BGP session seen from one device; ``address`` None means interface (unnumbered) peering."""

    peer_device: str
    interface: str
    address: str | None
    remote_asn: int
    address6: str | None = None  # dual stack: the peer's IPv6 address (a second, IPv6 session)


@dataclass(frozen=True, slots=True)
class Device:
    """A spine, ToR or host with everything its configuration needs."""

    name: str
    role: str  # "spine" | "tor" | "host"
    rack: int | None
    index: int  # spine id, ToR index t (1-based) or host index h (1-based)
    loopback: str  # "10.255.0.1/32"
    router_id: str  # "10.255.0.1"
    asn: int | None  # None when routing is OSPF, and for hosts without BGP-to-host
    interfaces: tuple[Interface, ...]
    bgp_neighbors: tuple[BgpNeighbor, ...]
    announce: tuple[str, ...]  # prefixes this device originates (loopback /32, rack networks)
    pod: int | None = None
    drain: bool = False  # maintenance drain: BGP graceful-shutdown / OSPF max-metric
    loopback6: str | None = None  # dual stack: "fd00:...::11/128"
    announce6: tuple[str, ...] = ()  # dual stack: IPv6 prefixes this device originates

    def interface(self, name: str) -> Interface:
        """Return the interface called ``name`` (KeyError when absent)."""
        return _find(self.interfaces, "name", name)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a fabric link."""

    device: str
    interface: str
    address: str | None
    address6: str | None = None  # dual stack, numbered links: the /127 address


@dataclass(frozen=True, slots=True)
class Link:
    """A point-to-point link between a spine (``a``) and a ToR uplink (``b``)."""

    a: Endpoint  # spine side
    b: Endpoint  # ToR side
    prefix: str | None  # "10.254.0.0/31"; None when unnumbered
    rack: int
    tor: int
    uplink: int
    mtu: int | None = None  # the link's MTU (both ends)
    prefix6: str | None = None  # dual stack, numbered links: the /127


@dataclass(frozen=True, slots=True)
class Network:
    """A rack network; ``device``/``interface`` own the gateway (ToR 1)."""

    rack: int
    role: str
    prefix: str
    gateway: str  # plain address, no prefix length
    vlan: int
    mtu: int
    device: str
    interface: str
    start: int  # ``prefix`` typed: its network address as an integer ...
    prefix_len: int  # ... and its length (renderers read these instead of parsing ``prefix``)
    gateway_devices: tuple[str, ...] = ()  # anycast gateway: every ToR holding it (else empty)
    gateway_mac: str | None = None  # anycast gateway MAC (None without anycast)
    prefix6: str | None = None  # dual stack: the rack's /64 of this network
    gateway6: str | None = None  # dual stack: the gateway's IPv6 address (no prefix length)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """How much of a pool the declared racks use.  ``unit`` says what is counted."""

    name: str
    prefix: str
    capacity: int
    used: int
    unit: str = "addresses"

    @property
    def utilisation(self) -> float:
        """Used share of the capacity in percent (0.0 for an empty pool)."""
        return 100.0 * self.used / self.capacity if self.capacity else 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    """Every device, link and network derived from a Fabric by the law."""

    fabric: Fabric
    devices: dict[str, Device]
    links: tuple[Link, ...]
    networks: tuple[Network, ...]
    pools: tuple[PoolUsage, ...]
    _by_role: dict[str, tuple[Device, ...]] = field(default_factory=dict, compare=False, repr=False)
    _by_rack: dict[int, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def _role(self, role: str) -> tuple[Device, ...]:
        cached = self._by_role.get(role)
        if cached is None:
            cached = tuple(dev for dev in self.devices.values() if dev.role == role)
            self._by_role[role] = cached
        return cached

    def spines(self) -> tuple[Device, ...]:
        """Spines ordered by id."""
        return self._role(ROLE_SPINE)

    def tors(self) -> tuple[Device, ...]:
        """ToRs ordered by (rack, index)."""
        return self._role(ROLE_TOR)

    def hosts(self) -> tuple[Device, ...]:
        """Hosts ordered by (rack, index)."""
        return self._role(ROLE_HOST)

    def routers(self) -> tuple[Device, ...]:
        """Devices that get an FRR configuration: spines, ToRs and, with BGP-to-host, hosts."""
        routers = self.spines() + self.tors()
        if self.fabric.routing == "bgp" and self.fabric.bgp.hosts:
            routers += self.hosts()
        return routers

    def fabric_prefixes(self) -> tuple[str, ...]:
        """Aggregate pools the fabric may announce: the loopback pool and every network pool.

        Link /31s are never announced.
        """
        return (self.fabric.loopback_pool, *(net.pool for net in self.fabric.networks))

    def rack_prefixes(self, rack: int) -> tuple[str, ...]:
        """The rack's network prefixes in the fabric file's role order (empty for unknown racks)."""
        if not self._by_rack and self.networks:
            grouped: dict[int, list[str]] = {}
            for net in self.networks:
                grouped.setdefault(net.rack, []).append(net.prefix)
            self._by_rack.update((key, tuple(value)) for key, value in grouped.items())
        return self._by_rack.get(rack, ())
