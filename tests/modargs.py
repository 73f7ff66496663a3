# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``patch_module_args``: run a module's ``main()`` in-process with the given arguments, on every
supported ansible-core. 2.19 ships it (``ansible.module_utils.testing``); on older releases the
arguments reach AnsibleModule through ``basic._ANSIBLE_ARGS``, as ansible-test's own units did."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, Any] | None = None) -> Iterator[None]:
        """Make ``args`` the module arguments AnsibleModule reads while the block runs."""
        from ansible.module_utils import basic

        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


__all__ = ["patch_module_args"]
