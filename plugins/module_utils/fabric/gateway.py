# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""First-hop redundancy of the rack networks (``gateway.redundancy``): the addressing law's part.

Hosts always use offset 1 of their rack network as the default gateway.  Who holds it:

- ``none`` (default): ToR t holds offset t; offset 1 is ToR 1's own address, so the gateway dies
  with ToR 1 (ToR 2 keeps offset 2, which no host uses).
- ``anycast``: every ToR of the rack holds offset 1 with one MAC (``gateway.mac``) and ToR t its
  own address at offset t + 1.  Whichever ToR a host's frame reaches routes it; when a ToR dies,
  the rack's L2 forgets the MAC on the dead port and the next frame floods to the surviving ToR.
  No election, no protocol: nothing to converge on the first hop.

Pure functions over ids; see ``docs/fabric.md`` (First-hop redundancy).
"""

from __future__ import annotations

from . import law
from .model import Fabric

NONE = "none"
ANYCAST = "anycast"
ANYCAST_MAX_TORS = law.HOST_OFFSET - law.GATEWAY_OFFSET - 1  # own addresses t+1 stay below hosts


def anycast_gateway(fabric: Fabric) -> bool:
    """True when every ToR of a rack holds the rack networks' gateway (``redundancy: anycast``)."""
    return fabric.gateway.redundancy == ANYCAST


def tor_offset(tor: int, anycast: bool) -> int:
    """Offset of ToR t's own address in a rack network: t (ToR 1 = the gateway), t + 1 with anycast."""
    return law.gateway_offset(tor) + 1 if anycast else law.gateway_offset(tor)


def max_tors(anycast: bool) -> int:
    """How many ToRs a rack may have so that every ToR address stays below the host offsets."""
    return ANYCAST_MAX_TORS if anycast else law.MAX_TORS_PER_RACK


def network_slot(offset: int, prefix_len: int, anycast: bool) -> tuple[str, int]:
    """``law.network_slot`` under the redundancy mode: with anycast, offset 1 is
    ``("anycast", 0)`` (held by every ToR) and ``("gateway", t)`` names ToR t at offset t + 1."""
    kind, index = law.network_slot(offset, prefix_len)
    if not anycast or kind != "gateway":
        return kind, index
    if offset == law.GATEWAY_OFFSET:
        return ("anycast", 0)
    return ("gateway", index - 1)
