# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whole-file validation: collect every problem (with key path and value), then build ``Fabric``.

``schema.normalize`` checks each key on its own (types, ranges, unknown keys); this module checks
what spans keys: pool overlaps (sort + adjacent scan, O(n log n)), pool capacity against the law's
limits, duplicate ids and names, ASN ranges, rack shapes against limits, interface name lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from . import ipv6, law
from .border import IFNAME as BORDER_IFNAME
from .errors import FabricError, FabricValidationError
from .gateway import ANYCAST_MAX_TORS
from .model import (
    BgpOptions,
    Block,
    BorderOptions,
    Fabric,
    GatewayOptions,
    Limits,
    MaximumPrefix,
    NetworkSpec,
    OspfOptions,
    RackSpec,
    SpineSpec,
    Timers,
)
from .schema import normalize

RESERVED_IFNAMES = ("lo",)


@dataclass(frozen=True, slots=True)
class _Pool:
    """A declared pool as an inclusive integer interval, with its key path."""

    start: int
    end: int
    path: str
    text: str


@dataclass(frozen=True, slots=True)
class _RackEntry:
    """One entry of ``racks`` with the rack ids it declares."""

    index: int
    path: str
    ids: range
    data: dict[str, Any]


def validate(raw: Any) -> Fabric:
    """Validate a raw fabric document; return the ``Fabric`` or raise ``FabricValidationError``."""
    fabric, errors = check(raw)
    if errors or fabric is None:
        raise FabricValidationError(errors)
    return fabric


def check(raw: Any) -> tuple[Fabric | None, list[FabricError]]:
    """Return ``(fabric, [])`` for a valid document, else ``(None, every error found)``."""
    data, errors = normalize(raw)
    if not data:
        return None, errors
    limits = _limits(data)
    spines = _check_spines(data, limits, errors)
    entries = _rack_entries(data, errors)
    _check_racks(data, entries, limits, {spine.name for spine in spines}, errors)
    pools = _declared_pools(data, errors)
    _check_overlaps(pools, errors)
    if limits is not None:
        _check_capacity(data, limits, errors)
        _check_asns(data, limits, errors)
        _check_ifnames(data, limits, errors)
    _check_networks(data, errors)
    _check_protocols(data, errors)
    _check_ecmp(data, entries, spines, errors)
    _check_border(data, entries, limits, errors)
    _check_ipv6(data, limits, errors)
    if errors or limits is None:
        return None, errors
    return _build(data, limits, spines, entries), []


# ------------------------------------------------------------------------------------ pieces
def _limits(data: dict[str, Any]) -> Limits | None:
    """Limits when every limit is valid (capacity checks need all of them)."""
    raw = data["limits"]
    if any(value is None for value in raw.values()):
        return None
    return Limits(**raw)


def _check_spines(data: dict[str, Any], limits: Limits | None, errors: list[FabricError]) -> list[SpineSpec]:
    """Spine ids within limits and unique, names unique and not colliding with derived names."""
    spines: list[SpineSpec] = []
    seen_ids: dict[int, str] = {}
    seen_names: dict[str, str] = {}
    for index, spine in enumerate(data.get("spines") or []):
        if not spine or spine["id"] is None:
            continue
        path = f"spines[{index}]"
        spine_id = spine["id"]
        if limits is not None and spine_id > limits.spines:
            errors.append(
                FabricError(f"{path}.id", spine_id, f"spine id must be <= limits.spines ({limits.spines})")
            )
        if spine_id in seen_ids:
            errors.append(
                FabricError(f"{path}.id", spine_id, f"duplicate spine id (also {seen_ids[spine_id]})")
            )
            continue
        seen_ids[spine_id] = f"{path}.id"
        name = spine["name"] or law.spine_name(spine_id)
        if name in seen_names:
            errors.append(
                FabricError(f"{path}.name", name, f"duplicate device name (also {seen_names[name]})")
            )
            continue
        if law.parse_device_name(name):
            errors.append(
                FabricError(f"{path}.name", name, "collides with ToR/host naming r<rack>-tor<t>/-h<h>")
            )
        seen_names[name] = f"{path}.name"
        spines.append(SpineSpec(spine_id, name, bool(spine.get("drain")), spine.get("link_mtu")))
    return sorted(spines, key=lambda spine: spine.id)


