# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Address -> owner by inverting the law: no table of addresses is ever built.

A bisect over the sorted pools (O(log pools)) finds the pool; integer arithmetic inverts the law
inside it (O(1)): loopback offset -> spine/ToR/host, /31 index -> (rack, ToR, uplink) and side,
rack subnet index -> rack and the slot inside it (gateway of ToR t, host h, network, broadcast).
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import asdict, dataclass, replace
from typing import Any

from . import gateway as fhrp
from . import ipv6, law
from .border import IFNAME as BORDER_IFNAME
from .model import Fabric, Plan, RackSpec

ASSIGNED = "assigned"  # a declared device owns the address
UNASSIGNED = "unassigned"  # a law slot no declared device uses (yet)
RESERVED = "reserved"  # network/broadcast/reserved addresses of a pool or rack network
OUTSIDE = "outside"  # in no pool of the fabric
RACK0_NOTE = "slot of rack id 0, which never exists (rack ids start at 1)"


def parse_address(address: str) -> int:
    """One IPv4 address as an int; ``ValueError`` with a readable message for anything else.

    An interface address (``10.0.2.1/24``, ``10.254.0.196/31``) names one address and is
    accepted; a network prefix (``10.0.0.0/8``: host bits zero, /30 or shorter) is refused --
    whois answers for one address, and a network is not owned by one device.
    """
    return _one_address(address, 4)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns an address (``status`` says whether a declared device does)."""

    address: str
    status: str
    pool: str | None = None  # "loopbacks" | "links" | network role
    pool_prefix: str | None = None
    prefix: str | None = None  # the /32, /31 or rack subnet holding the address
    rack: int | None = None
    device: str | None = None
    role: str | None = None  # device role: spine | tor | host
    interface: str | None = None
    network: str | None = None  # "loopback" | "link" | network role
    vlan: int | None = None
    peer_device: str | None = None
    peer_interface: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-safe)."""
        return asdict(self)

    def describe(self) -> str:
        """One line for humans."""
        if self.status == OUTSIDE:
            return f"{self.address}: outside every fabric pool"
        where = f"{self.pool} pool {self.pool_prefix}"
        if self.status == ASSIGNED:
            text = f"{self.address}: {self.device} {self.interface} ({self.role}"
            text += f", rack {self.rack})" if self.rack is not None else ")"
            text += f" in {self.prefix}, {where}"
            if self.peer_device:
                text += f"; peer {self.peer_device} {self.peer_interface}"
            return text
        return f"{self.address}: {self.status} in {self.prefix or self.pool_prefix}, {where} — {self.note}"


@dataclass(frozen=True, slots=True)
class _Pool:
    start: int
    end: int
    name: str
    prefix: str
    kind: str  # "loopbacks" | "links" | "network"
    prefix_len: int
    vlan: int | None


