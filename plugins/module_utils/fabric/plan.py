# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load a fabric file and derive the plan from it by the law.

``load_fabric`` reads YAML/JSON (or takes a dict), validates the whole document and returns the
frozen ``Fabric``; ``build_plan`` turns it into every device, link and network.  The builder works
on integers (one ``int_to_ip`` per address, no ``ipaddress`` objects), so 1000 racks of 40 hosts
plan in a fraction of a second.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import gateway as fhrp
from . import law
from .errors import FabricError, FabricValidationError
from .ipv6 import dual_stack
from .model import (
    KIND_DOWNLINK,
    KIND_LOOPBACK,
    KIND_NETWORK,
    KIND_UPLINK,
    ROLE_HOST,
    ROLE_SPINE,
    ROLE_TOR,
    BgpNeighbor,
    Device,
    Endpoint,
    Fabric,
    Interface,
    Link,
    Network,
    Plan,
    PoolUsage,
    RackSpec,
)
from .validate import validate

ip = law.int_to_ip


# ------------------------------------------------------------------------------------ loading
MAX_DEPTH = 32  # a fabric file nests 5 levels; deeper input is refused before Python recursion fails
MAX_EXPANSION = 100_000  # nodes that shared (aliased) containers may add to a mapping given as data


def decode_fabric_bytes(raw: bytes, path: str) -> str:
    """The text of a fabric file; invalid UTF-8 becomes a FabricError naming line, column and byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FabricValidationError(
            [
                FabricError(
                    f"line {line}",
                    path,
                    f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column} "
                    f"(offset {exc.start}); save the file as UTF-8",
                )
            ]
        ) from None


def read_fabric_file(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML (or JSON) fabric file; syntax errors and duplicate keys become FabricErrors.

    Refused with a FabricError, never a traceback: unreadable files, invalid UTF-8, YAML aliases
    (``*name``: a fabric file never needs them -- ``defaults`` and ``range`` cover repetition --
    and nested aliases are the "billion laughs" bomb) and nesting deeper than ``MAX_DEPTH``.
    Aliases are refused while composing, before anything is expanded, so a bomb costs O(file).
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise FabricValidationError(
            [FabricError("", str(path), f"cannot read the fabric file: {exc.strerror}")]
        ) from exc
    return parse_fabric_text(decode_fabric_bytes(raw, str(path)), str(path))


def parse_fabric_text(text: str, path: str) -> Any:
    """Parse fabric YAML text (see ``read_fabric_file``)."""
    import yaml

    problems: list[FabricError] = []
    loader = _strict_loader(yaml, problems)(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise FabricValidationError([FabricError("", path, f"not valid YAML: {exc}")]) from None
    except _RefusedNode as exc:
        raise FabricValidationError([exc.error]) from None
    finally:
        loader.dispose()
    if problems:
        raise FabricValidationError(problems)
    return data


class _RefusedNode(Exception):
    """Raised by the strict loader for an alias or too deep a nesting (carries the FabricError)."""

    def __init__(self, error: FabricError) -> None:
        super().__init__(str(error))
        self.error = error


def _strict_loader(yaml: Any, problems: list[FabricError]) -> Any:
    """A SafeLoader class that refuses aliases and deep nesting and records duplicate keys."""

    class _StrictLoader(yaml.SafeLoader):
        """SafeLoader: duplicate keys recorded, aliases and nesting beyond MAX_DEPTH refused."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                line = event.start_mark.line + 1
                raise _RefusedNode(
                    FabricError(
                        f"line {line}",
                        f"*{event.anchor}",
                        f"YAML alias at line {line}, column {event.start_mark.column + 1}: aliases are "
                        "not allowed in a fabric file (use defaults or range entries for repetition)",
                    )
                )
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    line = self.peek_event().start_mark.line + 1
                    raise _RefusedNode(
                        FabricError(f"line {line}", self.depth, f"nested deeper than {MAX_DEPTH} levels")
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)):
                continue
            if key in seen:
                line = key_node.start_mark.line + 1
                problems.append(FabricError(f"line {line}", key, "duplicate key in the same mapping"))
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return _StrictLoader


