# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""FRR 8.4 configuration of one fabric device (spine, ToR, or host with BGP-to-host).

``render_frr(plan, device_name)`` returns a self-contained integrated ``frr.conf``: every address
the device owns is in its ``interface`` stanzas (loopback on ``lo``, /31 link addresses, the rack
network gateways on a ToR), so loading the file on a box whose interfaces carry the planned names
is enough.  The output depends only on the plan and is byte-for-byte deterministic.

Design (see ``docs/fabric-frr.md``):

- BGP follows RFC 7938: eBGP only, every spine shares one ASN, every ToR has its own (4-byte
  private) ASN, ``bgp bestpath as-path multipath-relax`` and ``maximum-paths`` for ECMP, BFD when
  enabled (profile ``fabric``), timers from the plan, peer-groups ``SPINE``/``TOR``/``HOST``.
  ``bgp ebgp-requires-policy`` is kept on and every session has explicit prefix-list route-maps:
  a ToR announces only its own prefixes (loopback, rack networks, its hosts' loopbacks) and accepts
  only fabric prefixes; a spine accepts from a rack only that rack's prefixes and sends only
  fabric prefixes.  Link /31s are never announced.
- OSPFv2: one area (the plan's), point-to-point fabric links with equal explicit cost (ECMP does
  not depend on detected link speed), rack networks and loopback in the area as passive
  interfaces, optional BFD.
- Unnumbered fabrics: links carry no address of their own; they borrow the device loopback /32
  (what OSPF unnumbered point-to-point needs, and what keeps DHCP relay replies working); BGP
  peers by interface (IPv6 link-local, RFC 5549 next hops).
- EVPN (``bgp.evpn``): every session also carries ``address-family l2vpn evpn`` with route-maps that
  pass only type-2 (MAC/IP) and type-3 (inclusive multicast) routes; spines and ToRs keep the next
  hop (``attribute-unchanged next-hop``: it is the originating VTEP, the tunnel end) and hold no
  VNI themselves; BGP hosts are the VTEPs (``advertise-all-vni``, VTEP address = their loopback,
  already announced in IPv4) and send only the routes they originate (no host transit).
- Hardening (opt-in, ``fabric/hardening.py``): GTSM (``ttl-security hops 1`` per peer-group),
  TCP-MD5 passwords (one for the fabric, or per session derived from the render-time secret, which
  reaches this renderer only), ``maximum-prefix`` per session from what the peer may announce.
- Anycast (``bgp.anycast``, ``fabric/anycast.py``): every ``FABRIC`` list and every spine's
  ``RACKnnn`` list accept the pools' /32s, a ToR's ``HOSTS`` list too; a host sends those it
  originates (``TO-TOR`` entry 20: ``ANYCAST`` + empty AS path), a ToR those it learned straight
  from a host (``TO-SPINE`` entry 20: ``ANYCAST`` + one-AS path).  The /32s themselves come and go
  with the host's ``network`` statements (the LB node's announcer).
- Drain (``drain: true`` on a spine or rack): ``bgp graceful-shutdown`` / OSPF ``max-metric
  router-lsa administrative``.  Without these keys the output is byte-identical to before.
- Dual stack (``ipv6.prefix``, ``fabric/ipv6.py``): ``ipv6 address`` on every interface with an
  IPv6 address and ``address-family ipv6 unicast`` with the IPv4 policy's shape (``-V6`` names);
  sessions by address get an IPv6 twin (``<GROUP>-V6``), sessions by interface carry both.
- FRR has no interface MTU command: MTUs are set by the host's network configuration and are
  recorded in the interface descriptions here.

Pure string building: no template engine, no ipaddress objects, O(size of the device) per call.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import border
from ..anycast import (
    ANYCAST_LIST,
    HOST_ORIGIN,
    HOST_ORIGIN_REGEX,
    LOCAL_ORIGIN,
    LOCAL_ORIGIN_REGEX,
    anycast_clauses,
    anycast_enabled,
)
from ..evpn import evpn_enabled
from ..hardening import maximum_prefix_clause, password_problems, session_password
from ..ipv6 import fabric_entries6, host_entries6, ipv6_enabled
from ..model import (
    KIND_DOWNLINK,
    KIND_LOOPBACK,
    KIND_NETWORK,
    KIND_UPLINK,
    ROLE_HOST,
    ROLE_SPINE,
    ROLE_TOR,
    BgpNeighbor,
    Device,
    Fabric,
    Interface,
    Plan,
)

