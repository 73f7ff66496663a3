# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/ci_checks.py: the list of CI checks, and the proof that a change of the pipeline
(scenarios merged, moved between lanes) keeps every check of docs/dev/ci-checks.txt."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location("ci_checks", ROOT / "scripts" / "ci_checks.py")
assert SPEC and SPEC.loader
ci_checks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ci_checks)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path``, made the checkout ci_checks labels its checks relative to."""
    monkeypatch.setattr(ci_checks, "ROOT", tmp_path)
    return tmp_path


def test_scenario_list_ignores_comments_and_lanes(tmp_path: Path) -> None:
    listing = _write(tmp_path / "ci.txt", "# header\n\nntp   b\nkvm_host a  # VM\n  dns\n")
    assert ci_checks.ci_scenarios(listing) == ["ntp", "kvm_host", "dns"]


def test_task_names_follow_blocks_and_included_files(tmp_path: Path) -> None:
    _write(tmp_path / "tasks" / "login.yml", "- name: Log in\n  ansible.builtin.command: 'true'\n")
    tasks = [
        {"name": "Plain", "ansible.builtin.command": "true"},
        {"name": "A block", "block": [{"name": "Inside", "ansible.builtin.debug": {}}]},
        {"name": "Login as alice", "ansible.builtin.include_tasks": "tasks/login.yml"},
        {"name": "Templated", "ansible.builtin.include_tasks": "{{ what }}.yml"},
    ]
    assert ci_checks.task_names(tasks, tmp_path) == [
        "Plain",
        "Inside",
        "Login as alice > Log in",
        "Templated",
    ]


def test_playbook_checks_follow_imported_playbooks_under_their_own_label(fake_root: Path) -> None:
    _write(
        fake_root / "molecule" / "nfs" / "verify.yml",
        "- name: NFS\n  hosts: all\n  tasks:\n    - name: Mount\n",
    )
    merged = _write(
        fake_root / "molecule" / "storage" / "verify.yml",
        "- name: iSCSI\n  hosts: all\n  tasks:\n    - name: Login\n"
        "- ansible.builtin.import_playbook: ../nfs/verify.yml\n",
    )
    assert ci_checks.playbook_checks(merged, "storage/verify.yml") == [
        "storage/verify.yml :: iSCSI :: Login",
        "nfs/verify.yml :: NFS :: Mount",
    ]


def test_pytest_checks_list_functions_and_class_methods(fake_root: Path) -> None:
    source = _write(
        fake_root / "tests" / "lab" / "test_x.py",
        "def test_a():\n    pass\n\ndef helper():\n    pass\n\n"
        "class TestB:\n    def test_c(self):\n        pass\n",
    )
    assert ci_checks.pytest_checks(source) == [
        "tests/lab/test_x.py :: test_a",
        "tests/lab/test_x.py :: TestB.test_c",
    ]


def test_every_check_recorded_before_is_still_run() -> None:
    """docs/dev/ci-checks.txt is the list of checks CI made; none may go missing."""
    recorded = ROOT / "docs" / "dev" / "ci-checks.txt"
    want = {line for line in recorded.read_text(encoding="utf-8").splitlines() if line.strip()}
    have = set(ci_checks.keys(ci_checks.all_checks()))
    assert not sorted(want - have), "checks no longer run in CI (see docs/dev/testing.md)"
    assert len(want) > 200


def test_compare_fails_on_a_lost_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = _write(tmp_path / "before.txt", "ntp/verify.yml :: nowhere :: a check that never existed\n")
    assert ci_checks.main(["--compare", str(saved)]) == 1
    assert "no longer run in CI: ntp/verify.yml :: nowhere" in capsys.readouterr().err
