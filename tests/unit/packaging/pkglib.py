# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the packaging tests share: paths, the venv's tools and a checked subprocess run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# Where the venv's ansible package keeps community.general and ansible.posix (the dependencies).
SITE_COLLECTIONS = next(
    (Path(p) for p in sys.path if (Path(p) / "ansible_collections" / "community" / "general").is_dir()), None
)


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``argv``; its stdout, or an assertion error with the end of both outputs."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout
