# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/filter/monitoring.py (targets, ECMP intent, rules, prometheus.yml)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.compleat.cloud.plugins.filter import monitoring as mon
from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric

ROOT = Path(__file__).resolve().parents[3]
LAB_FABRIC = ROOT / "inventories" / "lab" / "fabric.yml"
LAB_OSPF = ROOT / "inventories" / "lab" / "fabric-ospf.yml"
EXAMPLE_FABRIC = ROOT / "inventories" / "example" / "fabric-500.yml"
PROMTOOL = shutil.which("promtool")

EXPORTERS = [
    {"name": "node", "groups": ["all"], "port": 9100},
    {"name": "libvirt", "groups": ["hypervisors"], "port": 9177},
    {"name": "bind", "groups": "dns_servers", "port": 9119},
]


@pytest.fixture(scope="module")
def lab_plan() -> dict:
    return plan_to_dict(build_plan(load_fabric(str(LAB_FABRIC))))


# ------------------------------------------------------------------------------------ inventory
def test_inventory_targets_per_job_with_addresses_and_instances():
    groups = {"all": ["h2", "h1", "kvm1"], "hypervisors": ["kvm1"], "dns_servers": []}
    hostvars = {
        "h1": {"monitoring_address": "10.0.0.1", "ansible_host": "192.0.2.1"},
        "h2": {"ansible_host": "2001:db8::2"},
        "kvm1": {},
    }
    jobs = mon.inventory_targets(EXPORTERS, groups, hostvars)
    assert list(jobs) == ["bind", "libvirt", "node"]  # sorted by job name
    assert jobs["bind"] == []
    assert jobs["libvirt"] == [{"targets": ["kvm1:9177"], "labels": {"instance": "kvm1"}}]
    assert jobs["node"] == [
        {"targets": ["10.0.0.1:9100"], "labels": {"instance": "h1"}},  # monitoring_address wins
        {"targets": ["[2001:db8::2]:9100"], "labels": {"instance": "h2"}},  # IPv6 bracketed
        {"targets": ["kvm1:9100"], "labels": {"instance": "kvm1"}},  # inventory name fallback
    ]


def test_inventory_targets_missing_group_is_empty_and_hosts_deduplicated():
    jobs = mon.inventory_targets(
        [{"name": "node", "groups": ["a", "b", "nope"], "port": 9100}], {"a": ["x"], "b": ["x", "y"]}, {}
    )
    assert [t["labels"]["instance"] for t in jobs["node"]] == ["x", "y"]


@pytest.mark.parametrize(
    ("exporters", "message"),
    [
        ([{"groups": ["all"], "port": 1}], "with a name"),
        ([{"name": "a", "port": 1}, {"name": "a", "port": 2}], "duplicate"),
        ([{"name": "a", "port": 0}], "out of range"),
        ([{"name": "a", "port": "x"}], "integer"),
    ],
)
def test_inventory_targets_rejects_bad_exporters(exporters, message):
    with pytest.raises(AnsibleFilterError, match=message):
        mon.inventory_targets(exporters, {}, {})


def test_enabled_exporters_by_group_membership():
    assert mon.enabled_exporters(EXPORTERS, ["hypervisors"]) == ["libvirt", "node"]
    assert mon.enabled_exporters(EXPORTERS, []) == ["node"]
    assert mon.enabled_exporters([{"name": "frr", "groups": ["tors"], "port": 9342}], ["spines"]) == []


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("", ":9100"),
        ("*", ":9100"),
        ("0.0.0.0", "0.0.0.0:9100"),
        ("10.255.0.7", "10.255.0.7:9100"),
        ("fd00::1", "[fd00::1]:9100"),
        ("10.255.0.7/32", "10.255.0.7:9100"),
    ],
)
def test_listen_address(address, expected):
    assert mon.listen_address(address, 9100) == expected


