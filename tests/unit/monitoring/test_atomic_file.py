# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/atomic_file.py, and how the ECMP check and the role share it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.compleat.cloud.plugins.module_utils import atomic_file
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lb

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring_exporters"
SCRIPT = ROLE / "files" / "compleat_fabric_ecmp.py"


def test_write_atomic_mode_and_group(tmp_path: Path) -> None:
    path = tmp_path / "zone"
    path.write_text("old", encoding="utf-8")
    atomic_file.write_atomic(str(path), "new\n", mode=0o640, gid=os.getgid())
    assert path.read_text(encoding="utf-8") == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640 and path.stat().st_gid == os.getgid()
    assert [p.name for p in tmp_path.iterdir()] == ["zone"]


def test_write_atomic_leaves_the_file_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "zone"
    path.write_text("old", encoding="utf-8")

    def refuse(*_args: object) -> None:
        raise PermissionError("no")

    monkeypatch.setattr(atomic_file.os, "replace", refuse)
    with pytest.raises(PermissionError):
        atomic_file.write_atomic(str(path), "new")
    assert path.read_text(encoding="utf-8") == "old" and [p.name for p in tmp_path.iterdir()] == ["zone"]


def test_one_copy_of_write_atomic() -> None:
    """lb and the ECMP check use the module_utils function, none carries a twin."""
    assert lb.write_atomic.__code__.co_filename == atomic_file.write_atomic.__code__.co_filename
    for path in (ROOT / "plugins" / "module_utils" / "cloud" / "lb.py", SCRIPT):
        assert "def write_atomic" not in path.read_text(encoding="utf-8"), path


def test_role_installs_the_library_where_the_script_imports_it() -> None:
    variables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    lib_dir = variables["monitoring_exporters_ecmp_lib_dir"]
    assert f'LIB_DIR = "{lib_dir}"' in SCRIPT.read_text(encoding="utf-8")
    tasks = yaml.safe_load((ROLE / "tasks" / "ecmp.yml").read_text(encoding="utf-8"))
    copies = [t["ansible.builtin.copy"] for t in tasks if "ansible.builtin.copy" in t]
    library = [c for c in copies if str(c.get("src", "")).endswith("/plugins/module_utils/atomic_file.py")]
    assert library and library[0]["dest"] == "{{ monitoring_exporters_ecmp_lib_dir }}/atomic_file.py"
    assert (ROLE / "tasks" / "../../../plugins/module_utils/atomic_file.py").resolve().is_file()


def test_script_runs_from_a_checkout(tmp_path: Path) -> None:
    """As the lab runs it: a plain python3 process, no sys.path set up by the tests."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", f"import runpy; runpy.run_path({str(SCRIPT)!r})"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0
