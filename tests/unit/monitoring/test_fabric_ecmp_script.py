# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of roles/monitoring_exporters/files/compleat_fabric_ecmp.py (the router-side ECMP check)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "monitoring_exporters"
SCRIPT = ROLE / "files" / "compleat_fabric_ecmp.py"


def _load():
    loader = importlib.machinery.SourceFileLoader("compleat_fabric_ecmp", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ecmp = _load()

ROUTES = [
    {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
    {"dst": "10.255.0.1", "gateway": "10.254.0.0", "dev": "up1", "protocol": "bgp"},
    {
        "dst": "10.0.2.0/24",
        "protocol": "bgp",
        "nexthops": [{"gateway": "10.254.0.0", "dev": "up1"}, {"gateway": "10.254.0.2", "dev": "up2"}],
    },
    {"dst": "10.0.3.0/24", "protocol": "bgp", "nhid": 42},  # nexthop object, no expanded list
    {"dst": "10.0.1.0/24", "dev": "mgmt", "protocol": "kernel", "scope": "link"},
    {"type": "blackhole", "dst": "10.9.0.0/16"},
]


def test_count_nexthops_expands_multipath_and_groups():
    counts = ecmp.count_nexthops(ROUTES, {42: 3})
    assert counts == {
        "10.255.0.1/32": 1,  # a host route shown without /32
        "10.0.2.0/24": 2,
        "10.0.3.0/24": 3,
        "10.0.1.0/24": 1,
    }
    assert ecmp.count_nexthops(ROUTES)["10.0.3.0/24"] == 1  # unknown group: one path at least


def test_group_sizes():
    assert ecmp.group_sizes([{"id": 1, "gateway": "x"}, {"id": 42, "group": [{"id": 1}, {"id": 2}]}, {}]) == {
        1: 1,
        42: 2,
    }


def test_render_lists_only_prefixes_below_intent():
    intent = {"10.0.2.0/24": 2, "10.255.0.1/32": 2, "10.0.9.0/24": 1}
    text = ecmp.render(intent, ecmp.count_nexthops(ROUTES), 1700000000.0)
    assert "compleat_fabric_ecmp_prefixes_checked 3\n" in text
    assert "compleat_fabric_ecmp_prefixes_below_intent 2\n" in text
    assert 'compleat_fabric_route_nexthops_below_intent{intent="2",prefix="10.255.0.1/32"} 1\n' in text
    assert 'compleat_fabric_route_nexthops_below_intent{intent="1",prefix="10.0.9.0/24"} 0\n' in text
    assert 'prefix="10.0.2.0/24"' not in text
    assert "compleat_fabric_ecmp_last_check_timestamp_seconds 1700000000.000\n" in text


def test_load_intent_normalises(tmp_path):
    path = tmp_path / "intent.json"
    path.write_text(json.dumps({"device": "r1", "routes": {"10.255.0.1": 2, "10.0.0.0/24": 0, "junk": 3}}))
    assert ecmp.load_intent(str(path)) == {"10.255.0.1/32": 2, "10.0.0.0/24": 1}


def test_write_atomic_is_world_readable(tmp_path):
    out = tmp_path / "x.prom"
    ecmp.write_atomic(str(out), "a 1\n")
    assert out.read_text() == "a 1\n"
    assert os.stat(out).st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["x.prom"]


def test_main_writes_the_textfile(tmp_path, monkeypatch):
    intent = tmp_path / "intent.json"
    intent.write_text(json.dumps({"routes": {"10.0.2.0/24": 2}}))
    out = tmp_path / "ecmp.prom"
    monkeypatch.setattr(ecmp, "run_ip", lambda args, netns=None: ROUTES)
    assert ecmp.main(["--intent", str(intent), "--output", str(out)]) == 0
    assert "compleat_fabric_ecmp_prefixes_below_intent 0\n" in out.read_text()


def test_main_fails_without_writing_when_ip_fails(tmp_path, monkeypatch):
    intent = tmp_path / "intent.json"
    intent.write_text(json.dumps({"routes": {}}))
    out = tmp_path / "ecmp.prom"

    def broken(args, netns=None):
        raise OSError("no ip")

    monkeypatch.setattr(ecmp, "run_ip", broken)
    assert ecmp.main(["--intent", str(intent), "--output", str(out)]) == 1
    assert not out.exists()


@pytest.mark.skipif(not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists(), reason="no iproute2")
def test_run_ip_parses_real_output():
    routes = ecmp.run_ip(["route", "show", "table", "main"])
    assert isinstance(routes, list)
