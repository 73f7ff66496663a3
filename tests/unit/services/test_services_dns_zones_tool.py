# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/dns/files/compleat_dns_zones.py: the zone bundle installer (all or nothing)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest
from role_files import load_role_file
from services_testlib import DOC, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import dns

needs_checkzone = pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="bind9-utils missing")


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_role_file("dns", "compleat_dns_zones.py")


def bundle_of(zones: list[dns.Zone]) -> str:
    """What roles/dns/templates/zones.bundle.j2 renders."""
    head = "; managed\n; compleat.cloud.dns zone bundle\n"
    return head + "".join(f";; compleat-zone {z.name} db.{z.name}\n{z.text}" for z in zones)


ZONES = dns.render_dns(plan_of(DOC), nameservers=[{"name": "ns1", "address": "10.0.1.10"}])


def test_parse_bundle_round_trip(tool: ModuleType) -> None:
    parsed = tool.parse_bundle(bundle_of(ZONES))
    assert [(o, f) for o, f, _text in parsed] == [(z.name, f"db.{z.name}") for z in ZONES]
    assert [t for _o, _f, t in parsed] == [z.text for z in ZONES]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (";; compleat-zone a.test ../etc/passwd\n", "unsafe zone file name"),
        (";; compleat-zone a.test db.a\nx\n;; compleat-zone b.test db.a\ny\n", "appears twice"),
        ("$TTL 1\n;; compleat-zone a.test db.a\n", "before the first zone marker"),
    ],
)
def test_parse_bundle_rejects(tool: ModuleType, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tool.parse_bundle(text)


@needs_checkzone
def test_install_writes_then_is_idempotent_and_prunes(tool: ModuleType, tmp_path: Path) -> None:
    zones = tool.parse_bundle(bundle_of(ZONES))
    (tmp_path / "db.gone.test").write_text("old", encoding="utf-8")
    (tmp_path / "zones.bundle").write_text("kept", encoding="utf-8")
    first = tool.install(zones, str(tmp_path), dry_run=False, mode=0o644, gid=None)
    assert first["changed"] and len(first["written"]) == len(ZONES)
    assert first["removed"] == ["db.gone.test"]
    assert (tmp_path / "zones.bundle").exists()
    assert (tmp_path / f"db.{ZONES[0].name}").read_text(encoding="utf-8") == ZONES[0].text
    assert oct((tmp_path / f"db.{ZONES[0].name}").stat().st_mode & 0o777) == "0o644"
    again = tool.install(zones, str(tmp_path), dry_run=False, mode=0o644, gid=None)
    assert again == {"changed": False, "written": [], "removed": []}
    # a hand edit is repaired
    (tmp_path / f"db.{ZONES[1].name}").write_text("edited", encoding="utf-8")
    repaired = tool.install(zones, str(tmp_path), dry_run=False, mode=0o644, gid=None)
    assert repaired["written"] == [f"db.{ZONES[1].name}"]


@needs_checkzone
def test_install_is_all_or_nothing(tool: ModuleType, tmp_path: Path) -> None:
    zones = tool.parse_bundle(bundle_of(ZONES))
    broken = [*zones[:-1], (zones[-1][0], zones[-1][1], zones[-1][2].replace(" IN SOA ", " IN SOAX "))]
    with pytest.raises(RuntimeError, match="nothing written"):
        tool.install(broken, str(tmp_path), dry_run=False, mode=0o644, gid=None)
    assert not list(tmp_path.iterdir())


@needs_checkzone
def test_dry_run_reports_without_writing(tool: ModuleType, tmp_path: Path) -> None:
    zones = tool.parse_bundle(bundle_of(ZONES))
    result = tool.install(zones, str(tmp_path), dry_run=True, mode=0o644, gid=None)
    assert result["changed"] and not list(tmp_path.iterdir())


@needs_checkzone
def test_cli_check(tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.bundle"
    good.write_text(bundle_of(ZONES), encoding="utf-8")
    assert tool.main(["check", str(good)]) == 0
    assert f'"zones": {len(ZONES)}' in capsys.readouterr().out
    bad = tmp_path / "bad.bundle"
    bad.write_text(bundle_of(ZONES).replace("IN NS", "IN NSX", 1), encoding="utf-8")
    assert tool.main(["check", str(bad)]) == 1
    assert "rejected by named-checkzone" in capsys.readouterr().err
