# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dual stack by the same law (``ipv6.prefix``): IPv6 addresses from the ids that give the IPv4 ones.

The fabric's IPv6 prefix ``P`` (e.g. a ULA /48; validation checks that it holds every /64 the law
can hand out) is cut into /64s; /64 number ``n`` is
``P + n * 2**64``.  With ``b = bit_length(max_racks - 1)`` bits for the rack id:

- /64 number 0 holds the loopback /128s: a device's loopback sits at the same offset as its IPv4
  loopback in ``pools.loopbacks`` (``spine_loopback_offset``/``tor_loopback_offset``/...);
- /64 number 1 holds the link /127s: link ``(r, t, u)`` is the ``link_index``-th /127, spine side
  even, ToR side odd (exactly as the /31s);
- rack ``r``'s network whose VLAN is ``v`` is /64 number ``(v << b) | r``; inside it every ToR and
  host sits at the offset of its IPv4 address in the rack's IPv4 subnet (gateway ``::1`` on ToR 1,
  host ``h`` at ``10 + h - 1``, ...).  Every VLAN's /64s form one aligned block, ``P + (v << b)`` of length
  ``64 - b``, which the route policies match as one aggregate.

The numbers 0 and 1 are the "VLAN 0" block (VLAN 0 is never a rack network), so nothing collides.
Adding a rack, ToR, host, uplink or spine changes no existing address.  The plan is built first
(IPv4); ``dual_stack`` adds the IPv6 fields to it when the fabric declares ``ipv6``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import fields, replace

from . import law
from .model import (
    KIND_DOWNLINK,
    KIND_LOOPBACK,
    KIND_NETWORK,
    KIND_UPLINK,
    ROLE_SPINE,
    ROLE_TOR,
    BgpNeighbor,
    Device,
    Interface,
    Limits,
    Link,
    Network,
    Plan,
)

LOOPBACK_SUBNET = 0  # /64 number of the loopback /128s
LINK_SUBNET = 1  # /64 number of the link /127s
SUBNET_BITS = 64  # every rack network and both infrastructure blocks are /64s
#: prefix length of an interface's IPv6 address, by interface kind
PREFIX_LEN = {KIND_LOOPBACK: 128, KIND_UPLINK: 127, KIND_DOWNLINK: 127, KIND_NETWORK: SUBNET_BITS}

Address6 = tuple[str, int]  # an IPv6 interface address: CIDR text and the address as an int


# ------------------------------------------------------------------------------------ the law
def ip6(value: int) -> str:
    """Compressed text (RFC 5952) of an IPv6 address given as an int (fast, no ipaddress objects)."""
    if value >> 48 == 0:  # ::ffff:0:0/96 and ::/96: inet_ntop writes an embedded dotted quad
        return str(ipaddress.IPv6Address(value))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def parse_cidr6(text: str) -> tuple[int, int]:
    """(network int, prefix length) of a validated IPv6 network ``P/len``."""
    net = ipaddress.IPv6Network(text)
    return int(net.network_address), net.prefixlen


def rack_bits(limits: Limits) -> int:
    """Bits of the rack id in a rack network's /64 number: ``bit_length(max_racks - 1)``."""
    return (limits.max_racks - 1).bit_length()


def subnet_number(limits: Limits, vlan: int, rack: int) -> int:
    """/64 number of rack ``r``'s network with VLAN ``v``: ``(v << rack_bits) | r``."""
    return (vlan << rack_bits(limits)) | rack


def subnet_start(base: int, number: int) -> int:
    """First address of /64 number ``number`` of the prefix starting at ``base``."""
    return base + (number << SUBNET_BITS)


def loopback6(base: int, offset: int) -> int:
    """IPv6 loopback of the device whose IPv4 loopback offset is ``offset``."""
    return subnet_start(base, LOOPBACK_SUBNET) + offset


def link6(base: int, index: int) -> int:
    """Spine-side (even) address of the ``index``-th link /127; the ToR side is one more."""
    return subnet_start(base, LINK_SUBNET) + 2 * index


def network6(base: int, limits: Limits, vlan: int, rack: int) -> int:
    """Network address of rack ``r``'s /64 of the network with VLAN ``v``."""
    return subnet_start(base, subnet_number(limits, vlan, rack))


def vlan_block(base: int, limits: Limits, vlan: int) -> str:
    """The aligned block holding every rack's /64 of VLAN ``v`` (``P + (v << b)``/``64 - b``)."""
    return f"{ip6(network6(base, limits, vlan, 0))}/{SUBNET_BITS - rack_bits(limits)}"


def required_prefix_len(limits: Limits, max_vlan: int) -> int:
    """Longest ``ipv6.prefix`` length that holds every /64 number up to VLAN ``max_vlan``."""
    highest = subnet_number(limits, max_vlan, limits.max_racks - 1) if max_vlan > 0 else LINK_SUBNET
    return SUBNET_BITS - highest.bit_length()


