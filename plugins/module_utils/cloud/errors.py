# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors of the cloud stack.  Every error carries a ``hint``: what the operator should do next."""

from __future__ import annotations

from typing import Any


class CloudError(Exception):
    """Base error: ``msg`` says what went wrong, ``hint`` how to fix it, ``details`` extra facts."""

    def __init__(self, msg: str, hint: str = "", **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.hint = hint
        self.details = details

    def as_result(self) -> dict[str, Any]:
        """The keyword arguments for ``fail_json``."""
        out: dict[str, Any] = {"msg": f"{self.msg} Hint: {self.hint}" if self.hint else self.msg}
        if self.hint:
            out["hint"] = self.hint
        out.update(self.details)
        return out


class StoreError(CloudError):
    """The metadata store cannot be opened, is corrupt, or is of an unknown schema version."""


class InvalidInput(CloudError):
    """A parameter's value is refused before anything is placed or written (name, path)."""


class NotFound(CloudError):
    """A named object (template, offering, host, instance, volume, snapshot, key) does not exist."""


class Conflict(CloudError):
    """The request contradicts what the store records (in use, immutable field, wrong state)."""


class NoCapacity(CloudError):
    """Placement found no host for the request."""


class VirtError(CloudError):
    """libvirt refused or failed an operation."""


class CommandError(CloudError):
    """An external command (qemu-img, genisoimage, a fence command) failed."""
