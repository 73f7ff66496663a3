# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lab.evpn_lab pure helpers: the EVPN fabric document, the tenant router's nftables ruleset and
its counter (the namespaces themselves run in tests/lab/test_evpn_lab.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.evpn import evpn_enabled, vteps  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric  # noqa: E402
from lab.evpn_lab import Endpoint, evpn_fabric_doc, snat_counter, snat_ruleset  # noqa: E402

LAB_FABRIC = ROOT / "inventories" / "lab" / "fabric.yml"


def test_evpn_fabric_doc_turns_the_lab_fabric_into_vteps() -> None:
    base = yaml.safe_load(LAB_FABRIC.read_text(encoding="utf-8"))
    doc = evpn_fabric_doc(base)
    assert "evpn" not in base.get("bgp", {})  # the input is not modified
    plan = build_plan(load_fabric(doc))
    assert evpn_enabled(plan)
    assert len(vteps(plan)) == 6 and len({d.rack for d in plan.hosts()}) == 3
    assert doc["bgp"]["host_network"] == "vm" and doc["bgp"]["bfd"] is False


def test_endpoint_names() -> None:
    ep = Endpoint("a1", "r001-h01", 100, "02:00:00:0a:00:0b", "192.168.10.11/24", 1450)
    assert ep.address == "192.168.10.11" and ep.port == "t-a1" and len(ep.port) <= 15


def test_snat_ruleset_and_counter() -> None:
    text = snat_ruleset("svc0", "10.8.1.200")
    assert 'oifname "svc0" counter snat to 10.8.1.200' in text
    assert "type nat hook postrouting priority srcnat" in text
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "ip", "table": "nat", "name": "postrouting"}},
            {
                "rule": {
                    "expr": [
                        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "svc0"}},
                        {"counter": {"packets": 7, "bytes": 588}},
                        {"snat": {"addr": "10.8.1.200"}},
                    ]
                }
            },
        ]
    }
    assert snat_counter(listing) == 7
    assert snat_counter({"nftables": []}) == 0


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian package nftables) is not installed")
def test_snat_ruleset_parses() -> None:
    proc = subprocess.run(
        ["nft", "-c", "-f", "-"],
        input=snat_ruleset("svc0", "10.8.1.200"),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert proc.returncode == 0, proc.stderr