def _rack_entries(data: dict[str, Any], errors: list[FabricError]) -> list[_RackEntry]:
    """Expand ``racks`` entries (single ``id`` or ``range``) into id ranges."""
    entries = []
    for index, rack in enumerate(data.get("racks") or []):
        if not rack:
            continue
        path = f"racks[{index}]"
        has_id, has_range = rack["id"] is not None, rack["range"] is not None
        if has_id and has_range:
            errors.append(
                FabricError(
                    path, {"id": rack["id"], "range": rack["range"]}, "give 'id' or 'range', not both"
                )
            )
            continue
        if not has_id and not has_range:
            if not _invalid(errors, f"{path}.") & {"id", "range"}:
                errors.append(FabricError(path, None, "give exactly one of 'id' or 'range'"))
            continue
        if has_range and rack["name"] is not None:
            errors.append(
                FabricError(f"{path}.name", rack["name"], "a name needs a single rack ('id'), not a range")
            )
        ids = range(rack["id"], rack["id"] + 1) if has_id else range(rack["range"][0], rack["range"][1] + 1)
        entries.append(_RackEntry(index, path, ids, rack))
    return entries


def _check_racks(
    data: dict[str, Any],
    entries: list[_RackEntry],
    limits: Limits | None,
    spine_names: set[str],
    errors: list[FabricError],
) -> None:
    """Rack ids below max_racks and unique; shapes within limits; uplink spines known."""
    owner: dict[int, int] = {}
    reported: set[tuple[int, int]] = set()
    names: dict[str, str] = {}
    for entry in entries:
        key = "id" if entry.data["id"] is not None else "range"
        if limits is not None and entry.ids[-1] >= limits.max_racks:
            errors.append(
                FabricError(
                    f"{entry.path}.{key}",
                    entry.data[key],
                    f"rack ids must be < limits.max_racks ({limits.max_racks})",
                )
            )
        for rack_id in entry.ids:
            first = owner.setdefault(rack_id, entry.index)
            if first != entry.index and (first, entry.index) not in reported:
                reported.add((first, entry.index))
                errors.append(
                    FabricError(
                        f"{entry.path}.{key}", rack_id, f"duplicate rack id (also declared by racks[{first}])"
                    )
                )
        name = entry.data["name"]
        if name is not None:
            if name in names:
                errors.append(
                    FabricError(f"{entry.path}.name", name, f"duplicate rack name (also {names[name]})")
                )
            names[name] = f"{entry.path}.name"
        if limits is not None:
            _check_rack_shape(entry, limits, spine_names, errors)


def _check_rack_shape(
    entry: _RackEntry, limits: Limits, spine_names: set[str], errors: list[FabricError]
) -> None:
    """tors/uplinks/hosts within the limits; explicit uplink spines must be declared spines."""
    data, path = entry.data, entry.path
    for key, limit_key in (("tors", "tors_per_rack"), ("hosts", "hosts_per_rack")):
        value, limit = data[key], getattr(limits, limit_key)
        if value is not None and value > limit:
            errors.append(FabricError(f"{path}.{key}", value, f"must be <= limits.{limit_key} ({limit})"))
    uplinks = data["uplinks"]
    if uplinks is None:
        return
    count = len(uplinks) if isinstance(uplinks, list) else uplinks
    if count > limits.uplinks_per_tor:
        errors.append(
            FabricError(
                f"{path}.uplinks",
                uplinks,
                f"{count} uplinks exceed limits.uplinks_per_tor ({limits.uplinks_per_tor})",
            )
        )
    if isinstance(uplinks, list):
        for index, name in enumerate(uplinks):
            if name is not None and name not in spine_names:
                errors.append(FabricError(f"{path}.uplinks[{index}]", name, "uplink names an unknown spine"))


