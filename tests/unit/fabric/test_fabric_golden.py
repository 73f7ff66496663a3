# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Golden files: the non-FRR outputs of inventories/lab/fabric.yml, byte for byte.

After an intended change of the outputs, regenerate and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/fabric/test_fabric_golden.py
    git diff tests/unit/fabric/golden/

(FRR configurations are checked by their own tests; they are not part of this golden set.)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fabric_testlib import LAB_FILE

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_tree

GOLDEN = Path(__file__).resolve().parent / "golden" / "lab"
HINT = "outputs differ from the golden files; if intended: UPDATE_GOLDEN=1 pytest " + Path(__file__).name


def test_lab_outputs_match_golden_files(tmp_path: Path) -> None:
    files = render_tree(build_plan(load_fabric(LAB_FILE)), tmp_path, frr=False)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel in files:
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp_path / rel, GOLDEN / rel)
    golden = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file())
    assert files == golden, HINT
    for rel in files:
        assert (tmp_path / rel).read_text() == (GOLDEN / rel).read_text(), f"{rel}: {HINT}"
