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
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import law
from ..model import KIND_NETWORK, Device, Interface, Plan

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
    for rack in plan.fabric.racks:
        prefix = prefixes[rack.id]
        for device, nets in members.get(rack.id, ()):
            iface = nets[role_index]
            addr = iface.address.partition("/")[0] if iface.address else ""
            owner = f"{rack.id},{device.name},{device.role},{iface.name}"
            yield f"{addr},{prefix},{role},{role},{vlan},{owner},network,,"


def render_csv(plan: Plan) -> str:
    """The text of plan.csv (header plus one row per assigned address)."""
    fabric = plan.fabric
    sections: list[tuple[int, Iterator[str]]] = [
        (law.parse_cidr(fabric.loopback_pool)[0], _loopback_rows(plan))
    ]
    if not fabric.unnumbered:
        sections.append((law.parse_cidr(fabric.link_pool)[0], _link_rows(plan)))
    members = _rack_members(plan) if fabric.networks else {}
    for index, spec in enumerate(fabric.networks):
        sections.append((law.parse_cidr(spec.pool)[0], _network_rows(plan, index, members)))
    sections.sort(key=lambda section: section[0])
    lines = [HEADER]
    for _start, rows in sections:
        lines.extend(rows)
    return "\n".join(lines) + "\n"
