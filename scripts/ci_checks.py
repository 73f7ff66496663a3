#!/usr/bin/env python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""List every check that `make test` makes in its lab, libvirt and molecule stages.

A check is a named task of a molecule scenario's ``verify`` playbook (following the playbooks it
imports and the task files it includes, which live in the scenario) or a test function of the
lab/libvirt suites that ``scripts/test.sh`` runs. Each check is keyed by where its *assertion*
comes from (``verify/<file>`` and the task name), not by the scenario that runs it, so a
scenario merged into another keeps its keys and ``--compare`` proves that nothing was lost.

    scripts/ci_checks.py                  # markdown list, grouped by the scenario that runs it
    scripts/ci_checks.py --keys           # one key per line (sorted), to save and compare
    scripts/ci_checks.py --compare FILE   # fail (exit 1) when a key of FILE is no longer run
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_LIST = ROOT / "molecule" / "ci-scenarios.txt"
TEST_SCRIPT = ROOT / "scripts" / "test.sh"
INCLUDE_KEYS = ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "include_tasks")
BLOCK_KEYS = ("block", "rescue", "always")


def ci_scenarios(path: Path = SCENARIO_LIST) -> list[str]:
    """Scenario names of molecule/ci-scenarios.txt, in file order."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            names.append(words[0])
    return names


def _load(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return data if isinstance(data, list) else []


def task_names(tasks: list[dict[str, Any]], base: Path) -> list[str]:
    """Names of the tasks, blocks flattened and included task files followed."""
    names: list[str] = []
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key in BLOCK_KEYS:
            names += task_names(task.get(key) or [], base)
        include = next((task[k] for k in INCLUDE_KEYS if k in task), None)
        if isinstance(include, dict):
            include = include.get("file")
        if isinstance(include, str) and "{{" not in include and (base / include).is_file():
            inner = [f"{task.get('name', include)} > {n}" for n in task_names(_load(base / include), base)]
            names += inner
        elif task.get("name") and not any(key in task for key in BLOCK_KEYS):
            names.append(str(task["name"]))
    return names


def playbook_checks(path: Path, label: str) -> list[str]:
    """``label :: play :: task`` for every task of a verify playbook and the playbooks it imports."""
    checks: list[str] = []
    for play in _load(path):
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported:
            target = (path.parent / imported).resolve()
            checks += playbook_checks(target, target.relative_to(ROOT / "molecule").as_posix())
            continue
        play_name = play.get("name", "play")
        for section in ("pre_tasks", "tasks", "post_tasks"):
            names = task_names(play.get(section) or [], path.parent)
            checks += [f"{label} :: {play_name} :: {n}" for n in names]
    return checks


def scenario_checks(name: str) -> list[str]:
    """The checks of one molecule scenario's verify step."""
    verify = ROOT / "molecule" / name / "verify.yml"
    if not verify.is_file():
        return []
    return playbook_checks(verify, f"{name}/verify.yml")


def pytest_files() -> list[Path]:
    """The lab and libvirt test files scripts/test.sh runs in `make test`."""
    text = TEST_SCRIPT.read_text(encoding="utf-8")
    match = re.search(r"CI_LAB_TESTS=\(([^)]*)\)", text)
    files = [ROOT / f for f in (match.group(1).split() if match else [])]
    files += sorted((ROOT / "tests" / "integration_libvirt").glob("test_*.py"))
    return files


def pytest_checks(path: Path) -> list[str]:
    """``file :: [Class.]test_function`` for every test function of a pytest file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    checks = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            checks.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            checks += [
                f"{node.name}.{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test_")
            ]
    rel = path.relative_to(ROOT).as_posix()
    return [f"{rel} :: {c}" for c in checks]


def all_checks() -> dict[str, list[str]]:
    """Checks grouped by what runs them: each CI scenario, then each pytest file."""
    groups = {f"molecule {name}": scenario_checks(name) for name in ci_scenarios()}
    groups.update({f"pytest {p.relative_to(ROOT).as_posix()}": pytest_checks(p) for p in pytest_files()})
    return groups


def keys(groups: dict[str, list[str]]) -> list[str]:
    """Every check once, sorted (two identical task names in one play count once)."""
    return sorted({check for checks in groups.values() for check in checks})


def markdown(groups: dict[str, list[str]]) -> str:
    lines = []
    for group, checks in groups.items():
        lines.append(f"- **{group}** ({len(checks)})")
        lines += [f"  - {check}" for check in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", action="store_true", help="one key per line")
    parser.add_argument("--compare", type=Path, help="a saved --keys list that must still be covered")
    args = parser.parse_args(argv)
    groups = all_checks()
    if args.compare:
        want = {line for line in args.compare.read_text(encoding="utf-8").splitlines() if line.strip()}
        have = set(keys(groups))
        lost = sorted(want - have)
        for key in lost:
            print(f"no longer run in CI: {key}", file=sys.stderr)
        print(f"{len(want)} checks before, {len(have)} now, {len(lost)} lost")
        return 1 if lost else 0
    sys.stdout.write("\n".join(keys(groups)) + "\n" if args.keys else markdown(groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