def structure_problems(data: Any) -> list[FabricError]:
    """Refuse data (a mapping given directly) that is cyclic, nested deeper than MAX_DEPTH, or whose
    shared containers (what YAML aliases become) would expand by more than MAX_EXPANSION nodes.

    Each container is sized once (memoised by identity), so the check is O(distinct containers)
    however large the expansion would be: a "billion laughs" mapping is refused in microseconds.
    """
    sizes: dict[int, int] = {}
    state = {"extra": 0}
    try:
        _expanded_size(data, 0, sizes, set(), state)
    except _RefusedNode as exc:
        return [exc.error]
    return []


def _expanded_size(
    value: Any, depth: int, sizes: dict[int, int], active: set[int], state: dict[str, int]
) -> int:
    """Nodes ``value`` expands to; repeated containers add their size to ``state['extra']``."""
    if not isinstance(value, (Mapping, list, tuple)):
        return 1
    key = id(value)
    if key in active:
        raise _RefusedNode(FabricError("", "<cycle>", "the fabric data refers to itself (cyclic aliases)"))
    if key in sizes:
        state["extra"] += sizes[key]
        if state["extra"] > MAX_EXPANSION:
            raise _RefusedNode(
                FabricError(
                    "",
                    state["extra"],
                    f"shared (aliased) parts would expand by more than {MAX_EXPANSION} nodes",
                )
            )
        return sizes[key]
    if depth >= MAX_DEPTH:
        raise _RefusedNode(FabricError("", depth, f"nested deeper than {MAX_DEPTH} levels"))
    active.add(key)
    children = [*value.keys(), *value.values()] if isinstance(value, Mapping) else list(value)
    size = 1 + sum(_expanded_size(child, depth + 1, sizes, active, state) for child in children)
    active.discard(key)
    sizes[key] = size
    return size


def load_fabric(source: str | os.PathLike[str] | dict[str, Any]) -> Fabric:
    """Read (when given a path) and validate a fabric; raise ``FabricValidationError`` listing all errors."""
    if isinstance(source, dict):
        problems = structure_problems(source)
        if problems:
            raise FabricValidationError(problems)
        return validate(source)
    return validate(read_fabric_file(source))


# ------------------------------------------------------------------------------------ plan
class _Context:
    """Per-plan constants shared by the device builders (pools as ints, spine list, flags)."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self.limits = fabric.limits
        self.lo_start = law.parse_cidr(fabric.loopback_pool)[0]
        self.numbered = not fabric.unnumbered
        self.link_start = law.parse_cidr(fabric.link_pool)[0] if self.numbered else 0
        self.bgp = fabric.routing == "bgp"
        self.host_bgp = self.bgp and fabric.bgp.hosts
        self.spine_names = tuple(spine.name for spine in fabric.spines)
        self.spine_specs = {spine.name: spine for spine in fabric.spines}
        self.nets = tuple(
            (spec, law.parse_cidr(spec.pool)[0], law.block_size(spec.prefix_len)) for spec in fabric.networks
        )
        self.anycast = fhrp.anycast_gateway(fabric)
        self.host_net_index = next(
            (i for i, spec in enumerate(fabric.networks) if spec.role == fabric.bgp.host_network), -1
        )
        # accumulated while the ToRs are built: the spine side of every link
        self.spine_ifaces: dict[str, list[Interface]] = {name: [] for name in self.spine_names}
        self.spine_peers: dict[str, list[BgpNeighbor]] = {name: [] for name in self.spine_names}
        self.links: list[Link] = []


def build_plan(fabric: Fabric) -> Plan:
    """Derive every device, link and network of a validated fabric (deterministic order)."""
    return dual_stack(_build_plan(fabric))  # IPv6 fields only with ipv6.prefix (fabric/ipv6.py)


def _build_plan(fabric: Fabric) -> Plan:
    """``build_plan`` body: the IPv4 plan."""
    ctx = _Context(fabric)
    tors: list[Device] = []
    hosts: list[Device] = []
    networks: list[Network] = []
    for rack in fabric.racks:
        rack_nets = _rack_networks(ctx, rack)
        networks.extend(rack_nets)
        announce = tuple(net.prefix for net in rack_nets)
        for tor in range(1, rack.tors + 1):
            tors.append(_tor(ctx, rack, tor, announce))
        for host in range(1, rack.hosts + 1):
            hosts.append(_host(ctx, rack, host))
    spines = [_spine(ctx, spine.id, spine.name, spine.drain) for spine in fabric.spines]
    devices = {device.name: device for group in (spines, tors, hosts) for device in group}
    return Plan(
        fabric=fabric,
        devices=devices,
        links=tuple(ctx.links),
        networks=tuple(networks),
        pools=pool_usage(fabric, len(devices), len(ctx.links)),
    )


def _loopback(ctx: _Context, offset: int) -> tuple[str, str, Interface]:
    """(``a.b.c.d/32``, ``a.b.c.d``, the ``lo`` interface) of a loopback offset."""
    value = ctx.lo_start + offset
    addr = ip(value)
    cidr = f"{addr}/32"
    return cidr, addr, Interface("lo", cidr, KIND_LOOPBACK, None, None, None, None, address_int=value)


def _spine(ctx: _Context, spine_id: int, name: str, drain: bool = False) -> Device:
    """A spine: loopback plus one downlink per ToR uplink that lands on it (built by ``_tor``)."""
    loopback, router_id, lo = _loopback(ctx, law.spine_loopback_offset(spine_id))
    return Device(
        name=name,
        role=ROLE_SPINE,
        rack=None,
        index=spine_id,
        loopback=loopback,
        router_id=router_id,
        asn=ctx.fabric.bgp.spine_asn if ctx.bgp else None,
        interfaces=(lo, *ctx.spine_ifaces[name]),
        bgp_neighbors=tuple(ctx.spine_peers[name]),
        announce=(loopback,),
        drain=drain,
    )


def _rack_networks(ctx: _Context, rack: RackSpec) -> list[Network]:
    """The rack's networks (gateway owned by ToR 1) in the fabric file's role order."""
    tor1 = law.tor_name(rack.id, 1)
    anycast: dict[str, Any] = {}
    if ctx.anycast:
        holders = tuple(law.tor_name(rack.id, tor) for tor in range(1, rack.tors + 1))
        anycast = {"gateway_devices": holders, "gateway_mac": ctx.fabric.gateway.mac}
    out = []
    for spec, start, size in ctx.nets:
        net = start + rack.id * size
        out.append(
            Network(
                rack=rack.id,
                role=spec.role,
                prefix=f"{ip(net)}/{spec.prefix_len}",
                gateway=ip(net + law.GATEWAY_OFFSET),
                vlan=spec.vlan,
                mtu=spec.mtu,
                device=tor1,
                interface=spec.role,
                start=net,
                prefix_len=spec.prefix_len,
                **anycast,
            )
        )
    return out


def _tor(ctx: _Context, rack: RackSpec, tor: int, announce: tuple[str, ...]) -> Device:
    """A ToR with its uplinks (and the matching spine downlinks/links) and rack network interfaces."""
    limits, r = ctx.limits, rack.id
    name = law.tor_name(r, tor)
    loopback, router_id, lo = _loopback(ctx, law.tor_loopback_offset(limits, r, tor))
    asn = law.tor_asn(ctx.fabric.bgp.tor_asn_base, limits, r, tor) if ctx.bgp else None
    spine_asn = ctx.fabric.bgp.spine_asn
    ifaces = [lo]
    peers: list[BgpNeighbor] = []
    for uplink in range(1, rack.uplinks + 1):
        spine = law.uplink_spine(ctx.spine_names, uplink, rack.uplink_spines)
        port, up = law.spine_port_ifname(r, tor, uplink), law.uplink_ifname(uplink)
        mtu = ctx.fabric.link_mtu_of(rack, ctx.spine_specs[spine])
        spine_ip = tor_ip = spine_cidr = tor_cidr = spine_int = tor_int = None
        if ctx.numbered:
            spine_int = ctx.link_start + 2 * law.link_index(limits, r, tor, uplink)
            tor_int = spine_int + 1
            spine_ip, tor_ip = ip(spine_int), ip(tor_int)
            spine_cidr, tor_cidr = f"{spine_ip}/31", f"{tor_ip}/31"
        ifaces.append(Interface(up, tor_cidr, KIND_UPLINK, spine, port, mtu, None, address_int=tor_int))
        ctx.spine_ifaces[spine].append(
            Interface(port, spine_cidr, KIND_DOWNLINK, name, up, mtu, None, address_int=spine_int)
        )
        ctx.links.append(
            Link(
                Endpoint(spine, port, spine_cidr),
                Endpoint(name, up, tor_cidr),
                spine_cidr,
                r,
                tor,
                uplink,
                mtu,
            )
        )
        if asn is not None:
            peers.append(BgpNeighbor(spine, up, spine_ip, spine_asn))
            ctx.spine_peers[spine].append(BgpNeighbor(name, port, tor_ip, asn))
    gw_offset = fhrp.tor_offset(tor, ctx.anycast)
    for spec, start, size in ctx.nets:
        value = start + r * size + gw_offset
        addr = ip(value)
        held = f"{ip(start + r * size + law.GATEWAY_OFFSET)}/{spec.prefix_len}" if ctx.anycast else None
        ifaces.append(
            Interface(
                spec.role,
                f"{addr}/{spec.prefix_len}",
                KIND_NETWORK,
                None,
                None,
                spec.mtu,
                spec.role,
                gateway=held,
                address_int=value,
            )
        )
    if ctx.host_bgp:
        peers.extend(_tor_host_peers(ctx, rack))
    return Device(
        name=name,
        role=ROLE_TOR,
        rack=r,
        index=tor,
        loopback=loopback,
        router_id=router_id,
        asn=asn,
        interfaces=tuple(ifaces),
        bgp_neighbors=tuple(peers),
        announce=(loopback, *announce),
        pod=rack.pod,
        drain=rack.drain,
    )


def _tor_host_peers(ctx: _Context, rack: RackSpec) -> list[BgpNeighbor]:
    """BGP-to-host sessions of a ToR: every host of the rack, over the host network."""
    spec, start, size = ctx.nets[ctx.host_net_index]
    net = start + rack.id * size
    base = ctx.fabric.bgp.host_asn_base
    return [
        BgpNeighbor(
            law.host_name(rack.id, host),
            spec.role,
            ip(net + law.host_offset(host)),
            law.host_asn(base, ctx.limits, rack.id, host),
        )
        for host in range(1, rack.hosts + 1)
    ]


def _host(ctx: _Context, rack: RackSpec, host: int) -> Device:
    """A host: loopback plus one NIC per rack network (peering with every ToR under BGP-to-host)."""
    limits, r = ctx.limits, rack.id
    loopback, router_id, lo = _loopback(ctx, law.host_loopback_offset(limits, r, host))
    ifaces = [lo]
    offset = law.host_offset(host)
    for spec, start, size in ctx.nets:
        value = start + r * size + offset
        ifaces.append(
            Interface(
                spec.role,
                f"{ip(value)}/{spec.prefix_len}",
                KIND_NETWORK,
                None,
                None,
                spec.mtu,
                spec.role,
                address_int=value,
            )
        )
    asn = None
    peers: tuple[BgpNeighbor, ...] = ()
    if ctx.host_bgp:
        asn = law.host_asn(ctx.fabric.bgp.host_asn_base, limits, r, host)
        spec, start, size = ctx.nets[ctx.host_net_index]
        peers = tuple(
            BgpNeighbor(
                law.tor_name(r, tor),
                spec.role,
                ip(start + r * size + fhrp.tor_offset(tor, ctx.anycast)),
                law.tor_asn(ctx.fabric.bgp.tor_asn_base, limits, r, tor),
            )
            for tor in range(1, rack.tors + 1)
        )
    return Device(
        name=law.host_name(r, host),
        role=ROLE_HOST,
        rack=r,
        index=host,
        loopback=loopback,
        router_id=router_id,
        asn=asn,
        interfaces=tuple(ifaces),
        bgp_neighbors=peers,
        announce=(loopback,),
        pod=rack.pod,
    )


def pool_usage(fabric: Fabric, devices: int, links: int) -> tuple[PoolUsage, ...]:
    """Capacity and use of every pool: loopback addresses, link /31s, rack subnets per network."""
    lo_len = law.parse_cidr(fabric.loopback_pool)[1]
    usage = [PoolUsage("loopbacks", fabric.loopback_pool, law.block_size(lo_len), devices, "addresses")]
    if not fabric.unnumbered:
        link_len = law.parse_cidr(fabric.link_pool)[1]
        usage.append(PoolUsage("links", fabric.link_pool, law.block_size(link_len) // 2, links, "/31 links"))
    racks = len(fabric.racks)
    for spec in fabric.networks:
        pool_len = law.parse_cidr(spec.pool)[1]
        usage.append(
            PoolUsage(
                spec.role, spec.pool, 1 << (spec.prefix_len - pool_len), racks, f"/{spec.prefix_len} subnets"
            )
        )
    return tuple(usage)
