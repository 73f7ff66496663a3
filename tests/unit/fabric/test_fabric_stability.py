# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stability: growing a fabric never changes what existed (addresses, ASNs, rendered output)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import (
    render_tree,
)

Case = tuple[dict[str, Any], dict[str, Any], set[int]]


def grown_docs() -> dict[str, Case]:
    """(before, after, racks whose declaration changed): add rack N+1, a rack in a gap, a spine,
    an uplink, a ToR, hosts."""
    before = make_doc(
        spines=[{"id": 1}, {"id": 2}],
        defaults={"tors": 1, "uplinks": 2, "hosts": 3},
        racks=[{"id": 1}, {"id": 2}, {"id": 4, "tors": 2}],
    )
    cases: dict[str, Case] = {}
    after = copy.deepcopy(before)
    after["racks"].append({"id": 5})
    cases["add rack N+1"] = (before, after, set())
    after = copy.deepcopy(before)
    after["racks"].append({"id": 3})
    cases["add rack in a gap"] = (before, after, set())
    after = copy.deepcopy(before)
    after["spines"].append({"id": 3})
    cases["add a spine"] = (before, after, set())
    with_spine = copy.deepcopy(after)
    after = copy.deepcopy(with_spine)
    after["racks"][1]["uplinks"] = 3
    cases["add an uplink"] = (with_spine, after, {2})
    after = copy.deepcopy(before)
    after["racks"][0]["tors"] = 2
    cases["add a ToR"] = (before, after, {1})
    after = copy.deepcopy(before)
    after["racks"][0]["hosts"] = 10
    cases["add hosts"] = (before, after, {1})
    return cases


CASES = grown_docs()


def assert_plan_grows_only(old: Plan, new: Plan, touched: set[int] = frozenset()) -> None:
    """Every device, interface, session, link and network of ``old`` is unchanged in ``new``.

    Devices of ``touched`` racks (and spines) may gain interfaces and sessions; devices elsewhere
    must be identical."""
    for name, dev in old.devices.items():
        grown = new.devices[name]
        assert (grown.loopback, grown.router_id, grown.asn, grown.role, grown.rack, grown.index) == (
            dev.loopback,
            dev.router_id,
            dev.asn,
            dev.role,
            dev.rack,
            dev.index,
        ), name
        new_ifaces = {iface.name: iface for iface in grown.interfaces}
        for iface in dev.interfaces:
            assert new_ifaces.get(iface.name) == iface, (name, iface.name)
        assert set(dev.bgp_neighbors) <= set(grown.bgp_neighbors), name
        if dev.role != "spine" and dev.rack not in touched:
            assert grown == dev, name
        else:
            assert grown.announce == dev.announce, name
    assert set(old.links) <= set(new.links)
    assert set(old.networks) <= set(new.networks)


def rendered(plan: Plan, root: Path, *, frr: bool) -> dict[str, str]:
    root.mkdir()
    return {rel: (root / rel).read_text() for rel in render_tree(plan, root, frr=frr)}


def assert_outputs_grow_only(before: dict[str, str], after: dict[str, str], touched: set[int]) -> None:
    """Outputs of untouched racks and their devices are byte-identical; aggregate files only gain."""
    touched_pages = {f"racks/r{rack:03d}.md" for rack in touched}
    for rel, text in before.items():
        if rel.startswith("racks/") and rel not in touched_pages:
            assert after[rel] == text, rel
    old_rows, new_rows = set(before["plan.csv"].splitlines()), set(after["plan.csv"].splitlines())
    assert old_rows <= new_rows
    old_topo, new_topo = json.loads(before["topology.json"]), json.loads(after["topology.json"])
    new_devices = {d["name"]: d for d in new_topo["devices"]}
    for dev in old_topo["devices"]:
        grown = new_devices[dev["name"]]
        if dev["role"] == "spine" or dev["rack"] in touched:
            assert all(iface in grown["interfaces"] for iface in dev["interfaces"])
            assert all(nbr in grown["bgp_neighbors"] for nbr in dev["bgp_neighbors"])
            assert {k: v for k, v in grown.items() if k not in ("interfaces", "bgp_neighbors")} == {
                k: v for k, v in dev.items() if k not in ("interfaces", "bgp_neighbors")
            }
        else:
            assert grown == dev, dev["name"]
    for key in ("links", "networks"):
        assert all(item in new_topo[key] for item in old_topo[key])
    # the lines of unchanged devices in topology.json are byte-identical too
    new_lines = set(after["topology.json"].splitlines())
    for line in before["topology.json"].splitlines():
        entry = json.loads(line.rstrip(",")) if line.startswith("  {") else {}
        if entry.get("role") in ("tor", "host") and entry.get("rack") not in touched:
            assert line.rstrip(",") in {item.rstrip(",") for item in new_lines}


@pytest.mark.parametrize("case", sorted(CASES))
def test_growth_changes_nothing_that_existed(case: str, tmp_path: Path) -> None:
    before_doc, after_doc, touched = CASES[case]
    old, new = plan_of(before_doc), plan_of(after_doc)
    assert len(new.devices) + len(new.links) > len(old.devices) + len(old.links)
    assert_plan_grows_only(old, new, touched)
    before = rendered(old, tmp_path / "before", frr=False)
    after = rendered(new, tmp_path / "after", frr=False)
    assert_outputs_grow_only(before, after, touched)


@pytest.mark.parametrize("case", ["add rack N+1", "add rack in a gap", "add hosts"])
def test_existing_tor_configs_unchanged(case: str, tmp_path: Path) -> None:
    before_doc, after_doc, touched = CASES[case]
    old, new = plan_of(before_doc), plan_of(after_doc)
    before = rendered(old, tmp_path / "before", frr=True)
    after = rendered(new, tmp_path / "after", frr=True)
    for tor in old.tors():
        if tor.rack in touched:
            continue
        rel = f"{tor.name}/frr.conf"
        assert after[rel] == before[rel], rel


def test_wrapped_uplinks_rehome_but_keep_addresses() -> None:
    """Documented limit: a ToR with more uplinks than spines wraps round-robin; adding a spine moves
    the wrapped uplink to the new spine.  Its addresses and ASNs stay the same."""
    before = make_doc()  # rack 1: 3 uplinks on 2 spines, up3 -> spine01
    after = make_doc(spines=[{"id": 1}, {"id": 2}, {"id": 3}])
    old, new = plan_of(before), plan_of(after)
    old_up3, new_up3 = old.devices["r001-tor1"].interface("up3"), new.devices["r001-tor1"].interface("up3")
    assert (old_up3.peer_device, new_up3.peer_device) == ("spine01", "spine03")
    assert old_up3.address == new_up3.address
    pinned = make_doc()
    pinned["racks"][0]["uplinks"] = ["spine01", "spine02", "spine01"]
    pinned_after = copy.deepcopy(pinned)
    pinned_after["spines"].append({"id": 3})
    assert_plan_grows_only(plan_of(pinned), plan_of(pinned_after))
