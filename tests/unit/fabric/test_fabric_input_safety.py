# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Input safety (issue 17, item 6): maximum_paths against the widest ECMP, invalid UTF-8, alias
bombs, unusable output paths, Markdown escaping and whois input -- in every face (engine, CLI,
module, filters) where each applies: refused with a key path, never a traceback."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fabric_testlib import EXAMPLE_500, LAB_FILE, LAB_OSPF_FILE, make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import FabricValidationError
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.intent import PRESENT, intent_from_plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import (
    MAX_DEPTH,
    MAX_EXPANSION,
    load_fabric,
    read_fabric_file,
    structure_problems,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import tree
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.docs import md_text, render_docs
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.validate import check
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.whois import (
    RESERVED,
    WhoisIndex,
    parse_address,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric_cli import main

BAD_UTF8 = b"name: lab\nracks:\n  - {id: 1, name: caf\xe9}\n"
BOMB_LEVELS = 9  # 9**9 = 387 420 489 leaves once expanded


def bomb_text(levels: int = BOMB_LEVELS) -> str:
    """The "billion laughs" document: each level lists the previous one 9 times."""
    lines = ["name: lab", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def bomb_data(levels: int = BOMB_LEVELS) -> dict[str, Any]:
    """The same bomb as Python data (what a YAML loader gives for aliases: shared lists)."""
    node: list[Any] = ["lol"] * 9
    for _level in range(levels):
        node = [node] * 9
    return {**make_doc(), "racks": node}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def error_paths(exc: FabricValidationError) -> list[str]:
    return [error.path for error in exc.errors]


# ------------------------------------------------------------------------------------ maximum_paths
def max_paths_errors(doc: dict[str, Any]) -> list[str]:
    return [str(error) for error in check(doc)[1] if error.path == "bgp.maximum_paths"]


def test_maximum_paths_below_the_uplink_count_is_an_error() -> None:
    doc = make_doc(bgp={"maximum_paths": 2}, racks=[{"id": 1, "uplinks": 3}, {"id": 2}])
    (message,) = max_paths_errors(doc)
    assert message.startswith("bgp.maximum_paths: smaller than the widest ECMP: a ToR of rack 1")
    assert "has 3 uplinks; needs maximum_paths >= 3 (value: 2)" in message
    assert max_paths_errors(make_doc(bgp={"maximum_paths": 3}, racks=[{"id": 1, "uplinks": 3}])) == []


def test_maximum_paths_covers_the_spine_side() -> None:
    # 2 ToRs x 4 uplinks over 2 spines: each spine reaches the rack over 2 x 2 = 4 links
    doc = make_doc(bgp={"maximum_paths": 3}, defaults={"tors": 2, "uplinks": 4, "hosts": 0})
    messages = max_paths_errors(doc)
    assert any("spine01 reaches rack" in m and "4 links (2 ToRs x 2)" in m for m in messages)
    # names pin three uplinks of each of 2 ToRs on spine02: 6 paths from spine02 to the rack
    named = make_doc(
        bgp={"maximum_paths": 5},
        defaults={"tors": 2, "uplinks": 1, "hosts": 0},
        racks=[{"id": 1, "uplinks": ["spine02", "spine01", "spine02", "spine02"]}, {"range": [2, 9]}],
    )
    (message,) = max_paths_errors(named)
    assert "spine02 reaches rack 1 (racks[0]) over 6 links (2 ToRs x 3)" in message
    assert "needs maximum_paths >= 6 (value: 5)" in message


def test_maximum_paths_covers_bgp_hosts_and_ospf() -> None:
    hosts = make_doc(bgp={"maximum_paths": 1, "hosts": True}, defaults={"tors": 2, "uplinks": 1, "hosts": 2})
    hosts["spines"] = [{"id": 1}]
    hosts["racks"] = [{"range": [1, 3]}]
    messages = max_paths_errors(hosts)
    assert any("a host of racks 1..3 (racks[0]) peers with 2 ToRs" in m for m in messages)
    ospf = make_doc(routing="ospf", bgp={"maximum_paths": 2}, racks=[{"id": 1, "uplinks": 4}])
    assert len(max_paths_errors(ospf)) == 1  # OSPF uses bgp.maximum_paths too


def test_maximum_paths_error_is_collected_with_the_others() -> None:
    doc = make_doc(link_mtu=1, bgp={"maximum_paths": 1})
    paths = [error.path for error in check(doc)[1]]
    assert "link_mtu" in paths and "bgp.maximum_paths" in paths


@pytest.mark.parametrize(
    "doc",
    [
        make_doc(defaults={"tors": 2, "uplinks": 4, "hosts": 1}, spines=[{"id": 1}, {"id": 2}, {"id": 3}]),
        make_doc(racks=[{"id": 1, "tors": 2, "uplinks": ["spine01", "spine01", "spine02"]}, {"id": 2}]),
        make_doc(bgp={"hosts": True}, defaults={"tors": 2, "uplinks": 3, "hosts": 2}),
    ],
)
def test_required_width_is_the_widest_path_count_of_the_intent(doc: dict[str, Any]) -> None:
    """The width validation requires is what the route intent expects somewhere (BGP fabrics)."""
    plan = plan_of(doc)
    widest = max(
        count
        for device in intent_from_plan(plan).values()
        for count in device.routes.values()
        if count != PRESENT
    )
    doc["bgp"] = {**doc.get("bgp", {}), "maximum_paths": widest}
    assert max_paths_errors(doc) == []
    doc["bgp"]["maximum_paths"] = widest - 1
    assert max_paths_errors(doc), widest


@pytest.mark.parametrize("path", [LAB_FILE, LAB_OSPF_FILE, EXAMPLE_500])
def test_bundled_fabrics_pass(path: Path) -> None:
    load_fabric(path)


def test_maximum_paths_in_every_face(tmp_path: Path) -> None:
    doc = make_doc(bgp={"maximum_paths": 1})
    fabric_file = write(tmp_path / "paths.yml", yaml.safe_dump(doc))
    code, out, err = run("validate", str(fabric_file))
    assert code == 1 and out == "" and "bgp.maximum_paths: smaller than the widest ECMP" in err
    from ansible_collections.compleat.cloud.plugins.filter import fabric as filters

    assert {p["path"] for p in filters.fabric_validate(doc)} == {"bgp.maximum_paths"}


# ------------------------------------------------------------------------------------ UTF-8
def test_invalid_utf8_names_line_column_and_byte(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yml", BAD_UTF8)
    with pytest.raises(FabricValidationError) as caught:
        read_fabric_file(path)
    (error,) = caught.value.errors
    assert error.path == "line 3" and error.value == str(path)
    assert "not valid UTF-8: byte 0xe9 at line 3, column 22" in error.message


@pytest.mark.parametrize("command", ["validate", "render", "whois"])
def test_invalid_utf8_cli(tmp_path: Path, command: str) -> None:
    path = write(tmp_path / "bad.yml", BAD_UTF8)
    extra = {"validate": [], "render": [str(tmp_path / "out")], "whois": ["10.0.0.1"]}[command]
    code, out, err = run(command, str(path), *extra)
    assert code == 1 and out == ""
    assert "line 3: not valid UTF-8" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ alias bombs
def test_alias_bomb_file_is_refused_fast(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.yml", bomb_text())
    started = time.perf_counter()
    with pytest.raises(FabricValidationError) as caught:
        read_fabric_file(path)
    elapsed = time.perf_counter() - started
    print(f"alias bomb of {BOMB_LEVELS} levels (9**{BOMB_LEVELS} leaves) refused in {elapsed * 1000:.2f} ms")
    (error,) = caught.value.errors
    assert error.path == "line 3" and error.value == "*l0"
    assert "aliases are not allowed in a fabric file" in error.message


def test_any_alias_is_refused_merge_keys_too(tmp_path: Path) -> None:
    text = LAB_FILE.read_text().replace("name: lab", "name: lab\nx: &shape {tors: 1}\ny: {<<: *shape}", 1)
    with pytest.raises(FabricValidationError, match=r"YAML alias at line [0-9]+, column 9"):
        read_fabric_file(write(tmp_path / "merge.yml", text))


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.yml", "name: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(FabricValidationError, match=f"nested deeper than {MAX_DEPTH} levels"):
        read_fabric_file(path)


def test_bomb_data_is_refused_fast() -> None:
    started = time.perf_counter()
    problems = structure_problems(bomb_data())
    elapsed = time.perf_counter() - started
    print(f"alias bomb as data refused in {elapsed * 1000:.2f} ms")
    (error,) = problems
    assert f"would expand by more than {MAX_EXPANSION} nodes" in error.message
    with pytest.raises(FabricValidationError, match="would expand"):
        load_fabric(bomb_data())


def test_cyclic_and_deep_data_are_refused() -> None:
    doc = make_doc()
    doc["defaults"]["self"] = doc
    assert "refers to itself" in structure_problems(doc)[0].message
    deep: list[Any] = []
    for _level in range(MAX_DEPTH + 5):
        deep = [deep]
    assert "nested deeper" in structure_problems(make_doc(racks=deep))[0].message
    shared = {"tors": 1}
    assert structure_problems(make_doc(racks=[shared, shared])) == []  # modest sharing is fine


def test_alias_bomb_cli(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.yml", bomb_text())
    for argv in (["validate", str(path)], ["render", str(path), str(tmp_path / "out")]):
        code, out, err = run(*argv)
        assert code == 1 and out == "" and "aliases are not allowed" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ output path
def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    target = write(tmp_path / "out", "a file\n")
    (error,) = tree.output_problems(target)
    assert (error.path, error.value) == ("dest", str(target))
    assert "exists and is not a directory" in error.message
    (error,) = tree.output_problems(target / "sub", label="OUT")
    assert error.path == "OUT" and f"{target} is not a directory" in error.message
    code, out, err = run("render", str(LAB_FILE), str(target))
    assert code == 1 and out == "" and "Traceback" not in err
    assert f"OUT: the output path exists and is not a directory (value: '{target}')" in err
    assert target.read_text() == "a file\n"
    code, _out, err = run("render", "--check", str(LAB_FILE), str(target))
    assert code == 1 and "not a directory" in err


def test_output_problems_are_collected_with_fabric_problems(tmp_path: Path) -> None:
    target = write(tmp_path / "out", "x")
    bad = write(tmp_path / "bad.yml", yaml.safe_dump(make_doc(link_mtu=1)))
    code, _out, err = run("render", str(bad), str(target))
    assert code == 1 and "2 errors; nothing was written" in err
    assert "  OUT: the output path" in err and "  link_mtu: " in err


def deny_writes(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """os.access as for a non-root user without write permission on ``denied`` (tests run as root)."""
    real = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if Path(path) == denied and mode & os.W_OK:
            return False
        return real(path, mode, **kwargs)

    monkeypatch.setattr(tree.os, "access", access)


def test_unwritable_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    deny_writes(monkeypatch, parent)
    (error,) = tree.output_problems(parent / "out")
    assert f"{parent} is not writable" in error.message
    (error,) = tree.output_problems(parent)
    assert error.message == "the output directory is not writable"
    code, out, err = run("render", str(LAB_FILE), str(parent / "out"))
    assert code == 1 and out == "" and "is not writable" in err and "Traceback" not in err
    assert list(parent.iterdir()) == []


def test_write_failure_despite_the_checks_is_reported(tmp_path: Path) -> None:
    """/proc refuses new directories even to root, whom os.access lets through."""
    target = "/proc/compleat-fabric-test/out"
    started = time.perf_counter()
    code, out, err = run("render", str(LAB_FILE), target)
    print(f"render into {target} refused in {(time.perf_counter() - started) * 1000:.1f} ms")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith(f"{target}:")


# ------------------------------------------------------------------------------------ Markdown
def test_md_text_escapes_markdown_and_html() -> None:
    assert md_text("row-a 01") == "row-a 01"
    assert md_text("a|b") == "a\\|b"
    assert md_text("[x](http://e) <b>*_`#~&!\\") == "\\[x\\]\\(http://e\\) \\<b\\>\\*\\_\\`\\#\\~\\&\\!\\\\"
    assert md_text("two\nlines\r\x00\u2028") == "two lines   "


def test_rack_name_cannot_break_the_rack_page() -> None:
    name = "evil | [x](javascript:1) <img src=x> # *b* `c`\nnew"
    plan = plan_of(make_doc(racks=[{"id": 1, "name": name}, {"id": 2}], networks=None))
    page = render_docs(plan)["racks/r001.md"]
    title = page.splitlines()[0]
    assert title == (
        "# Rack 1 (`r001`) — evil \\| \\[x\\]\\(javascript:1\\) \\<img src=x\\> \\# \\*b\\* \\`c\\` new"
    )
    for line in page.splitlines():
        if line.startswith("|"):
            assert "evil" not in line


def test_network_role_headers_are_escaped() -> None:
    networks = {"mgmt_a": {"pool": "10.0.0.0/18", "prefix_len": 24, "vlan": 10}}
    text = render_docs(plan_of(make_doc(networks=networks)))["fabric.md"]
    assert "| ToR loopbacks | mgmt\\_a | page |" in text
    assert "| `mgmt_a` |" in text  # code spans stay literal


# ------------------------------------------------------------------------------------ whois
@pytest.fixture(scope="module")
def lab_index() -> WhoisIndex:
    return WhoisIndex(load_fabric(LAB_FILE))


@pytest.mark.parametrize(
    "address",
    [
        "10.255.0.5",  # loopback slot of ToR 1 of rack 0 (4 spines + 1 + 0)
        "10.255.0.6",  # ToR 2 of rack 0
        "10.255.0.37",  # host 1 of rack 0 (4 + 1 + 16*2)
        "10.254.0.0",  # link (0, 1, 1), spine side
        "10.254.0.15",  # link (0, 2, 4), ToR side: the last /31 of rack 0
    ],
)
def test_whois_rack0_slots_are_reserved(lab_index: WhoisIndex, address: str) -> None:
    owner = lab_index.lookup(address)
    assert owner.status == RESERVED and owner.device is None
    assert "rack id 0" in owner.note and "r000" not in owner.describe()


def test_whois_rack1_still_answers(lab_index: WhoisIndex) -> None:
    assert lab_index.lookup("10.254.0.16").status != RESERVED  # first link of rack 1
    assert lab_index.lookup("10.255.0.7").device == "r001-tor1"


def test_whois_refuses_prefixes() -> None:
    with pytest.raises(ValueError, match=r"a network prefix \(10.0.0.0/8\), not an address"):
        parse_address("10.0.0.0/8")
    with pytest.raises(ValueError, match="not an IPv4 address"):
        parse_address("10.0.0")
    assert parse_address("10.0.2.1/24") == parse_address("10.0.2.1")  # an interface address
    assert parse_address("10.254.0.196/31") == parse_address("10.254.0.196")
    code, out, err = run("whois", str(LAB_FILE), "10.0.0.0/8", "10.255.0.1")
    assert code == 1 and "spine01" in out
    assert "10.0.0.0/8: a network prefix (10.0.0.0/8), not an address: whois takes one address" in err
    code, out, _err = run("whois", "--json", str(LAB_FILE), "10.0.0.0/8")
    assert code == 1 and json.loads(out) == []


# ------------------------------------------------------------------------------------ Ansible faces
@pytest.fixture
def ansible_faces() -> tuple[Any, Any, Any]:
    from ansible.errors import AnsibleFilterError

    from ansible_collections.compleat.cloud.plugins.filter import fabric as filters
    from ansible_collections.compleat.cloud.plugins.modules import fabric_render

    return filters, fabric_render, AnsibleFilterError


def run_module(capsys: pytest.CaptureFixture[str], module: Any, args: dict[str, Any]) -> dict[str, Any]:
    from modargs import patch_module_args

    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_filters_refuse_bad_input(tmp_path: Path, ansible_faces: tuple[Any, Any, Any]) -> None:
    filters, _module, filter_error = ansible_faces
    utf8 = str(write(tmp_path / "bad.yml", BAD_UTF8))
    bomb = str(write(tmp_path / "bomb.yml", bomb_text()))
    for name in ("fabric_plan", "fabric_whois"):
        call = getattr(filters, name)
        args = ("10.0.0.1",) if name == "fabric_whois" else ()
        with pytest.raises(filter_error, match="line 3: not valid UTF-8"):
            call(*args, utf8)
        with pytest.raises(filter_error, match="aliases are not allowed"):
            call(*args, bomb)
        started = time.perf_counter()
        with pytest.raises(filter_error, match="would expand by more than"):
            call(*args, bomb_data())
        assert time.perf_counter() - started < 30  # generous: the unguarded copy would never end
    assert "not valid UTF-8" in filters.fabric_validate(utf8)[0]["message"]
    assert "aliases are not allowed" in filters.fabric_validate(bomb)[0]["message"]
    assert "would expand" in filters.fabric_validate(bomb_data())[0]["message"]
    with pytest.raises(filter_error, match=r"'10.0.0.0/8': a network prefix"):
        filters.fabric_whois("10.0.0.0/8", str(LAB_FILE))
    assert filters.fabric_whois("10.255.0.5", str(LAB_FILE))["status"] == RESERVED


def test_module_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ansible_faces: tuple[Any, Any, Any]
) -> None:
    _filters, module, _error = ansible_faces
    dest = tmp_path / "out"
    for content, expected in ((BAD_UTF8, "not valid UTF-8"), (bomb_text(), "aliases are not allowed")):
        src = write(tmp_path / "in.yml", content)
        result = run_module(capsys, module, {"src": str(src), "dest": str(dest)})
        assert result["failed"] is True and result["errors"][0]["path"] == "line 3"
        assert expected in result["msg"] and not dest.exists()
    write(dest, "a file\n")
    result = run_module(capsys, module, {"src": str(LAB_FILE), "dest": str(dest)})
    assert result["failed"] is True
    assert result["errors"] == [
        {"path": "dest", "value": str(dest), "message": "the output path exists and is not a directory"}
    ]
    result = run_module(capsys, module, {"src": str(LAB_FILE), "dest": "/proc/compleat-fabric-test/out"})
    assert result["failed"] is True and "cannot write" in result["msg"]
