# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hosts: capacity shrink guard, maintenance, and the health policy (compleat.cloud.host_health)."""

from __future__ import annotations

import pytest
from ansible.module_utils import basic
from cloud_testlib import ISCSI_VM1, VM_ON_HV1, vm1_moved_to_hv2

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import (
    evacuate,
    host_health,
    hypervisor,
    instance,
    volume,
)

VM = {"name": "vm1", **VM_ON_HV1}
ISCSI = ISCSI_VM1


@pytest.fixture
def warnings(monkeypatch):
    """The warnings modules emit during the test (module.warn collected here)."""
    seen: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: seen.append(msg))
    return seen


def dead_uri(cloud, name="gone"):
    """A libvirt URI that fails at once: a unix socket that does not exist."""
    return f"qemu+unix:///system?socket={cloud.tmp / (name + '.sock')}"


def host_row(cloud, name):
    with Store.open(cloud.store) as s:
        return s.get("hosts", name=name)


def entry(result, name):
    return next(h for h in result["hosts"] if h["name"] == name)


# ------------------------------------------------------------------------------------------------
# hypervisor: shrink guard
# ------------------------------------------------------------------------------------------------
def test_shrink_below_committed_is_refused_unless_forced(cloud, warnings):
    cloud.ok(instance, name="big", template="tpl", offering="large")  # 4 vCPU / 8192 MiB
    cloud.ok(instance, name="tiny", template="tpl", offering="small")  # 1 vCPU / 512 MiB

    for check in (True, False):  # check mode reports the same refusal
        res = cloud.fails(hypervisor, check=check, name="hv1", vcpus=4)
        assert "hv1" in res["msg"] and "vCPU limit 4 < 5 committed" in res["msg"]
        assert "compleat.cloud.rebalance" in res["hint"] and "compleat.cloud.evacuate" in res["hint"]
        assert "force=true" in res["hint"]
    res = cloud.fails(hypervisor, name="hv1", reserved_ram_mb=10000)
    assert "RAM limit 6384 MiB < 8704 MiB committed" in res["msg"]
    res = cloud.fails(hypervisor, name="hv1", cpu_ratio=0.5)  # the ratio counts too
    assert "vCPU limit 4 < 5 committed" in res["msg"]
    assert host_row(cloud, "hv1")["vcpus"] == 8

    # shrinking while the limit still covers the committed usage, or growing, is fine
    assert cloud.ok(hypervisor, name="hv1", vcpus=6)["host"]["vcpus"] == 6
    assert cloud.ok(hypervisor, name="hv1", cpu_ratio=2.0)["changed"]

    plan = cloud.ok(hypervisor, check=True, name="hv1", vcpus=2, cpu_ratio=1.0, force=True)
    assert plan["changed"] and plan["host"]["vcpus"] == 2
    assert host_row(cloud, "hv1")["vcpus"] == 6
    res = cloud.ok(hypervisor, name="hv1", vcpus=2, cpu_ratio=1.0, force=True)
    assert res["changed"] and res["host"]["vcpus"] == 2
    assert any("force=true: Host hv1" in w and "vCPU limit 2 < 5" in w for w in warnings)
    assert host_row(cloud, "hv1")["vcpus"] == 2
    # an overcommitted host may still change other things, and grow back
    assert cloud.ok(hypervisor, name="hv1", storage_dir=str(cloud.tmp))["changed"]
    assert cloud.ok(hypervisor, name="hv1", vcpus=3)["host"]["vcpus"] == 3
    assert (
        "no host can take"
        in cloud.fails(instance, name="vm9", template="tpl", offering="small")["msg"].lower()
    )


def test_returned_host_has_health_fields(cloud):
    res = cloud.ok(hypervisor, check=True, name="hv9", uri="test:///default", storage_dir=str(cloud.tmp))
    assert (res["host"]["maintenance"], res["host"]["failed_probes"], res["host"]["last_probe_at"]) == (
        False,
        0,
        None,
    )
    host = cloud.ok(hypervisor, name="hv1")["host"]
    assert host["maintenance"] is False and host["failed_probes"] == 0 and host["last_probe_at"] is None


