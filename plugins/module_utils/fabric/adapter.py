# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The *fabric* argument of the filters: source -> cached plan -> plain data, in one place.

Every filter over the fabric (``plugins/filter/fabric.py``, ``services.py``, ``monitoring.py``)
takes the fabric as a definition -- a mapping (what ``include_vars`` gives) or the path of a
fabric YAML file --; some also take a ``Plan`` or the plain-dict view of one. This module turns
any of these into what the filter needs:

- :func:`definition`: the definition as plain builtin data (read, structure-checked, copied);
- :func:`entry`: the cached :class:`Entry` of a definition (validated once, then its plan, the
  plan's plain-dict view and its whois index, each built on first use);
- :func:`plan_of`: a ``Plan``; :func:`plan_view`: the plain-dict view of a plan.

Up to ``CACHE_SIZE`` distinct definitions are kept (least recently used goes first), so a loop
over many hosts or addresses validates and plans a fabric once. Problems raise
:class:`FabricSourceError` (a ``ValueError``) whose message starts with the caller's name; the
filters turn it into ``AnsibleFilterError`` (the engine imports no Ansible).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .errors import FabricValidationError
from .export import plan_to_dict
from .model import Fabric, Plan
from .plan import build_plan, load_fabric, read_fabric_file, structure_problems
from .whois import WhoisIndex

CACHE_SIZE = 4
DEFINITION = "a fabric definition (mapping) or file path"
PLAN_FORMS = "a fabric plan, its dict view or a fabric definition (mapping or file path)"


class FabricSourceError(ValueError):
    """A *fabric* argument that yields no plan; the message names the caller and the problem."""


class Entry:
    """One validated fabric definition and what the filters derived from it (built on first use)."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self._plan: Plan | None = None
        self._view: dict[str, Any] | None = None
        self._whois: WhoisIndex | None = None

    @property
    def plan(self) -> Plan:
        """The plan of the fabric."""
        if self._plan is None:
            self._plan = build_plan(self.fabric)
        return self._plan

    @property
    def view(self) -> dict[str, Any]:
        """The plan as plain data (``export.plan_to_dict``); the same object on every call."""
        if self._view is None:
            self._view = plan_to_dict(self.plan)
        return self._view

    @property
    def whois(self) -> WhoisIndex:
        """The address index of the fabric."""
        if self._whois is None:
            self._whois = WhoisIndex(self.fabric)
        return self._whois


_cache: OrderedDict[str, Entry] = OrderedDict()


def plain(value: Any) -> Any:
    """Deep copy into builtin types (Ansible passes tagged/lazy containers and strings)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    for kind in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(value, kind):
            return kind(value)
    return value


def definition(source: Any, caller: str, *, forms: str = DEFINITION) -> dict[str, Any]:
    """The fabric definition as plain data, read from a file when ``source`` is a path.

    The structure is checked before anything walks the data: an alias bomb would expand.
    """
    data = source
    if isinstance(source, str):
        try:
            data = read_fabric_file(source)
        except FabricValidationError as exc:
            raise FabricSourceError(f"{caller}: {exc}") from None
    if not isinstance(data, Mapping):
        raise FabricSourceError(f"{caller}: expected {forms}, got {type(source).__name__}")
    problems = structure_problems(data)
    if problems:
        raise FabricSourceError(f"{caller}: {FabricValidationError(problems)}")
    return plain(data)


def entry(source: Any, caller: str, *, forms: str = DEFINITION) -> Entry:
    """The cached :class:`Entry` of a fabric definition (validated on first use)."""
    data = definition(source, caller, forms=forms)
    key = json.dumps(data, sort_keys=True, default=str)
    found = _cache.get(key)
    if found is None:
        try:
            found = Entry(load_fabric(data))
        except FabricValidationError as exc:
            raise FabricSourceError(f"{caller}: {exc}") from None
        _cache[key] = found
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return found


def _is_view(source: Any) -> bool:
    """True for the plain-dict view of a plan (it has devices; a definition has spines)."""
    return isinstance(source, Mapping) and "devices" in source and "spines" not in source


def plan_of(source: Any, caller: str) -> Plan:
    """The plan of a fabric definition (cached), or ``source`` itself when it is a ``Plan``."""
    if isinstance(source, Plan):
        return source
    if _is_view(source):
        raise FabricSourceError(f"{caller}: pass the fabric definition, not the plan data")
    return entry(source, caller).plan


def plan_view(source: Any, caller: str) -> dict[str, Any]:
    """The plain-dict view of a plan, of a ``Plan`` or of a fabric definition (cached)."""
    if isinstance(source, Mapping) and "devices" in source:
        return dict(source)
    if isinstance(source, Plan):
        return plan_to_dict(source)
    return entry(source, caller, forms=PLAN_FORMS).view
