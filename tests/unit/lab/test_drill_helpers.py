# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lab.drill and lab.tenant_probe pure helpers (the drill itself runs against `make lab`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab import drill, tenant_probe  # noqa: E402
from lab.fabric_lab import without_configs  # noqa: E402


def callback_output(*msgs: str, failed: bool = False) -> str:
    """What ansible-playbook's json callback prints for a play with one debug task per message."""
    tasks = [{"task": {"name": f"t{i}"}, "hosts": {"hv": {"msg": m}}} for i, m in enumerate(msgs)]
    if failed:
        tasks.append({"task": {"name": "broken"}, "hosts": {"hv": {"failed": True, "msg": "boom"}}})
    return "noise before the document\n" + json.dumps({"plays": [{"tasks": tasks}]})


def test_messages_keep_only_the_drill_payloads():
    out = callback_output("hello", 'LAB-DRILL-STATE {"a": 1}', "LAB-DRILL-HEALTH {}")
    assert drill._messages(out) == ['LAB-DRILL-STATE {"a": 1}', "LAB-DRILL-HEALTH {}"]
    assert drill.payload(drill._messages(out), "LAB-DRILL-STATE") == {"a": 1}
    with pytest.raises(drill.DrillError, match="LAB-DRILL-EVACUATE missing"):
        drill.payload(drill._messages(out), "LAB-DRILL-EVACUATE")
    assert drill._messages("not json at all") == []


def test_failure_names_the_failed_task():
    assert drill._failure(callback_output("x", failed=True)) == "broken on hv: boom"
    assert drill._failure(callback_output("x")) == "no failed task in the output"


BEFORE = {
    "host": "r002-h02",
    "instance_id": "iid-1",
    "macs": ["52:54:00:00:00:01"],
    "addresses": ["10.200.0.2"],
    "volumes": ["tenant-data"],
}


def test_compare_accepts_only_a_move():
    after = {**BEFORE, "host": "r003-h02"}
    assert drill.compare(BEFORE, after, ("id", "data", "id", "data")) == []
    assert drill.compare(BEFORE, BEFORE, ("id", "data", "id", "data")) == ["still on r002-h02"]
    changed = {**after, "addresses": ["10.200.0.3"], "macs": ["52:54:00:00:00:02"]}
    problems = drill.compare(BEFORE, changed, ("id", "data", "id2", "other"))
    assert any(p.startswith("macs changed") for p in problems)
    assert any(p.startswith("addresses changed") for p in problems)
    assert any("identifies as 'id2'" in p for p in problems)
    assert any("volume's data changed" in p for p in problems)


def test_timeline_is_relative_to_the_first_mark():
    tl = drill.Timeline(marks=[("killed", 100.0), ("detected", 112.5)])
    assert tl.lines() == ["  killed       +   0.0 s", "  detected     +  12.5 s"]


def test_probe_reads_the_vtep_address_from_the_topology(tmp_path):
    topo = {"devices": [{"name": "r001-h01", "loopback": "10.255.0.66/32"}]}
    (tmp_path / "topology.json").write_text(json.dumps(topo), encoding="utf-8")
    assert tenant_probe.loopback(tmp_path, "r001-h01") == "10.255.0.66"
    with pytest.raises(SystemExit, match="r009-h01 is not a device"):
        tenant_probe.loopback(tmp_path, "r009-h01")


def test_external_hosts_lose_their_config_for_the_intent():
    topo = {"devices": [{"name": "h1", "config": "h1/frr.conf"}, {"name": "h2", "config": "h2/frr.conf"}]}
    assert without_configs(topo, frozenset()) is topo
    out = without_configs(topo, frozenset({"h2"}))
    assert out["devices"] == [{"name": "h1", "config": "h1/frr.conf"}, {"name": "h2"}]
    assert topo["devices"][1] == {"name": "h2", "config": "h2/frr.conf"}  # input untouched


def test_external_hosts_sessions_leave_the_intent():
    from lab.fabric_lab import fabric_intent, without_peers

    tor = fabric_intent.DeviceIntent("t1", "tor", "bgp", sessions={"10.0.0.2": "s1", "10.64.0.11": "h2"})
    assert without_peers({"t1": tor}, frozenset()) == {"t1": tor}
    assert without_peers({"t1": tor}, frozenset({"h2"}))["t1"].sessions == {"10.0.0.2": "s1"}


def test_alerts_match_the_host_by_inventory_name_or_address():
    assert drill.is_instance_of({"instance": "lab-r002-h02"}, "lab-r002-h02", "10.0.2.11")
    assert drill.is_instance_of({"instance": "10.0.2.11:9100"}, "lab-r002-h02", "10.0.2.11")
    assert not drill.is_instance_of({"instance": "lab-r003-h02"}, "lab-r002-h02", "10.0.2.11")
    assert not drill.is_instance_of({"instance": "10.0.2.111:9100"}, "lab-r002-h02", "10.0.2.11")
    assert not drill.is_instance_of({}, "lab-r002-h02", "10.0.2.11")