class WhoisIndex:
    """Law inversion for one fabric.  Build once, query many addresses."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self.limits = fabric.limits
        self.racks: dict[int, RackSpec] = {rack.id: rack for rack in fabric.racks}
        self.spines: dict[int, str] = {spine.id: spine.name for spine in fabric.spines}
        self.spine_names = tuple(spine.name for spine in fabric.spines)
        pools = [_make_pool(fabric.loopback_pool, "loopbacks", "loopbacks", 32, None)]
        if not fabric.unnumbered and fabric.link_pool:
            pools.append(_make_pool(fabric.link_pool, "links", "links", 31, None))
        pools += [
            _make_pool(net.pool, net.role, "network", net.prefix_len, net.vlan) for net in fabric.networks
        ]
        if fabric.routing == "bgp" and fabric.border.racks and fabric.border.links:
            pools.append(_make_pool(fabric.border.links, "border", "border", 31, None))
        self.pools = sorted(pools, key=lambda pool: pool.start)
        self.starts = [pool.start for pool in self.pools]
        self.vlans = {net.vlan: net for net in fabric.networks}  # IPv6: /64 number -> VLAN -> role

    def lookup(self, address: str) -> Owner:
        """Owner of one IPv4 or IPv6 address (``ValueError`` when ``address`` is not one address)."""
        if ":" in str(address):
            return self._lookup6(parse_address6(address))
        value = parse_address(address)
        text = law.int_to_ip(value)
        index = bisect.bisect_right(self.starts, value) - 1
        if index < 0 or value > self.pools[index].end:
            return Owner(text, OUTSIDE)
        pool = self.pools[index]
        offset = value - pool.start
        if pool.kind == "loopbacks":
            return self._loopback(text, pool, offset)
        if pool.kind == "links":
            return self._link(text, pool, offset)
        if pool.kind == "border":
            return self._border(text, pool, offset)
        return self._network(text, pool, offset)

    # -------------------------------------------------------------------------------- per pool
    def _loopback(self, text: str, pool: _Pool, offset: int) -> Owner:
        base = _base(text, pool, "loopback")
        slot = law.loopback_owner(self.limits, offset)
        if slot is None:
            note = "pool network address" if offset == 0 else "beyond the law's loopback slots"
            return Owner(status=RESERVED, note=note, **base)
        role, rack, index = slot
        if rack == 0:
            return Owner(status=RESERVED, note=RACK0_NOTE, **base)
        base.update(prefix=f"{text}/{pool.prefix_len}", rack=rack, role=role, interface="lo")
        if role == "spine":
            name = self.spines.get(index)
            if name is None:
                return Owner(status=UNASSIGNED, note=f"spine id {index} is not declared", **base)
            return Owner(status=ASSIGNED, device=name, **base)
        return self._declared_slot(rack or 0, role, index, base)  # ToR and host slots carry a rack

    def _link(self, text: str, pool: _Pool, offset: int) -> Owner:
        index, side = divmod(offset, 2)
        base = _base(text, pool, "link")
        if index >= law.link_capacity(self.limits):
            return Owner(status=RESERVED, note="beyond the law's link slots", **base)
        rack_id, tor, uplink = law.link_from_index(self.limits, index)
        if rack_id == 0:
            return Owner(status=RESERVED, note=RACK0_NOTE, **base)
        base.update(prefix=f"{_address_text(pool, pool.start + 2 * index)}/{pool.prefix_len}", rack=rack_id)
        rack = self.racks.get(rack_id)
        port, up, tor_name = (
            law.spine_port_ifname(rack_id, tor, uplink),
            law.uplink_ifname(uplink),
            law.tor_name(rack_id, tor),
        )
        if rack is None or tor > rack.tors or uplink > rack.uplinks:
            return Owner(status=UNASSIGNED, note=f"slot of link {tor_name} {up}, not declared", **base)
        spine = law.uplink_spine(self.spine_names, uplink, rack.uplink_spines)
        return _link_end(side, (spine, "spine", port), (tor_name, "tor", up), base)

    def _network(self, text: str, pool: _Pool, offset: int) -> Owner:
        rack_id, inner = divmod(offset, law.block_size(pool.prefix_len))
        subnet = pool.start + rack_id * law.block_size(pool.prefix_len)
        base = _base(
            text, pool, pool.name, vlan=pool.vlan, prefix=f"{law.int_to_ip(subnet)}/{pool.prefix_len}"
        )
        if rack_id >= self.limits.max_racks or rack_id == 0:
            return Owner(status=RESERVED, note="subnet outside the law's rack ids", **base)
        base["rack"] = rack_id
        kind, index = fhrp.network_slot(inner, pool.prefix_len, fhrp.anycast_gateway(self.fabric))
        if kind in ("network", "broadcast"):
            return Owner(
                status=RESERVED, note=f"{kind} address of rack {rack_id}'s {pool.name} network", **base
            )
        if kind == "anycast":
            return self._anycast_gateway(rack_id, pool, base)
        return self._device_slot(rack_id, pool, kind, index, base)

    def _device_slot(self, rack_id: int, pool: _Pool, kind: str, index: int, base: dict[str, Any]) -> Owner:
        """A ToR (``kind`` gateway) or host slot ``index`` of a rack network, IPv4 or IPv6."""
        role, limit = (
            ("tor", self.limits.tors_per_rack) if kind == "gateway" else ("host", self.limits.hosts_per_rack)
        )
        if index > limit:
            note = "reserved for infrastructure" if role == "tor" else "beyond the law's host slots"
            return Owner(status=RESERVED, note=note, **base)
        return self._declared_slot(rack_id, role, index, base, role=role, interface=pool.name)

    def _declared_slot(
        self, rack_id: int, slot: str, index: int, base: dict[str, Any], /, **owner: Any
    ) -> Owner:
        """ToR (``slot`` "tor") or host slot ``index`` of a rack: assigned when the rack declares
        that many ToRs or hosts, else unassigned; ``owner`` adds fields to the assigned answer."""
        name = law.tor_name(rack_id, index) if slot == "tor" else law.host_name(rack_id, index)
        if index > self._rack_count(rack_id, "tors" if slot == "tor" else "hosts"):
            return Owner(status=UNASSIGNED, note=f"slot of {name}, not declared", **base)
        return Owner(status=ASSIGNED, device=name, **owner, **base)

    def _anycast_gateway(self, rack_id: int, pool: _Pool, base: dict[str, Any]) -> Owner:
        """Offset 1 with ``gateway.redundancy: anycast``: held by every ToR of the rack."""
        tors = self._rack_count(rack_id, "tors")
        if not tors:
            return Owner(status=UNASSIGNED, note=f"anycast gateway of rack {rack_id}, not declared", **base)
        holders = ", ".join(law.tor_name(rack_id, tor) for tor in range(1, tors + 1))
        return Owner(
            status=ASSIGNED,
            device=law.tor_name(rack_id, 1),
            role="tor",
            interface=pool.name,
            note=f"anycast gateway of rack {rack_id}'s {pool.name} network, held by {holders}",
            **base,
        )

    # -------------------------------------------------------------------------------- IPv6
    def _lookup6(self, value: int) -> Owner:
        """Owner of an IPv6 address: /64 number -> loopbacks, links or (VLAN, rack), then the
        IPv4 inversion inside it (the IPv6 law reuses the IPv4 offsets; ``fabric/ipv6.py``)."""
        text = ipv6.ip6(value)
        prefix = self.fabric.ipv6_prefix
        if not prefix:
            return Owner(text, OUTSIDE)
        start, plen = ipv6.parse_cidr6(prefix)
        if not start <= value < start + (1 << (128 - plen)):
            return Owner(text, OUTSIDE)
        number, inner = divmod(value - start, 1 << ipv6.SUBNET_BITS)
        subnet = ipv6.subnet_start(start, number)
        kind, vlan, rack = ipv6.subnet_owner(self.limits, number)
        block = _Pool(
            subnet, subnet + (1 << ipv6.SUBNET_BITS) - 1, kind, f"{ipv6.ip6(subnet)}/64", kind, 64, None
        )
        if kind == "loopbacks":
            return self._loopback(text, replace(block, prefix_len=128), inner)
        if kind == "links" and not self.fabric.unnumbered:
            return self._link(text, replace(block, prefix_len=127), inner)
        spec = self.vlans.get(vlan)
        if kind != "network" or spec is None:
            note = (
                "links are unnumbered (IPv6 link-local only)" if kind == "links" else "no rack network's /64"
            )
            return Owner(text, RESERVED, pool="ipv6", pool_prefix=prefix, prefix=block.prefix, note=note)
        pool = replace(
            block, name=spec.role, vlan=spec.vlan, prefix=ipv6.vlan_block(start, self.limits, vlan)
        )
        return self._network6(text, pool, rack, inner)

    def _network6(self, text: str, pool: _Pool, rack_id: int, inner: int) -> Owner:
        """An address of rack ``rack_id``'s /64 of one network (IPv6 has no broadcast address)."""
        base = _base(text, pool, pool.name, vlan=pool.vlan, prefix=f"{ipv6.ip6(pool.start)}/64")
        if rack_id == 0:
            return Owner(status=RESERVED, note=RACK0_NOTE, **base)
        base["rack"] = rack_id
        # a prefix length of 32 has no broadcast slot: only offset 0 (subnet-router anycast) is special
        kind, index = fhrp.network_slot(inner, 32, fhrp.anycast_gateway(self.fabric))
        if kind == "network":
            note = f"subnet-router anycast address of rack {rack_id}'s {pool.name} network"
            return Owner(status=RESERVED, note=note, **base)
        if kind == "anycast":
            return self._anycast_gateway(rack_id, pool, base)
        return self._device_slot(rack_id, pool, kind, index, base)

    def _border(self, text: str, pool: _Pool, offset: int) -> Owner:
        """``border.links``: /31 number r*tors_per_rack + (t-1); upstream even, ToR (ext1) odd."""
        index, side = divmod(offset, 2)
        base = _base(text, pool, "border")
        if index >= self.limits.max_racks * self.limits.tors_per_rack:
            return Owner(status=RESERVED, note="beyond the law's border link slots", **base)
        rack_id, tor0 = divmod(index, self.limits.tors_per_rack)
        if rack_id == 0:
            return Owner(status=RESERVED, note=RACK0_NOTE, **base)
        base.update(prefix=f"{_address_text(pool, pool.start + 2 * index)}/{pool.prefix_len}", rack=rack_id)
        tor_name, outside = law.tor_name(rack_id, tor0 + 1), f"r{rack_id}t{tor0 + 1}x"
        if rack_id not in self.fabric.border.racks or tor0 + 1 > self._rack_count(rack_id, "tors"):
            return Owner(
                status=UNASSIGNED, note=f"slot of {tor_name}'s upstream link, not a border ToR", **base
            )
        return _link_end(side, ("upstream", "upstream", outside), (tor_name, "tor", BORDER_IFNAME), base)

    def _rack_count(self, rack_id: int, attribute: str) -> int:
        """Declared ToRs/hosts of a rack (0 for an undeclared rack)."""
        rack = self.racks.get(rack_id)
        return getattr(rack, attribute) if rack is not None else 0