def _declared_pools(data: dict[str, Any], errors: list[FabricError]) -> list[_Pool]:
    """Every valid pool of the file as an integer interval."""
    pools: list[_Pool] = []
    raw_pools = data["pools"]
    if (
        raw_pools["links"] is None
        and not raw_pools["unnumbered"]
        and "links" not in _invalid(errors, "pools.")
    ):
        errors.append(FabricError("pools.links", None, "required unless pools.unnumbered is true"))
    candidates = [("pools.loopbacks", raw_pools["loopbacks"]), ("pools.links", raw_pools["links"])]
    candidates += [(f"networks.{role}.pool", net["pool"]) for role, net in data["networks"].items()]
    anycast = data["bgp"]["anycast"] or []
    candidates += [(f"bgp.anycast[{index}]", pool) for index, pool in enumerate(anycast)]
    border = data["border"]
    candidates.append(("border.links", border["links"]))
    candidates += [(f"border.public[{index}]", pool) for index, pool in enumerate(border["public"] or [])]
    for path, text in candidates:
        if text is None:
            continue
        start, plen = law.parse_cidr(text)
        pools.append(_Pool(start, start + law.block_size(plen) - 1, path, text))
    return pools


def _invalid(errors: list[FabricError], prefix: str) -> set[str]:
    """Last path components of errors already reported under ``prefix``."""
    return {error.path[len(prefix) :] for error in errors if error.path.startswith(prefix)}


def _check_overlaps(pools: list[_Pool], errors: list[FabricError]) -> None:
    """Report overlapping pools: sort by start, scan neighbours keeping the farthest end seen."""
    ordered = sorted(pools, key=lambda pool: (pool.start, pool.end, pool.path))
    reach: _Pool | None = None
    for pool in ordered:
        if reach is not None and pool.start <= reach.end:
            errors.append(FabricError(pool.path, pool.text, f"overlaps {reach.path} ({reach.text})"))
        if reach is None or pool.end > reach.end:
            reach = pool


def _too_small(path: str, text: str, need: int, what: str) -> FabricError:
    return FabricError(
        path,
        text,
        f"pool too small: {what} needs {need} addresses (a /{law.smallest_prefix_for(need)} or larger); "
        f"it holds {law.block_size(law.parse_cidr(text)[1])}",
    )


def _check_capacity(data: dict[str, Any], limits: Limits, errors: list[FabricError]) -> None:
    """Pools must hold every slot the law can hand out, so growth never renumbers."""
    pools = data["pools"]
    if pools["loopbacks"] is not None:
        need = law.loopback_capacity(limits)
        if law.block_size(law.parse_cidr(pools["loopbacks"])[1]) < need:
            errors.append(
                _too_small(
                    "pools.loopbacks",
                    pools["loopbacks"],
                    need,
                    "spines + 1 + max_racks*(tors_per_rack+hosts_per_rack)",
                )
            )
    if pools["links"] is not None and not pools["unnumbered"]:
        need = 2 * law.link_capacity(limits)
        if law.block_size(law.parse_cidr(pools["links"])[1]) < need:
            errors.append(
                _too_small("pools.links", pools["links"], need, "2 * max_racks*tors_per_rack*uplinks_per_tor")
            )
    for role, net in data["networks"].items():
        _check_network_capacity(role, net, limits, errors)


