# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lab.fabric_lab external hosts: plan hosts a VM plays get no namespace, veth or address.

The namespace operations are recorded instead of run (no root, no FRR needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import (  # noqa: E402
    build_plan,
    load_fabric,
    read_fabric_file,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_tree  # noqa: E402
from lab import fabric_lab  # noqa: E402


class Recorder:
    """Stands in for lab.netns.Netns: remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **_kwargs: Any) -> None:
            self.calls.append((name, args))

        return record

    def devices(self, op: str) -> set[str]:
        """Every device named by calls of ``op`` (first argument, and the third for veth)."""
        names: set[str] = set()
        for name, args in self.calls:
            if name == op:
                names.add(args[0])
                if op == "veth":
                    names.add(args[2])
        return names


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lab-fabric")
    plan = build_plan(load_fabric(read_fabric_file(str(ROOT / "inventories" / "lab" / "fabric.yml"))))
    render_tree(plan, out, frr=True)
    return out


def _wired(rendered: Path, external: frozenset[str]) -> Recorder:
    lab = fabric_lab.FabricLab(rendered, prefix="ccf-test-", external_hosts=external)
    recorder = Recorder()
    lab.netns = recorder  # type: ignore[assignment]
    for name in lab.topology.devices:
        if name not in external:
            recorder.add(name)
    lab._rack_networks()
    lab._plain_hosts()
    return recorder


def test_external_host_is_left_out(rendered: Path) -> None:
    recorder = _wired(rendered, frozenset({"r001-h02"}))
    assert "r001-h02" not in recorder.devices("add")
    assert "r001-h02" not in recorder.devices("veth")
    assert "r001-h02" not in recorder.devices("addr")
    assert "r001-h02" not in recorder.devices("batch")
    # the other host of the rack is still wired to the ToR's bridges
    assert "r001-h01" in recorder.devices("veth")
    batch = next(args[1] for name, args in recorder.calls if name == "batch" and args[0] == "r001-h01")
    assert "addr replace 10.0.1.10/24 dev mgmt" in batch  # its planned address, then its routes
    assert "route replace default via 10.0.1.1 dev mgmt onlink" in batch
    # and the ToR still owns its bridges, which the VM's taps join
    bridges = {args[1] for name, args in recorder.calls if name == "bridge" and args[0] == "r001-tor1"}
    assert {"mgmt", "storage"} <= bridges


def test_without_external_hosts_every_host_is_wired(rendered: Path) -> None:
    recorder = _wired(rendered, frozenset())
    assert {"r001-h01", "r001-h02", "r003-h02"} <= recorder.devices("veth")


def test_unknown_external_host_is_refused(rendered: Path) -> None:
    with pytest.raises(ValueError, match="external hosts r009-h01, spine01 are not hosts of fabric lab"):
        fabric_lab.FabricLab(rendered, prefix="ccf-test-", external_hosts=frozenset({"spine01", "r009-h01"}))


def test_external_hosts_lose_their_config_for_the_intent():
    topo = {"devices": [{"name": "h1", "config": "h1/frr.conf"}, {"name": "h2", "config": "h2/frr.conf"}]}
    assert fabric_lab.without_configs(topo, frozenset()) is topo
    out = fabric_lab.without_configs(topo, frozenset({"h2"}))
    assert out["devices"] == [{"name": "h1", "config": "h1/frr.conf"}, {"name": "h2"}]
    assert topo["devices"][1] == {"name": "h2", "config": "h2/frr.conf"}  # input untouched


def test_external_hosts_sessions_leave_the_intent():
    """With BGP to the hosts, a ToR's sessions to hosts played by VMs are not waited for at `up`."""
    tor = fabric_lab.fabric_intent.DeviceIntent(
        "t1", "tor", "bgp", sessions={"10.0.0.2": "s1", "10.64.0.11": "h2"}
    )
    assert fabric_lab.without_peers({"t1": tor}, frozenset()) == {"t1": tor}
    assert fabric_lab.without_peers({"t1": tor}, frozenset({"h2"}))["t1"].sessions == {"10.0.0.2": "s1"}
