# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The schema: one declaration drives normalization and the generated key table."""

from __future__ import annotations

import re

from fabric_testlib import DOC_FILE, make_doc

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import schema


def test_normalize_fills_every_default() -> None:
    minimal = {"name": "x", "pools": {"loopbacks": "10.0.0.0/8"}, "spines": [{"id": 1}]}
    data, errors = schema.normalize(minimal)
    assert errors == []
    assert data["routing"] == "bgp"
    assert data["limits"] == {
        "max_racks": 1024,
        "tors_per_rack": 2,
        "uplinks_per_tor": 4,
        "hosts_per_rack": 48,
        "spines": 16,
    }
    assert data["bgp"]["timers"] == {"keepalive": 3, "hold": 9}
    assert data["ospf"]["area"] == "0.0.0.0"
    assert data["dhcp_relay"] == {"servers": [], "networks": ["mgmt"]}
    assert data["racks"] == [] and data["networks"] == {}
    assert data["spines"] == [{"id": 1, "name": None, "drain": False, "link_mtu": None}]
    assert data["bgp"]["gtsm"] is False and data["bgp"]["passwords"] == "none"
    assert data["bgp"]["maximum_prefix"] == {
        "enabled": False,
        "headroom": 200,
        "basis": "capacity",
        "restart": 0,
        "warning_only": False,
    }


def test_rack_keys_inherit_from_defaults() -> None:
    data, errors = schema.normalize(make_doc(defaults={"hosts": 7}, racks=[{"id": 1}, {"id": 2, "hosts": 1}]))
    assert errors == []
    shapes = [(r["tors"], r["uplinks"], r["hosts"], r["pod"]) for r in data["racks"]]
    assert shapes == [(1, 2, 7, 1), (1, 2, 1, 1)]


def test_defaults_are_not_shared_between_documents() -> None:
    first = schema.normalize(make_doc())[0]
    first["dhcp_relay"]["networks"].append("vm")
    second = schema.normalize(make_doc())[0]
    assert second["dhcp_relay"]["networks"] == ["mgmt"]


def test_every_key_is_documented_once() -> None:
    keys = [path for path, _field in schema.iter_keys()]
    assert len(keys) == len(set(keys))
    table = schema.markdown_table()
    for path in keys:
        assert f"| `{path}` |" in table
    assert "| `networks.<role>.vlan` | int | **required** | 1..4094 |" in table
    assert "| `racks[].hosts` | int | `defaults.hosts` |" in table


def test_every_field_has_a_doc_and_a_known_type() -> None:
    types = {"str", "int", "bool", "ipv4", "cidr", "cidr6", "area", "map", "list", "range"}
    types |= {"list[map]", "dict[map]", "count|names"}
    for path, field in schema.iter_keys():
        assert field.doc.strip(), path
        assert field.type in types, path


def test_docs_table_is_current() -> None:
    """docs/fabric.md carries the generated table."""
    text = DOC_FILE.read_text()
    hint = "stale key table: run bin/compleat-fabric schema --update docs/fabric.md"
    assert schema.update_doc_text(text) == text, hint
    block = text[text.index(schema.DOC_BEGIN) : text.index(schema.DOC_END)]
    assert len(re.findall(r"^\| `", block, flags=re.M)) == len(list(schema.iter_keys()))
