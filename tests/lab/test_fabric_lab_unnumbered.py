# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab fabric with unnumbered links: BGP over IPv6 link-local (RFC 5549), OSPF unnumbered p2p.

Run (root): ``.venv/bin/pytest -m lab tests/lab -rP``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from labtestlib import FABRICS, RUN_PREFIX, rack_prefixes, show_paths, skip_unless_lab

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all
from lab.fabric_lab import FabricLab

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("routing", ["bgp", "ospf"])
def test_unnumbered_fabric_converges(routing: str, tmp_path: Path) -> None:
    """Sessions/adjacencies, ECMP in RIB and FIB (the intent check) and a cross-rack ping."""
    skip_unless_lab()
    doc = yaml.safe_load(FABRICS[routing].read_text(encoding="utf-8"))
    doc["pools"] = {"loopbacks": doc["pools"]["loopbacks"], "unnumbered": True}
    out = tmp_path / "out"
    render_all(build_plan(load_fabric(doc)), out)
    with FabricLab(out, prefix=f"{RUN_PREFIX}u{routing[0]}-") as lab:
        try:
            seconds = lab.up(timeout=90)
        except BaseException:
            print(lab.logs())
            raise
        print(f"unnumbered {routing}: converged in {seconds:.1f}s")
        assert not any(link["a"]["address"] for link in lab.topology.links)
        remote = [h for h in lab.topology.hosts() if lab.topology.devices[h]["rack"] != 1]
        show_paths(
            lab, "unnumbered", "r001-tor1", rack_prefixes(lab, lab.topology.devices[remote[0]]["rack"])
        )
        assert lab.ping(lab.topology.hosts()[0], lab.host_address(remote[-1], "mgmt"), count=2)
