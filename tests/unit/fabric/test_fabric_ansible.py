# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ansible faces: filters, the fabric_render module, its docs, and the playbook."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from fabric_testlib import LAB_FILE, ROOT, make_doc
from modargs import patch_module_args

from ansible_collections.compleat.cloud.plugins.filter import fabric as filters
from ansible_collections.compleat.cloud.plugins.modules import fabric_render

ANSIBLE_ENV = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
BIN = ROOT / ".venv" / "bin"


# ------------------------------------------------------------------------------------ filters
def test_filters_are_registered() -> None:
    assert set(filters.FilterModule().filters()) == {"fabric_plan", "fabric_whois", "fabric_validate"}


def test_fabric_plan_from_dict_and_path() -> None:
    from_dict = filters.fabric_plan(yaml.safe_load(LAB_FILE.read_text()))
    from_path = filters.fabric_plan(str(LAB_FILE))
    assert from_dict == from_path
    assert from_dict["fabric"]["name"] == "lab"
    assert [d["name"] for d in from_dict["devices"] if d["role"] == "tor"] == [
        "r001-tor1",
        "r002-tor1",
        "r003-tor1",
    ]
    json.dumps(from_dict)  # plain data


def test_fabric_plan_is_cached() -> None:
    doc = make_doc()
    assert filters.fabric_plan(doc) is filters.fabric_plan(make_doc())


def test_fabric_whois_single_and_list() -> None:
    owner = filters.fabric_whois("10.254.0.21", str(LAB_FILE))
    assert (owner["device"], owner["interface"], owner["status"]) == ("r001-tor1", "up3", "assigned")
    owners = filters.fabric_whois(["10.0.1.10", "10.255.0.1"], str(LAB_FILE))
    assert [o["device"] for o in owners] == ["r001-h01", "spine01"]
    with pytest.raises(AnsibleFilterError, match="not an IPv4 address"):
        filters.fabric_whois("nope", str(LAB_FILE))


def test_invalid_fabric_raises_with_every_path() -> None:
    doc = make_doc(link_mtu=1, routing="rip")
    with pytest.raises(AnsibleFilterError) as caught:
        filters.fabric_plan(doc)
    assert "link_mtu" in str(caught.value) and "routing" in str(caught.value)
    with pytest.raises(AnsibleFilterError, match="fabric_plan: expected a fabric definition"):
        filters.fabric_plan(42)
    with pytest.raises(AnsibleFilterError, match="cannot read"):
        filters.fabric_whois("10.0.0.1", "/nonexistent/fabric.yml")


def test_fabric_validate() -> None:
    assert filters.fabric_validate(str(LAB_FILE)) == []
    problems = filters.fabric_validate(make_doc(link_mtu=1, routing="rip"))
    assert [p["path"] for p in problems] == ["link_mtu", "routing"]
    assert problems[0]["value"] == 1
    assert filters.fabric_validate("/nonexistent.yml")[0]["path"] == ""


# ------------------------------------------------------------------------------------ module
def run_module(args: dict[str, Any]) -> dict[str, Any]:
    """Run fabric_render.main with ``args``; return its JSON result."""
    with patch_module_args(args), pytest.raises(SystemExit):
        fabric_render.main()
    return json.loads(run_module.capsys.readouterr().out)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _capsys(capsys: pytest.CaptureFixture[str]) -> None:
    run_module.capsys = capsys  # type: ignore[attr-defined]


def test_module_renders_idempotently(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    first = run_module({"src": str(LAB_FILE), "dest": str(dest), "frr": False})
    assert first["changed"] is True and len(first["created"]) == 7
    assert first["summary"] == {
        "name": "lab",
        "routing": "bgp",
        "spines": 2,
        "racks": 3,
        "tors": 3,
        "hosts": 6,
        "links": 7,
    }
    second = run_module({"src": str(LAB_FILE), "dest": str(dest), "frr": False})
    assert second["changed"] is False and second["created"] == second["modified"] == []


def test_module_check_mode_and_diff(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    args = {
        "src": str(LAB_FILE),
        "dest": str(dest),
        "frr": False,
        "_ansible_check_mode": True,
        "_ansible_diff": True,
    }
    result = run_module(args)
    assert result["changed"] is True and not dest.exists()
    assert "+ topology.json" in result["diff"]["prepared"]
    run_module({"src": str(LAB_FILE), "dest": str(dest), "frr": False})
    (dest / "plan.csv").write_text("edited\n")
    result = run_module(args)
    assert result["modified"] == ["plan.csv"] and "~ plan.csv" in result["diff"]["prepared"]
    assert (dest / "plan.csv").read_text() == "edited\n"


def test_module_fails_listing_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(make_doc(link_mtu=1, routing="rip")))
    dest = tmp_path / "out"
    result = run_module({"src": str(bad), "dest": str(dest)})
    assert result["failed"] is True
    assert [e["path"] for e in result["errors"]] == ["link_mtu", "routing"]
    assert "2 errors" in result["msg"]
    assert not dest.exists()


def test_module_with_frr(tmp_path: Path) -> None:
    result = run_module({"src": str(LAB_FILE), "dest": str(tmp_path / "out")})
    assert "spine01/frr.conf" in result["files"]


# ------------------------------------------------------------------------------------ docs and playbook
DOCUMENTED = {
    "filter": ["compleat.cloud.fabric_plan", "compleat.cloud.fabric_whois", "compleat.cloud.fabric_validate"],
    "module": ["compleat.cloud.fabric_render"],
}


def ansible_doc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-doc"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**ANSIBLE_ENV, "PAGER": "cat"},
    )


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_ansible_doc(kind: str) -> None:
    # One ansible-doc run per plugin type and output (each start costs ~1 s of CPU), with the
    # same checks for every plugin as one run per plugin would make.
    names = DOCUMENTED[kind]
    proc = ansible_doc("-t", kind, "--json", *names)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted(names)
    for name in names:
        doc = docs[name]
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
        if kind == "module":
            assert set(doc["doc"]["attributes"]) == {"check_mode", "diff_mode", "platform"}
    text = ansible_doc("-t", kind, *names)
    assert text.returncode == 0 and "ERROR" not in text.stderr, text.stderr
    headers = [line for line in text.stdout.splitlines() if line.startswith(f"> {kind.upper()} ")]
    assert len(headers) == len(names) and all(any(n in h for h in headers) for n in names), headers


def test_playbook_renders_and_is_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [
        str(BIN / "ansible-playbook"),
        "playbooks/fabric_render.yml",
        "-e",
        f"fabric_file={LAB_FILE.relative_to(ROOT)}",
        "-e",
        f"fabric_out={out}",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=ANSIBLE_ENV)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=1" in first.stdout
    assert (out / "topology.json").exists() and (out / "racks" / "r001.md").exists()
    second = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=ANSIBLE_ENV)
    assert second.returncode == 0 and "changed=0" in second.stdout