def subnet_owner(limits: Limits, number: int) -> tuple[str, int, int]:
    """Inverse of the /64 numbers: ``("loopbacks"|"links"|"network"|"reserved", vlan, rack)``."""
    if number == LOOPBACK_SUBNET:
        return ("loopbacks", 0, 0)
    if number == LINK_SUBNET:
        return ("links", 0, 0)
    bits = rack_bits(limits)
    vlan, rack = number >> bits, number & ((1 << bits) - 1)
    if vlan == 0 or rack >= limits.max_racks:
        return ("reserved", vlan, rack)
    return ("network", vlan, rack)


# ------------------------------------------------------------------------------------ plan
class _Law6:
    """The IPv6 law bound to one fabric: its prefix as an int and the VLAN of every role."""

    def __init__(self, plan: Plan) -> None:
        fabric = plan.fabric
        self.limits = fabric.limits
        self.base = parse_cidr6(fabric.ipv6_prefix)[0]
        # first /64 number of each role's VLAN block (the rack id is added to it)
        self.role_blocks = {net.role: net.vlan << rack_bits(self.limits) for net in fabric.networks}
        self.numbered = not fabric.unnumbered

    def loopback(self, device: Device) -> Address6:
        """``addr/128`` of a device, at its IPv4 loopback offset (and the address as an int)."""
        value = loopback6(self.base, _loopback_offset(self.limits, device))
        return f"{ip6(value)}/128", value

    def link_value(self, rack: int, tor: int, uplink: int) -> int:
        """Spine-side (even) address of link ``(r, t, u)`` as an int; the ToR side is one more."""
        return link6(self.base, law.link_index(self.limits, rack, tor, uplink))

    def link(self, rack: int, tor: int, uplink: int) -> tuple[str, str]:
        """(spine side, ToR side) addresses of link ``(r, t, u)`` without prefix length."""
        spine = self.link_value(rack, tor, uplink)
        return ip6(spine), ip6(spine + 1)

    def network_value(self, role: str, rack: int, offset: int = 0) -> int:
        """Address at ``offset`` in rack ``r``'s /64 of ``role`` as an int."""
        return subnet_start(self.base, self.role_blocks[role] | rack) + offset

    def network(self, role: str, rack: int, offset: int = 0) -> str:
        """Address at ``offset`` in rack ``r``'s /64 of ``role`` (no prefix length)."""
        return ip6(self.network_value(role, rack, offset))


def _loopback_offset(limits: Limits, device: Device) -> int:
    if device.role == ROLE_SPINE:
        return law.spine_loopback_offset(device.index)
    rack = device.rack or 0
    if device.role == ROLE_TOR:
        return law.tor_loopback_offset(limits, rack, device.index)
    return law.host_loopback_offset(limits, rack, device.index)


def ipv6_enabled(plan: Plan) -> bool:
    """True when the fabric declares ``ipv6.prefix``."""
    return bool(plan.fabric.ipv6_prefix)


def dual_stack(plan: Plan) -> Plan:
    """``plan`` with the IPv6 fields filled in by the law (the plan itself when IPv6 is off)."""
    if not ipv6_enabled(plan):
        return plan
    law6 = _Law6(plan)
    networks = tuple(_network(law6, net) for net in plan.networks)
    links = tuple(_link(law6, link) for link in plan.links)
    rack6: dict[int, list[str]] = {}
    for net in networks:
        rack6.setdefault(net.rack, []).append(net.prefix6 or "")
    loopbacks = {name: law6.loopback(device) for name, device in plan.devices.items()}
    devices = {
        name: _device(law6, device, loopbacks, tuple(rack6.get(device.rack or 0, ())))
        for name, device in plan.devices.items()
    }
    return replace(plan, devices=devices, links=links, networks=networks, _by_role={}, _by_rack={})


def offset_in_subnet(cidr: str) -> int:
    """Offset of an IPv4 interface address inside its subnet (``10.0.1.11/24`` -> 11)."""
    address, _slash, plen = cidr.partition("/")
    return law.ip_to_int(address) & (law.block_size(int(plen)) - 1)


def _network(law6: _Law6, net: Network) -> Network:
    """A rack network with its /64 and the gateway at the IPv4 gateway's offset."""
    plen = int(net.prefix.partition("/")[2])
    offset = offset_in_subnet(f"{net.gateway}/{plen}")
    prefix = f"{law6.network(net.role, net.rack)}/{SUBNET_BITS}"
    return replace(net, prefix6=prefix, gateway6=law6.network(net.role, net.rack, offset))


def _link(law6: _Law6, link: Link) -> Link:
    if not law6.numbered:
        return link
    spine, tor = law6.link(link.rack, link.tor, link.uplink)
    return replace(
        link,
        a=replace(link.a, address6=f"{spine}/127"),
        b=replace(link.b, address6=f"{tor}/127"),
        prefix6=f"{spine}/127",
    )