def _check_network_capacity(
    role: str, net: dict[str, Any], limits: Limits, errors: list[FabricError]
) -> None:
    """The pool holds max_racks subnets, and each subnet holds gateways, every host slot, broadcast."""
    if net["pool"] is None or net["prefix_len"] is None:
        return
    path = f"networks.{role}"
    pool_len = law.parse_cidr(net["pool"])[1]
    prefix_len = net["prefix_len"]
    if prefix_len < pool_len:
        errors.append(
            FabricError(f"{path}.prefix_len", prefix_len, f"must be >= the pool's prefix length ({pool_len})")
        )
        return
    subnets = 1 << (prefix_len - pool_len)
    if subnets < limits.max_racks:
        errors.append(
            FabricError(
                f"{path}.pool",
                net["pool"],
                f"pool too small: holds {subnets} /{prefix_len} subnets, limits.max_racks needs "
                f"{limits.max_racks} (a /{prefix_len - (limits.max_racks - 1).bit_length()} or larger)",
            )
        )
    need = law.rack_network_min_size(limits)
    if law.block_size(prefix_len) < need:
        errors.append(
            FabricError(
                f"{path}.prefix_len",
                prefix_len,
                f"a /{prefix_len} is too small for limits.hosts_per_rack ({limits.hosts_per_rack}): "
                f"needs {need} addresses (/{law.smallest_prefix_for(need)} or shorter)",
            )
        )


def _check_asns(data: dict[str, Any], limits: Limits, errors: list[FabricError]) -> None:
    """Spine ASN and the derived ToR/host ranges in 4200000000..4294967294 and disjoint."""
    bgp = data["bgp"]
    ranges: list[tuple[int, int, str]] = []
    if bgp["spine_asn"] is not None:
        ranges.append((bgp["spine_asn"], bgp["spine_asn"], "bgp.spine_asn"))
    if bgp["tor_asn_base"] is not None:
        ranges.append((*law.tor_asn_range(bgp["tor_asn_base"], limits), "bgp.tor_asn_base"))
    if bgp["host_asn_base"] is not None:
        ranges.append((*law.host_asn_range(bgp["host_asn_base"], limits), "bgp.host_asn_base"))
    valid = []
    for first, last, path in ranges:
        value = bgp[path.split(".")[1]]
        if first < law.PRIVATE_ASN_MIN or last > law.PRIVATE_ASN_MAX:
            derived = "" if first == last else f" (derived range {first}..{last} from the limits)"
            errors.append(
                FabricError(
                    path,
                    value,
                    f"ASN out of the private range {law.PRIVATE_ASN_MIN}..{law.PRIVATE_ASN_MAX}{derived}",
                )
            )
        else:
            valid.append((first, last, path))
    valid.sort()
    for (_first_a, last_a, path_a), (first_b, last_b, path_b) in pairwise(valid):
        if first_b <= last_a:
            errors.append(
                FabricError(
                    path_b, bgp[path_b.split(".")[1]], f"ASN range {first_b}..{last_b} overlaps {path_a}"
                )
            )


def _check_ifnames(data: dict[str, Any], limits: Limits, errors: list[FabricError]) -> None:
    """Derived interface names must fit Linux's 15 characters."""
    longest = law.longest_spine_port(limits)
    if len(longest) > law.IFNAME_MAX:
        errors.append(
            FabricError(
                "limits",
                data["limits"],
                f"spine interface names reach {len(longest)} characters ({longest}); max 15",
            )
        )


def _check_networks(data: dict[str, Any], errors: list[FabricError]) -> None:
    """Role names must not shadow derived interface names; VLANs unique."""
    vlans: dict[int, str] = {}
    for role, net in data["networks"].items():
        if role in RESERVED_IFNAMES or law.parse_uplink(role) is not None or law.parse_spine_port(role):
            errors.append(
                FabricError(f"networks.{role}", role, "role name clashes with a derived interface name")
            )
        vlan = net["vlan"]
        if vlan is None:
            continue
        if vlan in vlans:
            errors.append(FabricError(f"networks.{role}.vlan", vlan, f"duplicate VLAN (also {vlans[vlan]})"))
        else:
            vlans[vlan] = f"networks.{role}.vlan"


