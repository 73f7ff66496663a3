# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Replace a file atomically (temporary file in the same directory, then rename); read one; file modes.

Standard library only and self-contained: the modules import it, and the role
compleat.cloud.monitoring_exporters copies it next to the ECMP textfile exporter it installs on
hosts (as /usr/local/lib/compleat/atomic_file.py), so there is one copy of this code.
"""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, text: str, mode: int = 0o644, gid: int = -1) -> None:
    """Replace ``path`` with ``text``: readers see the old file or the new one, never a part.

    The new file gets ``mode`` and, when ``gid`` is not -1, that group. On any error the
    temporary file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if gid != -1:
            os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path: str) -> str | None:
    """A file's content, None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def parse_mode(value: object) -> int:
    """An octal file mode given as a string ("0644") or an int; ValueError naming ``mode`` if not."""
    try:
        mode = value if isinstance(value, int) else int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode: {value!r} is not an octal file mode such as '0644'")
    return mode