def _interface_address(law6: _Law6, device: Device, iface: Interface, loopback: Address6) -> Address6 | None:
    """The IPv6 address of one interface (None: unnumbered link)."""
    if iface.kind == KIND_LOOPBACK:
        return loopback
    if iface.kind == KIND_NETWORK and device.rack is not None and iface.address:
        offset = offset_in_subnet(iface.address)
        value = law6.network_value(iface.network_role or iface.name, device.rack, offset)
    elif not law6.numbered or iface.kind not in (KIND_UPLINK, KIND_DOWNLINK):
        return None
    elif iface.kind == KIND_UPLINK:
        uplink = law.parse_uplink(iface.name) or 0
        value = law6.link_value(device.rack or 0, device.index, uplink) + 1
    else:
        rack, tor, uplink = law.parse_spine_port(iface.name) or (0, 0, 0)
        value = law6.link_value(rack, tor, uplink)
    return f"{ip6(value)}/{PREFIX_LEN[iface.kind]}", value


def _neighbor(law6: _Law6, device: Device, nbr: BgpNeighbor) -> BgpNeighbor:
    """A session's IPv6 peer address: the far end of the /127, or the host/ToR on the host network.

    Sessions by interface (unnumbered) carry IPv6 themselves and get none.
    """
    if nbr.address is None:
        return nbr
    if device.role == ROLE_SPINE:
        rack, tor, uplink = law.parse_spine_port(nbr.interface) or (0, 0, 0)
        return replace(nbr, address6=law6.link(rack, tor, uplink)[1])
    if device.role == ROLE_TOR and law.parse_uplink(nbr.interface) is not None:
        uplink = law.parse_uplink(nbr.interface) or 0
        return replace(nbr, address6=law6.link(device.rack or 0, device.index, uplink)[0])
    local = next((iface for iface in device.interfaces if iface.name == nbr.interface), None)
    if local is None or local.kind != KIND_NETWORK or local.address is None or device.rack is None:
        return nbr
    plen = int(local.address.partition("/")[2])
    offset = offset_in_subnet(f"{nbr.address}/{plen}")
    return replace(nbr, address6=law6.network(local.network_role or local.name, device.rack, offset))


_INTERFACE_FIELDS = tuple(item.name for item in fields(Interface))


def _with_address6(iface: Interface, address6: Address6 | None) -> Interface:
    """``replace(iface, address6=..., address6_int=...)`` without its per-call introspection
    (100 000s of calls)."""
    if address6 is None:
        return iface
    values = {name: getattr(iface, name) for name in _INTERFACE_FIELDS}
    values["address6"], values["address6_int"] = address6
    return Interface(**values)


def _device(law6: _Law6, device: Device, loopbacks: dict[str, Address6], rack6: tuple[str, ...]) -> Device:
    typed_loopback = loopbacks[device.name]
    loopback = typed_loopback[0]
    interfaces = tuple(
        _with_address6(iface, _interface_address(law6, device, iface, typed_loopback))
        for iface in device.interfaces
    )
    neighbors = tuple(_neighbor(law6, device, nbr) for nbr in device.bgp_neighbors)
    announce6 = (loopback, *rack6) if device.role == ROLE_TOR else (loopback,)
    return replace(
        device, loopback6=loopback, interfaces=interfaces, bgp_neighbors=neighbors, announce6=announce6
    )


# ------------------------------------------------------------------------------------ policy
def fabric_entries6(plan: Plan) -> list[str]:
    """``permit`` clauses of ``FABRIC-V6``: loopback /128s and each VLAN's rack /64s, exactly.

    Like the IPv4 ``FABRIC`` list, only exact-length routes out of the fabric's blocks match: no
    aggregate, no link /127, nothing foreign.
    """
    fabric = plan.fabric
    base = parse_cidr6(fabric.ipv6_prefix)[0]
    entries = [f"{ip6(subnet_start(base, LOOPBACK_SUBNET))}/{SUBNET_BITS} ge 128"]
    for net in fabric.networks:
        entries.append(f"{vlan_block(base, fabric.limits, net.vlan)} ge 64 le 64")
    return entries


def host_entries6(plan: Plan) -> list[str]:
    """``FABRIC-V6`` of a BGP host: loopback /128s and the /64s of ``bgp.host_network`` only (every
    other network routes its block via its own gateway, as in IPv4: render.host)."""
    fabric = plan.fabric
    base = parse_cidr6(fabric.ipv6_prefix)[0]
    net = fabric.network(fabric.bgp.host_network)
    return [
        f"{ip6(subnet_start(base, LOOPBACK_SUBNET))}/{SUBNET_BITS} ge 128",
        f"{vlan_block(base, fabric.limits, net.vlan)} ge 64 le 64",
    ]