def _check_protocols(data: dict[str, Any], errors: list[FabricError]) -> None:
    """Timer relations and references from bgp/dhcp_relay to declared networks."""
    bgp, ospf, relay = data["bgp"], data["ospf"], data["dhcp_relay"]
    timers = bgp["timers"]
    if (
        timers["keepalive"] is not None
        and timers["hold"] is not None
        and timers["hold"] <= timers["keepalive"]
    ):
        errors.append(
            FabricError("bgp.timers.hold", timers["hold"], "must be greater than bgp.timers.keepalive")
        )
    if ospf["hello"] is not None and ospf["dead"] is not None and ospf["dead"] <= ospf["hello"]:
        errors.append(FabricError("ospf.dead", ospf["dead"], "must be greater than ospf.hello"))
    roles = data["networks"]
    if bgp["hosts"] and bgp["host_network"] is not None and bgp["host_network"] not in roles:
        errors.append(FabricError("bgp.host_network", bgp["host_network"], "names no declared network"))
    if bgp["evpn"] and not bgp["hosts"]:
        errors.append(FabricError("bgp.evpn", True, "needs bgp.hosts: true (the hosts are the VTEPs)"))
    if bgp["evpn"] and data["routing"] == "ospf":
        errors.append(FabricError("bgp.evpn", True, "needs routing: bgp (EVPN is a BGP address family)"))
    _check_anycast(data, errors)
    _check_hardening(data, errors)
    _check_gateway(data, errors)
    if relay["servers"] and relay["networks"]:
        for index, role in enumerate(relay["networks"]):
            if role is not None and role not in roles:
                errors.append(FabricError(f"dhcp_relay.networks[{index}]", role, "names no declared network"))


def _check_anycast(data: dict[str, Any], errors: list[FabricError]) -> None:
    """Anycast pools are announced by BGP hosts: they need BGP-to-host (overlaps: ``_check_overlaps``)."""
    bgp = data["bgp"]
    pools = bgp["anycast"]
    if not pools:
        return
    if not bgp["hosts"]:
        errors.append(FabricError("bgp.anycast", pools, "needs bgp.hosts: true (hosts announce the /32s)"))
    if data["routing"] == "ospf":
        errors.append(FabricError("bgp.anycast", pools, "needs routing: bgp (hosts announce over BGP)"))


def _check_gateway(data: dict[str, Any], errors: list[FabricError]) -> None:
    """An anycast gateway moves ToR t to offset t + 1: the ToR slots must stay below the hosts;
    the gateway MAC must be unicast (hosts put it in their ARP caches)."""
    gateway = data["gateway"]
    tors = data["limits"]["tors_per_rack"]
    if gateway["redundancy"] == "anycast" and tors is not None and tors > ANYCAST_MAX_TORS:
        errors.append(
            FabricError(
                "gateway.redundancy",
                gateway["redundancy"],
                f"anycast puts ToR t at offset t+1 of the rack networks: needs "
                f"limits.tors_per_rack <= {ANYCAST_MAX_TORS} (it is {tors})",
            )
        )
    if gateway["redundancy"] == "anycast" and data["bgp"]["hosts"]:
        errors.append(
            FabricError(
                "gateway.redundancy",
                gateway["redundancy"],
                "not with bgp.hosts: BGP hosts route over every ToR already, and their sessions go to "
                "the ToRs' own addresses, which the shared gateway MAC makes unreliable on the rack L2",
            )
        )
    mac = gateway["mac"]
    if mac is not None and int(mac[:2], 16) & 1:
        errors.append(FabricError("gateway.mac", mac, "must be a unicast MAC (first octet even)"))


