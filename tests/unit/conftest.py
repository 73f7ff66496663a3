# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Import paths for the unit tests.

- ``plugins/module_utils`` goes on sys.path, so the fabric engine imports as the plain package
  ``fabric`` (no Ansible involved);
- ``build/collections`` (created by scripts/bootstrap.sh: ansible_collections/compleat/cloud is a
  symlink to this checkout) goes on sys.path, so the collection's plugins import as
  ``ansible_collections.compleat.cloud.plugins...`` for the filter and module tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT / "plugins" / "module_utils", ROOT / "build" / "collections"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))
