# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Anycast pools of a plan (``bgp.anycast``): /32s BGP hosts may originate, e.g. LB node VIPs.

Several hosts in different racks announce one /32 out of a pool; every router accepts it and
spreads flows over every announcing host (ECMP, ``multipath-relax``: the hosts' ASNs differ).
Who may send what (see ``docs/fabric-frr.md``, Anycast):

- a host: only the /32s it originates itself (empty AS path), never one learned from a ToR;
- a ToR: accepts them from its hosts, passes to the spines only those learned directly from a
  host (one-AS path), so it never echoes another rack's VIP upstream;
- a spine: accepts them from every rack, like every router's ``FABRIC`` list.

Pure functions, O(pools).
"""

from __future__ import annotations

from .model import Plan

ANYCAST_LIST = "ANYCAST"  # prefix-list of the anycast pools (/32s only)
HOST_ORIGIN = "HOST-ORIGIN"  # as-path list on a ToR: learned directly from a neighbour (its host)
HOST_ORIGIN_REGEX = "^[0-9]+$"
LOCAL_ORIGIN = "LOCAL-ORIGIN"  # as-path list on a host: originated here
LOCAL_ORIGIN_REGEX = "^$"


def anycast_enabled(plan: Plan) -> bool:
    """True when the fabric carries anycast /32s (routing BGP, BGP-to-host, ``bgp.anycast``)."""
    fabric = plan.fabric
    return fabric.routing == "bgp" and fabric.bgp.hosts and bool(fabric.bgp.anycast)


def anycast_pools(plan: Plan) -> tuple[str, ...]:
    """The anycast pools in effect (empty when the option is off or cannot apply)."""
    return plan.fabric.bgp.anycast if anycast_enabled(plan) else ()


def anycast_clauses(plan: Plan) -> list[str]:
    """``permit`` clauses matching exactly the /32s of every pool (``POOL ge 32``; a /32 pool as is)."""
    return [pool if pool.endswith("/32") else f"{pool} ge 32" for pool in anycast_pools(plan)]


def anycast_capacity(plan: Plan) -> int:
    """How many /32s the anycast pools hold (what maximum-prefix must allow on top)."""
    return sum(1 << (32 - int(pool.partition("/")[2])) for pool in anycast_pools(plan))