# ------------------------------------------------------------------------------------------------
# hypervisor: maintenance
# ------------------------------------------------------------------------------------------------
def test_maintenance_drains_placement(cloud):
    cloud.ok(instance, name="vm1", template="tpl", offering="small")
    plan = cloud.ok(hypervisor, check=True, diff=True, name="hv1", maintenance=True)
    assert (
        plan["changed"]
        and plan["host"]["maintenance"] is True
        and plan["diff"]["before"]["maintenance"] is False
    )
    assert host_row(cloud, "hv1")["maintenance"] == 0
    res = cloud.ok(hypervisor, name="hv1", maintenance=True)
    assert res["changed"] and res["host"]["maintenance"] is True and res["host"]["state"] == "up"
    assert host_row(cloud, "hv1")["maintenance"] == 1
    assert not cloud.ok(hypervisor, name="hv1", maintenance=True)["changed"]
    assert not cloud.ok(hypervisor, name="hv1")["changed"]  # omitted keeps the flag

    res = cloud.fails(instance, name="vm2", template="tpl", offering="small")
    assert "1 in maintenance [hv1]" in res["msg"] and "maintenance=false" in res["hint"]
    assert not cloud.ok(instance, name="vm1", template="tpl", offering="small")["changed"]  # existing stay

    assert cloud.ok(hypervisor, name="hv1", maintenance=False)["changed"]
    assert cloud.ok(instance, name="vm2", template="tpl", offering="small")["changed"]


# ------------------------------------------------------------------------------------------------
# host_health: probes and the down mark
# ------------------------------------------------------------------------------------------------
def test_reachable_host_resets_failures_and_is_idempotent(cloud):
    with Store.open(cloud.store) as s:
        s.update("hosts", s.get("hosts", name="hv1")["id"], {"failed_probes": 2})
    plan = cloud.ok(host_health, check=True)
    assert plan["changed"] and entry(plan, "hv1")["failed_probes"] == 0
    assert host_row(cloud, "hv1")["failed_probes"] == 2 and host_row(cloud, "hv1")["last_probe_at"] is None

    res = cloud.ok(host_health)
    hv1 = entry(res, "hv1")
    assert res["changed"] and hv1["reachable"] and hv1["reason"] == "" and hv1["failed_probes"] == 0
    assert not hv1["recovered"] and not hv1["marked_down"] and hv1["state"] == "up"
    row = host_row(cloud, "hv1")
    assert row["failed_probes"] == 0 and row["last_probe_at"] is not None
    assert row["last_probe_at"] == hv1["last_probe_at"]
    again = cloud.ok(host_health)
    assert not again["changed"] and again["actions"] == []
    assert not cloud.ok(host_health, check=True)["changed"]


def test_unreachable_host_goes_down_after_n_failures_and_stays_down(cloud, warnings):
    args = {"hypervisor": "test", "vcpus": 4, "ram_mb": 4096, "storage_dir": str(cloud.tmp)}
    cloud.ok(hypervisor, name="hv2", uri=dead_uri(cloud), **args)

    for n in (1, 2):
        res = cloud.ok(host_health, hosts=["hv2"], timeout=5)
        hv2 = entry(res, "hv2")
        assert res["changed"] and not hv2["reachable"] and "gone.sock" in hv2["reason"]
        assert hv2["failed_probes"] == n and hv2["state"] == "up" and not hv2["marked_down"]
        assert [h["name"] for h in res["hosts"]] == ["hv2"]  # only the hosts asked for

    plan = cloud.ok(host_health, check=True, hosts=["hv2"])
    assert plan["marked_down"] == ["hv2"] and entry(plan, "hv2")["state"] == "down"
    assert host_row(cloud, "hv2")["state"] == "up" and host_row(cloud, "hv2")["failed_probes"] == 2

    res = cloud.ok(host_health, hosts=["hv2"])
    assert (
        res["changed"]
        and res["marked_down"] == ["hv2"]
        and "mark hv2 down after 3 failed probes" in res["actions"]
    )
    assert any("Host hv2 marked down" in w for w in warnings)
    row = host_row(cloud, "hv2")
    assert (row["state"], row["failed_probes"]) == ("down", 3)
    assert host_row(cloud, "hv1")["last_probe_at"] is None  # not probed

    # still dead: the counter stays at down_after, nothing changes
    res = cloud.ok(host_health, hosts=["hv2"])
    assert not res["changed"] and not entry(res, "hv2")["marked_down"] and entry(res, "hv2")["hint"] == ""

    # placement no longer uses it
    res = cloud.fails(instance, name="vm2", template="tpl", offering="small", host="hv2")
    assert "not up [hv2]" in res["msg"]

    # it answers again: reported, but not brought back up
    cloud.ok(hypervisor, name="hv2", uri="test:///default")
    res = cloud.ok(host_health, hosts=["hv2"])
    hv2 = entry(res, "hv2")
    assert res["changed"] and hv2["reachable"] and hv2["recovered"] and res["recovered"] == ["hv2"]
    assert hv2["state"] == "down" and hv2["failed_probes"] == 0
    assert "compleat.cloud.evacuate host=hv2 state=cleaned" in hv2["hint"]
    assert "compleat.cloud.hypervisor name=hv2 host_state=up" in hv2["hint"]
    again = cloud.ok(host_health, hosts=["hv2"])
    assert not again["changed"] and entry(again, "hv2")["recovered"]
    assert cloud.ok(hypervisor, name="hv2", host_state="up")["host"]["state"] == "up"
    assert not cloud.ok(host_health)["recovered"]