FRR_VERSION = "8.4"
BFD_PROFILE = "fabric"
OSPF_LINK_COST = 10
OSPF_SPF_THROTTLE = "0 50 1000"  # delay, initial hold, maximum hold (ms)
OSPF_RETRANSMIT = 1  # s before a lost DD/LS request/update is resent (default 5)
OSPF_LSA_INTERVAL = 100  # ms between originations of one LSA, and accepted arrivals of it
EVPN_MAP = "EVPN"  # type-2 and type-3 routes, both directions on spines and ToRs
EVPN_LOCAL_MAP = "EVPN-LOCAL"  # a VTEP host sends only what it originates
EVPN_ROUTE_TYPES = ("macip", "multicast")  # L2 VNIs: MAC/IP advertisement, inclusive multicast
GROUP_OF_ROLE = {ROLE_SPINE: "SPINE", ROLE_TOR: "TOR", ROLE_HOST: "HOST"}
LINK_KINDS = (KIND_UPLINK, KIND_DOWNLINK)


class FrrRenderError(ValueError):
    """The device cannot get an FRR configuration (unknown, or a host without BGP-to-host)."""


# ------------------------------------------------------------------------------------ helpers
def _host_address(cidr: str) -> str:
    """``10.255.0.1/32`` -> ``10.255.0.1``."""
    return cidr.partition("/")[0]


def _prefix_len(cidr: str) -> int:
    return int(cidr.partition("/")[2] or 32)


def fabric_prefix_entries(plan: Plan) -> list[str]:
    """``permit`` clauses of the FABRIC prefix-list: loopback /32s and rack networks at their length.

    Only exact-length routes out of the fabric pools match (``ge``/``le``), so neither a pool
    aggregate, nor a link /31, nor anything foreign is ever accepted or re-advertised.
    """
    fabric = plan.fabric
    entries = [_range_clause(fabric.loopback_pool, 32)]
    for net in fabric.networks:
        entries.append(_range_clause(net.pool, net.prefix_len))
    # host loopbacks live in the loopback pool: covered
    return entries + anycast_clauses(plan) + border.default_clauses(plan)


def host_prefix_entries(plan: Plan) -> list[str]:
    """``permit`` clauses of a BGP host's FABRIC prefix-list: loopbacks, the host network, anycast.

    Every other rack network is routed by its own gateway (``render.host``): its traffic keeps to
    its network, so what filters by network (NFS exports, storage ACLs) sees the sender's address
    on that network, and not the host network's.
    """
    fabric = plan.fabric
    net = fabric.network(fabric.bgp.host_network)
    loopbacks = _range_clause(fabric.loopback_pool, 32)
    return [loopbacks, _range_clause(net.pool, net.prefix_len), *anycast_clauses(plan)]


def _range_clause(pool: str, length: int) -> str:
    pool_len = _prefix_len(pool)
    if length == pool_len:
        return pool
    if length == 32:
        return f"{pool} ge 32"
    return f"{pool} ge {length} le {length}"


def _prefix_list(name: str, clauses: list[str] | tuple[str, ...], out: list[str]) -> None:
    seq = 10
    for clause in clauses:
        out.append(f"ip prefix-list {name} seq {seq} permit {clause}")
        seq += 10
    if not clauses:  # an empty list would match nothing anyway; say so explicitly
        out.append(f"ip prefix-list {name} seq 10 deny any")


def _route_map(name: str, prefix_list: str, out: list[str]) -> None:
    out.append(f"route-map {name} permit 10")
    out.append(f" match ip address prefix-list {prefix_list}")
    out.append("exit")
    out.append("!")


def _anycast_route_map(name: str, as_path: str, out: list[str]) -> None:
    """Entry 20 of an outbound route-map: anycast /32s, only with the AS path ``as_path`` allows."""
    out.append(f"route-map {name} permit 20")
    out.append(f" match ip address prefix-list {ANYCAST_LIST}")
    out.append(f" match as-path {as_path}")
    out.append("exit")
    out.append("!")


