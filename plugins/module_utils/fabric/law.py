# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The addressing law: pure functions from ids to offsets, addresses, ASNs and names, and back.

Every value depends only on its own ids (rack r, ToR t, uplink u, host h, spine s) and the
``Limits``; list positions never matter, so adding a rack, spine or uplink changes nothing that
already existed.  Addresses are handled as integers (``ipaddress`` ints); ``int_to_ip`` turns one
into dotted-quad text without building ``ipaddress`` objects.
"""

from __future__ import annotations

import re
import socket
import struct

from .model import Limits

GATEWAY_OFFSET = 1  # first usable address of a rack network: ToR 1's gateway
HOST_OFFSET = 10  # host h sits at network + 10 + (h - 1); 1..9 are gateways/infrastructure
MAX_TORS_PER_RACK = HOST_OFFSET - GATEWAY_OFFSET  # ToR gateways must stay below the host range
IFNAME_MAX = 15  # Linux IFNAMSIZ - 1
PRIVATE_ASN_MIN = 4200000000  # RFC 6996 4-byte private range
PRIVATE_ASN_MAX = 4294967294

_PACK = struct.Struct("!I").pack
_UNPACK = struct.Struct("!I").unpack


# ------------------------------------------------------------------------------------ addresses
def int_to_ip(value: int) -> str:
    """Dotted-quad text of an IPv4 address given as an int (fast, no ipaddress objects)."""
    return socket.inet_ntoa(_PACK(value))


def ip_to_int(text: str) -> int:
    """Int value of a dotted-quad IPv4 address already known to be valid (fast path).

    User input goes through ``ipaddress`` first (see ``schema`` and ``whois``).
    """
    return _UNPACK(socket.inet_aton(text))[0]


def parse_cidr(text: str) -> tuple[int, int]:
    """(network int, prefix length) of ``a.b.c.d/len``; assumes a validated, strict network."""
    addr, plen = text.split("/", 1)
    return ip_to_int(addr), int(plen)


def block_size(prefix_len: int) -> int:
    """Number of addresses in an IPv4 prefix of length ``prefix_len``."""
    return 1 << (32 - prefix_len)


def smallest_prefix_for(count: int) -> int:
    """Longest prefix length whose block holds at least ``count`` addresses."""
    return 32 - max(0, (count - 1).bit_length())


# ------------------------------------------------------------------------------------ loopbacks
def spine_loopback_offset(spine_id: int) -> int:
    """Loopback pool offset of spine ``s``: ``s`` (offset 0 is the pool's own address)."""
    return spine_id


def tor_loopback_offset(limits: Limits, rack: int, tor: int) -> int:
    """Loopback pool offset of ToR ``t`` of rack ``r``: ``spines + 1 + r*tors_per_rack + (t-1)``."""
    return limits.spines + 1 + rack * limits.tors_per_rack + (tor - 1)


def host_loopback_offset(limits: Limits, rack: int, host: int) -> int:
    """Loopback offset of host ``h`` of rack ``r``, after every ToR slot of every rack."""
    return (
        limits.spines + 1 + limits.max_racks * limits.tors_per_rack + rack * limits.hosts_per_rack + host - 1
    )


def loopback_capacity(limits: Limits) -> int:
    """Number of loopback offsets the law can hand out (offset 0 included, never used)."""
    return limits.spines + 1 + limits.max_racks * (limits.tors_per_rack + limits.hosts_per_rack)


def loopback_owner(limits: Limits, offset: int) -> tuple[str, int | None, int] | None:
    """Inverse of the loopback offsets: ``(role, rack, index)`` or None for offset 0 / beyond."""
    if offset <= 0 or offset >= loopback_capacity(limits):
        return None
    if offset <= limits.spines:
        return ("spine", None, offset)
    offset -= limits.spines + 1
    tor_slots = limits.max_racks * limits.tors_per_rack
    if offset < tor_slots:
        rack, tor0 = divmod(offset, limits.tors_per_rack)
        return ("tor", rack, tor0 + 1)
    rack, host0 = divmod(offset - tor_slots, limits.hosts_per_rack)
    return ("host", rack, host0 + 1)


# ------------------------------------------------------------------------------------ links
def link_index(limits: Limits, rack: int, tor: int, uplink: int) -> int:
    """Index of the /31 of link (r, t, u) in the link pool."""
    return (rack * limits.tors_per_rack + (tor - 1)) * limits.uplinks_per_tor + (uplink - 1)


def link_capacity(limits: Limits) -> int:
    """Number of /31s the law can hand out."""
    return limits.max_racks * limits.tors_per_rack * limits.uplinks_per_tor


def link_from_index(limits: Limits, index: int) -> tuple[int, int, int]:
    """Inverse of ``link_index``: ``(rack, tor, uplink)``."""
    rest, uplink0 = divmod(index, limits.uplinks_per_tor)
    rack, tor0 = divmod(rest, limits.tors_per_rack)
    return rack, tor0 + 1, uplink0 + 1


def uplink_spine(spine_names: tuple[str, ...], uplink: int, explicit: tuple[str, ...] = ()) -> str:
    """Spine reached by uplink ``u``: the rack's explicit list, else round-robin over spines by id."""
    if explicit:
        return explicit[uplink - 1]
    return spine_names[(uplink - 1) % len(spine_names)]


# ------------------------------------------------------------------------------------ ASNs
def tor_asn(base: int, limits: Limits, rack: int, tor: int) -> int:
    """ASN of ToR t of rack r: ``tor_asn_base + r*tors_per_rack + (t-1)``."""
    return base + rack * limits.tors_per_rack + tor - 1


def host_asn(base: int, limits: Limits, rack: int, host: int) -> int:
    """ASN of host h of rack r: ``host_asn_base + r*hosts_per_rack + (h-1)``."""
    return base + rack * limits.hosts_per_rack + host - 1


def tor_asn_range(base: int, limits: Limits) -> tuple[int, int]:
    """Inclusive (first, last) ASN the ToR law may produce."""
    return base, base + limits.max_racks * limits.tors_per_rack - 1


def host_asn_range(base: int, limits: Limits) -> tuple[int, int]:
    """Inclusive (first, last) ASN the host law may produce."""
    return base, base + limits.max_racks * limits.hosts_per_rack - 1


# ------------------------------------------------------------------------------------ rack networks
def rack_subnet(pool_start: int, prefix_len: int, rack: int) -> int:
    """Network address (int) of rack r's subnet: the r-th ``/prefix_len`` of the pool."""
    return pool_start + rack * block_size(prefix_len)


def gateway_offset(tor: int) -> int:
    """Offset of ToR t's address inside a rack network (ToR 1 = first usable = the gateway)."""
    return GATEWAY_OFFSET + tor - 1


def host_offset(host: int) -> int:
    """Offset of host h inside a rack network."""
    return HOST_OFFSET + host - 1


def network_slot(offset: int, prefix_len: int) -> tuple[str, int]:
    """Inverse inside one rack network: ``("network"|"gateway"|"host"|"reserved"|"broadcast", n)``.

    ``n`` is the ToR index for gateways and the host index for hosts, 0 otherwise.
    """
    if offset == 0:
        return ("network", 0)
    if offset == block_size(prefix_len) - 1 and prefix_len < 31:
        return ("broadcast", 0)
    if offset < HOST_OFFSET:
        return ("gateway", offset - GATEWAY_OFFSET + 1)
    return ("host", offset - HOST_OFFSET + 1)


def rack_network_min_size(limits: Limits) -> int:
    """Addresses a rack network needs: network, gateways/reserved, every host slot, broadcast."""
    return HOST_OFFSET + limits.hosts_per_rack + 1


# ------------------------------------------------------------------------------------ names
def spine_name(spine_id: int) -> str:
    """Default spine name: ``spine01``."""
    return f"spine{spine_id:02d}"


def tor_name(rack: int, tor: int) -> str:
    """ToR name: ``r012-tor1``."""
    return f"r{rack:03d}-tor{tor}"


def host_name(rack: int, host: int) -> str:
    """Host name: ``r012-h07``."""
    return f"r{rack:03d}-h{host:02d}"


def rack_label(rack: int) -> str:
    """Rack label used for file names: ``r012``."""
    return f"r{rack:03d}"


def uplink_ifname(uplink: int) -> str:
    """ToR uplink interface name: ``up3``."""
    return f"up{uplink}"


def spine_port_ifname(rack: int, tor: int, uplink: int) -> str:
    """Spine-side interface of link (r, t, u): ``r12t1u3``."""
    return f"r{rack}t{tor}u{uplink}"


_DEVICE_RE = re.compile(r"^r(\d{3,})-(tor|h)(\d+)$")
_SPINE_PORT_RE = re.compile(r"^r(\d+)t(\d+)u(\d+)$")
_UPLINK_RE = re.compile(r"^up(\d+)$")


def parse_device_name(name: str) -> tuple[str, int, int] | None:
    """Inverse of ``tor_name``/``host_name``: ``("tor"|"host", rack, index)`` or None."""
    match = _DEVICE_RE.match(name)
    if not match:
        return None
    role = "tor" if match.group(2) == "tor" else "host"
    return role, int(match.group(1)), int(match.group(3))


def parse_spine_port(name: str) -> tuple[int, int, int] | None:
    """Inverse of ``spine_port_ifname``: ``(rack, tor, uplink)`` or None."""
    match = _SPINE_PORT_RE.match(name)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def parse_uplink(name: str) -> int | None:
    """Inverse of ``uplink_ifname``: the uplink index or None."""
    match = _UPLINK_RE.match(name)
    return int(match.group(1)) if match else None


def longest_spine_port(limits: Limits) -> str:
    """The longest spine-side interface name the limits allow (for the 15-char check)."""
    return spine_port_ifname(limits.max_racks - 1, limits.tors_per_rack, limits.uplinks_per_tor)
