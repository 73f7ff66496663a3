# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.dns_zones (plugins/modules/dns_zones.py, plugins/module_utils/dns_zones.py):
the zone bundle installer (all or nothing, check mode, diff, idempotent)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from module_run import Runner, module_runner
from services_testlib import DOC, ROOT, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils import dns_zones as lib
from ansible_collections.compleat.cloud.plugins.module_utils.atomic_file import parse_mode
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import dns
from ansible_collections.compleat.cloud.plugins.modules import dns_zones

needs_checkzone = pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="bind9-utils missing")
ZONES = dns.render_dns(plan_of(DOC), nameservers=[{"name": "ns1", "address": "10.0.1.10"}])


def bundle_of(zones: list[dns.Zone], header: str = "; managed\n; compleat.cloud.dns zone bundle\n") -> str:
    """What roles/dns/templates/zones.bundle.j2 renders."""
    return header + "".join(f";; compleat-zone {z.name} db.{z.name}\n{z.text}" for z in zones)


BUNDLE = bundle_of(ZONES)


# ------------------------------------------------------------------------------------ pure functions
def test_parse_bundle_round_trip() -> None:
    parsed = lib.parse_bundle(BUNDLE)
    assert [(z.origin, z.file) for z in parsed] == [(z.name, f"db.{z.name}") for z in ZONES]
    assert [z.text for z in parsed] == [z.text for z in ZONES]
    assert lib.split_header(BUNDLE)[0] == "; managed\n; compleat.cloud.dns zone bundle\n"


def test_role_template_renders_what_the_module_parses() -> None:
    template = (ROOT / "roles" / "dns" / "templates" / "zones.bundle.j2").read_text(encoding="utf-8")
    assert ";; compleat-zone {{ zone.name }} {{ zone.file }}\n{{ zone.text }}{% endfor %}" in template
    assert "compleat.cloud.dns_zones" in template


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (";; compleat-zone a.test ../etc/passwd\n", "unsafe zone file name"),
        (";; compleat-zone a.test db.a\nx\n;; compleat-zone b.test db.a\ny\n", "db.a appears twice"),
        ("$TTL 1\n;; compleat-zone a.test db.a\n", "before the first zone marker"),
        (";; compleat-zone a.test db.a\nA\n;; compleat-zone b.test db.b extra\n", "malformed zone marker"),
        ("; only a header\n", "holds no zone"),
    ],
)
def test_parse_bundle_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lib.parse_bundle(text)


def test_plan_changes() -> None:
    zones = lib.parse_bundle(";; compleat-zone a.test db.a\nA\n;; compleat-zone b.test db.b\nB\n")
    same = lib.plan_changes(zones, {"db.a": "A\n", "db.b": "B\n"}, "x", "x")
    assert not same.changed
    changes = lib.plan_changes(zones, {"db.a": "edited", "db.old": "O"}, None, "x")
    assert [z.file for z in changes.write] == ["db.a", "db.b"] and changes.remove == ["db.old"]
    assert changes.bundle and changes.changed


def test_installed_as_bundle_reads_like_the_bundle() -> None:
    zones = lib.parse_bundle("; new\n;; compleat-zone a.test db.a\nA\n;; compleat-zone b.test db.b\nB\n")
    before = lib.installed_as_bundle(zones, {"db.b": "B\n", "db.old": "O\n"}, "; old\n;; compleat-zone x y\n")
    assert before == "; old\n;; compleat-zone b.test db.b\nB\n;; compleat-zone old db.old\nO\n"
    assert lib.installed_as_bundle(zones, {}, None) == ""


def test_parse_mode_and_bundle_name() -> None:
    assert parse_mode("0640") == 0o640 and parse_mode(0o600) == 0o600
    for bad in ("rw", "99999", -1):
        with pytest.raises(ValueError, match="mode: "):
            parse_mode(bad)
    dns_zones.check_bundle_name("zones.bundle")
    for bad in ("../x", "db.bundle", ""):
        with pytest.raises(ValueError, match="bundle: "):
            dns_zones.check_bundle_name(bad)


# ------------------------------------------------------------------------------------ the module
@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    return module_runner(dns_zones, capsys, monkeypatch)


def listing(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir())}


