# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The way out (``border``): border ToRs peer eBGP with an upstream; the default route comes in.

Every ToR of a border rack has one upstream link, ``ext1``, on the /31 of ``border.links`` at
index ``r*tors_per_rack + (t-1)`` (upstream side even, ToR side odd) -- the same law as the fabric
links, so adding a border rack changes no other border ToR.  Who accepts and sends what:

- a border ToR accepts from the upstream only ``0.0.0.0/0`` (``FROM-UPSTREAM``) and sends it only
  the public prefixes (originated here with a discard route) and the per-rack subnets of the
  ``announce`` roles, the service prefixes (``TO-UPSTREAM``); it passes the default route to the
  spines (``TO-SPINE`` entry 30);
- a spine accepts the default route only from the border racks (their ``RACKnnn`` lists) and, like
  every router, passes it on (``FABRIC``): every ToR has it with ECMP over its uplinks.

Pure functions over the plan; the FRR renderer places the lines they return.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import law
from .model import ROLE_TOR, Device, Plan

DEFAULT_ROUTE = "0.0.0.0/0"
DEFAULT_LIST = "DEFAULT"  # prefix-list: exactly the default route
OUT_LIST = "UPSTREAM-OUT"  # prefix-list: what goes upstream
GROUP = "UPSTREAM"  # peer-group of the upstream session
FROM_UPSTREAM = "FROM-UPSTREAM"
TO_UPSTREAM = "TO-UPSTREAM"
TO_SPINE_SEQ = 30  # entry of the ToR's TO-SPINE map passing the default route (anycast uses 20)
IFNAME = "ext1"  # the border ToR's upstream interface


@dataclass(frozen=True, slots=True)
class UpstreamLink:
    """One border ToR's link to the upstream."""

    device: str  # the border ToR
    interface: str  # its side: ext1
    address: str  # ToR side, CIDR (odd address of the /31)
    upstream_address: str  # upstream side, no prefix length (even address)
    prefix: str  # the /31
    upstream_interface: str  # name of the upstream side in the lab: r<r>t<t>x
    rack: int
    tor: int


def border_enabled(plan: Plan) -> bool:
    """True when the fabric has border racks (BGP only)."""
    return plan.fabric.routing == "bgp" and bool(plan.fabric.border.racks)


def is_border_tor(plan: Plan, device: Device) -> bool:
    """Whether ``device`` is a ToR of a border rack."""
    return border_enabled(plan) and device.role == ROLE_TOR and device.rack in plan.fabric.border.racks


def link_index(plan: Plan, rack: int, tor: int) -> int:
    """Index of the /31 of ToR (r, t) in ``border.links``: ``r*tors_per_rack + (t-1)``."""
    return rack * plan.fabric.limits.tors_per_rack + tor - 1


def upstream_link(plan: Plan, device: Device) -> UpstreamLink:
    """The upstream link of a border ToR by the law."""
    rack = device.rack if device.rack is not None else 0
    base = plan.fabric.border.links_block.start + 2 * link_index(plan, rack, device.index)
    return UpstreamLink(
        device=device.name,
        interface=IFNAME,
        address=f"{law.int_to_ip(base + 1)}/31",
        upstream_address=law.int_to_ip(base),
        prefix=f"{law.int_to_ip(base)}/31",
        upstream_interface=f"r{rack}t{device.index}x",
        rack=rack,
        tor=device.index,
    )


def upstream_links(plan: Plan) -> list[UpstreamLink]:
    """Every border ToR's upstream link, in plan order."""
    if not border_enabled(plan):
        return []
    return [link for rack in sorted(plan.fabric.border.racks) for link in rack_upstream_links(plan, rack)]


def rack_upstream_links(plan: Plan, rack: int) -> list[UpstreamLink]:
    """The upstream links of one rack's ToRs (empty unless it is a border rack)."""
    if not border_enabled(plan) or rack not in plan.fabric.border.racks:
        return []
    spec = next((item for item in plan.fabric.racks if item.id == rack), None)
    tors = range(1, spec.tors + 1) if spec is not None else range(0)
    return [upstream_link(plan, plan.devices[law.tor_name(rack, tor)]) for tor in tors]