# ------------------------------------------------------------------------------------ fabric
def test_fabric_targets_are_spine_and_tor_loopbacks(lab_plan):
    groups = mon.fabric_targets(lab_plan)
    routers = {d["name"]: d for d in lab_plan["devices"] if d["role"] in ("spine", "tor")}
    assert [g["labels"]["instance"] for g in groups] == sorted(routers)
    for group in groups:
        device = routers[group["labels"]["instance"]]
        assert group["targets"] == [device["loopback"].split("/")[0] + ":9342"]
        assert group["labels"]["fabric_role"] == device["role"]
        assert ("rack" in group["labels"]) == (device["role"] == "tor")


def test_fabric_targets_accept_plan_object_dict_and_file(lab_plan):
    from_dict = mon.fabric_targets(lab_plan, 9999, ["tor"])
    assert mon.fabric_targets(build_plan(load_fabric(str(LAB_FABRIC))), 9999, ["tor"]) == from_dict
    assert mon.fabric_targets(str(LAB_FABRIC), 9999, ["tor"]) == from_dict
    assert mon.fabric_targets(yaml.safe_load(LAB_FABRIC.read_text()), 9999, ["tor"]) == from_dict
    assert all(g["targets"][0].endswith(":9999") for g in from_dict)


def test_invalid_fabric_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="monitoring_fabric_targets: fabric file has 3 errors"):
        mon.fabric_targets({"name": "x", "spines": "not-a-list"})
    with pytest.raises(AnsibleFilterError, match="expected a fabric plan"):
        mon.fabric_targets(None)


def test_fabric_router_of_a_tor(lab_plan):
    tor = next(d for d in lab_plan["devices"] if d["role"] == "tor")
    info = mon.fabric_router(lab_plan, tor["name"])
    assert info["role"] == "tor"
    assert info["routing"] == "bgp"
    assert info["address"] == tor["loopback"].split("/")[0]
    assert info["ecmp_intent"] and all(count >= 1 for count in info["ecmp_intent"].values())
    assert tor["loopback"] not in info["ecmp_intent"]  # never its own prefixes


def test_fabric_router_of_a_plain_host_or_unknown_device_is_empty(lab_plan):
    host = next(d for d in lab_plan["devices"] if d["role"] == "host")
    assert mon.fabric_router(lab_plan, host["name"]) == {}
    assert mon.fabric_router(lab_plan, "no-such-device") == {}


# ------------------------------------------------------------------------------------ ECMP intent
def _engine_table(plan: dict) -> dict:
    return {
        name: {prefix: max(1, count) for prefix, count in item.routes.items()}
        for name, item in fabric_intent.intent_from_topology(plan).items()
    }


@pytest.mark.parametrize("path", [LAB_FABRIC, LAB_OSPF], ids=["bgp", "ospf"])
def test_per_device_intent_equals_the_engine(path):
    plan = plan_to_dict(build_plan(load_fabric(str(path))))
    table = _engine_table(plan)
    assert table and mon.ecmp_intent(plan) == table
    for name, routes in table.items():
        assert mon.ecmp_intent(plan, name) == routes