@needs_checkzone
def test_module_installs_then_is_idempotent_and_prunes(tmp_path: Path, run: Runner) -> None:
    (tmp_path / "db.gone.test").write_text("old", encoding="utf-8")
    args = {"content": BUNDLE, "path": str(tmp_path), "group": None, "mode": "0640"}
    first = run(args)
    assert first["changed"] and first["zones"] == len(ZONES) and first["bundle_changed"]
    assert first["written"] == [f"db.{z.name}" for z in ZONES] and first["removed"] == ["db.gone.test"]
    files = listing(tmp_path)
    assert files.pop("zones.bundle") == BUNDLE
    assert files == {f"db.{z.name}": z.text for z in ZONES}
    assert oct((tmp_path / f"db.{ZONES[0].name}").stat().st_mode & 0o777) == "0o640"
    again = run(args, diff=True)
    assert not again["changed"] and again["written"] == again["removed"] == [] and "diff" not in again
    # a hand edit is repaired, and only that file is written
    (tmp_path / f"db.{ZONES[1].name}").write_text("edited", encoding="utf-8")
    repaired = run(args)
    assert repaired["written"] == [f"db.{ZONES[1].name}"] and not repaired["bundle_changed"]
    assert (tmp_path / f"db.{ZONES[1].name}").read_text(encoding="utf-8") == ZONES[1].text


@needs_checkzone
def test_check_mode_reports_and_diffs_without_writing(tmp_path: Path, run: Runner) -> None:
    run({"content": BUNDLE, "path": str(tmp_path)})
    before = listing(tmp_path)
    edited = BUNDLE.replace(ZONES[0].text, ZONES[0].text + "extra IN A 10.0.0.99\n", 1)
    result = run({"content": edited, "path": str(tmp_path)}, check=True, diff=True)
    assert result["changed"] and result["written"] == [f"db.{ZONES[0].name}"]
    assert result["diff"]["before"] == BUNDLE and result["diff"]["after"] == edited
    assert listing(tmp_path) == before
    fresh = run({"content": BUNDLE, "path": str(tmp_path / "missing"), "group": "no-such-group"}, check=True)
    assert fresh["changed"] and len(fresh["written"]) == len(ZONES) and not (tmp_path / "missing").exists()
    assert "no-such-group" in " ".join(fresh["warned"])


@needs_checkzone
def test_module_is_all_or_nothing(tmp_path: Path, run: Runner) -> None:
    broken = BUNDLE.replace(" IN SOA ", " IN SOAX ", 1)
    for check in (True, False):
        result = run({"content": broken, "path": str(tmp_path)}, check=check)
        assert result["failed"] and "rejected by named-checkzone, nothing written" in result["msg"]
        assert result["errors"][0].startswith(f"{ZONES[0].name}: ")
        assert not list(tmp_path.iterdir())


@needs_checkzone
def test_every_zone_is_checked_when_the_bundle_changes(tmp_path: Path, run: Runner) -> None:
    """A zone file that matches the bundle is still checked when the bundle changed (as the role's
    template validation of the bundle did)."""
    broken = BUNDLE.replace("IN NS", "IN NSX", 1)
    for zone in lib.parse_bundle(broken):
        (tmp_path / zone.file).write_text(zone.text, encoding="utf-8")
    result = run({"content": broken, "path": str(tmp_path)})
    assert result["failed"] and "rejected by named-checkzone" in result["msg"]
    assert not (tmp_path / "zones.bundle").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"content": "x\n"}, "data before the first zone marker"),
        ({"mode": "u+rw"}, "mode: 'u+rw' is not an octal file mode"),
        ({"bundle": "db.all"}, "bundle: 'db.all' must be a plain file name"),
        ({"group": "no-such-group"}, "group: no group named 'no-such-group'"),
        ({"path": "/nonexistent/compleat"}, "path: /nonexistent/compleat is not a directory"),
    ],
)
def test_module_errors_name_the_option(
    tmp_path: Path, run: Runner, args: dict[str, Any], message: str
) -> None:
    result = run({"content": BUNDLE, "path": str(tmp_path), **args})
    assert result["failed"] and message in result["msg"]
    assert not list(tmp_path.iterdir())


def test_missing_checkzone_fails_outside_check_mode(
    tmp_path: Path, run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(dns_zones.AnsibleModule, "get_bin_path", lambda *_a, **_k: None)
    result = run({"content": BUNDLE, "path": str(tmp_path)})
    assert result["failed"] and "install bind9-utils" in result["msg"] and not list(tmp_path.iterdir())
    checked = run({"content": BUNDLE, "path": str(tmp_path)}, check=True)
    assert checked["changed"] and "were not checked" in " ".join(checked["warned"])


def test_group_is_applied(tmp_path: Path, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lib, "check_zones", lambda _checkzone, _zones: [])
    group = __import__("grp").getgrgid(os.getgid()).gr_name
    assert run({"content": BUNDLE, "path": str(tmp_path), "group": group})["changed"]
    assert {p.stat().st_gid for p in tmp_path.iterdir()} == {os.getgid()}
