# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Error types of the fabric engine.

A ``FabricError`` is one problem found in a fabric file: the key path (``networks.mgmt.pool``,
``racks[3].id``), the offending value and a message.  Validation collects every problem and raises
one ``FabricValidationError`` carrying all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FabricError:
    """One problem in a fabric file, located by its key path."""

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message} (value: {_short(self.value)})"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict form (JSON-safe value) for machine-readable output."""
        value = self.value
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = repr(value)
        return {"path": self.path, "value": value, "message": self.message}


class FabricValidationError(ValueError):
    """Raised when a fabric file has one or more problems; ``errors`` lists all of them."""

    def __init__(self, errors: list[FabricError]) -> None:
        self.errors: list[FabricError] = sorted(errors, key=_error_key)
        count = len(self.errors)
        lines = [f"fabric file has {count} error{'s' if count != 1 else ''}:"]
        lines.extend(f"  - {error}" for error in self.errors)
        super().__init__("\n".join(lines))


def _error_key(error: FabricError) -> tuple[str, str]:
    """Sort errors by path then message so reports are deterministic."""
    return (error.path, error.message)


def _short(value: Any, limit: int = 80) -> str:
    """repr() of a value, shortened for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
