# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Renderers and the atomic, idempotent render_all."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fabric_testlib import make_doc, plan_of, scale_doc

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import law
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import docs as docs_renderer
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import tree
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.csv import HEADER, render_csv
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.docs import (
    render_docs,
    render_fabric_md,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.svg import render_svg
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.topology import render_topology
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import (
    MANIFEST,
    render_all,
)

NON_FRR = [
    "fabric.md",
    "fabric.svg",
    "plan.csv",
    "racks/r001.md",
    "racks/r002.md",
    "racks/r003.md",
    "topology.json",
]


def test_topology_json(lab_plan: Plan) -> None:
    data = json.loads(render_topology(lab_plan))
    assert data["fabric"]["name"] == "lab" and data["fabric"]["routing"] == "bgp"
    assert [d["name"] for d in data["devices"]] == list(lab_plan.devices)
    tor = next(d for d in data["devices"] if d["name"] == "r001-tor1")
    for key in ("name", "role", "rack", "loopback", "router_id", "asn", "config", "interfaces", "announce"):
        assert key in tor
    assert tor["config"] == "r001-tor1/frr.conf"
    host = next(d for d in data["devices"] if d["role"] == "host")
    assert host["config"] is None and "asn" not in host
    link = data["links"][0]
    assert set(link) == {"a", "b", "prefix", "rack", "tor", "uplink", "mtu"}
    assert link["mtu"] == 9000
    assert set(link["a"]) == {"device", "interface", "address"}
    net = data["networks"][0]
    assert set(net) == {"rack", "role", "prefix", "gateway", "vlan", "mtu", "device", "interface"}
    assert {p["name"] for p in data["pools"]} == {"loopbacks", "links", "mgmt", "storage", "service", "vm"}


def test_topology_json_without_bgp_has_no_asn() -> None:
    data = json.loads(render_topology(plan_of(make_doc(routing="ospf"))))
    assert all("asn" not in d for d in data["devices"])
    assert data["fabric"]["spine_asn"] is None


def test_plan_csv_is_sorted_complete_and_unique(base_plan: Plan) -> None:
    lines = render_csv(base_plan).splitlines()
    assert lines[0] == HEADER
    rows = [line.split(",") for line in lines[1:]]
    assert all(len(row) == len(HEADER.split(",")) for row in rows)
    values = [law.ip_to_int(row[0]) for row in rows]
    assert values == sorted(values) and len(values) == len(set(values))
    expected = sum(1 for d in base_plan.devices.values() for i in d.interfaces if i.address)
    assert len(rows) == expected


def test_plan_csv_sorted_when_pools_are_out_of_order() -> None:
    doc = make_doc(pools={"loopbacks": "172.16.0.0/20", "links": "10.200.0.0/20"})
    values = [law.ip_to_int(line.split(",")[0]) for line in render_csv(plan_of(doc)).splitlines()[1:]]
    assert values == sorted(values)


def test_fabric_md_has_pools_with_utilisation(lab_plan: Plan) -> None:
    text = render_fabric_md(lab_plan)
    assert "| `loopbacks` | 10.255.0.0/22 | 1024 addresses | 11 | 1.1 % |" in text
    assert "| `mgmt` | 10.0.0.0/20 | 16 /24 subnets | 3 | 18.8 % |" in text
    assert "[r002](racks/r002.md)" in text


def test_rack_pages(lab_plan: Plan) -> None:
    pages = render_docs(lab_plan)
    assert sorted(pages) == ["fabric.md", "racks/r001.md", "racks/r002.md", "racks/r003.md"]
    page = pages["racks/r001.md"]
    assert "| r001-tor1 | up3 | 10.254.0.21/31 | spine01 | r1t1u3 | 10.254.0.20/31 | 10.254.0.20/31 |" in page
    assert "| r001-h02 | 10.255.0.54/32 | — | 10.0.1.11/24 |" in page
    assert docs_renderer.rack_page_name(12) == "racks/r012.md"


def test_rack_name_in_title() -> None:
    plan = plan_of(make_doc(racks=[{"id": 1, "name": "row-A-07"}]))
    assert render_docs(plan)["racks/r001.md"].startswith("# Rack 1 (`r001`) — row-A-07")


@pytest.mark.parametrize("racks", [3, 500])
def test_svg_is_well_formed(racks: int) -> None:
    plan = plan_of(scale_doc(racks, hosts=1))
    root = ElementTree.fromstring(render_svg(plan))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lines = root.findall(".//{http://www.w3.org/2000/svg}line")
    assert len(lines) == len(plan.links)
    assert float(root.get("width", "0")) > 0


def test_render_all_writes_everything_then_is_idempotent(lab_plan: Plan, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = render_all(lab_plan, out, frr=False)
    assert first.files == sorted(NON_FRR)
    assert first.created == first.files and first.changed
    assert (out / MANIFEST).read_text().splitlines() == first.files
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    mtimes = {rel: (out / rel).stat().st_mtime_ns for rel in first.files}
    second = render_all(lab_plan, out, frr=False)
    assert not second.changed and second.created == second.modified == second.removed == []
    assert {rel: (out / rel).stat().st_mtime_ns for rel in first.files} == mtimes
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary directories left


def test_render_all_modifies_and_removes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_all(plan_of(make_doc()), out, frr=False)
    (out / "notes.txt").write_text("mine")  # not ours: never removed
    smaller = make_doc(racks=[{"id": 1, "uplinks": 3}, {"id": 2}])
    result = render_all(plan_of(smaller), out, frr=False)
    assert result.removed == ["racks/r003.md"]
    assert "topology.json" in result.modified and "racks/r001.md" not in result.modified
    assert not (out / "racks" / "r003.md").exists()
    assert (out / "notes.txt").read_text() == "mine"


def test_check_mode_writes_nothing(lab_plan: Plan, tmp_path: Path) -> None:
    out = tmp_path / "missing-parent" / "out"
    result = render_all(lab_plan, out, frr=False, check=True)
    assert result.changed and result.created == sorted(NON_FRR)
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "out"
    render_all(lab_plan, out, frr=False)
    (out / "plan.csv").write_text("tampered\n")
    result = render_all(lab_plan, out, frr=False, check=True)
    assert result.modified == ["plan.csv"] and result.changed_files == ["plan.csv"]
    assert (out / "plan.csv").read_text() == "tampered\n"


def test_failure_while_rendering_leaves_output_untouched(
    lab_plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    render_all(lab_plan, out, frr=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def explode(plan: Plan) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(tree, "render_svg", explode)
    with pytest.raises(RuntimeError, match="boom"):
        render_all(plan_of(make_doc()), out, frr=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_symlinked_out_dir(lab_plan: Plan, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    result = render_all(lab_plan, link, frr=False)
    assert result.out_dir == str(link) and (real / "topology.json").exists()
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_out_dir_must_be_a_directory(lab_plan: Plan, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError):
        render_all(lab_plan, target, frr=False)


def test_render_all_with_frr_configs(lab_plan: Plan, tmp_path: Path) -> None:
    result = render_all(lab_plan, tmp_path / "out", frr=True)
    configs = [rel for rel in result.files if rel.endswith("/frr.conf")]
    assert configs == sorted(f"{d.name}/frr.conf" for d in lab_plan.routers())
    text = (tmp_path / "out" / "r001-tor1" / "frr.conf").read_text()
    assert "hostname r001-tor1" in text


def test_bgp_hosts_get_frr_configs(tmp_path: Path) -> None:
    plan = plan_of(make_doc(bgp={"hosts": True}))
    result = render_all(plan, tmp_path / "out")
    assert "r001-h01/frr.conf" in result.files