def _anycast_lists(plan: Plan, device: Device, out: list[str]) -> None:
    """``ANYCAST`` prefix-list and the as-path list a ToR or host sends anycast /32s under."""
    _prefix_list(ANYCAST_LIST, anycast_clauses(plan), out)
    if device.role == ROLE_HOST:
        out.append(f"bgp as-path access-list {LOCAL_ORIGIN} seq 10 permit {LOCAL_ORIGIN_REGEX}")
    else:
        out.append(f"bgp as-path access-list {HOST_ORIGIN} seq 10 permit {HOST_ORIGIN_REGEX}")


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _describe(iface: Interface, vlans: dict[str, int]) -> str:
    """Interface description: what it is, where it goes, its VLAN and MTU (FRR cannot set MTUs)."""
    if iface.kind == KIND_UPLINK:
        text = f"uplink to {iface.peer_device} {iface.peer_interface}"
    elif iface.kind == KIND_DOWNLINK:
        text = f"downlink to {iface.peer_device} {iface.peer_interface}"
    elif iface.kind == KIND_NETWORK:
        role = iface.network_role or iface.name
        text = f"rack network {role}"
        if role in vlans:
            text += f" vlan {vlans[role]}"
    else:
        text = "loopback"
    if iface.mtu:
        text += f", mtu {iface.mtu}"
    return text


def anycast_note(iface: Interface, fabric: Fabric) -> str:
    """Description suffix of an interface holding the anycast gateway: its MAC (FRR cannot set
    MACs; the host's network configuration does, like the MTU)."""
    if not iface.gateway:
        return ""
    return f", anycast gateway mac {fabric.gateway.mac}"


# ------------------------------------------------------------------------------------ sections
def _header(device: Device, out: list[str], *, ipv6: bool = False) -> None:
    out.append(f"frr version {FRR_VERSION}")
    out.append("frr defaults datacenter")
    out.append(f"hostname {device.name}")
    out.append("log syslog informational")
    out.append("service integrated-vtysh-config")
    # zebra writes the forwarding sysctl: routers forward, hosts do not
    out.append("no ip forwarding" if device.role == ROLE_HOST else "ip forwarding")
    if ipv6:
        out.append("no ipv6 forwarding" if device.role == ROLE_HOST else "ipv6 forwarding")
    # FRR 8.4 with kernel nexthop groups leaves the kernel's ECMP group short of the restored
    # member after a link flap (RIB 3 paths, FIB 2); per-route multipath stays in sync
    out.append("no zebra nexthop kernel enable")
    out.append("!")


def _interfaces(plan: Plan, device: Device, out: list[str]) -> None:
    fabric = plan.fabric
    ospf = fabric.routing == "ospf"
    area = str(fabric.ospf.area)
    ospf_bfd = ospf and fabric.ospf.bfd
    vlans = {net.role: net.vlan for net in fabric.networks}
    for iface in device.interfaces:
        out.append(f"interface {iface.name}")
        if iface.kind != KIND_LOOPBACK:
            out.append(f" description {_describe(iface, vlans)}{anycast_note(iface, fabric)}")
        address = iface.address
        if address is None and iface.kind in LINK_KINDS:
            address = device.loopback  # unnumbered: borrow the loopback /32
        if address:
            out.append(f" ip address {address}")
        if iface.address6:
            out.append(f" ipv6 address {iface.address6}")
        if iface.gateway:  # anycast gateway, after the own address: that one stays primary
            out.append(f" ip address {iface.gateway}")
        if ospf:
            out.append(f" ip ospf area {area}")
            if iface.kind in LINK_KINDS:
                out.append(" ip ospf network point-to-point")
                out.append(f" ip ospf cost {OSPF_LINK_COST}")
                out.append(f" ip ospf hello-interval {fabric.ospf.hello}")
                out.append(f" ip ospf dead-interval {fabric.ospf.dead}")
                out.append(f" ip ospf retransmit-interval {OSPF_RETRANSMIT}")
                if ospf_bfd:
                    out.append(" ip ospf bfd")
                    out.append(f" ip ospf bfd profile {BFD_PROFILE}")
            else:
                out.append(" ip ospf passive")
        out.append("exit")
        out.append("!")
    out.extend(border.interface_lines(plan, device))


def _bfd(plan: Plan, out: list[str]) -> None:
    bgp = plan.fabric.bgp
    out.append("bfd")
    out.append(f" profile {BFD_PROFILE}")
    out.append(f"  detect-multiplier {bgp.bfd_multiplier}")
    out.append(f"  receive-interval {bgp.bfd_interval}")
    out.append(f"  transmit-interval {bgp.bfd_interval}")
    out.append(" exit")
    out.append("exit")
    out.append("!")


