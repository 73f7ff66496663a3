# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine has one import name: no top-level ``fabric`` import, and the CLI outside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fabric_testlib import ROOT

ENGINE = ROOT / "plugins" / "module_utils" / "fabric"
TOP_LEVEL = re.compile(r"^\s*(from\s+fabric(\.|\s+import\b)|import\s+fabric\b)", re.MULTILINE)


def _python_files() -> list[Path]:
    files = [ROOT / "bin" / "compleat-fabric"]
    for folder in ("bin", "lab", "tests", "benchmarks", "plugins", "scripts", "roles"):
        files.extend((ROOT / folder).rglob("*.py"))
    return sorted(set(files))


def test_no_top_level_fabric_import() -> None:
    """``fabric`` alone is PyPI's Fabric, and a second name makes a second copy of every class."""
    found = [str(path.relative_to(ROOT)) for path in _python_files() if TOP_LEVEL.search(path.read_text())]
    assert found == []


def test_the_pattern_finds_top_level_imports() -> None:
    for line in ("from fabric import law", "from fabric.plan import build_plan", "    import fabric"):
        assert TOP_LEVEL.search(line), line
    for line in (
        "from .fabric import law",
        "from ansible_collections.compleat.cloud.plugins.module_utils.fabric import law",
    ):
        assert not TOP_LEVEL.search(line), line


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports, relative ones resolved to names under plugins/module_utils/fabric."""
    names: set[str] = set()
    package = path.relative_to(ENGINE).parent.parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - (node.level - 1)]) if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            names.update(".".join([*module, alias.name]) for alias in node.names)
            names.add(".".join(module))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_engine_core_imports_no_renderer_and_no_cli() -> None:
    """Output formats live in render/ and the command line outside the package: the plan does not
    import them (render/ may import the core, never the other way round)."""
    core = sorted(path for path in ENGINE.glob("*.py"))
    assert core and not (ENGINE / "cli.py").exists()
    for path in core:
        wrong = sorted(
            name for name in _imports(path) if name.startswith("render") or "cli" in name.split(".")
        )
        assert wrong == [], (path.name, wrong)
