# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Record FRR JSON from the namespace lab for the intent unit tests (root; run by hand).

    .venv/bin/python tests/lab/record_intent_samples.py [DEST]

For BGP and OSPF it brings the lab fabric up, records ``routes``, ``bgp_summary`` /
``ospf_neighbors`` and ``kernel_routes`` of r001-tor1 and spine01 when converged and again with
r001-tor1's last uplink down, and writes ``DEST/<routing>-<state>.json`` (default
``tests/unit/fabric/frr_samples``) together with the topology the samples belong to.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "build" / "collections")]

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all  # noqa: E402
from lab.fabric_lab import FabricLab  # noqa: E402
from lab.netns import wait_for  # noqa: E402

DEVICES = ("r001-tor1", "spine01")
FABRICS = {"bgp": "fabric.yml", "ospf": "fabric-ospf.yml"}


def record(lab: FabricLab) -> dict[str, dict]:
    """Observed state of the recorded devices."""
    return {name: lab.observe(name) for name in DEVICES}


def write(dest: Path, name: str, topology: dict, observed: dict) -> None:
    """One sample file, compact JSON with sorted keys."""
    path = dest / f"{name}.json"
    data = {"topology": topology, "observed": observed}
    path.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main() -> int:
    """Record every scenario."""
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "unit" / "fabric" / "frr_samples"
    dest.mkdir(parents=True, exist_ok=True)
    for routing, filename in FABRICS.items():
        with tempfile.TemporaryDirectory() as tmp:
            render_all(build_plan(load_fabric(ROOT / "inventories" / "lab" / filename)), tmp)
            with FabricLab(Path(tmp), prefix=f"rec{routing[0]}-") as lab:
                lab.up(timeout=90)
                topology = lab.topology.data
                write(dest, f"{routing}-converged", topology, record(lab))
                tor = lab.topology.devices["r001-tor1"]
                port = [i["name"] for i in tor["interfaces"] if i["kind"] == "uplink"][-1]
                lab.set_link("r001-tor1", port, up=False)

                def settled() -> bool:
                    diffs = lab.differences(["r001-tor1"])
                    return any(d.kind == fabric_intent.KIND_PATHS for d in diffs) and not any(
                        d.kind == fabric_intent.KIND_FIB for d in diffs
                    )

                wait_for(settled, timeout=30, what="path count drop")
                write(dest, f"{routing}-uplink-down", topology, record(lab))
    return 0


if __name__ == "__main__":
    sys.exit(main())
