# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""BGP session hardening derived from the plan: session passwords and ``maximum-prefix`` limits.

- Passwords: the fabric file only names the scheme (``bgp.passwords``); the secret comes at render
  time (a no_log / vault variable) and is used by the FRR renderer only.  ``per_session`` derives
  each session's TCP-MD5 key as HMAC-SHA256(secret, fabric name + the session's two ends, sorted),
  so both ends compute the same key, every session has its own, and no list of keys is kept.
- ``maximum-prefix``: what the peer can legitimately announce, from the plan and the route
  policies the renderer writes (a ToR sends upstream only its rack's networks, its loopback and
  its BGP hosts' loopbacks; a spine, or a ToR towards its hosts, sends every fabric prefix -- all
  the limits allow (``basis: capacity``, the default: adding a rack changes no existing
  configuration) or those of the declared racks (``basis: plan``); a host sends its loopback),
  times ``bgp.maximum_prefix.headroom`` percent.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from .anycast import anycast_capacity
from .border import default_clauses
from .errors import FabricError
from .model import ROLE_HOST, ROLE_SPINE, ROLE_TOR, BgpNeighbor, Device, Plan

PASSWORD_OPTION = "bgp_password"
PASSWORD_RE = re.compile(r"^[!-~]{1,80}$")  # printable ASCII, no space; TCP-MD5 keys are <= 80 bytes
SESSION_KEY_LEN = 32  # hex characters of a per-session key (128 bits)


# ------------------------------------------------------------------------------------ passwords
def password_problems(scheme: str, secret: object) -> list[FabricError]:
    """Why ``secret`` cannot serve ``bgp.passwords: scheme`` (empty when it can).

    The value of an error is ``<secret>`` (or the type name): the secret is never echoed.
    """
    if scheme == "none":
        return []
    if secret is None or secret == "":
        return [
            FabricError(
                PASSWORD_OPTION,
                None,
                f"bgp.passwords is {scheme!r}: give the password at render time (module option "
                f"{PASSWORD_OPTION}, no_log; CLI --bgp-password-file or $COMPLEAT_FABRIC_BGP_PASSWORD)",
            )
        ]
    if not isinstance(secret, str):
        return [FabricError(PASSWORD_OPTION, type(secret).__name__, "must be a string")]
    if not PASSWORD_RE.match(secret):
        return [
            FabricError(
                PASSWORD_OPTION,
                "<secret>",
                f"must be 1..80 printable ASCII characters without spaces (it has {len(secret)} characters)",
            )
        ]
    return []


def session_password(secret: str, fabric_name: str, one: tuple[str, str], other: tuple[str, str]) -> str:
    """The TCP-MD5 key of the session between ``(device, interface)`` ends ``one`` and ``other``."""
    ends = "|".join(f"{device}:{interface}" for device, interface in sorted((one, other)))
    message = f"compleat-fabric|{fabric_name}|{ends}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:SESSION_KEY_LEN]


# ------------------------------------------------------------------------------------ maximum-prefix
def fabric_prefix_count(plan: Plan) -> int:
    """Every prefix the BGP fabric carries: spine loopbacks and, per rack, its networks, ToR
    loopbacks and (BGP-to-host) host loopbacks.  O(racks), no device walk."""
    fabric = plan.fabric
    host_bgp = fabric.routing == "bgp" and fabric.bgp.hosts
    nets = len(fabric.networks)
    return len(fabric.spines) + sum(
        nets + rack.tors + (rack.hosts if host_bgp else 0) for rack in fabric.racks
    )


def fabric_prefix_capacity(plan: Plan) -> int:
    """Every prefix the BGP fabric can ever carry within its limits (stable as racks are added)."""
    fabric = plan.fabric
    limits = fabric.limits
    host_bgp = fabric.routing == "bgp" and fabric.bgp.hosts
    per_rack = len(fabric.networks) + limits.tors_per_rack + (limits.hosts_per_rack if host_bgp else 0)
    return limits.spines + (limits.max_racks - 1) * per_rack


def tor_upstream_count(plan: Plan, tor: Device) -> int:
    """Prefixes a ToR sends to a spine: its own (loopback, rack networks) and its BGP hosts'."""
    devices = plan.devices
    prefixes = set(tor.announce)
    for nbr in tor.bgp_neighbors:
        peer = devices.get(nbr.peer_device)
        if peer is not None and peer.role == ROLE_HOST:
            prefixes.update(peer.announce)
    return len(prefixes)


def legitimate_prefixes(plan: Plan, device: Device, nbr: BgpNeighbor) -> int:
    """How many prefixes ``nbr``'s device can legitimately send ``device`` (ipv4 unicast).

    With ``bgp.anycast`` every session may also carry every /32 of the anycast pools, with
    ``border`` the default route.
    """
    return _fixed_prefixes(plan, device, nbr) + anycast_capacity(plan) + len(default_clauses(plan))


def _fixed_prefixes(plan: Plan, device: Device, nbr: BgpNeighbor) -> int:
    peer = plan.devices[nbr.peer_device]
    if peer.role == ROLE_TOR and device.role == ROLE_SPINE:
        return tor_upstream_count(plan, peer)
    if peer.role == ROLE_HOST:
        return len(peer.announce)
    # a spine, or a ToR towards its hosts: the whole fabric
    if plan.fabric.bgp.maximum_prefix.basis == "plan":
        return fabric_prefix_count(plan)
    return fabric_prefix_capacity(plan)


def prefix_limit(count: int, headroom: int) -> int:
    """ceil(count x headroom / 100), at least 1."""
    return max(1, -(-count * headroom // 100))


def maximum_prefix_clause(plan: Plan, device: Device, nbr: BgpNeighbor) -> str:
    """Arguments of ``neighbor X maximum-prefix`` for the session of ``device`` with ``nbr``."""
    options = plan.fabric.bgp.maximum_prefix
    clause = str(prefix_limit(legitimate_prefixes(plan, device, nbr), options.headroom))
    if options.warning_only:
        clause += " warning-only"
    elif options.restart:
        clause += f" restart {options.restart}"
    return clause
