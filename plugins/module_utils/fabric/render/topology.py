# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``topology.json``: fabric summary, devices, links, networks and pools.

One array element per line, so a diff of two renders shows exactly the devices/links that
changed, and an unchanged device keeps a byte-identical line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..border import border_enabled
from ..export import border_dict, device_dict, fabric_dict, link_dict, network_dict, pool_dict
from ..model import Plan

_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def _array(name: str, items: Iterable[dict[str, Any]], last: bool = False) -> str:
    """A top-level array member, one element per line."""
    body = ",\n".join(f"  {_DUMP(item)}" for item in items)
    body = f"\n{body}\n " if body else ""
    return f' "{name}": [{body}]' + ("" if last else ",")


def render_topology(plan: Plan) -> str:
    """The text of topology.json."""
    parts = [
        "{",
        f' "fabric": {_DUMP(fabric_dict(plan.fabric))},',
        _array("devices", (device_dict(plan, device) for device in plan.devices.values())),
        _array("links", (link_dict(link) for link in plan.links)),
        _array("networks", (network_dict(net) for net in plan.networks)),
        _array("pools", (pool_dict(pool) for pool in plan.pools), last=not border_enabled(plan)),
    ]
    if border_enabled(plan):  # only with border racks: other fabrics render byte-identical
        parts.append(f' "border": {_DUMP(border_dict(plan))}')
    parts.append("}")
    return "\n".join(parts) + "\n"
