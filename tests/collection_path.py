# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection under the one name Ansible gives it, for every test suite.

``build/collections`` holds ``ansible_collections/compleat/cloud``, a link to this checkout
(scripts/bootstrap.sh makes it; made here too when missing), so the engine imports as
``ansible_collections.compleat.cloud.plugins.module_utils.fabric`` and the filters and modules as
``ansible_collections.compleat.cloud.plugins...`` -- the same modules in every test.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / "build" / "collections"


def collections_dir() -> Path:
    """``build/collections``, with the ``ansible_collections/compleat/cloud`` link made when missing."""
    link = COLLECTIONS / "ansible_collections" / "compleat" / "cloud"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."), target_is_directory=True)
    return COLLECTIONS


def put_collection_on_path() -> Path:
    """Make ``ansible_collections.compleat.cloud`` importable (``build/collections`` first on sys.path)."""
    path = collections_dir()
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    return path
