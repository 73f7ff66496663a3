# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's ``main()`` in process, as Ansible would with check and diff mode, and return
its JSON result with the warnings it gave (``warned``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from modargs import patch_module_args

Runner = Callable[..., dict[str, Any]]


def module_runner(
    module: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Runner:
    """``run(args, check=False, diff=False)`` for ``module`` (its ``main`` and its AnsibleModule)."""
    warned: list[str] = []
    monkeypatch.setattr(module.AnsibleModule, "warn", lambda _self, text: warned.append(text))

    def run(args: dict[str, Any], *, check: bool = False, diff: bool = False) -> dict[str, Any]:
        full = {"_ansible_check_mode": check, "_ansible_diff": diff, **args}
        with patch_module_args(full), pytest.raises(SystemExit):
            module.main()
        result = json.loads(capsys.readouterr().out)
        result["warned"], warned[:] = list(warned), []
        return result

    return run