def _neighbor_groups(plan: Plan, device: Device) -> dict[str, list[BgpNeighbor]]:
    """Neighbors grouped by the peer's role, groups in SPINE, TOR, HOST order."""
    groups: dict[str, list[BgpNeighbor]] = {}
    devices = plan.devices
    for nbr in device.bgp_neighbors:
        peer = devices.get(nbr.peer_device)
        role = peer.role if peer is not None else ROLE_TOR
        groups.setdefault(GROUP_OF_ROLE[role], []).append(nbr)
    return {name: groups[name] for name in ("SPINE", "TOR", "HOST") if name in groups}


def _peer_id(nbr: BgpNeighbor) -> str:
    return nbr.address if nbr.address else nbr.interface


def _bgp_policies(
    plan: Plan, device: Device, groups: dict[str, list[BgpNeighbor]], out: list[str]
) -> tuple[dict[str, tuple[str | None, str]], dict[str, str]]:
    """Prefix-lists and route-maps; returns {group: (in-map or None, out-map)} and {peer: in-map}."""
    devices = plan.devices
    group_maps: dict[str, tuple[str | None, str]] = {}
    member_in: dict[str, str] = {}
    accepted = host_prefix_entries(plan) if device.role == ROLE_HOST else fabric_prefix_entries(plan)
    _prefix_list("FABRIC", accepted, out)

    if device.role == ROLE_SPINE:
        # per rack: exactly what the rack's ToRs (and their BGP hosts) originate
        racks: dict[int, list[str]] = {}
        seen: set[str] = set()
        for nbr in groups.get("TOR", ()):
            tor = devices[nbr.peer_device]
            rack = tor.rack if tor.rack is not None else 0
            member_in[_peer_id(nbr)] = f"FROM-RACK{rack:03d}"
            if tor.name not in seen:
                seen.add(tor.name)
                racks.setdefault(rack, []).extend(_tor_originates(plan, tor))
        for rack in sorted(racks):
            clauses = _dedupe(racks[rack]) + anycast_clauses(plan) + border.rack_clauses(plan, rack)
            _prefix_list(f"RACK{rack:03d}", clauses, out)
        out.append("!")
        for rack in sorted(racks):
            _route_map(f"FROM-RACK{rack:03d}", f"RACK{rack:03d}", out)
        _route_map("TO-TOR", "FABRIC", out)
        group_maps["TOR"] = (None, "TO-TOR")
        return group_maps, member_in

    if device.role == ROLE_TOR:
        host_groups = groups.get("HOST", ())
        lists = [("LOCAL", _dedupe(_tor_originates(plan, device)))]
        if host_groups:
            host_los = _dedupe([p for nbr in host_groups for p in devices[nbr.peer_device].announce])
            lists.append(("HOSTS", host_los + anycast_clauses(plan)))
        group_maps["SPINE"] = _upward_policy(plan, device, lists, out, upper="SPINE", origin=HOST_ORIGIN)
        if host_groups:
            _route_map("FROM-HOST", "HOSTS", out)
            _route_map("TO-HOST", "FABRIC", out)
            group_maps["HOST"] = ("FROM-HOST", "TO-HOST")
        return group_maps, member_in

    # host with BGP-to-host: announce its own prefixes, accept loopbacks and the host network
    group_maps["TOR"] = _upward_policy(
        plan, device, [("LOCAL", list(device.announce))], out, upper="TOR", origin=LOCAL_ORIGIN
    )
    return group_maps, member_in


def _upward_policy(
    plan: Plan, device: Device, lists: list[tuple[str, list[str]]], out: list[str], *, upper: str, origin: str
) -> tuple[str, str]:
    """A ToR's or host's prefix-lists (``lists``: LOCAL first) and its maps towards the ``upper``
    tier (``FROM-<upper>`` accepts FABRIC, ``TO-<upper>`` sends LOCAL, and the anycast prefixes
    of ``origin`` when anycast is on); a ToR adds the border policy.  Returns (in-map, out-map)."""
    anycast = anycast_enabled(plan)
    for name, clauses in lists:
        _prefix_list(name, clauses, out)
    if anycast:
        _anycast_lists(plan, device, out)
    out.append("!")
    in_map, out_map = f"FROM-{upper}", f"TO-{upper}"
    _route_map(in_map, "FABRIC", out)
    _route_map(out_map, "LOCAL", out)
    if anycast:
        _anycast_route_map(out_map, origin, out)
    if device.role == ROLE_TOR:
        out.extend(border.policy_lines(plan, device))
    return in_map, out_map


