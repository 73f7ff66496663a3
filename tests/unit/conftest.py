# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Import path of the unit tests: the collection under the one name Ansible gives it
(tests/collection_path.py), so every test imports the same modules."""

from __future__ import annotations

from collection_path import put_collection_on_path

put_collection_on_path()