def test_bringing_a_host_up_resets_its_counter(cloud):
    cloud.ok(hypervisor, name="hv1", uri=dead_uri(cloud))
    cloud.ok(host_health, down_after=1)
    assert host_row(cloud, "hv1")["state"] == "down"
    res = cloud.ok(hypervisor, name="hv1", host_state="up")
    assert res["host"]["failed_probes"] == 0 and res["host"]["state"] == "up"


def test_maintenance_host_is_probed_but_never_marked_down(cloud):
    cloud.ok(hypervisor, name="hv1", uri=dead_uri(cloud), maintenance=True)
    for _attempt in range(3):
        res = cloud.ok(host_health, down_after=2, evacuate=True)
    hv1 = entry(res, "hv1")
    assert hv1["maintenance"] and hv1["failed_probes"] == 2 and hv1["state"] == "up" and not res["changed"]
    cloud.ok(hypervisor, name="hv1", maintenance=False)
    res = cloud.ok(host_health, down_after=2)
    assert res["marked_down"] == ["hv1"]  # still failing once the maintenance ends


def test_bad_arguments(cloud):
    assert "Unknown host(s): nope" in cloud.fails(host_health, hosts=["hv1", "nope"])["msg"]
    assert "at least 1" in cloud.fails(host_health, down_after=0)["msg"]
    assert "timeout" in cloud.fails(host_health, timeout=0)["msg"]


# ------------------------------------------------------------------------------------------------
# host_health: fence and evacuate
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def two_hosts(cloud, second_node, libvirt_test):
    """vm1 (running, iSCSI volume) on hv1; hv2 is a second test-driver node; hv1 then dies."""
    cloud.add_host("hv2", second_node)
    cloud.ok(instance, state="stopped", **VM)
    cloud.ok(volume, name="data", instance="vm1", state="attached", **ISCSI)
    first = cloud.ok(instance, state="running", **VM)["instance"]
    libvirt_test.lookupByName("vm1").destroy()  # the host died: nothing runs there any more ...
    cloud.ok(hypervisor, name="hv1", uri=dead_uri(cloud))  # ... and its libvirt does not answer
    return cloud, second_node, first