def evpn_group_maps(device: Device, groups: list[str]) -> dict[str, tuple[str, str]]:
    """{group: (in-map, out-map)} of the l2vpn evpn sessions of ``device``.

    Spines and ToRs pass type-2/3 routes both ways; a VTEP host accepts them from its ToRs and
    sends only the routes it originates, so a host with two ToRs never carries one ToR's routes
    to the other.
    """
    out_map = EVPN_LOCAL_MAP if device.role == ROLE_HOST else EVPN_MAP
    return {group: (EVPN_MAP, out_map) for group in groups}


def _evpn_policies(device: Device, out: list[str], *, local_origin_defined: bool = False) -> None:
    """Route-maps of the l2vpn evpn sessions (``ebgp-requires-policy`` needs them too)."""
    seq = 10
    for route_type in EVPN_ROUTE_TYPES:
        out.append(f"route-map {EVPN_MAP} permit {seq}")
        out.append(f" match evpn route-type {route_type}")
        out.append("exit")
        out.append("!")
        seq += 10
    if device.role != ROLE_HOST:
        return
    if not local_origin_defined:  # the anycast policy defines the same list
        out.append(f"bgp as-path access-list {LOCAL_ORIGIN} seq 10 permit {LOCAL_ORIGIN_REGEX}")
        out.append("!")
    seq = 10
    for route_type in EVPN_ROUTE_TYPES:
        out.append(f"route-map {EVPN_LOCAL_MAP} permit {seq}")
        out.append(f" match as-path {LOCAL_ORIGIN}")
        out.append(f" match evpn route-type {route_type}")
        out.append("exit")
        out.append("!")
        seq += 10


def _evpn_family(device: Device, groups: list[str], out: list[str]) -> None:
    """``address-family l2vpn evpn``: VTEP hosts advertise their VNIs, routers keep next hops."""
    out.append(" !")
    out.append(" address-family l2vpn evpn")
    for group, (in_map, out_map) in evpn_group_maps(device, groups).items():
        out.append(f"  neighbor {group} activate")
        if device.role != ROLE_HOST:
            # the next hop is the originating VTEP (the tunnel end): never rewrite it in transit
            out.append(f"  neighbor {group} attribute-unchanged next-hop")
        out.append(f"  neighbor {group} route-map {in_map} in")
        out.append(f"  neighbor {group} route-map {out_map} out")
    if device.role == ROLE_HOST:
        # every VNI zebra finds (a vxlan device with `local <loopback>` in a bridge) is announced
        out.append("  advertise-all-vni")
    out.append(" exit-address-family")


def _tor_originates(plan: Plan, tor: Device) -> list[str]:
    """What a ToR sends upstream: its own prefixes plus the loopbacks of its BGP hosts."""
    prefixes = list(tor.announce)
    devices = plan.devices
    for nbr in tor.bgp_neighbors:
        peer = devices.get(nbr.peer_device)
        if peer is not None and peer.role == ROLE_HOST:
            prefixes.extend(peer.announce)
    return prefixes


def _peer_group(
    plan: Plan,
    device: Device,
    group: str,
    members: list[BgpNeighbor],
    *,
    ifaces: dict[str, Interface],
    secret: str | None,
    out: list[str],
) -> None:
    """A peer-group and its members; a remote-as shared by every member goes on the group.

    Hardening (``bgp.gtsm``, ``bgp.passwords``) is appended after the lines a fabric without it
    has, so such a fabric renders exactly as before.
    """
    bgp = plan.fabric.bgp
    out.append(f" neighbor {group} peer-group")
    asns = {nbr.remote_asn for nbr in members}
    shared_asn = asns.pop() if len(asns) == 1 and not group.startswith("TOR") else None
    if shared_asn is not None:
        out.append(f" neighbor {group} remote-as {shared_asn}")
    out.append(f" neighbor {group} description fabric {group.lower()}s")
    if bgp.bfd:
        out.append(f" neighbor {group} bfd")
        out.append(f" neighbor {group} bfd profile {BFD_PROFILE}")
    if bgp.gtsm:
        # every fabric session is between directly connected boxes (never ebgp-multihop)
        out.append(f" neighbor {group} ttl-security hops 1")
    if bgp.passwords == "fabric" and secret is not None:
        out.append(f" neighbor {group} password {secret}")
    for nbr in members:
        peer = _peer_id(nbr)
        if nbr.address:
            if shared_asn is None:
                out.append(f" neighbor {peer} remote-as {nbr.remote_asn}")
            out.append(f" neighbor {peer} peer-group {group}")
        else:
            out.append(f" neighbor {peer} interface peer-group {group}")
            if shared_asn is None:
                out.append(f" neighbor {peer} remote-as {nbr.remote_asn}")
        local = ifaces.get(nbr.interface)
        where = nbr.peer_device
        if local is not None and local.peer_interface:
            where += f" {local.peer_interface}"
        out.append(f" neighbor {peer} description {where}")
        if bgp.passwords == "per_session" and secret is not None:
            peer_if = local.peer_interface if local is not None and local.peer_interface else nbr.interface
            ends = (device.name, nbr.interface), (nbr.peer_device, peer_if)
            key = session_password(secret, plan.fabric.name, *ends)
            out.append(f" neighbor {peer} password {key}")


