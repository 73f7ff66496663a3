# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fabric documents of the DNS/DHCP/relay tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric

ROOT = Path(__file__).resolve().parents[3]
LAB_FILE = ROOT / "inventories" / "lab" / "fabric.yml"
EXAMPLE_FILE = ROOT / "inventories" / "example" / "fabric-500.yml"

# Small but complete: 2 spines, rack 1 with 2 ToRs, rack 2 with one; pools of every shape the
# reverse-zone logic distinguishes (/16, /14 -> four /16 zones, /22 -> four /24 zones).
DOC: dict[str, Any] = {
    "name": "t1",
    "routing": "bgp",
    "limits": {"max_racks": 16, "tors_per_rack": 2, "uplinks_per_tor": 2, "hosts_per_rack": 8, "spines": 2},
    "pools": {"loopbacks": "10.255.0.0/16", "links": "10.254.0.0/24"},
    "networks": {
        "mgmt": {"pool": "10.0.0.0/14", "prefix_len": 24, "vlan": 10, "mtu": 1500},
        "vm": {"pool": "10.64.0.0/22", "prefix_len": 26, "vlan": 40, "mtu": 9000},
    },
    "spines": [{"id": 1}, {"id": 2}],
    "racks": [{"id": 1, "tors": 2, "uplinks": 2, "hosts": 3}, {"id": 2, "tors": 1, "uplinks": 2, "hosts": 2}],
    "dhcp_relay": {"servers": ["10.0.1.10"], "networks": ["mgmt"]},
}


def doc(**changes: Any) -> dict[str, Any]:
    """A deep copy of DOC with top-level keys replaced."""
    out = copy.deepcopy(DOC)
    out.update(copy.deepcopy(changes))
    return out


def plan_of(document: dict[str, Any] | Path) -> Plan:
    """Validated plan of a document or file."""
    return build_plan(load_fabric(document if isinstance(document, dict) else str(document)))
