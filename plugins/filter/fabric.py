# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over the fabric engine: ``fabric_plan``, ``fabric_whois`` and ``fabric_validate``.

A *fabric* argument is the fabric definition as a mapping (what ``include_vars`` or a ``vars``
file gives) or the path of a fabric YAML file.  Plans and whois indexes are cached per distinct
fabric, so a whois loop over many addresses validates and indexes the fabric once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import FabricValidationError
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import (
    build_plan,
    load_fabric,
    read_fabric_file,
    structure_problems,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.validate import check
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.whois import WhoisIndex

_CACHE_SIZE = 4
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()


def _plain(value: Any) -> Any:
    """Deep copy into builtin types (Ansible passes tagged/lazy containers and strings)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    for kind in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(value, kind):
            return kind(value)
    return value


def _source(fabric: Any, filter_name: str) -> dict[str, Any]:
    """The fabric definition as plain data, read from a file when given a path."""
    if isinstance(fabric, str):
        try:
            fabric = read_fabric_file(fabric)
        except FabricValidationError as exc:
            raise AnsibleFilterError(f"{filter_name}: {exc}") from exc
    if not isinstance(fabric, Mapping):
        raise AnsibleFilterError(
            f"{filter_name}: expected a fabric mapping or file path, got {type(fabric).__name__}"
        )
    problems = structure_problems(fabric)  # before anything walks it: an alias bomb expands
    if problems:
        raise AnsibleFilterError(f"{filter_name}: {FabricValidationError(problems)}")
    return _plain(fabric)


def _entry(fabric: Any, filter_name: str) -> dict[str, Any]:
    """Cached {fabric, plan?, whois?} for one fabric definition (validated once)."""
    data = _source(fabric, filter_name)
    key = json.dumps(data, sort_keys=True, default=str)
    entry = _cache.get(key)
    if entry is None:
        try:
            entry = {"fabric": load_fabric(data)}
        except FabricValidationError as exc:
            raise AnsibleFilterError(f"{filter_name}: {exc}") from exc
        _cache[key] = entry
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return entry


def fabric_plan(fabric: Any) -> dict[str, Any]:
    """Validate a fabric and return its plan as plain data (fabric, devices, links, networks, pools)."""
    entry = _entry(fabric, "fabric_plan")
    if "plan" not in entry:
        entry["plan"] = plan_to_dict(build_plan(entry["fabric"]))
    return entry["plan"]


def fabric_whois(address: Any, fabric: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """Owner of an address (or of each address of a list) in a fabric."""
    entry = _entry(fabric, "fabric_whois")
    index = entry.get("whois")
    if index is None:
        fabric_obj: Fabric = entry["fabric"]
        index = entry["whois"] = WhoisIndex(fabric_obj)
    addresses = address if isinstance(address, (list, tuple)) else [address]
    answers = []
    for item in addresses:
        try:
            answers.append(index.lookup(str(item)).to_dict())
        except ValueError as exc:
            raise AnsibleFilterError(f"fabric_whois: {item!r}: {exc}") from exc
    return answers if isinstance(address, (list, tuple)) else answers[0]


def fabric_validate(fabric: Any) -> list[dict[str, Any]]:
    """Every problem of a fabric definition as ``{path, value, message}``; empty when valid."""
    try:
        data = _source(fabric, "fabric_validate")
    except AnsibleFilterError as exc:  # never str() a mapping here: it may be an alias bomb
        value = fabric if isinstance(fabric, str) else type(fabric).__name__
        return [{"path": "", "value": value, "message": str(exc)}]
    errors = check(data)[1]
    return [error.to_dict() for error in sorted(errors, key=lambda error: (error.path, error.message))]


class FilterModule:
    """compleat.cloud fabric filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {
            "fabric_plan": fabric_plan,
            "fabric_whois": fabric_whois,
            "fabric_validate": fabric_validate,
        }
