# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over the fabric engine: ``fabric_plan``, ``fabric_whois`` and ``fabric_validate``.

A *fabric* argument is the fabric definition as a mapping (what ``include_vars`` or a ``vars``
file gives) or the path of a fabric YAML file.  Plans and whois indexes are cached per distinct
fabric (``module_utils/fabric/adapter.py``), so a whois loop over many addresses validates and
indexes the fabric once.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import adapter
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.validate import check


def _entry(fabric: Any, filter_name: str) -> adapter.Entry:
    """The cached entry of a fabric argument (``module_utils/fabric/adapter.py``)."""
    try:
        return adapter.entry(fabric, filter_name)
    except adapter.FabricSourceError as exc:
        raise AnsibleFilterError(str(exc)) from None


def fabric_plan(fabric: Any) -> dict[str, Any]:
    """Validate a fabric and return its plan as plain data (fabric, devices, links, networks, pools)."""
    return _entry(fabric, "fabric_plan").view


def fabric_whois(address: Any, fabric: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """Owner of an address (or of each address of a list) in a fabric."""
    index = _entry(fabric, "fabric_whois").whois
    addresses = address if isinstance(address, list | tuple) else [address]
    answers = []
    for item in addresses:
        try:
            answers.append(index.lookup(str(item)).to_dict())
        except ValueError as exc:
            raise AnsibleFilterError(f"fabric_whois: {item!r}: {exc}") from None
    return answers if isinstance(address, list | tuple) else answers[0]


def fabric_validate(fabric: Any) -> list[dict[str, Any]]:
    """Every problem of a fabric definition as ``{path, value, message}``; empty when valid."""
    try:
        data = adapter.definition(fabric, "fabric_validate")
    except adapter.FabricSourceError as exc:  # never str() a mapping here: it may be an alias bomb
        value = fabric if isinstance(fabric, str) else type(fabric).__name__
        return [{"path": "", "value": value, "message": str(exc)}]
    errors = check(data)[1]
    return [error.to_dict() for error in sorted(errors, key=lambda error: (error.path, error.message))]


class FilterModule:
    """compleat.cloud fabric filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function (each filter is named after its function)."""
        return {func.__name__: func for func in (fabric_plan, fabric_whois, fabric_validate)}
