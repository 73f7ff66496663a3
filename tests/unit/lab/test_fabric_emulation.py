# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers of benchmarks/fabric_emulation.py and the batched wiring of lab/fabric_lab.py.

No root, no FRR: the wiring is compared with what the step-by-step build asks of
lab.netns.Netns (recorded, not run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.intent import PRESENT  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_tree  # noqa: E402
from lab import fabric_lab  # noqa: E402


def _load_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fabric_emulation", ROOT / "benchmarks" / "fabric_emulation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


emu = _load_benchmark()


# ------------------------------------------------------------------------------------ FIB
def test_fib_widths_counts_bgp_next_hops_only():
    routes = [
        {"dst": "10.0.2.0/24", "protocol": "bgp", "nexthops": [{"gateway": "a"}, {"gateway": "b"}]},
        {"dst": "10.255.0.21", "protocol": "bgp", "gateway": "10.254.0.16", "dev": "up1"},
        {"dst": "10.254.0.16/31", "protocol": "kernel", "dev": "up1"},
    ]
    assert emu.fib_widths(routes) == {"10.0.2.0/24": 2, "10.255.0.21/32": 1}


def test_fib_check_counts_complete_short_missing_extra():
    expected = {"a/24": 4, "b/24": 4, "c/24": 4, "d/32": PRESENT}
    count = emu.fib_check(expected, {"a/24": 4, "b/24": 3, "d/32": 2, "x/24": 1})
    assert (count.complete, count.short, count.missing, count.extra) == (2, 1, 1, 1)
    assert (count.hops, count.expected_hops, count.expected) == (6, 13, 4)
    assert not count.ok
    assert emu.fib_check({"a/24": 4}, {"a/24": 4}).ok
    total = count + emu.fib_check({"a/24": 4}, {"a/24": 4})
    assert (total.complete, total.hops, total.extra) == (3, 10, 1)


def test_monitor_prefix():
    assert (
        emu.monitor_prefix("10.0.2.0/24 proto bgp metric 20 nexthop via 10.254.0.16 dev up1") == "10.0.2.0/24"
    )
    assert emu.monitor_prefix("Deleted 10.255.0.21 proto bgp metric 20") == "10.255.0.21/32"
    assert emu.monitor_prefix("Deleted local 10.255.0.1 dev lo table local") == "10.255.0.1/32"
    assert emu.monitor_prefix("fe80::/64 dev up1 proto kernel") is None


def test_changed_prefixes_and_last_change():
    before = {"a": 4, "b": 4, "c": 1}
    after = {"a": 3, "b": 4}
    assert emu.changed_prefixes(before, after) == {"a", "c"}
    events = [
        (9.0, "10.0.2.0/24 proto bgp"),  # before the change: ignored
        (10.2, "10.0.2.0/24 proto bgp"),
        (10.5, "Deleted 10.0.3.0/24 proto bgp"),  # not an affected prefix
        (10.3, "10.255.0.21 proto bgp"),
    ]
    assert emu.last_change(events, {"10.0.2.0/24", "10.255.0.21/32"}, 10.0) == 10.3
    assert emu.last_change(events, {"10.9.9.0/24"}, 10.0) is None


def test_without_link_drops_one_link():
    topo = {
        "links": [
            {
                "a": {"device": "spine01", "interface": "r1t1u1"},
                "b": {"device": "r001-tor1", "interface": "up1"},
            },
            {
                "a": {"device": "spine02", "interface": "r1t1u2"},
                "b": {"device": "r001-tor1", "interface": "up2"},
            },
        ],
        "devices": [],
    }
    assert [link["b"]["interface"] for link in emu.without_link(topo, "r001-tor1", "up1")["links"]] == ["up2"]
    assert len(emu.without_link(topo, "spine02", "r1t1u2")["links"]) == 1
    assert len(topo["links"]) == 2  # input untouched
    with pytest.raises(KeyError):
        emu.without_link(topo, "r001-tor1", "up9")


# ------------------------------------------------------------------------------------ sizes
def test_limit_fds():
    assert emu.limit_fds(0) == 256
    assert emu.limit_fds(4) == 256
    assert emu.limit_fds(100) == 384  # 264 rounded up
    assert emu.limit_fds(1000) == 2176


def test_meminfo_and_stat():
    assert emu.meminfo(
        "MemTotal:       24576000 kB\nMemAvailable:   20000000 kB\nHugePages_Total:       0\n"
    ) == {
        "MemTotal": 24576000,
        "MemAvailable": 20000000,
        "HugePages_Total": 0,
    }
    stat = "4242 (bgpd) S 1 4241 4241 0 -1 4194624 900 0 0 0 150 25 0 0 20 0 3 0 100 0 0"
    assert emu.stat_cpu_ticks(stat) == 175
    assert emu.stat_cpu_ticks("") == 0


def test_emulation_doc_has_routers_only():
    plan = build_plan(load_fabric(emu.emulation_doc(3)))
    roles = sorted(dev.role for dev in plan.devices.values())
    assert roles == ["spine"] * 4 + ["tor"] * 3
    assert emu.emulation_doc(3, bfd=True)["bgp"]["bfd"] is True


# ------------------------------------------------------------------------------------ wiring
class Recorder:
    """Stands in for lab.netns.Netns: remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, (*args, kwargs.get("mtu"))))

        return record


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three racks with two hosts each and a rack with two ToRs (ToR ports on the gateway ToR's
    bridges), declared here so changes to the lab's fabric files do not move this test."""
    doc = emu.emulation_doc(3)
    doc["defaults"] = {**doc["defaults"], "hosts": 2}
    doc["racks"] = [{"range": [1, 3]}, {"id": 4, "tors": 2}]
    out = tmp_path_factory.mktemp("emu-wiring")
    render_tree(build_plan(load_fabric(doc)), out, frr=True)
    return out


def _stepwise(rendered: Path) -> tuple[set[tuple[str, str, Any]], set[tuple[str, str, str]]]:
    """Interfaces (device, name, mtu) and bridge ports (device, port, bridge) of the old path."""
    lab = fabric_lab.FabricLab(rendered, prefix="ccf-test-")
    recorder = Recorder()
    lab.netns = recorder  # type: ignore[assignment]
    topo = lab.topology
    for link in topo.links:
        a, b = link["a"], link["b"]
        recorder.veth(a["device"], a["interface"], b["device"], b["interface"], mtu=topo.mtu_of(link))
    lab._rack_networks()
    interfaces: set[tuple[str, str, Any]] = set()
    ports: set[tuple[str, str, str]] = set()
    for op, args in recorder.calls:
        if op == "veth":
            a, a_if, b, b_if, mtu = args
            interfaces |= {(a, a_if, mtu), (b, b_if, mtu)}
        elif op == "bridge":
            interfaces.add((args[0], args[1], args[2]))
        elif op == "attach":
            ports.add((args[0], args[1], args[2]))
    return interfaces, ports


def _batched(rendered: Path) -> tuple[set[tuple[str, str, Any]], set[tuple[str, str, str]], Any]:
    topo = fabric_lab.load_topology(rendered)
    wiring = fabric_lab.wiring_commands(topo, lambda name: f"p-{name}")
    interfaces: set[tuple[str, str, Any]] = set()
    ports: set[tuple[str, str, str]] = set()
    for command in wiring.root:
        words = command.split()
        assert words[:3] == ["link", "add", "name"] and "veth" in words
        ends = command.split(" type veth peer name ")
        for end in (ends[0].removeprefix("link add name "), ends[1]):
            parts = end.split()
            mtu = int(parts[parts.index("mtu") + 1]) if "mtu" in parts else None
            interfaces.add((parts[2].removeprefix("p-"), parts[0], mtu))
    for device, commands in wiring.per_device.items():
        assert commands[0] == "link set lo up"
        for command in commands:
            words = command.split()
            if "bridge" in words:
                mtu = int(words[words.index("mtu") + 1]) if "mtu" in words else None
                interfaces.add((device, words[3], mtu))
            elif "master" in words:
                ports.add((device, words[2], words[4]))
            elif words[:2] == ["link", "add"]:  # a stub pair inside one namespace
                mtu = int(words[words.index("mtu") + 1]) if "mtu" in words else None
                interfaces |= {(device, words[3], mtu), (device, words[-1 if mtu is None else -3], mtu)}
    return interfaces, ports, wiring


def test_wiring_commands_build_what_the_stepwise_path_builds(rendered: Path):
    old_interfaces, old_ports = _stepwise(rendered)
    new_interfaces, new_ports, wiring = _batched(rendered)
    assert new_interfaces == old_interfaces
    assert new_ports == old_ports
    assert any(port.startswith("t2n") for _dev, port, _bridge in new_ports)  # the second ToR's ports
    # every interface created in a namespace is brought up there
    ups = {
        (dev, cmd.split()[2])
        for dev, cmds in wiring.per_device.items()
        for cmd in cmds
        if cmd.endswith(" up")
    }
    assert {(dev, name) for dev, name, _mtu in new_interfaces} <= ups


def test_wiring_leaves_external_hosts_out(rendered: Path):
    topo = fabric_lab.load_topology(rendered)
    wiring = fabric_lab.wiring_commands(topo, lambda name: f"p-{name}", frozenset({"r001-h02"}))
    assert "r001-h02" not in wiring.per_device
    assert not any("p-r001-h02" in command for command in wiring.root)
    assert any("p-r001-h01 " in command for command in wiring.root)


def test_batchable(rendered: Path):
    topo = fabric_lab.load_topology(rendered)
    assert fabric_lab.batchable(topo)
    dual = fabric_lab.Topology(topo.outdir, {"fabric": {"ipv6_prefix": "fd00::/48"}}, {}, [], [])
    assert not fabric_lab.batchable(dual)
    anycast = fabric_lab.Topology(topo.outdir, {}, {}, [], [{"gateway_devices": ["a", "b"]}])
    assert not fabric_lab.batchable(anycast)


def test_neighbour_thresholds():
    assert emu.neighbour_thresholds(400, (128, 512, 1024)) is None  # 100 racks: 800 entries fit
    assert emu.neighbour_thresholds(800, (128, 512, 1024)) == (128, 2048, 4096)  # 200 racks
    assert emu.neighbour_thresholds(800, (128, 4096, 8192)) is None


def test_cpu_busy_seconds():
    ticks = emu.os.sysconf("SC_CLK_TCK")
    stat = f"cpu  {3 * ticks} 0 {ticks} {50 * ticks} {2 * ticks} 0 0 0 0 0\ncpu0 1 2 3 4\n"
    assert emu.cpu_busy_seconds(stat) == pytest.approx(4.0)
