# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the namespace lab tests: fabric files, run prefix, skip reason, rendering."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT, ROOT / "build" / "collections"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all  # noqa: E402
from lab.fabric_lab import FabricLab  # noqa: E402
from lab.frr import frr_available  # noqa: E402
from lab.netns import cleanup  # noqa: E402

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


def skip_unless_lab(prefix: str | None = None) -> None:
    """Skip the calling test or fixture when the lab cannot run here; with ``prefix``, remove the
    namespaces ``prefix*`` an earlier run left behind."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    if prefix is not None:
        cleanup(prefix)


def render(fabric_file: Path, out: Path) -> Path:
    """Render ``fabric_file`` (topology.json, docs, every frr.conf) into ``out``."""
    render_all(build_plan(load_fabric(fabric_file)), out)
    return out


@contextmanager
def running_lab(out: Path, prefix: str, *, timeout: float) -> Iterator[FabricLab]:
    """The rendered fabric in ``out`` up and converged in namespaces ``prefix*``; always torn down
    (the daemons' logs are printed when it does not converge)."""
    lab = FabricLab(out, prefix=prefix)
    try:
        lab.up(timeout=timeout)
    except BaseException:
        print(lab.logs())
        lab.down()
        raise
    try:
        yield lab
    finally:
        lab.down()


def tors(lab: FabricLab) -> list[str]:
    return [name for name, dev in lab.topology.devices.items() if dev["role"] == "tor"]


def uplinks(lab: FabricLab, tor: str) -> list[str]:
    return [i["name"] for i in lab.topology.devices[tor]["interfaces"] if i["kind"] == "uplink"]


def rack_prefixes(lab: FabricLab, rack: int) -> list[str]:
    """Rack networks and ToR loopbacks of ``rack``."""
    nets = [n["prefix"] for n in lab.topology.networks if n["rack"] == rack]
    los = [d["loopback"] for d in lab.topology.devices.values() if d["role"] == "tor" and d["rack"] == rack]
    return nets + los


def show_paths(lab: FabricLab, label: str, device: str, prefixes: list[str]) -> dict[str, dict]:
    """Print (and return) the RIB and FIB next hops of ``prefixes`` on ``device``."""
    paths = {prefix: lab.route_paths(device, prefix) for prefix in prefixes}
    print(f"--- {label}: {device} ({lab.topology.routing})")
    for prefix, hops in paths.items():
        print(f"  {prefix:18} rib {len(hops['rib'])}: {', '.join(hops['rib']) or '-'}")
        print(f"  {'':18} fib {len(hops['fib'])}: {', '.join(hops['fib']) or '-'}")
    return paths
