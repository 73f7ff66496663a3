# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the namespace fabric lab: render a fabric file, bring it up, always tear it down."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT, ROOT / "plugins" / "module_utils"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from fabric import build_plan, load_fabric  # noqa: E402
from fabric.render import render_all  # noqa: E402
from lab.fabric_lab import FabricLab  # noqa: E402
from lab.frr import frr_available  # noqa: E402
from lab.netns import cleanup, netns_list  # noqa: E402

FABRICS = {
    "bgp": ROOT / "inventories" / "lab" / "fabric.yml",
    "ospf": ROOT / "inventories" / "lab" / "fabric-ospf.yml",
}
RUN_PREFIX = f"cct{os.getpid()}-"
LEFTOVER_RE = re.compile(r"^cct(\d+)-")


def lab_skip_reason() -> str | None:
    """Why the lab cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the namespace lab needs root"
    if not frr_available():
        return "FRR (Debian package frr) is not installed"
    if shutil.which("ip") is None:
        return "iproute2 is not installed"
    return None


def render(fabric_file: Path, out: Path) -> Path:
    """Render ``fabric_file`` (topology.json, docs, every frr.conf) into ``out``."""
    render_all(build_plan(load_fabric(fabric_file)), out)
    return out


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers() -> Iterator[None]:
    """Remove leftovers of crashed earlier runs of this suite, and everything of this run at the end."""
    if lab_skip_reason() is None:
        for pid in sorted({m.group(1) for m in map(LEFTOVER_RE.match, netns_list()) if m}):
            if not Path(f"/proc/{pid}").exists():
                cleanup(f"cct{pid}-")
    yield
    if lab_skip_reason() is None:
        cleanup(RUN_PREFIX)


@pytest.fixture(params=sorted(FABRICS), scope="module")
def fabric_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricLab]:
    """A converged lab of the routing protocol given by the parameter (module-scoped)."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    routing = request.param
    out = render(FABRICS[routing], tmp_path_factory.mktemp(f"fabric-{routing}"))
    lab = FabricLab(out, prefix=f"{RUN_PREFIX}{routing[0]}-")
    try:
        lab.up(timeout=90)
    except BaseException:
        print(lab.logs())
        lab.down()
        raise
    try:
        yield lab
    finally:
        lab.down()
