# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``plan.csv``: every address the plan assigns, with its owner, in ascending address order.

No sorting is needed: inside a pool the law hands out addresses in id order, and the plan keeps
that order (spines by id, ToRs by (rack, t), hosts by (rack, h); links by (rack, t, u); rack
networks by rack, gateways before hosts).  Pools never overlap, so emitting pool after pool in
ascending start order yields globally sorted rows.

Names, roles and addresses never contain commas or quotes (the schema's patterns forbid them), so
rows are joined directly without a CSV quoting layer.

Positions come typed from the plan (``Fabric.loopback_block``, ``NetworkSpec.pool_block``,
``Interface.address6_int``, ...): no address text is parsed here.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import ipv6
from ..border import border_enabled, upstream_links
from ..gateway import anycast_gateway
from ..model import KIND_LOOPBACK, KIND_NETWORK, Device, Interface, Plan, typed

HEADER = "address,prefix,pool,network,vlan,rack,device,role,interface,kind,peer_device,peer_interface"


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _loopback_rows(plan: Plan) -> Iterator[str]:
    """Loopback pool: one row per device, in law (= address) order."""
    for device in plan.devices.values():
        addr = device.router_id
        owner = f"{_cell(device.rack)},{device.name},{device.role}"
        yield f"{addr},{device.loopback},loopbacks,loopback,,{owner},lo,loopback,,"


def _link_rows(plan: Plan) -> Iterator[str]:
    """Link pool: spine side (even address) then ToR side (odd address) of every /31."""
    for link in plan.links:
        if link.prefix is None or link.a.address is None or link.b.address is None:
            continue
        a, b, rack = link.a, link.b, link.rack
        yield (
            f"{a.address.partition('/')[0]},{link.prefix},links,link,,{rack},{a.device},spine,{a.interface},downlink,"
            f"{b.device},{b.interface}"
        )
        yield (
            f"{b.address.partition('/')[0]},{link.prefix},links,link,,{rack},{b.device},tor,{b.interface},uplink,"
            f"{a.device},{a.interface}"
        )


Members = dict[int, list[tuple[Device, tuple[Interface, ...]]]]


def _rack_members(plan: Plan) -> Members:
    """Per rack: ToRs then hosts, each with its rack-network interfaces in role order."""
    members: Members = {}
    for device in plan.tors() + plan.hosts():
        nets = tuple(iface for iface in device.interfaces if iface.kind == KIND_NETWORK)
        members.setdefault(device.rack or 0, []).append((device, nets))
    for group in members.values():
        group.sort(key=lambda member: (member[0].role != "tor", member[0].index))
    return members


def _network_rows(plan: Plan, role_index: int, members: Members) -> Iterator[str]:
    """One rack network pool: per rack, the ToR gateways then the hosts."""
    spec = plan.fabric.networks[role_index]
    role, vlan = spec.role, spec.vlan
    prefixes = {net.rack: net.prefix for net in plan.networks if net.role == role}
    anycast = anycast_gateway(plan.fabric)
    for rack in plan.fabric.racks:
        prefix = prefixes[rack.id]
        for device, nets in members.get(rack.id, ()) if anycast else ():  # one row per holder
            iface = nets[role_index]
            if iface.gateway:
                addr = iface.gateway.partition("/")[0]
                owner = f"{rack.id},{device.name},{device.role},{iface.name}"
                yield f"{addr},{prefix},{role},{role},{vlan},{owner},anycast-gateway,,"
        for device, nets in members.get(rack.id, ()):
            iface = nets[role_index]
            addr = iface.address.partition("/")[0] if iface.address else ""
            owner = f"{rack.id},{device.name},{device.role},{iface.name}"
            yield f"{addr},{prefix},{role},{role},{vlan},{owner},network,,"


def _border_rows(plan: Plan) -> Iterator[str]:
    """Border links pool: upstream side (even address) then ToR side (odd) of every /31."""
    for link in upstream_links(plan):
        tor_addr = link.address.partition("/")[0]
        yield (
            f"{link.upstream_address},{link.prefix},border,border-link,,{link.rack},upstream,upstream,"
            f"{link.upstream_interface},upstream,{link.device},{link.interface}"
        )
        yield (
            f"{tor_addr},{link.prefix},border,border-link,,{link.rack},{link.device},tor,{link.interface},"
            f"border,upstream,{link.upstream_interface}"
        )


def render_csv(plan: Plan) -> str:
    """The text of plan.csv (header plus one row per assigned address)."""
    fabric = plan.fabric
    sections: list[tuple[int, Iterator[str]]] = [
        (typed(fabric.loopback_block, "loopbacks").start, _loopback_rows(plan))
    ]
    if not fabric.unnumbered:
        sections.append((typed(fabric.link_block, "links").start, _link_rows(plan)))
    members = _rack_members(plan) if fabric.networks else {}
    for index, spec in enumerate(fabric.networks):
        sections.append((typed(spec.pool_block, spec.role).start, _network_rows(plan, index, members)))
    if border_enabled(plan):
        sections.append((typed(fabric.border.links_block, "border").start, _border_rows(plan)))
    sections.sort(key=lambda section: section[0])
    lines = [HEADER]
    for _start, rows in sections:
        lines.extend(rows)
    lines.extend(ipv6_rows(plan))  # dual stack: after every IPv4 row, in IPv6 address order
    return "\n".join(lines) + "\n"


def ipv6_rows(plan: Plan) -> list[str]:
    """Dual stack: one row per IPv6 address, the same columns as IPv4 (``pool`` is ``loopbacks``,
    ``links`` or the network role; ``prefix`` the /128, /127 or the rack's /64), sorted by address.
    Empty without ``ipv6.prefix``."""
    if not plan.fabric.ipv6_prefix:
        return []
    vlans = {spec.role: spec.vlan for spec in plan.fabric.networks}
    rows: list[tuple[int, str]] = []
    for device in plan.devices.values():
        for iface in device.interfaces:
            value = iface.address6_int
            if not iface.address6 or value is None:
                continue
            addr = iface.address6.partition("/")[0]
            if iface.kind == KIND_NETWORK:
                role = iface.network_role or iface.name
                pool, network, vlan = role, role, str(vlans.get(role, ""))
            elif iface.kind == KIND_LOOPBACK:
                pool, network, vlan = "loopbacks", "loopback", ""
            else:
                pool, network, vlan = "links", "link", ""
            row = (
                f"{addr},{_prefix6(value, ipv6.PREFIX_LEN[iface.kind])},{pool},{network},{vlan},"
                f"{_cell(device.rack)},{device.name},{device.role},"
                f"{iface.name},{iface.kind},{_cell(iface.peer_device)},{_cell(iface.peer_interface)}"
            )
            rows.append((value, row))
    rows.sort()
    return [row for _value, row in rows]


def _prefix6(value: int, prefix_len: int) -> str:
    """The prefix of length ``prefix_len`` holding the IPv6 address ``value`` (as text)."""
    host_bits = 128 - prefix_len
    return f"{ipv6.ip6(value >> host_bits << host_bits)}/{prefix_len}"
