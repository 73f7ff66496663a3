# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attribute definitions shared by compleat.cloud modules (``compleat.cloud.attributes``)."""

from __future__ import annotations


class ModuleDocFragment:
    """Descriptions of the check_mode/diff_mode (default) and platform attributes.

    Modules set ``support`` (and ``platforms``) for each attribute in their own ``attributes``.
    The cloud-stack modules take them with the store options from ``compleat.cloud.cloud_store``.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing anything.
  diff_mode:
    description: Reports what changed (or would change in check mode) when run with C(--diff).
"""

    # List this before compleat.cloud.attributes.platform: on a merge the earlier fragment's values
    # win, so "support: full" here overrides the platform fragment's "N/A". (The cloud-stack modules
    # list it after compleat.cloud.cloud_store, whose platform entry is the same.)
    FULL = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
    support: full
"""

    PLATFORM = r"""
options: {}
attributes:
  platform:
    description: Target operating systems the module can run against.
    support: N/A
"""
