# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud fabric engine: fabric file -> validated Fabric -> Plan -> rendered outputs.

Plain Python (stdlib ``ipaddress``, PyYAML for reading files), importable without Ansible::

    from fabric import load_fabric, build_plan
    plan = build_plan(load_fabric("inventories/lab/fabric.yml"))

See ``docs/fabric.md`` (operator view) and ``docs/dev/fabric-contract.md`` (the contract).
"""

from __future__ import annotations

from .errors import FabricError, FabricValidationError
from .model import Device, Fabric, Plan
from .plan import build_plan, load_fabric

__all__ = [
    "Device",
    "Fabric",
    "FabricError",
    "FabricValidationError",
    "Plan",
    "build_plan",
    "load_fabric",
]
