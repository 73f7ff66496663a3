# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Usage metering (pure report), usage_report and cloud_info modules."""

from __future__ import annotations

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import usage
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import Conflict
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import cloud_info, instance, usage_report, volume

H = 3600


def ev(ts, event, *, uuid="u1", tenant="acme", offering="small", vcpus=1, ram_mb=1024):
    return {
        "ts": ts,
        "event": event,
        "instance_uuid": uuid,
        "tenant": tenant,
        "offering": offering,
        "vcpus": vcpus,
        "ram_mb": ram_mb,
    }


def test_report_clips_and_resizes():
    events = [
        ev(0, "create"),
        ev(H, "start"),
        ev(3 * H, "resize", offering="large", vcpus=4, ram_mb=4096),
        ev(5 * H, "stop", offering="large", vcpus=4, ram_mb=4096),
        ev(6 * H, "delete", offering="large", vcpus=4, ram_mb=4096),
        ev(2 * H, "create", uuid="u2", tenant="beta"),
        ev(2 * H, "start", uuid="u2", tenant="beta"),
    ]
    rows = usage.report(events, 2 * H, 10 * H)
    large, small, beta = rows[0], rows[1], rows[2]
    assert (small["tenant"], small["offering"]) == ("acme", "small")
    assert small["running_hours"] == 1.0 and small["vcpu_hours"] == 1.0 and small["allocated_hours"] == 1.0
    assert large["running_hours"] == 2.0 and large["vcpu_hours"] == 8.0 and large["ram_gb_hours"] == 8.0
    assert (
        large["allocated_hours"] == 3.0 and large["events"]["resize"] == 1 and large["events"]["delete"] == 1
    )
    assert beta["tenant"] == "beta" and beta["running_hours"] == 8.0 and beta["events"]["create"] == 1
    assert usage.report(events, 2 * H, 10 * H) == rows  # deterministic


def test_report_errors_and_time_parsing():
    with pytest.raises(Conflict):
        usage.report([], 5, 5)
    assert usage.parse_time("2026-11-01", 0) == 1793491200
    assert usage.parse_time("2026-11-01T01:00:00+01:00", 0) == 1793491200
    assert usage.parse_time("12345", 0) == 12345 and usage.parse_time(None, 7) == 7
    with pytest.raises(Conflict, match="Cannot read"):
        usage.parse_time("yesterday", 0)


def test_usage_report_module(cloud):
    cloud.ok(instance, name="vm1", template="tpl", offering="small", tenant="acme", state="running")
    res = cloud.ok(usage_report, start="0", check=True)
    (row,) = res["usage"]
    assert row["tenant"] == "acme" and row["events"]["create"] == 1 and row["events"]["start"] == 1
    assert res["period"]["start"] == 0
    assert cloud.ok(usage_report, start="0", tenant="nobody")["usage"] == []
    assert "empty" in cloud.fails(usage_report, start="2026-12-01", end="2026-11-01")["msg"]


def test_cloud_info_sections_filters_and_health(cloud, libvirt_test):
    cloud.ok(instance, name="vm1", template="tpl", offering="small", tenant="acme", state="running")
    cloud.ok(instance, name="vm2", template="tpl", offering="small", tenant="beta")
    cloud.ok(volume, name="v", backend="iscsi", iscsi_portal="192.0.2.1", iscsi_iqn="iqn.x:y", tenant="acme")
    res = cloud.ok(cloud_info)
    assert not res["changed"] and res["schema_version"] >= 3
    (host,) = res["hosts"]
    assert host["used_vcpus"] == 2 and host["free_vcpus"] == 6 and host["instances"] == 2
    assert [i["name"] for i in res["instances"]] == ["vm1", "vm2"] and res["instances"][0]["host"] == "hv1"
    assert res["images"][0]["name"] == "tpl" and res["keys"][0]["name"] == "ops"
    only = cloud.ok(cloud_info, gather=["instances", "volumes"], tenant="acme")
    assert set(only) >= {"instances", "volumes"} and "hosts" not in only
    assert [i["name"] for i in only["instances"]] == ["vm1"] and only["volumes"][0]["name"] == "v"

    healthy = cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]
    assert healthy["dead_hosts"] == [] and healthy["mismatched"] == []
    no_disks = {"extra": [], "missing": [], "other_source": []}
    assert healthy["instances"]["vm1"] == {
        "host": "hv1",
        "store": "running",
        "libvirt": "running",
        "agrees": True,
        "drift": {"missing": False, "config": [], "live": [], "disks": no_disks, "live_disks": no_disks},
    }
    libvirt_test.lookupByName("vm1").destroy()  # crashed behind the store's back
    assert cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]["mismatched"] == ["vm1"]


def test_cloud_info_dead_host(cloud):
    from ansible_collections.compleat.cloud.plugins.modules import hypervisor

    cloud.ok(
        hypervisor,
        name="gone",
        uri="qemu+unix:///system?socket=/nonexistent/sock",
        hypervisor="kvm",
        vcpus=1,
        ram_mb=1024,
        storage_dir=str(cloud.tmp),
    )
    health = cloud.ok(cloud_info, gather=["hosts"], check_health=True, health_timeout=5)["health"]
    assert health["dead_hosts"] == ["gone"] and not health["hosts"]["gone"]["reachable"]


def test_cloud_info_never_creates_a_store(run_module, tmp_path):
    failed, res = run_module(cloud_info, {"store": str(tmp_path / "none.db")})
    assert failed and "No metadata store" in res["msg"]
    assert not (tmp_path / "none.db").exists()


def test_info_refuses_corrupt_store(cloud):
    with open(cloud.store, "r+b") as handle:
        handle.write(b"x" * 200)
    assert "corrupt" in cloud.fails(cloud_info)["msg"]
    with Store.open(str(cloud.tmp / "other.db")) as s:
        assert s.schema_version() >= 3