def _base(text: str, pool: _Pool, network: str, **fields: Any) -> dict[str, Any]:
    """The fields every answer about ``text`` in ``pool`` carries (``fields`` adds more)."""
    return {"address": text, "pool": pool.name, "pool_prefix": pool.prefix, "network": network, **fields}


def _link_end(
    side: int, even: tuple[str, str, str], odd: tuple[str, str, str], base: dict[str, Any]
) -> Owner:
    """The owner of one side of a two-address link: ``even``/``odd`` are ``(device, role,
    interface)`` of the even (side 0) and odd address; the other end is the peer."""
    (device, role, interface), (peer, _peer_role, peer_interface) = (even, odd) if side == 0 else (odd, even)
    return Owner(
        status=ASSIGNED,
        device=device,
        role=role,
        interface=interface,
        peer_device=peer,
        peer_interface=peer_interface,
        **base,
    )


def _address_text(pool: _Pool, value: int) -> str:
    """Text of an address of ``pool``: IPv6 for slots longer than /32."""
    return ipv6.ip6(value) if pool.prefix_len > 32 else law.int_to_ip(value)


def parse_address6(address: str) -> int:
    """One IPv6 address as an int; a network prefix (``fd00:1::/48``: host bits zero, /126 or
    shorter) is refused like an IPv4 one, an interface address (``fd00:1:0:a1::1/64``) accepted."""
    return _one_address(address, 6)


def _one_address(address: str, version: int) -> int:
    """``address`` of IP ``version`` as an int; a network prefix (host bits zero, shorter than the
    two-address links: /30 or /126) is refused with an example of an address in it."""
    interface = ipaddress.IPv4Interface if version == 4 else ipaddress.IPv6Interface
    try:
        iface = interface(str(address).strip())
    except ValueError:
        raise ValueError(f"not an IPv{version} address") from None
    network = iface.network
    if network.prefixlen <= (30 if version == 4 else 126) and iface.ip == network.network_address:
        raise ValueError(
            f"a network prefix ({network}), not an address: whois takes one address "
            f"(for example {network.network_address + 1})"
        )
    return int(iface.ip)


def _make_pool(prefix: str, name: str, kind: str, prefix_len: int, vlan: int | None) -> _Pool:
    start, plen = law.parse_cidr(prefix)
    return _Pool(start, start + law.block_size(plen) - 1, name, prefix, kind, prefix_len, vlan)


def whois(source: Fabric | Plan, address: str) -> Owner:
    """Owner of ``address`` in a fabric (or a plan's fabric).  Builds a throwaway index."""
    fabric = source.fabric if isinstance(source, Plan) else source
    return WhoisIndex(fabric).lookup(address)