def _peer_id6(nbr: BgpNeighbor) -> str:
    return nbr.address6 or nbr.interface


def _activate(name: str, maps: tuple[str | None, str], out: list[str]) -> None:
    """``neighbor NAME activate`` in an address family and its (in-map when any, out-map) route-maps."""
    in_map, out_map = maps
    out.append(f"  neighbor {name} activate")
    if in_map:
        out.append(f"  neighbor {name} route-map {in_map} in")
    out.append(f"  neighbor {name} route-map {out_map} out")


def _member_maps(
    device: Device,
    groups: dict[str, list[BgpNeighbor]],
    member_in: dict[str, str],
    peer_id: Callable[[BgpNeighbor], str],
    out: list[str],
) -> None:
    """A spine's per-ToR in-maps (``FROM-RACKnnn``), keyed by the session's ``peer_id``."""
    for nbr in groups.get("TOR", ()) if device.role == ROLE_SPINE else ():
        peer = peer_id(nbr)
        out.append(f"  neighbor {peer} route-map {member_in[peer]} in")


def _maximum_prefixes(
    plan: Plan,
    device: Device,
    groups: dict[str, list[BgpNeighbor]],
    peer_id: Callable[[BgpNeighbor], str],
    out: list[str],
) -> None:
    """``maximum-prefix`` of every session when ``bgp.maximum_prefix`` is enabled."""
    if plan.fabric.bgp.maximum_prefix.enabled:
        for members in groups.values():
            for nbr in members:
                clause = maximum_prefix_clause(plan, device, nbr)
                out.append(f"  neighbor {peer_id(nbr)} maximum-prefix {clause}")


def _router_bgp(plan: Plan, device: Device, out: list[str], secret: str | None = None) -> None:
    fabric = plan.fabric
    bgp = fabric.bgp
    groups = _neighbor_groups(plan, device)
    group_maps, member_in = _bgp_policies(plan, device, groups, out)
    policies6 = _bgp_policies6(plan, device, groups, out) if ipv6_enabled(plan) else None
    evpn = evpn_enabled(plan)
    if evpn:
        _evpn_policies(device, out, local_origin_defined=anycast_enabled(plan))
    ifaces = {iface.name: iface for iface in device.interfaces}

    out.append(f"router bgp {device.asn}")
    out.append(f" bgp router-id {device.router_id}")
    out.append(" bgp log-neighbor-changes")
    out.append(" bgp ebgp-requires-policy")
    out.append(" bgp bestpath as-path multipath-relax")
    out.append(f" timers bgp {bgp.timers.keepalive} {bgp.timers.hold}")
    if device.drain:
        # RFC 8326: everything announced carries GRACEFUL_SHUTDOWN; eBGP receivers (FRR does this
        # on its own) set local-pref 0 on it, so they move to the other paths before this goes
        out.append(" bgp graceful-shutdown")
    sessions6 = ipv6_sessions(groups) if policies6 is not None else {}
    for group, members in {**groups, **sessions6}.items():
        _peer_group(plan, device, group, members, ifaces=ifaces, secret=secret, out=out)
    out.extend(border.session_lines(plan, device))
    out.append(" !")
    out.append(" address-family ipv4 unicast")
    for prefix in device.announce:
        out.append(f"  network {prefix}")
    for group in groups:
        _activate(group, group_maps[group], out)
    _member_maps(device, groups, member_in, _peer_id, out)
    out.extend(border.family_lines(plan, device))
    _maximum_prefixes(plan, device, groups, _peer_id, out)
    out.extend(f"  no neighbor {group} activate" for group in sessions6)  # IPv6 sessions: ipv6 only
    out.append(f"  maximum-paths {bgp.maximum_paths}")
    out.append(" exit-address-family")
    if policies6 is not None:
        _ipv6_family(plan, device, groups, policies6, out)
    if evpn:
        _evpn_family(device, list(groups), out)
    out.append("exit")
    out.append("!")