def default_clauses(plan: Plan) -> list[str]:
    """``FABRIC`` entries for the default route (every router passes it on) when there is a border."""
    return [DEFAULT_ROUTE] if border_enabled(plan) else []


def rack_clauses(plan: Plan, rack: int) -> list[str]:
    """A spine's ``RACKnnn`` entries added for rack ``rack``: the default route from border racks."""
    return [DEFAULT_ROUTE] if border_enabled(plan) and rack in plan.fabric.border.racks else []


def out_clauses(plan: Plan) -> list[str]:
    """``UPSTREAM-OUT``: the public prefixes as they are, then every per-rack subnet of the announced
    roles (``POOL ge L le L``: exact rack subnets, never the pool aggregate)."""
    fabric = plan.fabric
    clauses = list(fabric.border.public)
    for role in fabric.border.announce:
        spec = fabric.network(role)
        clauses.append(f"{spec.pool} ge {spec.prefix_len} le {spec.prefix_len}")
    return clauses


def announced_prefixes(plan: Plan) -> list[str]:
    """Every prefix the border ToRs send upstream: public prefixes, then the announced roles'
    subnets of every declared rack (what an upstream must receive, exactly)."""
    roles = set(plan.fabric.border.announce)
    return list(plan.fabric.border.public) + [net.prefix for net in plan.networks if net.role in roles]


def interface_lines(plan: Plan, device: Device) -> list[str]:
    """The ``interface ext1`` stanza of a border ToR (nothing for other devices)."""
    if not is_border_tor(plan, device):
        return []
    link = upstream_link(plan, device)
    return [
        f"interface {link.interface}",
        f" description upstream link {link.upstream_interface}",
        f" ip address {link.address}",
        "exit",
        "!",
    ]


def policy_lines(plan: Plan, device: Device) -> list[str]:
    """Prefix-lists, route-maps and discard routes of a border ToR (nothing for other devices)."""
    if not is_border_tor(plan, device):
        return []
    lines = [f"ip prefix-list {DEFAULT_LIST} seq 10 permit {DEFAULT_ROUTE}"]
    lines += [
        f"ip prefix-list {OUT_LIST} seq {10 * i} permit {c}" for i, c in enumerate(out_clauses(plan), 1)
    ]
    lines.append("!")
    for name, prefix_list in (
        (FROM_UPSTREAM, DEFAULT_LIST),
        (TO_UPSTREAM, OUT_LIST),
    ):
        lines += [f"route-map {name} permit 10", f" match ip address prefix-list {prefix_list}", "exit", "!"]
    lines += [
        f"route-map TO-SPINE permit {TO_SPINE_SEQ}",
        f" match ip address prefix-list {DEFAULT_LIST}",
        "exit",
        "!",
    ]
    # the public prefixes are originated here; the routes inside the fabric are more specific
    lines += [f"ip route {prefix} blackhole" for prefix in plan.fabric.border.public]
    if plan.fabric.border.public:
        lines.append("!")
    return lines


def session_lines(plan: Plan, device: Device) -> list[str]:
    """The upstream peer-group and session under ``router bgp`` of a border ToR."""
    if not is_border_tor(plan, device):
        return []
    link = upstream_link(plan, device)
    lines = [
        f" neighbor {GROUP} peer-group",
        f" neighbor {GROUP} remote-as {plan.fabric.border.upstream_asn}",
        f" neighbor {GROUP} description upstream",
    ]
    if plan.fabric.bgp.gtsm:
        lines.append(f" neighbor {GROUP} ttl-security hops 1")
    lines += [
        f" neighbor {link.upstream_address} peer-group {GROUP}",
        f" neighbor {link.upstream_address} description upstream {link.upstream_interface}",
    ]
    return lines


def family_lines(plan: Plan, device: Device) -> list[str]:
    """``address-family ipv4 unicast`` lines of a border ToR: public networks and the session."""
    if not is_border_tor(plan, device):
        return []
    lines = [f"  network {prefix}" for prefix in plan.fabric.border.public]
    lines += [
        f"  neighbor {GROUP} activate",
        f"  neighbor {GROUP} route-map {FROM_UPSTREAM} in",
        f"  neighbor {GROUP} route-map {TO_UPSTREAM} out",
    ]
    return lines
