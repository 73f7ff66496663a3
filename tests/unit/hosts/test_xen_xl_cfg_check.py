# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/xen_host/files/compleat_xl_cfg_check.py: xl configuration check through libxlutil."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest
from role_files import load_role_file

ROOT = Path(__file__).resolve().parents[3]


GOOD = """\
name = "compleat-probe"
type = "pvh"
memory = 128
vcpus = 1
kernel = "/var/lib/compleat/kernels/vmlinuz"
cmdline = "console=hvc0 root=/dev/xvda ro"
disk = [ "format=raw, vdev=xvda, access=rw, target=/dev/disk/by-path/compleat-probe" ]
vif = [ "bridge=vm" ]
on_poweroff = "destroy"
"""


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_role_file("xen_host", "compleat_xl_cfg_check.py")


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        ("bridge=vm", 0),
        ("bridge=vm, mac=00:16:3e:00:00:01, model=e1000", 0),
        ("bridge", 1),
        ("bridge=vm,,mac=x", 1),
        ("=vm", 1),
    ],
)
def test_vif_shape(tool: ModuleType, spec: str, errors: int) -> None:
    assert len(tool.vif_errors(0, spec)) == errors


def test_usage(tool: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_role_template_matches_the_sample() -> None:
    """The probe domain the role writes is the sample these tests check (same keys and values)."""
    template = (ROOT / "roles" / "xen_host" / "templates" / "probe.cfg.j2").read_text()
    rendered = template.replace("{{ xen_host_default_bridge }}", "vm")
    body = [line for line in rendered.splitlines() if line and not line.startswith("#")]
    for line in GOOD.splitlines():
        assert line in body


def test_good_file_parses(tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "probe.cfg"
    cfg.write_text(GOOD)
    assert tool.main([str(cfg)]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values == {
        "name": "compleat-probe",
        "type": "pvh",
        "memory": 128,
        "vcpus": 1,
        "kernel": "/var/lib/compleat/kernels/vmlinuz",
        "cmdline": "console=hvc0 root=/dev/xvda ro",
        "disk": ["format=raw, vdev=xvda, access=rw, target=/dev/disk/by-path/compleat-probe"],
        "vif": ["bridge=vm"],
    }


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "compleat-probe"', 'name = "compleat-probe', "cannot parse"),
        ("format=raw", "format=bogus", "disk[0]: xl rejects"),
        ("vdev=xvda, ", "", "disk[0]: xl rejects"),
        ("memory = 128", 'memory = "lots"', "memory: not a number"),
        ("vcpus = 1\n", "", "vcpus: missing"),
        ('type = "pvh"', 'type = "pvx"', "type: 'pvx' is not one of"),
        ('[ "bridge=vm" ]', '[ "bridge" ]', "vif[0]: 'bridge' is not key=value"),
        ("disk = [", "disk = 1 #", "disk: not a list"),
    ],
)
def test_bad_files_fail(tool: ModuleType, tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    cfg = tmp_path / "probe.cfg"
    cfg.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(tool.XlCfgError, match=rf"(?s).*{re.escape(message)}"):
        tool.check(str(cfg))


def test_missing_library_is_reported(tool: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool, "XLUTIL", "libxlutil-does-not-exist.so")
    with pytest.raises(tool.XlCfgError, match=re.escape("cannot load libxlutil-does-not-exist.so")):
        tool.XlConfig("/nonexistent")


def test_role_xl_conf_parses(tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = (ROOT / "roles" / "xen_host" / "templates" / "xl.conf.j2").read_text()
    rendered = re.sub(r"\{\{[^}]*\}\}", "", template.replace("{{ xen_host_default_bridge }}", "vm"))
    conf = tmp_path / "xl.conf"
    conf.write_text(rendered)
    assert tool.main(["--xl-conf", str(conf)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "autoballoon": "off",
        "lockfile": "/var/lock/xl",
        "vif.default.bridge": "vm",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("autoballoon=off\n", "cannot parse"),
        ('autoballoon="sometimes"\n', "autoballoon: 'sometimes' is not one of"),
        ('vif.default.bridge=["vm"]\n', "vif.default.bridge: not a string"),
    ],
)
def test_bad_xl_conf_fails(tool: ModuleType, tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "xl.conf"
    conf.write_text(text)
    with pytest.raises(tool.XlCfgError, match=rf"(?s).*{re.escape(message)}"):
        tool.check_xl_conf(str(conf))
    assert tool.main(["--xl-conf", str(conf)]) == 1