def _router_ospf(plan: Plan, device: Device, out: list[str]) -> None:
    out.append("router ospf")
    out.append(f" ospf router-id {device.router_id}")
    out.append(" log-adjacency-changes")
    # data-centre timers: SPF at once, hold at most 1 s under churn; LSAs may change every 100 ms
    out.append(f" timers throttle spf {OSPF_SPF_THROTTLE}")
    out.append(f" timers throttle lsa all {OSPF_LSA_INTERVAL}")
    out.append(f" timers lsa min-arrival {OSPF_LSA_INTERVAL}")
    out.append(f" maximum-paths {plan.fabric.bgp.maximum_paths}")
    if device.drain:
        # every link of this router costs the maximum: transit moves away, its own prefixes stay
        out.append(" max-metric router-lsa administrative")
    out.append("exit")
    out.append("!")


# ------------------------------------------------------------------------------------ dual stack
V6 = "-V6"  # suffix of the IPv6 peer-groups, prefix-lists and route-maps


def ipv6_sessions(groups: dict[str, list[BgpNeighbor]]) -> dict[str, list[BgpNeighbor]]:
    """The second, IPv6 sessions of a dual-stack device: ``<GROUP>-V6`` peer-groups whose members
    are the IPv6 addresses of the peers reached by IPv4 address.  Sessions by interface
    (unnumbered, RFC 5549) carry both families and get none."""
    out: dict[str, list[BgpNeighbor]] = {}
    for group, members in groups.items():
        v6 = [
            BgpNeighbor(nbr.peer_device, nbr.interface, nbr.address6, nbr.remote_asn)
            for nbr in members
            if nbr.address and nbr.address6
        ]
        if v6:
            out[group + V6] = v6
    return out


def _prefix_list6(name: str, clauses: list[str], out: list[str]) -> None:
    seq = 10
    for clause in clauses:
        out.append(f"ipv6 prefix-list {name} seq {seq} permit {clause}")
        seq += 10
    if not clauses:
        out.append(f"ipv6 prefix-list {name} seq 10 deny any")


def _route_map6(name: str, prefix_list: str, out: list[str]) -> None:
    out.append(f"route-map {name} permit 10")
    out.append(f" match ipv6 address prefix-list {prefix_list}")
    out.append("exit")
    out.append("!")


def _originates6(plan: Plan, tor: Device) -> list[str]:
    """IPv6 counterpart of ``_tor_originates``: the ToR's own prefixes and its BGP hosts' loopbacks."""
    prefixes = list(tor.announce6)
    for nbr in tor.bgp_neighbors:
        peer = plan.devices.get(nbr.peer_device)
        if peer is not None and peer.role == ROLE_HOST:
            prefixes.extend(peer.announce6)
    return prefixes