def _check_border(
    data: dict[str, Any], entries: list[_RackEntry], limits: Limits | None, errors: list[FabricError]
) -> None:
    """Border racks: declared, BGP, an upstream ASN outside the fabric's, a link pool holding every
    ToR slot, announced roles declared (overlaps of the pools: ``_check_overlaps``)."""
    border = data["border"]
    racks = [rack for rack in border["racks"] or [] if rack is not None]
    if not racks:
        return
    if data["routing"] != "bgp":
        errors.append(FabricError("border.racks", racks, "needs routing: bgp (the upstream is an eBGP peer)"))
    _check_border_racks(racks, entries, errors)
    asn = border["upstream_asn"]
    if asn is None and "upstream_asn" not in _invalid(errors, "border."):
        errors.append(FabricError("border.upstream_asn", None, "required with border.racks"))
    elif asn is not None and limits is not None and _is_fabric_asn(asn, data["bgp"], limits):
        errors.append(FabricError("border.upstream_asn", asn, "is one of the fabric's own ASNs"))
    links = border["links"]
    if links is None and "links" not in _invalid(errors, "border."):
        errors.append(FabricError("border.links", None, "required with border.racks"))
    elif links is not None and limits is not None:
        need = 2 * limits.max_racks * limits.tors_per_rack
        if law.block_size(law.parse_cidr(links)[1]) < need:
            errors.append(_too_small("border.links", links, need, "a /31 per ToR slot"))
    for index, role in enumerate(border["announce"] or []):
        if role is not None and role not in data["networks"]:
            errors.append(FabricError(f"border.announce[{index}]", role, "names no declared network"))
    if BORDER_IFNAME in data["networks"]:
        errors.append(
            FabricError(
                f"networks.{BORDER_IFNAME}", BORDER_IFNAME, "shadows the border ToRs' upstream interface"
            )
        )


def _check_border_racks(racks: list[int], entries: list[_RackEntry], errors: list[FabricError]) -> None:
    """Border racks must be declared racks, each named once."""
    declared = {rack_id for entry in entries for rack_id in entry.ids}
    seen: set[int] = set()
    for index, rack in enumerate(racks):
        if rack not in declared:
            errors.append(FabricError(f"border.racks[{index}]", rack, "names no declared rack"))
        elif rack in seen:
            errors.append(FabricError(f"border.racks[{index}]", rack, "duplicate border rack"))
        seen.add(rack)


def _is_fabric_asn(asn: int, bgp: dict[str, Any], limits: Limits) -> bool:
    """Whether ``asn`` is the spines' or inside the law's ToR or host ASN range."""
    if asn == bgp["spine_asn"]:
        return True
    for base, asn_range in (
        (bgp["tor_asn_base"], law.tor_asn_range),
        (bgp["host_asn_base"], law.host_asn_range),
    ):
        if base is not None:
            first, last = asn_range(base, limits)
            if first <= asn <= last:
                return True
    return False


def _check_hardening(data: dict[str, Any], errors: list[FabricError]) -> None:
    """Session passwords need addresses; maximum-prefix restarts or warns, not both; OSPF has
    neither sessions to protect nor to limit."""
    bgp = data["bgp"]
    passwords, limit = bgp["passwords"], bgp["maximum_prefix"]
    if passwords not in (None, "none") and data["pools"]["unnumbered"]:
        errors.append(
            FabricError(
                "bgp.passwords",
                passwords,
                "needs numbered links: TCP-MD5 keys are bound to the peer's address, and unnumbered "
                "sessions peer by interface (pools.unnumbered is true)",
            )
        )
    if limit["warning_only"] and limit["restart"]:
        errors.append(
            FabricError(
                "bgp.maximum_prefix.restart",
                limit["restart"],
                "give restart or warning_only, not both (a session that only warns is never torn down)",
            )
        )
    if data["routing"] == "ospf":
        for key, value, default in (
            ("gtsm", bgp["gtsm"], False),
            ("passwords", passwords, "none"),
            ("maximum_prefix.enabled", limit["enabled"], False),
        ):
            if value not in (None, default):
                errors.append(FabricError(f"bgp.{key}", value, "applies to BGP sessions; routing is ospf"))


@dataclass(frozen=True, slots=True)
class _Ecmp:
    """The widest equal-cost fan-out one kind of router needs, and where it occurs."""

    paths: int
    where: str