def test_per_device_intent_equals_the_engine_on_the_500_rack_example():
    plan = plan_to_dict(build_plan(load_fabric(str(EXAMPLE_FABRIC))))
    table = _engine_table(plan)
    names = sorted(table)
    sample = names[:3] + names[len(names) // 2 : len(names) // 2 + 3] + names[-3:]
    for name in sample:
        assert mon.ecmp_intent(plan, name) == table[name], name


def test_ecmp_intent_of_the_lab_tor_with_three_uplinks(lab_plan):
    # r001-tor1 has 3 uplinks (two to spine01): a prefix of another rack is reachable over all 3,
    # spine01's loopback over its 2 links to spine01, spine02's over 1.
    intent = mon.ecmp_intent(lab_plan, "r001-tor1")
    loopbacks = {d["name"]: d["loopback"] for d in lab_plan["devices"]}
    assert intent[loopbacks["spine01"]] == 2
    assert intent[loopbacks["spine02"]] == 1
    assert intent[loopbacks["r002-tor1"]] == 3


# ------------------------------------------------------------------------------------ rules
def test_alert_rules_cover_the_four_acceptance_alerts():
    rules = mon.alert_rules()
    assert mon.alert_names(rules) == [
        "BgpSessionDown",
        "DiskNearlyFull",
        "FabricEcmpBelowIntent",
        "FabricEcmpCheckStale",
        "HostDown",
    ]
    by_name = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert by_name["HostDown"]["expr"] == "up == 0"
    assert by_name["BgpSessionDown"]["expr"] == "frr_bgp_peer_state != 1"
    assert "compleat_fabric_ecmp_prefixes_below_intent" in by_name["FabricEcmpBelowIntent"]["expr"]
    assert "< 10" in by_name["DiskNearlyFull"]["expr"]


def test_alert_rule_options_and_errors():
    rules = mon.alert_rules({"bgp_down_for": "5s", "disk_free_percent": 5, "group": "g"})
    group = rules["groups"][0]
    assert group["name"] == "g"
    assert {r["alert"]: r["for"] for r in group["rules"]}["BgpSessionDown"] == "5s"
    assert "< 5 and" in {r["alert"]: r["expr"] for r in group["rules"]}["DiskNearlyFull"]
    with pytest.raises(AnsibleFilterError, match="unknown option"):
        mon.alert_rules({"bgp_for": "1m"})
    with pytest.raises(AnsibleFilterError, match="between 0 and 100"):
        mon.alert_rules({"disk_free_percent": 120})


# ------------------------------------------------------------------------------------ prometheus.yml
def test_prometheus_config_jobs_and_options():
    config = mon.prometheus_config(
        ["node", {"name": "frr", "file": "/x/frr.json", "scrape_interval": "5s"}],
        {
            "rule_files": ["/r.yml"],
            "alertmanagers": ["am:9093"],
            "self_instance": "prom1",
            "external_labels": {"site": "lab"},
            "sd_dir": "/sd/",
        },
    )
    assert config["rule_files"] == ["/r.yml"]
    assert config["global"]["external_labels"] == {"site": "lab"}
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["am:9093"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == ["prometheus", "frr", "node"]
    assert jobs["prometheus"]["static_configs"][0]["labels"] == {"instance": "prom1"}
    assert jobs["node"]["file_sd_configs"] == [{"files": ["/sd/node.json"]}]
    assert jobs["frr"]["file_sd_configs"] == [{"files": ["/x/frr.json"]}]
    assert jobs["frr"]["scrape_interval"] == "5s"


def test_prometheus_config_rejects_duplicates_and_unknown_options():
    with pytest.raises(AnsibleFilterError, match="duplicate"):
        mon.prometheus_config(["node", "node"])
    with pytest.raises(AnsibleFilterError, match="duplicate"):
        mon.prometheus_config(["prometheus"])
    with pytest.raises(AnsibleFilterError, match="unknown option"):
        mon.prometheus_config([], {"interval": "1s"})


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) not installed")
def test_promtool_accepts_the_generated_rules_and_config(tmp_path, lab_plan):
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump(mon.alert_rules(), sort_keys=False))
    sd = tmp_path / "sd"
    sd.mkdir()
    jobs = mon.inventory_targets(EXPORTERS, {"all": ["a"]}, {"a": {"ansible_host": "10.0.0.1"}})
    jobs["frr"] = mon.fabric_targets(lab_plan)
    for name, groups in jobs.items():
        (sd / f"{name}.json").write_text(json.dumps(groups))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            mon.prometheus_config(sorted(jobs), {"rule_files": [str(rules_file)], "sd_dir": str(sd)})
        )
    )
    for args in (["check", "rules", str(rules_file)], ["check", "config", str(config)]):
        proc = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------ plugin
def test_filter_module_exposes_every_filter():
    names = set(mon.FilterModule().filters())
    assert names == {
        "monitoring_inventory_targets",
        "monitoring_fabric_targets",
        "monitoring_fabric_router",
        "monitoring_listen",
        "monitoring_ecmp_intent",
        "monitoring_enabled_exporters",
        "monitoring_alert_rules",
        "monitoring_alert_names",
        "monitoring_prometheus_config",
    }