def _bgp_policies6(
    plan: Plan, device: Device, groups: dict[str, list[BgpNeighbor]], out: list[str]
) -> tuple[dict[str, tuple[str | None, str]], dict[str, str]]:
    """The IPv4 policy shape for ipv6 unicast: ``FABRIC-V6`` (loopback /128s, rack /64s), a ToR
    sends ``LOCAL-V6``, a spine accepts ``RACKnnn-V6`` per rack; maps keyed by the v4 group."""
    devices = plan.devices
    maps: dict[str, tuple[str | None, str]] = {}
    member_in: dict[str, str] = {}
    accepted = host_entries6(plan) if device.role == ROLE_HOST else fabric_entries6(plan)
    _prefix_list6("FABRIC" + V6, accepted, out)
    if device.role == ROLE_SPINE:
        racks: dict[int, list[str]] = {}
        for nbr in groups.get("TOR", ()):
            tor = devices[nbr.peer_device]
            rack = tor.rack if tor.rack is not None else 0
            member_in[nbr.address6 or nbr.interface] = f"FROM-RACK{rack:03d}{V6}"
            racks.setdefault(rack, []).extend(_originates6(plan, tor))
        for rack in sorted(racks):
            _prefix_list6(f"RACK{rack:03d}{V6}", _dedupe(racks[rack]), out)
        out.append("!")
        for rack in sorted(racks):
            _route_map6(f"FROM-RACK{rack:03d}{V6}", f"RACK{rack:03d}{V6}", out)
        _route_map6("TO-TOR" + V6, "FABRIC" + V6, out)
        maps["TOR"] = (None, "TO-TOR" + V6)
        return maps, member_in
    if device.role == ROLE_TOR:
        _prefix_list6("LOCAL" + V6, _dedupe(_originates6(plan, device)), out)
        host_groups = groups.get("HOST", ())
        if host_groups:
            los = _dedupe([p for nbr in host_groups for p in devices[nbr.peer_device].announce6])
            _prefix_list6("HOSTS" + V6, los, out)
        out.append("!")
        _route_map6("FROM-SPINE" + V6, "FABRIC" + V6, out)
        _route_map6("TO-SPINE" + V6, "LOCAL" + V6, out)
        maps["SPINE"] = ("FROM-SPINE" + V6, "TO-SPINE" + V6)
        if host_groups:
            _route_map6("FROM-HOST" + V6, "HOSTS" + V6, out)
            _route_map6("TO-HOST" + V6, "FABRIC" + V6, out)
            maps["HOST"] = ("FROM-HOST" + V6, "TO-HOST" + V6)
        return maps, member_in
    _prefix_list6("LOCAL" + V6, list(device.announce6), out)
    out.append("!")
    _route_map6("FROM-TOR" + V6, "FABRIC" + V6, out)
    _route_map6("TO-TOR" + V6, "LOCAL" + V6, out)
    maps["TOR"] = ("FROM-TOR" + V6, "TO-TOR" + V6)
    return maps, member_in


def _ipv6_family(
    plan: Plan,
    device: Device,
    groups: dict[str, list[BgpNeighbor]],
    policies: tuple[dict[str, tuple[str | None, str]], dict[str, str]],
    out: list[str],
) -> None:
    """``address-family ipv6 unicast``: the same shape as ipv4 unicast, on the IPv6 sessions
    (``<GROUP>-V6``) or, for sessions by interface, on the same peer-group."""
    bgp = plan.fabric.bgp
    group_maps, member_in = policies
    out.append(" !")
    out.append(" address-family ipv6 unicast")
    for prefix in device.announce6:
        out.append(f"  network {prefix}")
    for group, members in groups.items():
        name = group + V6 if members[0].address and members[0].address6 else group
        _activate(name, group_maps[group], out)
    _member_maps(device, groups, member_in, _peer_id6, out)
    _maximum_prefixes(plan, device, groups, _peer_id6, out)
    out.append(f"  maximum-paths {bgp.maximum_paths}")
    out.append(" exit-address-family")


# ------------------------------------------------------------------------------------ entry point
def render_frr(plan: Plan, device_name: str, *, bgp_password: str | None = None) -> str:
    """The complete FRR 8.4 ``frr.conf`` of ``device_name`` (spine, ToR, or BGP host).

    ``bgp_password`` is the secret of ``bgp.passwords`` (from a no_log / vault variable); it is
    used only here, never stored in the plan.  Raises FrrRenderError when the fabric asks for
    passwords and none (or an unusable one) is given; the message never contains the secret.
    """
    device = plan.devices.get(device_name)
    if device is None:
        raise FrrRenderError(f"unknown device {device_name!r}")
    fabric = plan.fabric
    routing = fabric.routing
    if device.role == ROLE_HOST and not (routing == "bgp" and fabric.bgp.hosts):
        raise FrrRenderError(f"{device_name}: hosts get an FRR configuration only with BGP-to-host")
    if routing not in ("bgp", "ospf"):
        raise FrrRenderError(f"unknown routing protocol {routing!r}")
    secret = None
    if routing == "bgp" and fabric.bgp.passwords != "none":
        problems = password_problems(fabric.bgp.passwords, bgp_password)
        if problems:
            raise FrrRenderError("; ".join(str(problem) for problem in problems))
        secret = bgp_password

    out: list[str] = []
    _header(device, out, ipv6=ipv6_enabled(plan))
    _interfaces(plan, device, out)
    if (routing == "bgp" and fabric.bgp.bfd and device.bgp_neighbors) or (
        routing == "ospf" and fabric.ospf.bfd
    ):
        _bfd(plan, out)
    if routing == "bgp":
        if device.asn is None:
            raise FrrRenderError(f"{device_name}: no ASN in the plan")
        _router_bgp(plan, device, out, secret)
    else:
        _router_ospf(plan, device, out)
    out.append("end")
    return "\n".join(out) + "\n"
