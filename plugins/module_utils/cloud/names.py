# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names and paths the cloud stack accepts, checked before anything is placed or written.

An instance's name becomes its libvirt domain name, its guest hostname and the stem of its files
in the host's storage directory, so it must be a DNS label: 1-63 ASCII letters, digits and
hyphens, neither first nor last a hyphen. Every file path derived from a name must stay inside the
storage directory it was derived from.
"""

from __future__ import annotations

import os
import re

from .errors import InvalidInput

NAME_MAX = 63
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a DNS-label name, or None when it is one."""
    if not isinstance(value, str) or not value:
        return "it is empty"
    if len(value) > NAME_MAX:
        return f"it has {len(value)} characters (at most {NAME_MAX})"
    if not value.isascii():
        return "it has non-ASCII characters"
    if not _LABEL.match(value):
        return "only letters, digits and inner hyphens are allowed (a DNS label)"
    return None


def check_name(key: str, value: object) -> str:
    """``value`` if it is a DNS-label name; InvalidInput naming ``key`` and the value otherwise."""
    problem = name_problem(value)
    if problem:
        raise InvalidInput(
            f"{key}: {value!r} is not a valid name: {problem}.",
            "Use 1-63 letters, digits and hyphens, not starting or ending with a hyphen (e.g. web-1).",
            key=key,
            value=value,
        )
    return str(value)


def confined(directory: str, filename: str) -> str:
    """``directory``/``filename``; InvalidInput unless it resolves to a file directly in ``directory``."""
    path = os.path.join(directory, filename)
    base = os.path.realpath(directory)
    resolved = os.path.realpath(path)
    if os.path.dirname(resolved) != base:
        raise InvalidInput(
            f"{filename!r} resolves to {resolved}, outside the directory {base} it must stay in.",
            "Give a plain name (no '/', no '..'): it names a file in a storage or backup directory.",
            path=resolved,
            storage_dir=base,
        )
    return path
