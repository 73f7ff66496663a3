# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Import path of the unit tests: the collection under the one name Ansible gives it.

``build/collections`` goes on sys.path, with ``ansible_collections/compleat/cloud`` a link to
this checkout (scripts/bootstrap.sh makes it; made here too when missing), so the engine imports
as ``ansible_collections.compleat.cloud.plugins.module_utils.fabric`` and the filters and modules
as ``ansible_collections.compleat.cloud.plugins...`` -- the same modules in every test.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
_LINK = COLLECTIONS / "ansible_collections" / "compleat" / "cloud"
if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to(Path("../../../.."), target_is_directory=True)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
