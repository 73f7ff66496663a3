# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fabric intent versus a running fabric: what every router should see, and the differences.

Pure functions, no I/O.  The intent is derived from the plan as plain data (``topology.json``, or
``export.plan_to_dict(plan)``), so it works wherever the rendered output is available:

- **sessions**: every BGP session (keyed as FRR keys it: peer address, or the interface for
  unnumbered peers) must be ``Established``; with OSPF, every neighbor router id must have as many
  ``Full`` adjacencies as there are links to it;
- **routes**: every prefix another router originates (loopbacks, rack networks) must be in the RIB
  with as many installed next hops as the two-tier Clos gives: for router D and a prefix
  originated by the set O, the number of D's fabric links whose far end is in O or has a link to
  a member of O (ECMP over all equal-cost paths).  A prefix no equal-cost path can reach (for
  example, another spine's loopback under BGP, where spines never learn each other) is not
  checked.  BGP-to-host loopbacks are checked for presence only;
- **fib**: the kernel must hold the same number of next hops as FRR installed (when the kernel
  routing table is given);
- **leaks** (BGP only): no BGP route outside the intended prefixes; a /32 out of an anycast pool
  (``bgp.anycast``, topology's ``fabric.anycast``) is legitimate whenever a host announces it and
  is neither required nor a leak.

``compare(intent, observed)`` takes FRR's JSON as parsed objects (``show ip route json``,
``show bgp ... summary json`` / ``show ip ospf neighbor json``, optionally ``ip -j route``) and
returns a sorted list of :class:`Difference`.  It asserts on structure (prefix keys, next-hop
lists, state values), not on FRR's occasionally misspelt key names.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PRESENT = -1  # expected path count meaning "present with at least one path"

KIND_SESSION = "session-down"
KIND_SESSION_MISSING = "session-missing"
KIND_MISSING = "prefix-missing"
KIND_PATHS = "path-count"
KIND_FIB = "fib-path-count"
KIND_LEAK = "unexpected-prefix"


@dataclass(frozen=True, order=True)
class Difference:
    """One way a router differs from intent."""

    device: str
    kind: str
    subject: str  # peer key or prefix
    expected: str
    observed: str

    def __str__(self) -> str:
        return (
            f"{self.device}: {self.kind} {self.subject}: expected {self.expected}, observed {self.observed}"
        )

    def as_dict(self) -> dict[str, str]:
        """Plain dict (for Ansible results and JSON reports)."""
        return {
            "device": self.device,
            "kind": self.kind,
            "subject": self.subject,
            "expected": self.expected,
            "observed": self.observed,
            "message": str(self),
        }


@dataclass(frozen=True)
class DeviceIntent:
    """What one router must see."""

    name: str
    role: str
    routing: str  # "bgp" | "ospf"
    sessions: dict[str, str] = field(default_factory=dict)  # BGP peer key -> peer device
    ospf_neighbors: dict[str, int] = field(default_factory=dict)  # router id -> adjacency count
    routes: dict[str, int] = field(default_factory=dict)  # prefix -> next hops (PRESENT: >= 1)
    local: frozenset[str] = frozenset()  # prefixes the device originates itself
    anycast: tuple[str, ...] = ()  # anycast pools: their /32s come and go with the hosts' health
    external: frozenset[str] = frozenset()  # from outside (border: the default route), legitimate

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (sorted keys) for reports."""
        return {
            "name": self.name,
            "role": self.role,
            "routing": self.routing,
            "sessions": dict(sorted(self.sessions.items())),
            "ospf_neighbors": dict(sorted(self.ospf_neighbors.items())),
            "routes": dict(sorted(self.routes.items())),
        }


# ------------------------------------------------------------------------------------ intent
def intent_from_plan(plan: Any) -> dict[str, DeviceIntent]:
    """Intent of every router of a ``model.Plan``."""
    from .export import plan_to_dict

    return intent_from_topology(plan_to_dict(plan))


def intent_from_topology(
    topology: Mapping[str, Any], only: Iterable[str] | None = None
) -> dict[str, DeviceIntent]:
    """Intent of every router (device with an FRR config) of a ``topology.json`` document.

    ``only`` restricts the result to those routers (the graph is still built once: O(fabric));
    each router then costs O(prefixes).
    """
    fabric = topology.get("fabric", {})
    routing = str(fabric.get("routing", "bgp"))
    anycast = tuple(fabric.get("anycast", ()))
    external = frozenset({"0.0.0.0/0"}) if topology.get("border") else frozenset()
    devices: dict[str, Mapping[str, Any]] = {dev["name"]: dev for dev in topology.get("devices", [])}
    routers = [name for name, dev in devices.items() if dev.get("config")]

    # adjacency over fabric links: device -> list of far-end devices (one entry per link)
    far: dict[str, list[str]] = {}
    for link in topology.get("links", []):
        a, b = link["a"]["device"], link["b"]["device"]
        far.setdefault(a, []).append(b)
        far.setdefault(b, []).append(a)
    neighbours = {name: set(ends) for name, ends in far.items()}
    far_count = {name: Counter(ends) for name, ends in far.items()}

    # who originates what (the rack networks of a 2-ToR rack are originated by both ToRs)
    origins: dict[str, set[str]] = {}
    host_prefixes: set[str] = set()
    for name in routers:
        dev = devices[name]
        for prefix in dev.get("announce", ()):
            origins.setdefault(prefix, set()).add(name)
            if dev.get("role") == "host":
                host_prefixes.add(prefix)

    spine_prefixes = {
        p for p, owners in origins.items() if all(devices[o].get("role") == "spine" for o in owners)
    }
    network_roles = {str(net["prefix"]): str(net["role"]) for net in topology.get("networks", [])}
    graph = _Graph(
        routing, devices, origins, host_prefixes, spine_prefixes, far_count, neighbours, network_roles
    )
    selected = None if only is None else set(only)
    wanted = routers if selected is None else [name for name in routers if name in selected]
    result: dict[str, DeviceIntent] = {}
    for name in wanted:
        dev = devices[name]
        routes = _expected_routes(name, graph)
        sessions: dict[str, str] = {}
        ospf: dict[str, int] = {}
        if routing == "bgp":
            for nbr in dev.get("bgp_neighbors", ()):
                sessions[nbr.get("address") or nbr["interface"]] = nbr["peer_device"]
        else:
            for peer in far.get(name, []):
                rid = str(devices[peer].get("router_id", peer))
                ospf[rid] = ospf.get(rid, 0) + 1
        local = frozenset(dev.get("announce", ()))
        role = str(dev.get("role"))
        result[name] = DeviceIntent(name, role, routing, sessions, ospf, routes, local, anycast, external)
    return result


@dataclass(frozen=True)
class _Graph:
    """The fabric as the route expectations need it."""

    routing: str
    devices: Mapping[str, Mapping[str, Any]]
    origins: Mapping[str, set[str]]  # prefix -> routers originating it
    host_prefixes: set[str]  # prefixes originated by BGP hosts
    spine_prefixes: set[str]  # prefixes originated by spines only
    far: Mapping[str, Counter[str]]  # router -> far end device -> number of links to it
    neighbours: Mapping[str, set[str]]  # router -> set of far ends
    network_roles: Mapping[str, str] = field(default_factory=dict)  # rack network prefix -> role


def _expected_routes(name: str, graph: _Graph) -> dict[str, int]:
    """Prefix -> expected next-hop count on router ``name`` (PRESENT for presence-only checks)."""
    devices = graph.devices
    role = devices[name].get("role")
    bgp_spine = graph.routing == "bgp" and role == "spine"
    ends = graph.far.get(name, Counter())
    routes: dict[str, int] = {}
    # a BGP host learns the loopbacks and the subnets of the network it peers over, no other rack
    # network (those route via their own gateway: render.host)
    peered = {str(nbr.get("interface")) for nbr in devices[name].get("bgp_neighbors", ())}
    for prefix, owners in graph.origins.items():
        if name in owners:
            continue
        if role == "host" and graph.network_roles.get(prefix, next(iter(peered), "")) not in peered:
            continue
        if prefix in graph.host_prefixes or role == "host":
            routes[prefix] = PRESENT  # BGP hosts: presence only
            continue
        if bgp_spine and prefix in graph.spine_prefixes:
            continue  # spines share an ASN and ToRs only re-advertise their own: never learnt
        count = _ecmp_paths(ends, owners, graph.neighbours)
        if count:
            routes[prefix] = count
    return routes


def _ecmp_paths(ends: Counter[str], owners: set[str], neighbours: Mapping[str, set[str]]) -> int:
    """Equal-cost next hops in a two-tier Clos: links to an owner, else links to a neighbour of one."""
    direct = sum(ends.get(owner, 0) for owner in owners)
    if direct:
        return direct
    return sum(count for end, count in ends.items() if neighbours.get(end, set()) & owners)


# ------------------------------------------------------------------------------------ observed
def bgp_peers(summary: Mapping[str, Any]) -> dict[str, str]:
    """Peer key -> state from ``show bgp [vrf default] [ipv4 unicast] summary json``."""
    if "peers" not in summary:
        summary = summary.get("ipv4Unicast") or summary.get("default", {}).get("ipv4Unicast") or {}
    peers = summary.get("peers", {}) or {}
    return {
        str(key): str(value.get("state", value.get("peerState", "unknown"))) for key, value in peers.items()
    }


def ospf_full_counts(neighbors: Mapping[str, Any]) -> dict[str, int]:
    """Router id -> number of adjacencies in state Full, from ``show ip ospf neighbor json``."""
    table = neighbors.get("neighbors", neighbors) or {}
    counts: dict[str, int] = {}
    for rid, entries in table.items():
        items = entries if isinstance(entries, list) else [entries]
        for entry in items:
            if not isinstance(entry, Mapping):
                continue
            state = str(entry.get("nbrState", entry.get("state", "")))
            if state.startswith("Full"):
                counts[str(rid)] = counts.get(str(rid), 0) + 1
    return counts


def _selected(entries: Any) -> Mapping[str, Any] | None:
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("selected"):
            return entry
    return None


def rib_nexthops(routes: Mapping[str, Any], prefix: str) -> list[str]:
    """Installed next hops (``ip%interface``) of the selected route to ``prefix`` in FRR's RIB."""
    entry = _selected(routes.get(prefix))
    if entry is None:
        return []
    hops = []
    for hop in entry.get("nexthops", []):
        if hop.get("fib") or (hop.get("active") and entry.get("installed")):
            hops.append(f"{hop.get('ip', 'direct')}%{hop.get('interfaceName', '?')}")
    return sorted(hops)


def rib_protocol(routes: Mapping[str, Any], prefix: str) -> str | None:
    """Protocol of the selected route to ``prefix`` (``bgp``, ``ospf``, ``connected``...)."""
    entry = _selected(routes.get(prefix))
    return str(entry.get("protocol")) if entry is not None else None


def _kernel_key(dst: str) -> str:
    if dst == "default":  # how ip -j route names 0.0.0.0/0
        return "0.0.0.0/0"
    return dst if "/" in dst else f"{dst}/32"


def fib_nexthops(kernel_routes: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    """Next hops (``gateway%dev``) of ``prefix`` in ``ip -j route`` output (multipath expanded)."""
    for route in kernel_routes:
        if _kernel_key(str(route.get("dst", ""))) != prefix:
            continue
        hops = route.get("nexthops") or [route]
        out = []
        for hop in hops:
            gateway = hop.get("gateway")
            if gateway is None and isinstance(hop.get("via"), Mapping):
                gateway = hop["via"].get("host")
            out.append(f"{gateway or 'direct'}%{hop.get('dev', '?')}")
        return sorted(out)
    return []


# ------------------------------------------------------------------------------------ compare
def compare(intent: DeviceIntent, observed: Mapping[str, Any]) -> list[Difference]:
    """Differences between ``intent`` and one router's observed state.

    ``observed`` keys: ``routes`` (``show ip route json``), ``bgp_summary`` or ``ospf_neighbors``,
    optional ``kernel_routes`` (``ip -j route``).  Missing keys skip their checks.
    """
    diffs = _compare_sessions(intent, observed)
    routes = observed.get("routes")
    if routes is not None:
        diffs.extend(_compare_routes(intent, routes, observed.get("kernel_routes")))
    return sorted(diffs)


def _compare_sessions(intent: DeviceIntent, observed: Mapping[str, Any]) -> list[Difference]:
    """BGP sessions Established / OSPF adjacencies Full."""
    diffs: list[Difference] = []
    name = intent.name
    if intent.routing == "bgp" and "bgp_summary" in observed:
        peers = bgp_peers(observed["bgp_summary"] or {})
        for key, peer in sorted(intent.sessions.items()):
            state = peers.get(key)
            subject = f"{key} ({peer})"
            if state is None:
                diffs.append(Difference(name, KIND_SESSION_MISSING, subject, "Established", "absent"))
            elif state != "Established":
                diffs.append(Difference(name, KIND_SESSION, subject, "Established", state))
    if intent.routing == "ospf" and "ospf_neighbors" in observed:
        full = ospf_full_counts(observed["ospf_neighbors"] or {})
        for rid, count in sorted(intent.ospf_neighbors.items()):
            got = full.get(rid, 0)
            if got != count:
                diffs.append(Difference(name, KIND_SESSION, f"ospf {rid}", f"{count} Full", f"{got} Full"))
    return diffs


def _compare_routes(
    intent: DeviceIntent, routes: Mapping[str, Any], kernel: Iterable[Mapping[str, Any]] | None
) -> list[Difference]:
    """Prefixes present, ECMP path counts in the RIB and the kernel FIB, no leaked BGP prefixes."""
    diffs: list[Difference] = []
    name = intent.name
    kernel_routes = list(kernel) if kernel is not None else None
    for prefix, count in sorted(intent.routes.items()):
        hops = rib_nexthops(routes, prefix)
        if not hops:
            diffs.append(Difference(name, KIND_MISSING, prefix, _paths(count), "absent"))
            continue
        if count != PRESENT and len(hops) != count:
            diffs.append(Difference(name, KIND_PATHS, prefix, _paths(count), _paths(len(hops), hops)))
        if kernel_routes is not None:
            fib = fib_nexthops(kernel_routes, prefix)
            if len(fib) != len(hops):
                diffs.append(Difference(name, KIND_FIB, prefix, _paths(len(hops)), _paths(len(fib), fib)))
    if intent.routing == "bgp":
        for prefix in sorted(routes):
            if rib_protocol(routes, prefix) == "bgp" and prefix not in intent.routes:
                if in_anycast_pool(prefix, intent.anycast) or prefix in intent.external:
                    continue
                diffs.append(Difference(name, KIND_LEAK, prefix, "not announced", "learnt via bgp"))
    return diffs


def in_anycast_pool(prefix: str, pools: Iterable[str]) -> bool:
    """Whether ``prefix`` is a /32 inside one of the anycast ``pools``."""
    if not prefix.endswith("/32"):
        return False
    address = ipaddress.IPv4Address(prefix[:-3])
    return any(address in ipaddress.IPv4Network(pool) for pool in pools)


def _paths(count: int, hops: list[str] | None = None) -> str:
    if count == PRESENT:
        return ">=1 path"
    text = f"{count} path" + ("" if count == 1 else "s")
    return f"{text} ({', '.join(hops)})" if hops else text


def compare_all(
    intents: Mapping[str, DeviceIntent], observed: Mapping[str, Mapping[str, Any]]
) -> list[Difference]:
    """Differences of every router in ``observed`` (routers absent from ``observed`` are reported)."""
    diffs: list[Difference] = []
    for name, intent in sorted(intents.items()):
        if name not in observed:
            diffs.append(Difference(name, "unobserved", name, "observed", "no data"))
            continue
        diffs.extend(compare(intent, observed[name]))
    return sorted(diffs)