def links_to_busiest_spine(uplinks: int | list[str], spine_names: list[str]) -> tuple[int, str]:
    """Links one ToR has to the spine it reaches most often, and that spine (law: ``uplink_spine``).

    A count ``u`` spreads uplinks round-robin over the spines by id, so the first spine gets
    ``ceil(u / n)``; a list of names gives each named spine as many links as it is named.
    """
    if isinstance(uplinks, list):
        names = [name for name in uplinks if name is not None]
        if not names:
            return 0, ""
        busiest = max(sorted(set(names)), key=names.count)
        return names.count(busiest), busiest
    if not spine_names:
        return 0, ""
    return -(-uplinks // len(spine_names)), spine_names[0]


def ecmp_needs(data: dict[str, Any], entries: list[_RackEntry], spine_names: list[str]) -> list[_Ecmp]:
    """Widest ECMP of ToRs, spines and BGP hosts (routing over the fabric, two-tier Clos).

    - a ToR reaches other racks over every uplink: ``uplinks`` paths;
    - a spine reaches a rack's prefixes (announced by every ToR of the rack) over every link from
      that rack: ``tors x links per ToR to this spine``;
    - a BGP host reaches everything through the rack's ToRs: ``tors`` paths.

    Spine-to-spine loopback paths through the ToRs (OSPF only; BGP spines share an ASN and never
    learn each other) carry no rack traffic and are not counted.
    """
    tor, spine, host = _Ecmp(0, ""), _Ecmp(0, ""), _Ecmp(0, "")
    for entry in entries:
        tors, uplinks = entry.data["tors"], entry.data["uplinks"]
        rack = f"rack {entry.ids[0]}" if len(entry.ids) == 1 else f"racks {entry.ids[0]}..{entry.ids[-1]}"
        if uplinks is not None:
            count = len(uplinks) if isinstance(uplinks, list) else uplinks
            if count > tor.paths:
                tor = _Ecmp(count, f"a ToR of {rack} ({entry.path}) has {count} uplinks")
        if tors is None:
            continue
        if tors > host.paths:
            host = _Ecmp(tors, f"a host of {rack} ({entry.path}) peers with {tors} ToRs")
        links, name = links_to_busiest_spine(uplinks, spine_names) if uplinks is not None else (0, "")
        if tors * links > spine.paths:
            spine = _Ecmp(
                tors * links,
                f"{name} reaches {rack} ({entry.path}) over {tors * links} links "
                f"({tors} ToR{'s' if tors != 1 else ''} x {links})",
            )
    host_bgp = data["routing"] == "bgp" and data["bgp"]["hosts"]
    return [tor, spine, *((host,) if host_bgp else ())]


def _check_ecmp(
    data: dict[str, Any], entries: list[_RackEntry], spines: list[SpineSpec], errors: list[FabricError]
) -> None:
    """``bgp.maximum_paths`` (used by BGP and OSPF) must not cut the widest ECMP of any router."""
    maximum = data["bgp"]["maximum_paths"]
    if maximum is None or data["routing"] is None:
        return
    for need in ecmp_needs(data, entries, [spine.name for spine in spines]):
        if need.paths > maximum:
            errors.append(
                FabricError(
                    "bgp.maximum_paths",
                    maximum,
                    f"smaller than the widest ECMP: {need.where}; needs maximum_paths >= {need.paths}",
                )
            )


def _check_ipv6(data: dict[str, Any], limits: Limits | None, errors: list[FabricError]) -> None:
    """Dual stack: BGP only (no OSPFv3 rendering), and the prefix holds the /64 of every rack
    network (VLAN v, rack r: number ``(v << bit_length(max_racks-1)) + r``, ``fabric/ipv6.py``)."""
    prefix = data["ipv6"]["prefix"]
    if prefix is None:
        return
    if data["routing"] == "ospf":
        errors.append(
            FabricError(
                "ipv6.prefix",
                prefix,
                "dual stack needs routing: bgp (IPv6 is carried by BGP's ipv6 unicast family; "
                "OSPFv3/ospf6d is not rendered)",
            )
        )
    if (data.get("gateway") or {}).get("redundancy") == "anycast":
        errors.append(
            FabricError(
                "ipv6.prefix",
                prefix,
                "dual stack does not render an IPv6 anycast gateway (gateway.redundancy: anycast): "
                "the ToRs would share the gateway's IPv6 address and fail duplicate address detection",
            )
        )
    vlans = [net["vlan"] for net in data["networks"].values() if net.get("vlan") is not None]
    if limits is None:
        return
    need = ipv6.required_prefix_len(limits, max(vlans, default=0))
    have = int(prefix.partition("/")[2])
    if have > need:
        errors.append(
            FabricError(
                "ipv6.prefix",
                prefix,
                f"prefix too small: the /64s of VLAN {max(vlans, default=0)} x limits.max_racks "
                f"({limits.max_racks}) need a /{need} or shorter",
            )
        )


# ------------------------------------------------------------------------------------ build
def _block(prefix: str) -> Block | None:
    """A validated pool typed, once (IPv4 or IPv6; None for an absent pool)."""
    if not prefix:
        return None
    return Block(*(ipv6.parse_cidr6(prefix) if ":" in prefix else law.parse_cidr(prefix)))


def _build(
    data: dict[str, Any], limits: Limits, spines: list[SpineSpec], entries: list[_RackEntry]
) -> Fabric:
    """Assemble the frozen ``Fabric`` from a document known to be valid."""
    racks = []
    for entry in entries:
        rack = entry.data
        explicit = tuple(rack["uplinks"]) if isinstance(rack["uplinks"], list) else ()
        count = len(explicit) if explicit else rack["uplinks"]
        for rack_id in entry.ids:
            racks.append(
                RackSpec(
                    id=rack_id,
                    pod=rack["pod"],
                    tors=rack["tors"],
                    uplinks=count,
                    hosts=rack["hosts"],
                    uplink_spines=explicit,
                    name=rack["name"] or law.rack_label(rack_id),
                    drain=bool(rack["drain"]),
                    link_mtu=rack["link_mtu"],
                )
            )
    racks.sort(key=lambda rack: rack.id)
    bgp, ospf, pools = data["bgp"], data["ospf"], data["pools"]
    return Fabric(
        name=data["name"],
        routing=data["routing"],
        limits=limits,
        loopback_pool=pools["loopbacks"],
        link_pool=pools["links"] or "",
        unnumbered=pools["unnumbered"],
        link_mtu=data["link_mtu"],
        networks=tuple(
            NetworkSpec(role, **net, pool_block=_block(net["pool"])) for role, net in data["networks"].items()
        ),
        spines=tuple(spines),
        racks=tuple(racks),
        bgp=BgpOptions(  # the schema's bgp keys are the BgpOptions fields
            **{
                **bgp,
                "timers": Timers(**bgp["timers"]),
                "maximum_prefix": MaximumPrefix(**bgp["maximum_prefix"]),
                "anycast": tuple(bgp["anycast"]),
            }
        ),
        ospf=OspfOptions(**ospf),
        dhcp_relay_servers=tuple(data["dhcp_relay"]["servers"]),
        dhcp_relay_networks=tuple(data["dhcp_relay"]["networks"]),
        gateway=GatewayOptions(**data["gateway"]),
        border=BorderOptions(
            racks=tuple(data["border"]["racks"]),
            upstream_asn=data["border"]["upstream_asn"],
            links=data["border"]["links"] or "",
            public=tuple(data["border"]["public"]),
            announce=tuple(data["border"]["announce"]),
            links_block=_block(data["border"]["links"]),
        ),
        ipv6_prefix=data["ipv6"]["prefix"] or "",
        loopback_block=_block(pools["loopbacks"]),
        link_block=_block(pools["links"]),
        ipv6_block=_block(data["ipv6"]["prefix"]),
    )
