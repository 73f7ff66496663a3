# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the namespace fabric lab: render a fabric file, bring it up, always tear it down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labtestlib import (  # sets sys.path
    FABRICS,
    LEFTOVER_RE,
    RUN_PREFIX,
    lab_skip_reason,
    render,
    running_lab,
    skip_unless_lab,
)

from lab.fabric_lab import FabricLab
from lab.netns import cleanup, netns_list


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
def fabric_lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FabricLab]:
    """A converged lab of the routing protocol given by the parameter (module-scoped)."""
    skip_unless_lab()
    routing = request.param
    out = render(FABRICS[routing], tmp_path_factory.mktemp(f"fabric-{routing}"))
    with running_lab(out, f"{RUN_PREFIX}{routing[0]}-", timeout=90) as lab:
        yield lab