def test_evacuate_with_mark_after_operator_fences(two_hosts, libvirt_test):
    cloud, uri_b, first = two_hosts
    policy = {"evacuate": True, "down_after": 2, "timeout": 5}
    res = cloud.ok(host_health, **policy)
    assert entry(res, "hv1")["failed_probes"] == 1 and res["evacuated"] == [] and res["failures"] == []

    # goes down: not fenced yet, so the policy refuses to move anything and says how to fence
    res = cloud.fails(host_health, **policy)
    assert res["marked_down"] == ["hv1"] and res["changed"]
    (fail,) = res["failures"]
    assert fail["host"] == "hv1" and fail["instance"] is None and "not fenced" in fail["reason"]
    assert "compleat.cloud.hypervisor name=hv1 host_state=fenced" in fail["hint"]
    assert "compleat.cloud.evacuate host=hv1" in entry(res, "hv1")["hint"]
    assert host_row(cloud, "hv1")["state"] == "down"
    with Store.open(cloud.store) as s:
        assert s.get("instances", name="vm1")["host_id"] == s.get("hosts", name="hv1")["id"]

    cloud.ok(hypervisor, name="hv1", host_state="fenced")  # the operator confirmed it is off
    plan = cloud.ok(host_health, check=True, **policy)
    assert plan["changed"] and [(e["instance"], e["to"]) for e in plan["evacuated"]] == [("vm1", "hv2")]
    with Store.open(cloud.store) as s:
        assert s.get("instances", name="vm1")["host_id"] == s.get("hosts", name="hv1")["id"]

    res = cloud.ok(host_health, **policy)
    (moved,) = res["evacuated"]
    assert moved == vm1_moved_to_hv2(first["instance_id"])
    assert res["changed"] and entry(res, "hv1")["state"] == "fenced" and entry(res, "hv1")["hint"] == ""
    assert virt.connect(uri_b).lookupByUUIDString(first["uuid"]).isActive()
    assert not cloud.ok(host_health, **policy)["changed"]  # nothing left to move
    assert not cloud.ok(instance, state="running", **{**VM, "host": "hv2"})["changed"]

    # hv1 returns: reported, not brought up; the operator cleans, then brings it back
    cloud.ok(hypervisor, name="hv1", uri="test:///default")
    res = cloud.ok(host_health, **policy)
    assert res["recovered"] == ["hv1"] and entry(res, "hv1")["state"] == "fenced"
    assert cloud.ok(evacuate, host="hv1", state="cleaned")["cleaned"] == ["vm1"]
    assert "vm1" not in virt.domain_names(libvirt_test)
    assert cloud.ok(hypervisor, name="hv1", host_state="up")["host"]["state"] == "up"


def test_evacuate_with_fence_command(two_hosts, tmp_path):
    cloud = two_hosts[0]
    marker = tmp_path / "fenced-hv1"
    policy = {
        "evacuate": True,
        "down_after": 1,
        "fence_method": "command",
        "fence_command": ["touch", str(tmp_path / "fenced-{host}")],
    }
    plan = cloud.ok(host_health, check=True, **policy)
    assert plan["marked_down"] == ["hv1"] and plan["evacuated"][0]["to"] == "hv2"
    assert "fence hv1 with its fence command" in plan["actions"] and not marker.exists()
    assert host_row(cloud, "hv1")["state"] == "up"

    res = cloud.ok(host_health, **policy)
    assert marker.exists() and res["evacuated"][0]["to"] == "hv2" and entry(res, "hv1")["state"] == "fenced"
    marker.unlink()
    assert not cloud.ok(host_health, **policy)["changed"] and not marker.exists()  # not fenced twice


# ------------------------------------------------------------------------------------------------
# Both store engines, and a store that does not exist yet
# ------------------------------------------------------------------------------------------------
def test_policy_and_guards_on_both_engines(any_store, run_module, libvirt_test, tmp_path):
    target = any_store.test_target

    def ok(module, check=False, **kw):
        failed, res = run_module(module, {**target, **kw}, check=check)
        assert not failed, res
        return res

    base = {"hypervisor": "test", "vcpus": 4, "ram_mb": 4096, "storage_dir": str(tmp_path)}
    ok(hypervisor, name="hv-a", uri="test:///default", **base)
    ok(hypervisor, name="hv-b", uri=f"qemu+unix:///system?socket={tmp_path / 'none.sock'}", **base)
    assert ok(hypervisor, name="hv-a", maintenance=True)["host"]["maintenance"] is True
    res = ok(host_health, down_after=1)
    assert res["marked_down"] == ["hv-b"] and entry(res, "hv-a")["reachable"]
    assert not ok(host_health, down_after=1)["changed"]
    with Store.open(**any_store.test_target_open) as s:
        rows = {r["name"]: r for r in s.select("hosts")}
    assert (rows["hv-a"]["maintenance"], rows["hv-a"]["failed_probes"]) == (1, 0)
    assert (rows["hv-b"]["state"], rows["hv-b"]["failed_probes"]) == ("down", 1)
    assert rows["hv-a"]["last_probe_at"] and rows["hv-b"]["last_probe_at"]
    assert ok(hypervisor, name="hv-b", host_state="up")["host"]["failed_probes"] == 0


def test_check_mode_on_a_missing_store(run_module, tmp_path):
    failed, res = run_module(host_health, {"store": str(tmp_path / "none.db")}, check=True)
    assert not failed and res["hosts"] == [] and not res["changed"]
    assert not (tmp_path / "none.db").exists()
