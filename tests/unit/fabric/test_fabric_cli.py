# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The command line: validate, render, whois, schema; exit codes; output directory untouched."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fabric_testlib import DOC_FILE, LAB_FILE, ROOT

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import MANIFEST
from ansible_collections.compleat.cloud.plugins.module_utils.fabric_cli import main

BAD = """\
name: bad
limits: {max_racks: 16, tors_per_rack: 2, uplinks_per_tor: 4, hosts_per_rack: 16, spines: 4}
pools: {loopbacks: 10.255.0.0/22, links: 10.254.0.0/24}
networks:
  mgmt: {pool: 10.0.0.1/20, prefix_len: 24, vlan: 10}
  storage: {pool: 10.0.0.0/20, prefix_len: 24, vlan: 10, mtu: 12000}
spines: [{id: 1}, {id: 1}]
racks:
  - {id: 1, uplinks: [spine01, spine07]}
  - {id: 16}
bgp: {spine_asn: 65000, colour: blue}
"""
BAD_PATHS = [
    "bgp.colour",
    "bgp.spine_asn",
    "networks.mgmt.pool",
    "networks.storage.mtu",
    "networks.storage.vlan",
    "racks[0].uplinks[1]",
    "racks[1].id",
    "spines[1].id",
]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yml"
    path.write_text(BAD)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_validate_ok() -> None:
    code, out, _err = run("validate", str(LAB_FILE))
    assert code == 0
    assert "valid fabric lab (bgp): 2 spines, 3 racks, 3 ToRs, 6 hosts, 7 links" in out
    code, out, _err = run("validate", "--json", str(LAB_FILE))
    assert code == 0 and json.loads(out)["tors"] == 3


def test_validate_lists_every_error_with_its_path(bad_file: Path) -> None:
    code, out, err = run("validate", str(bad_file))
    assert code == 1 and out == ""
    assert "8 errors" in err
    listed = [line.split(":")[0].strip() for line in err.splitlines()[1:]]
    assert listed == BAD_PATHS
    code, out, _err = run("validate", "--json", str(bad_file))
    data = json.loads(out)
    assert code == 1 and data["valid"] is False
    assert [e["path"] for e in data["errors"]] == BAD_PATHS


def test_render_with_errors_leaves_output_untouched(bad_file: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    code, _out, err = run("render", str(bad_file), str(fresh))
    assert code == 1 and "nothing was written" in err
    assert all(path in err for path in BAD_PATHS)
    assert not fresh.exists()
    existing = tmp_path / "existing"
    assert run("render", "--no-frr", str(LAB_FILE), str(existing))[0] == 0
    before = snapshot(existing)
    code, _out, _err = run("render", str(bad_file), str(existing))
    assert code == 1
    assert snapshot(existing) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yml", "existing"]


def test_render_and_check(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, out, _err = run("render", "--check", "--no-frr", str(LAB_FILE), str(out_dir))
    assert code == 0 and "would change: 7 created" in out and "  topology.json" in out
    assert not out_dir.exists()
    code, out, _err = run("render", "--no-frr", str(LAB_FILE), str(out_dir))
    assert code == 0 and "changed: 7 created, 0 modified, 0 removed" in out
    assert (out_dir / MANIFEST).exists()
    code, out, _err = run("render", "--no-frr", str(LAB_FILE), str(out_dir))
    assert "changed: 0 created, 0 modified, 0 removed" in out


def test_whois_text_and_json() -> None:
    code, out, _err = run("whois", str(LAB_FILE), "10.254.0.21", "10.0.1.10", "192.0.2.1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("10.254.0.21: r001-tor1 up3 (tor, rack 1)")
    assert lines[1].startswith("10.0.1.10: r001-h01 mgmt (host, rack 1)")
    assert lines[2] == "192.0.2.1: outside every fabric pool"
    code, out, _err = run("whois", "--json", str(LAB_FILE), "10.255.0.1")
    assert json.loads(out) == [
        {
            "address": "10.255.0.1",
            "status": "assigned",
            "pool": "loopbacks",
            "pool_prefix": "10.255.0.0/22",
            "prefix": "10.255.0.1/32",
            "rack": None,
            "device": "spine01",
            "role": "spine",
            "interface": "lo",
            "network": "loopback",
            "vlan": None,
            "peer_device": None,
            "peer_interface": None,
            "note": "",
        }
    ]


def test_whois_bad_address_exits_1() -> None:
    code, out, err = run("whois", str(LAB_FILE), "10.0.1.10", "nonsense")
    assert code == 1 and "nonsense: not an IPv4 address" in err and "r001-h01" in out


def test_whois_invalid_fabric(bad_file: Path) -> None:
    assert run("whois", str(bad_file), "10.0.0.1")[0] == 1


def test_schema_doc_is_current() -> None:
    code, _out, err = run("schema", "--check", str(DOC_FILE))
    assert code == 0, err + "run: bin/compleat-fabric schema --update docs/fabric.md"


def test_schema_update_and_stale_check(tmp_path: Path) -> None:
    from ansible_collections.compleat.cloud.plugins.module_utils.fabric.schema import DOC_BEGIN, DOC_END

    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{DOC_BEGIN}\nold table\n{DOC_END}\noutro\n")
    assert run("schema", "--check", str(doc))[0] == 1
    assert run("schema", "--update", str(doc))[0] == 0
    assert run("schema", "--check", str(doc))[0] == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "| `bgp.spine_asn` |" in text
    code, out, _err = run("schema")
    assert code == 0 and out.startswith("| key | type |")


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as caught:
        run("frobnicate")
    assert caught.value.code == 2


def test_wrapper_script_runs_without_ansible(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "compleat-fabric"), "whois", str(LAB_FILE), "10.255.0.7"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("10.255.0.7: r001-tor1 lo (tor, rack 1)")


def test_wrapper_script_makes_the_collection_link_of_a_fresh_checkout(tmp_path: Path) -> None:
    """A checkout without build/collections (no bootstrap yet): the script links it and runs."""
    checkout = tmp_path / "checkout"
    (checkout / "bin").mkdir(parents=True)
    (checkout / "plugins").symlink_to(ROOT / "plugins", target_is_directory=True)
    script = checkout / "bin" / "compleat-fabric"
    script.write_bytes((ROOT / "bin" / "compleat-fabric").read_bytes())
    proc = subprocess.run(
        [sys.executable, str(script), "validate", "--json", str(LAB_FILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["valid"] is True
    link = checkout / "build" / "collections" / "ansible_collections" / "compleat" / "cloud"
    assert link.is_symlink() and link.resolve() == checkout.resolve()
