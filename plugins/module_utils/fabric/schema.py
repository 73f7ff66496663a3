# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fabric file schema: every key declared once with its type, default, constraints and doc.

``normalize(raw)`` checks types, ranges, choices, patterns and unknown keys against ``SCHEMA`` and
returns the input with every default filled in, plus the list of errors (with key paths).  The
key table of ``docs/fabric.md`` is generated from the same declaration by ``markdown_table()``;
a unit test fails when the committed table is stale (``compleat-fabric schema --update FILE``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import FabricError


class _Required:
    """Sentinel: the key has no default and must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Inherit:
    """Default taken from another key of the normalized document (``defaults.tors``)."""

    source: str


@dataclass(frozen=True, slots=True)
class Field:
    """One key of the fabric file.

    ``type`` is one of: ``str``, ``int``, ``bool``, ``ipv4``, ``cidr``, ``cidr6`` (IPv6 network),
    ``area`` (dotted quad or int), ``map`` (fixed keys in ``fields``), ``list`` (of scalars of
    type ``items``),
    ``list[map]`` (list of maps with ``fields``), ``dict[map]`` (name -> map with ``fields``; the
    names obey ``pattern``/``max_len``), ``count|names`` (int or list of names), ``range``
    (``[first, last]`` ints, inclusive).  ``minimum``/``maximum`` bound ints, list lengths
    (``min_items``) and the items of int ranges.
    """

    name: str
    type: str
    doc: str
    default: Any = REQUIRED
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    max_len: int | None = None
    min_items: int = 0
    items: str | None = None
    fields: tuple[Field, ...] = ()


DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ROLE_NAME = r"^[a-z][a-z0-9_-]*$"

_RACK_SHAPE = (
    Field("pod", "int", "Pod number (grouping label in docs; no effect on addressing).", 1, minimum=1),
    Field("tors", "int", "ToRs in the rack (t = 1..tors); at most `limits.tors_per_rack`.", 1, minimum=1),
    Field(
        "uplinks",
        "count|names",
        "Uplinks per ToR: a count (uplink u goes to the ((u-1) mod n)-th spine by id) or a list of "
        "spine names (uplink u goes to the u-th name); at most `limits.uplinks_per_tor`.",
        2,
        minimum=1,
    ),
    Field("hosts", "int", "Hosts in the rack (h = 1..hosts); at most `limits.hosts_per_rack`.", 0, minimum=0),
)


def _rack_field(field: Field) -> Field:
    """A per-rack key whose default comes from ``defaults.<key>``."""
    return Field(
        field.name,
        field.type,
        field.doc,
        Inherit(f"defaults.{field.name}"),
        minimum=field.minimum,
        maximum=field.maximum,
    )


SCHEMA = Field(
    "",
    "map",
    "A fabric file.",
    fields=(
        Field("name", "str", "Fabric name (DNS label).", REQUIRED, pattern=DNS_LABEL, max_len=63),
        Field("routing", "str", "Routing protocol of the fabric.", "bgp", choices=("bgp", "ospf")),
        Field(
            "link_mtu",
            "int",
            "MTU of spine-ToR links (`racks[].link_mtu` and `spines[].link_mtu` override it); every "
            "link of topology.json carries its `mtu`.",
            9000,
            minimum=68,
            maximum=9216,
        ),
        Field(
            "limits",
            "map",
            "Law constants: the size of every index space.  Changing one renumbers the fabric, so "
            "choose them for the largest fabric you will ever build.",
            fields=(
                Field("max_racks", "int", "Rack ids are 1..max_racks-1.", 1024, minimum=2, maximum=100000),
                Field("tors_per_rack", "int", "ToR slots per rack.", 2, minimum=1, maximum=9),
                Field("uplinks_per_tor", "int", "Uplink slots per ToR.", 4, minimum=1, maximum=64),
                Field("hosts_per_rack", "int", "Host slots per rack.", 48, minimum=1, maximum=4096),
                Field(
                    "spines", "int", "Spine id slots (spine ids are 1..spines).", 16, minimum=1, maximum=1024
                ),
            ),
        ),
        Field(
            "pools",
            "map",
            "Fabric address pools (IPv4).",
            fields=(
                Field("loopbacks", "cidr", "Router ids / loopback /32s of spines, ToRs and hosts.", REQUIRED),
                Field(
                    "links", "cidr", "Point-to-point /31s of spine-ToR links (unused when unnumbered).", None
                ),
                Field("unnumbered", "bool", "Links carry no IPv4 address (BGP/OSPF unnumbered).", False),
            ),
        ),
        Field(
            "networks",
            "dict[map]",
            "Per-rack networks by role (`mgmt`, `storage`, `service`, `vm`, ...).  The role name is "
            "also the interface name on ToRs and hosts (at most 15 characters).",
            {},
            pattern=ROLE_NAME,
            max_len=15,
            fields=(
                Field("pool", "cidr", "Pool; rack r gets the r-th subnet of `prefix_len`.", REQUIRED),
                Field(
                    "prefix_len",
                    "int",
                    "Prefix length of each rack's subnet.",
                    REQUIRED,
                    minimum=8,
                    maximum=28,
                ),
                Field(
                    "vlan",
                    "int",
                    "VLAN id of the network (unique per fabric).",
                    REQUIRED,
                    minimum=1,
                    maximum=4094,
                ),
                Field("mtu", "int", "MTU of the network.", 1500, minimum=68, maximum=9216),
            ),
        ),
        Field(
            "gateway",
            "map",
            "First-hop redundancy of the rack networks.",
            fields=(
                Field(
                    "redundancy",
                    "str",
                    "`none`: ToR t holds offset t of every rack network, ToR 1's offset 1 is the "
                    "gateway (it fails with ToR 1).  `anycast`: every ToR of the rack holds the "
                    "gateway (offset 1) with the same MAC, ToR t its own address at offset t+1 "
                    "(at most 8 ToRs per rack; not with `bgp.hosts`); renumbers the ToRs' rack addresses, "
                    "so it is opt-in.",
                    "none",
                    choices=("none", "anycast"),
                ),
                Field(
                    "mac",
                    "str",
                    "MAC of the anycast gateway on every ToR's rack network interfaces (unicast; set "
                    "by the host's network configuration, FRR cannot set MACs).",
                    "02:00:00:00:01:01",
                    pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$",
                ),
            ),
        ),
        Field(
            "border",
            "map",
            "The way out (BGP only): every ToR of the border racks peers eBGP with an upstream "
            "router over a /31 of `border.links`, accepts only the default route from it and passes "
            "it into the fabric (every ToR gets it with ECMP over its uplinks); only the public "
            "prefixes and the rack networks of the `announce` roles go out.",
            fields=(
                Field(
                    "racks",
                    "list",
                    "Ids of the border racks (declared racks); empty: no border.",
                    [],
                    items="int",
                ),
                Field(
                    "upstream_asn",
                    "int",
                    "ASN of the upstream routers (not one of the fabric's ASNs).",
                    None,
                    minimum=1,
                    maximum=4294967295,
                ),
                Field(
                    "links",
                    "cidr",
                    "Pool of the border links: ToR (r, t) peers over the (r*tors_per_rack + t-1)-th "
                    "/31 (upstream side even, ToR side odd), interface `ext1` on the ToR.",
                    None,
                ),
                Field(
                    "public",
                    "list",
                    "Public prefixes announced upstream: originated by every border ToR (with a "
                    "discard route; the more specific routes inside the fabric carry the traffic).",
                    [],
                    items="cidr",
                ),
                Field(
                    "announce",
                    "list",
                    "Rack network roles whose per-rack subnets (the service prefixes) are announced "
                    "upstream.",
                    ["service"],
                    items="str",
                    pattern=ROLE_NAME,
                ),
            ),
        ),
        Field(
            "spines",
            "list[map]",
            "Spines.  Uplinks are spread over them in id order.",
            REQUIRED,
            min_items=1,
            fields=(
                Field("id", "int", "Spine id, 1..`limits.spines`.", REQUIRED, minimum=1),
                Field(
                    "name", "str", "Spine name; default `spine{id:02d}`.", None, pattern=DNS_LABEL, max_len=63
                ),
                Field(
                    "drain",
                    "bool",
                    "Maintenance drain: BGP graceful-shutdown (announcements carry GRACEFUL_SHUTDOWN, "
                    "receivers set local-pref 0) or OSPF `max-metric router-lsa administrative`; "
                    "traffic moves to the other spines before the spine is touched.",
                    False,
                ),
                Field(
                    "link_mtu",
                    "int",
                    "MTU of this spine's links (default `link_mtu`); a link whose rack also sets "
                    "`link_mtu` gets the smaller of the two.",
                    None,
                    minimum=68,
                    maximum=9216,
                ),
            ),
        ),
        Field(
            "racks",
            "list[map]",
            "Racks.  Each entry is one rack (`id`) or a compact inclusive range of racks (`range`) "
            "sharing the same shape.",
            [],
            fields=(
                Field(
                    "id", "int", "Rack id, 1..`limits.max_racks`-1.  Give `id` or `range`.", None, minimum=1
                ),
                Field(
                    "range",
                    "range",
                    "`[first, last]`: every rack id of the inclusive range.",
                    None,
                    minimum=1,
                ),
                Field("name", "str", "Free label shown in docs (single racks only).", None, max_len=63),
                *(_rack_field(field) for field in _RACK_SHAPE),
                Field(
                    "drain",
                    "bool",
                    "Maintenance drain of every ToR of the rack(s) (see `spines[].drain`).",
                    False,
                ),
                Field(
                    "link_mtu",
                    "int",
                    "MTU of the rack's uplinks (default `link_mtu`); a link whose spine also sets "
                    "`link_mtu` gets the smaller of the two.",
                    None,
                    minimum=68,
                    maximum=9216,
                ),
            ),
        ),
        Field("defaults", "map", "Per-rack defaults for keys a rack entry omits.", fields=_RACK_SHAPE),
        Field(
            "bgp",
            "map",
            "BGP options (RFC 7938: spines share one ASN, every ToR and host has its own).",
            fields=(
                Field("spine_asn", "int", "ASN of every spine.", 4200000000, minimum=1, maximum=4294967295),
                Field(
                    "tor_asn_base",
                    "int",
                    "ToR ASN = base + rack*tors_per_rack + (t-1).",
                    4200001000,
                    minimum=1,
                    maximum=4294967295,
                ),
                Field(
                    "host_asn_base",
                    "int",
                    "Host ASN = base + rack*hosts_per_rack + (h-1) (BGP-to-host).",
                    4210000000,
                    minimum=1,
                    maximum=4294967295,
                ),
                Field("bfd", "bool", "BFD on every fabric session.", True),
                Field(
                    "bfd_interval",
                    "int",
                    "BFD tx/rx interval in milliseconds.",
                    300,
                    minimum=10,
                    maximum=60000,
                ),
                Field("bfd_multiplier", "int", "BFD detect multiplier.", 3, minimum=2, maximum=255),
                Field("maximum_paths", "int", "ECMP paths per prefix.", 64, minimum=1, maximum=256),
                Field(
                    "timers",
                    "map",
                    "Session timers in seconds.",
                    fields=(
                        Field("keepalive", "int", "Keepalive interval.", 3, minimum=1, maximum=21845),
                        Field(
                            "hold", "int", "Hold time (greater than keepalive).", 9, minimum=3, maximum=65535
                        ),
                    ),
                ),
                Field(
                    "gtsm",
                    "bool",
                    "GTSM (RFC 5082): `ttl-security hops 1` on every session (all peers are directly "
                    "connected); packets from farther away are dropped before BGP sees them.",
                    False,
                ),
                Field(
                    "passwords",
                    "str",
                    "TCP-MD5 session passwords: `none`; `fabric` (one password on every session); "
                    "`per_session` (each session's own key, HMAC-SHA256 of the password and the "
                    "session's two ends).  The password itself is never in the fabric file: it is "
                    "given at render time (module/CLI option `bgp_password`, no_log) and written "
                    "only into frr.conf.  Needs numbered links.",
                    "none",
                    choices=("none", "fabric", "per_session"),
                ),
                Field(
                    "maximum_prefix",
                    "map",
                    "`maximum-prefix` per session, derived from the plan: what the peer can "
                    "legitimately announce (a ToR: its rack's networks, loopback and its BGP hosts' "
                    "loopbacks; a spine, or a ToR towards its hosts: every fabric prefix (see "
                    "`basis`); a host: its loopback) times `headroom`.",
                    fields=(
                        Field("enabled", "bool", "Emit `maximum-prefix` on every session.", False),
                        Field(
                            "headroom",
                            "int",
                            "Limit = ceil(legitimate prefixes x headroom / 100).",
                            200,
                            minimum=100,
                            maximum=100000,
                        ),
                        Field(
                            "basis",
                            "str",
                            "What a spine (or a ToR towards its hosts) may announce: `capacity`, "
                            "every prefix the limits allow (spines + (max_racks-1) x (networks + "
                            "tors_per_rack [+ hosts_per_rack with BGP-to-host])), so adding racks "
                            "changes no existing configuration; `plan`, the prefixes of the racks "
                            "declared now (tighter; every ToR's limit grows with each new rack).",
                            "capacity",
                            choices=("capacity", "plan"),
                        ),
                        Field(
                            "restart",
                            "int",
                            "Minutes after which a session torn down by the limit restarts by "
                            "itself; 0: it stays down until cleared by hand.",
                            0,
                            minimum=0,
                            maximum=65535,
                        ),
                        Field(
                            "warning_only",
                            "bool",
                            "Only log when the limit is exceeded (the session stays up).",
                            False,
                        ),
                    ),
                ),
                Field("hosts", "bool", "BGP-to-host: hosts peer with their rack's ToRs.", False),
                Field("host_network", "str", "Rack network role hosts peer over.", "mgmt", pattern=ROLE_NAME),
                Field(
                    "evpn",
                    "bool",
                    "EVPN/VXLAN for tenant networks: hosts are VTEPs (needs `hosts`); every session "
                    "also carries `l2vpn evpn`, spines and ToRs pass the routes on unchanged.",
                    False,
                ),
                Field(
                    "anycast",
                    "list",
                    "Anycast pools (needs `hosts`): a BGP host may originate /32s out of them (a VIP "
                    "of an LB node, announced while healthy); its ToRs accept them from their hosts "
                    "and pass them to the spines, spines accept them from every rack and spread "
                    "traffic over every announcing host (ECMP), every router and host accepts them "
                    "(`FABRIC`).  A host sends only the /32s it originates itself.  The pools must "
                    "overlap no other pool and each other.",
                    [],
                    items="cidr",
                ),
            ),
        ),
        Field(
            "ospf",
            "map",
            "OSPFv2 options (single area, point-to-point links).",
            fields=(
                Field("area", "area", "Area id (dotted quad or integer).", "0.0.0.0"),
                Field("hello", "int", "Hello interval in seconds.", 1, minimum=1, maximum=65535),
                Field(
                    "dead",
                    "int",
                    "Dead interval in seconds (greater than hello).",
                    4,
                    minimum=2,
                    maximum=65535,
                ),
                Field("bfd", "bool", "BFD on OSPF links.", False),
            ),
        ),
        Field(
            "dhcp_relay",
            "map",
            "DHCP relay on the ToRs.",
            fields=(
                Field("servers", "list", "DHCP server addresses the ToRs relay to.", [], items="ipv4"),
                Field(
                    "networks",
                    "list",
                    "Rack network roles whose DHCP requests are relayed.",
                    ["mgmt"],
                    items="str",
                    pattern=ROLE_NAME,
                ),
            ),
        ),
        Field(
            "ipv6",
            "map",
            "Dual stack (opt-in): IPv6 addresses derived by the same law as the IPv4 ones.",
            fields=(
                Field(
                    "prefix",
                    "cidr6",
                    "IPv6 prefix of the fabric (a ULA /48 such as `fd00:1::/48`, or a global "
                    "block).  /64 number 0 holds the loopback /128s (IPv4 loopback offsets), /64 "
                    "number 1 the link /127s (numbered links; unnumbered links use link-local "
                    "addresses), rack r's network of VLAN v is /64 number (v << "
                    "bit_length(max_racks-1)) + r, at the IPv4 offsets.  Needs routing: bgp.",
                    None,
                ),
            ),
        ),
    ),
)


# --------------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------------
def normalize(raw: Any) -> tuple[dict[str, Any], list[FabricError]]:
    """Check ``raw`` against ``SCHEMA``; return it with defaults filled in and every error found.

    Inherited defaults (``Inherit``) are resolved after the whole document is normalized.
    """
    errors: list[FabricError] = []
    if not isinstance(raw, dict):
        errors.append(FabricError("", raw, "a fabric file must be a mapping"))
        return {}, errors
    data = _normalize_map(SCHEMA, raw, "", errors)
    _resolve_inherited(data)
    return data, errors


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _normalize_map(field: Field, raw: dict[Any, Any], path: str, errors: list[FabricError]) -> dict[str, Any]:
    """Normalize a fixed-key mapping: unknown keys, required keys, defaults, child values."""
    known = {child.name: child for child in field.fields}
    for key, value in raw.items():
        if key not in known:
            hint = _suggest(str(key), known)
            errors.append(FabricError(_join(path, str(key)), value, f"unknown key{hint}"))
    out: dict[str, Any] = {}
    for child in field.fields:
        child_path = _join(path, child.name)
        if child.name in raw and raw[child.name] is not None:
            out[child.name] = _normalize_value(child, raw[child.name], child_path, errors)
        elif child.type == "map":
            out[child.name] = _normalize_map(child, {}, child_path, errors)
        elif child.default is REQUIRED:
            errors.append(FabricError(child_path, None, "required key is missing"))
            out[child.name] = None
        else:
            out[child.name] = _copy_default(child.default)
    return out


def _copy_default(default: Any) -> Any:
    """Fresh copy of a mutable default."""
    if isinstance(default, list):
        return list(default)
    if isinstance(default, dict):
        return dict(default)
    return default


def _suggest(key: str, known: dict[str, Field]) -> str:
    """'; did you mean X?' when an unknown key is a near miss of a known one."""
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"


def _normalize_value(field: Field, value: Any, path: str, errors: list[FabricError]) -> Any:
    """Dispatch on the declared type; returns the normalized value or None on error."""
    handler = _COMPOSITES.get(field.type)
    if handler is not None:
        return handler(field, value, path, errors)
    return _check_scalar(field, field.type, value, path, errors)


def _normalize_submap(field: Field, value: Any, path: str, errors: list[FabricError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        errors.append(FabricError(path, value, "must be a mapping"))
        return _normalize_map(field, {}, path, [])
    return _normalize_map(field, value, path, errors)


def _normalize_count_or_names(field: Field, value: Any, path: str, errors: list[FabricError]) -> Any:
    """An int count, or a non-empty list of names."""
    if isinstance(value, list):
        names = Field(field.name, "list", field.doc, items="str", min_items=1)
        return _normalize_list(names, value, path, errors)
    return _check_scalar(field, "int", value, path, errors)


def _normalize_list_of_maps(field: Field, value: Any, path: str, errors: list[FabricError]) -> list[Any]:
    if not isinstance(value, list):
        errors.append(FabricError(path, value, "must be a list"))
        return []
    if len(value) < field.min_items:
        errors.append(FabricError(path, value, f"needs at least {field.min_items} item(s)"))
    out = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            errors.append(FabricError(item_path, item, "must be a mapping"))
            out.append(None)
            continue
        out.append(_normalize_map(field, item, item_path, errors))
    return out


def _normalize_dict_of_maps(field: Field, value: Any, path: str, errors: list[FabricError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        errors.append(FabricError(path, value, "must be a mapping of name -> settings"))
        return {}
    out = {}
    for key, item in value.items():
        item_path = _join(path, str(key))
        if not isinstance(key, str):
            errors.append(FabricError(item_path, key, "name must be a string"))
            continue
        if not _name_ok(field, key, item_path, errors):
            continue
        if not isinstance(item, dict):
            errors.append(FabricError(item_path, item, "must be a mapping"))
            continue
        out[key] = _normalize_map(field, item, item_path, errors)
    return out


def _name_ok(field: Field, name: str, path: str, errors: list[FabricError]) -> bool:
    """Check a dict key (a network role) against the field's pattern and length."""
    good = True
    if field.pattern and not re.match(field.pattern, name):
        errors.append(FabricError(path, name, f"name must match {field.pattern}"))
        good = False
    if field.max_len is not None and len(name) > field.max_len:
        errors.append(
            FabricError(path, name, f"name is {len(name)} characters; interface names allow {field.max_len}")
        )
        good = False
    return good


def _normalize_list(field: Field, value: Any, path: str, errors: list[FabricError]) -> list[Any] | None:
    if not isinstance(value, list):
        errors.append(FabricError(path, value, "must be a list"))
        return None
    if len(value) < field.min_items:
        errors.append(FabricError(path, value, f"needs at least {field.min_items} item(s)"))
    item_field = Field(field.name, field.items or "str", field.doc, pattern=field.pattern)
    out = [
        _check_scalar(item_field, item_field.type, item, f"{path}[{i}]", errors)
        for i, item in enumerate(value)
    ]
    return out


def _normalize_range(field: Field, value: Any, path: str, errors: list[FabricError]) -> list[int] | None:
    ok = isinstance(value, list) and len(value) == 2 and all(_is_int(item) for item in value)
    if not ok:
        errors.append(FabricError(path, value, "must be [first, last] (two integers)"))
        return None
    first, last = value
    if first > last:
        errors.append(FabricError(path, value, "first must not exceed last"))
        return None
    if field.minimum is not None and first < field.minimum:
        errors.append(FabricError(path, value, f"ids must be >= {field.minimum}"))
        return None
    return [first, last]


_COMPOSITES = {
    "map": _normalize_submap,
    "list[map]": _normalize_list_of_maps,
    "dict[map]": _normalize_dict_of_maps,
    "list": _normalize_list,
    "count|names": _normalize_count_or_names,
    "range": _normalize_range,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_scalar(field: Field, kind: str, value: Any, path: str, errors: list[FabricError]) -> Any:
    """Type-check and constrain a scalar; returns the (possibly canonicalized) value or None."""
    result, message = _SCALARS[kind](value)
    message = message or next(_violations(field, kind, result), "")
    if message:
        errors.append(FabricError(path, value, message))
        return None
    return result


def _violations(field: Field, kind: str, result: Any) -> Iterator[str]:
    """Constraint violations of a well-typed scalar (the first one is reported)."""
    if kind == "int":
        if field.minimum is not None and result < field.minimum:
            yield f"must be >= {field.minimum}"
        if field.maximum is not None and result > field.maximum:
            yield f"must be <= {field.maximum}"
    if field.choices and result not in field.choices:
        yield f"must be one of: {', '.join(field.choices)}"
    if isinstance(result, str):
        if field.max_len is not None and len(result) > field.max_len:
            yield f"must be at most {field.max_len} characters"
        if field.pattern and not re.match(field.pattern, result):
            yield f"must match {field.pattern}"


def _check_str(value: Any) -> tuple[Any, str]:
    return (value, "") if isinstance(value, str) else (None, "must be a string")


def _check_int(value: Any) -> tuple[Any, str]:
    return (value, "") if _is_int(value) else (None, "must be an integer")


def _check_bool(value: Any) -> tuple[Any, str]:
    return (value, "") if isinstance(value, bool) else (None, "must be true or false")


def _check_ipv4(value: Any) -> tuple[Any, str]:
    try:
        return str(ipaddress.IPv4Address(value if isinstance(value, str) else "")), ""
    except ValueError:
        return None, "must be an IPv4 address (a.b.c.d)"


def _check_network(
    value: Any, network: type[ipaddress.IPv4Network | ipaddress.IPv6Network], shape: str, marks: str
) -> tuple[Any, str]:
    """A strict network of the ``network`` class written ``shape``; ``value`` must contain every
    character of ``marks``; host bits set is an error with a suggestion."""
    malformed = f"malformed CIDR: must be {shape}"
    if not isinstance(value, str) or any(mark not in value for mark in marks):
        return None, malformed
    try:
        return str(network(value, strict=True)), ""
    except ipaddress.NetmaskValueError:
        return None, "malformed CIDR: bad prefix length"
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = network(value, strict=False)
            return None, f"malformed CIDR: host bits set (did you mean {fixed}?)"
        return None, malformed


def _check_cidr(value: Any) -> tuple[Any, str]:
    """A strict IPv4 network ``a.b.c.d/len``."""
    return _check_network(value, ipaddress.IPv4Network, "an IPv4 network a.b.c.d/len", "/")


def _check_cidr6(value: Any) -> tuple[Any, str]:
    """A strict IPv6 network ``P/len`` (compressed)."""
    return _check_network(value, ipaddress.IPv6Network, "an IPv6 network such as fd00:1::/48", "/:")


def _check_area(value: Any) -> tuple[Any, str]:
    if _is_int(value) and 0 <= value <= 0xFFFFFFFF:
        return str(ipaddress.IPv4Address(value)), ""
    result, message = _check_ipv4(value)
    return (result, "") if not message else (None, "must be an area id: dotted quad or 0..4294967295")


_SCALARS = {
    "str": _check_str,
    "int": _check_int,
    "bool": _check_bool,
    "ipv4": _check_ipv4,
    "cidr": _check_cidr,
    "cidr6": _check_cidr6,
    "area": _check_area,
}


def _resolve_inherited(data: dict[str, Any]) -> None:
    """Replace ``Inherit`` defaults of rack entries by the normalized ``defaults`` values."""
    defaults = data.get("defaults") or {}
    for rack in data.get("racks") or []:
        if not rack:
            continue
        for key, value in rack.items():
            if isinstance(value, Inherit):
                rack[key] = _copy_default(defaults.get(value.source.split(".", 1)[1]))


# --------------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------------
_DOC_PATH_SUFFIX = {"list[map]": "[]", "dict[map]": ".<role>"}


def iter_keys(field: Field = SCHEMA, path: str = "") -> Iterator[tuple[str, Field]]:
    """Every key of the schema as ``(display path, field)`` in declaration order."""
    for child in field.fields:
        child_path = _join(path, child.name)
        yield child_path, child
        if child.fields:
            yield from iter_keys(child, child_path + _DOC_PATH_SUFFIX.get(child.type, ""))


def _doc_default(field: Field) -> str:
    default = field.default
    if field.type == "map":
        return ""
    if default is REQUIRED:
        return "**required**"
    if default is None:
        return "—"
    if isinstance(default, Inherit):
        text = default.source
    elif isinstance(default, bool):
        text = str(default).lower()
    elif isinstance(default, (list, dict)):
        text = _yaml_inline(default)
    else:
        text = str(default)
    return f"`{text}`"


def _yaml_inline(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return "{" + ", ".join(f"{key}: {val}" for key, val in value.items()) + "}"


def _doc_constraints(field: Field) -> str:
    parts = []
    if field.minimum is not None and field.maximum is not None:
        parts.append(f"{field.minimum}..{field.maximum}")
    elif field.minimum is not None:
        parts.append(f">= {field.minimum}")
    elif field.maximum is not None:
        parts.append(f"<= {field.maximum}")
    if field.choices:
        parts.append(" \\| ".join(field.choices))
    if field.pattern:
        parts.append(f"`{field.pattern}`".replace("|", "\\|"))
    if field.max_len is not None:
        parts.append(f"≤ {field.max_len} chars")
    if field.min_items:
        parts.append(f"≥ {field.min_items} item(s)")
    if field.items:
        parts.append(f"items: {field.items}")
    return ", ".join(parts)


def _doc_type(field: Field) -> str:
    return field.type.replace("|", " \\| ")


def markdown_table() -> str:
    """The key table of docs/fabric.md, generated from ``SCHEMA``."""
    lines = [
        "| key | type | default | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path, field in iter_keys():
        doc = field.doc.replace("|", "\\|")
        lines.append(
            f"| `{path}` | {_doc_type(field)} | {_doc_default(field)} | {_doc_constraints(field)} | {doc} |"
        )
    return "\n".join(lines) + "\n"


DOC_BEGIN = "<!-- BEGIN fabric-keys (generated by `compleat-fabric schema --update`; do not edit) -->"
DOC_END = "<!-- END fabric-keys -->"


def update_doc_text(text: str) -> str:
    """Return ``text`` with the generated key table placed between the BEGIN/END markers."""
    begin = text.find(DOC_BEGIN)
    end = text.find(DOC_END)
    if begin < 0 or end < begin:
        raise ValueError("the document has no fabric-keys BEGIN/END markers")
    return text[: begin + len(DOC_BEGIN)] + "\n" + markdown_table() + text[end:]
