# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the fabric engine tests: paths, fabric documents built in code, the vtysh check."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import FabricValidationError
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import render_frr

ROOT = Path(__file__).resolve().parents[3]
LAB_FILE = ROOT / "inventories" / "lab" / "fabric.yml"
LAB_OSPF_FILE = ROOT / "inventories" / "lab" / "fabric-ospf.yml"
EXAMPLE_500 = ROOT / "inventories" / "example" / "fabric-500.yml"
DOC_FILE = ROOT / "docs" / "fabric.md"


def four_networks(pool_len: int, *, vm_pool_len: int) -> dict[str, dict[str, Any]]:
    """mgmt, storage and service (/24 per rack, pools of ``pool_len``) and vm (/22 per rack, pool
    of ``vm_pool_len``); storage and vm with jumbo frames."""
    return {
        "mgmt": {"pool": f"10.0.0.0/{pool_len}", "prefix_len": 24, "vlan": 10},
        "storage": {"pool": f"10.4.0.0/{pool_len}", "prefix_len": 24, "vlan": 20, "mtu": 9000},
        "service": {"pool": f"10.8.0.0/{pool_len}", "prefix_len": 24, "vlan": 30},
        "vm": {"pool": f"10.64.0.0/{vm_pool_len}", "prefix_len": 22, "vlan": 40, "mtu": 9000},
    }


BASE_DOC: dict[str, Any] = {
    "name": "t1",
    "routing": "bgp",
    "limits": {"max_racks": 64, "tors_per_rack": 2, "uplinks_per_tor": 4, "hosts_per_rack": 16, "spines": 4},
    "pools": {"loopbacks": "10.255.0.0/20", "links": "10.254.0.0/20"},
    "networks": four_networks(18, vm_pool_len=16),
    "spines": [{"id": 1}, {"id": 2}],
    "defaults": {"tors": 1, "uplinks": 2, "hosts": 2},
    "racks": [{"id": 1, "uplinks": 3}, {"id": 2}, {"id": 3}],
}


def make_doc(**changes: Any) -> dict[str, Any]:
    """A deep copy of BASE_DOC with top-level keys replaced (None deletes the key)."""
    doc = copy.deepcopy(BASE_DOC)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def plan_of(doc: dict[str, Any]) -> Plan:
    """Validate and plan a document."""
    return build_plan(load_fabric(doc))


def scale_doc(
    racks: int, *, spines: int = 4, uplinks: int = 4, hosts: int = 40, tors: int = 1
) -> dict[str, Any]:
    """The benchmark shape: N racks declared as one range."""
    return {
        "name": f"scale{racks}",
        "limits": {
            "max_racks": 1024,
            "tors_per_rack": 2,
            "uplinks_per_tor": 4,
            "hosts_per_rack": 48,
            "spines": 16,
        },
        "pools": {"loopbacks": "10.255.0.0/16", "links": "10.254.0.0/16"},
        "networks": four_networks(14, vm_pool_len=10),
        "spines": [{"id": i} for i in range(1, spines + 1)],
        "defaults": {"tors": tors, "uplinks": uplinks, "hosts": hosts},
        "racks": [{"range": [1, racks]}],
    }


def validation_errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(path, message)`` of every error of an invalid document (it must be refused)."""
    with pytest.raises(FabricValidationError) as info:
        load_fabric(doc)
    return [(error.path, error.message) for error in info.value.errors]


# ------------------------------------------------------------------------------------ FRR
VTYSH = shutil.which("vtysh") or ("/usr/bin/vtysh" if Path("/usr/bin/vtysh").exists() else None)
needs_vtysh = pytest.mark.skipif(VTYSH is None, reason="vtysh (Debian package frr) is not installed")
GOLDEN_FRR = Path(__file__).resolve().parent / "golden_frr"
TWO_TORS = {"tors": 2, "uplinks": 2, "hosts": 2}


def golden_frr_docs() -> dict[str, dict[str, Any]]:
    """The fabrics of ``golden_frr/`` (the variants of test_fabric_frr, test_fabric_hardening)."""
    unnumbered = {"loopbacks": "10.255.0.0/20", "unnumbered": True}
    return {
        "bgp-hosts-2tors": make_doc(defaults=TWO_TORS, bgp={"hosts": True, "bfd_interval": 150}),
        "bgp-unnumbered": make_doc(pools=unnumbered, bgp={"bfd": False}),
        "ospf-unnumbered-bfd": make_doc(routing="ospf", pools=unnumbered, ospf={"area": 0, "bfd": True}),
    }


def vtysh_check(path: Path) -> subprocess.CompletedProcess[str]:
    """``vtysh -C -f path``: FRR's own parser dry-runs a configuration file."""
    return subprocess.run(
        [str(VTYSH), "-C", "-f", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def assert_vtysh_accepts(
    plan: Plan, tmp_path: Path, *, bgp_password: str | None = None, label: str = ""
) -> None:
    """Every router's rendered frr.conf passes ``vtysh -C`` (the plan must have routers)."""
    routers = plan.routers()
    assert routers
    for device in routers:
        path = tmp_path / f"{device.name}.conf"
        path.write_text(render_frr(plan, device.name, bgp_password=bgp_password), encoding="utf-8")
        proc = vtysh_check(path)
        assert proc.returncode == 0, f"{label}{device.name}: {proc.stdout}{proc.stderr}"


def prefix_list(text: str, name: str) -> list[str]:
    """The clauses of prefix-list ``name`` of an frr.conf, in order."""
    prefix = f"ip prefix-list {name} seq "
    return [line.split(" permit ", 1)[1] for line in text.splitlines() if line.startswith(prefix)]


def route_map_lines(text: str, name: str, seq: int) -> list[str]:
    """The match lines of ``route-map NAME permit SEQ`` of an frr.conf (it must be closed)."""
    lines = text.splitlines()
    start = lines.index(f"route-map {name} permit {seq}")
    body = []
    for line in lines[start + 1 :]:
        if line == "exit":
            return body
        body.append(line.strip())
    raise AssertionError(f"route-map {name} {seq} not closed")
