# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.xen_config (plugins/modules/xen_config.py, plugins/module_utils/xen_config.py):
xl configuration files checked through libxlutil, written atomically (check mode, diff)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
from module_run import Runner, module_runner  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils import xen_config as xlu  # noqa: E402
from ansible_collections.compleat.cloud.plugins.modules import xen_config  # noqa: E402

needs_libxlutil = pytest.mark.skipif(xlu.library_missing() is not None, reason="libxenmisc4.17 missing")

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
GOOD_VALUES = {
    "name": "compleat-probe",
    "type": "pvh",
    "memory": 128,
    "vcpus": 1,
    "kernel": "/var/lib/compleat/kernels/vmlinuz",
    "cmdline": "console=hvc0 root=/dev/xvda ro",
    "disk": ["format=raw, vdev=xvda, access=rw, target=/dev/disk/by-path/compleat-probe"],
    "vif": ["bridge=vm"],
}


def rendered(template: str) -> str:
    """A template of the role with the bridge set to vm and the other expressions dropped."""
    text = (ROOT / "roles" / "xen_host" / "templates" / template).read_text(encoding="utf-8")
    return re.sub(r"\{\{[^}]*\}\}", "", text.replace("{{ xen_host_default_bridge }}", "vm"))


# ------------------------------------------------------------------------------------ the checks
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
def test_vif_shape(spec: str, errors: int) -> None:
    assert len(xlu.vif_errors(0, spec)) == errors


def test_role_template_matches_the_sample() -> None:
    """The probe domain the role writes is the sample these tests check (same keys and values)."""
    body = [line for line in rendered("probe.cfg.j2").splitlines() if line and not line.startswith("#")]
    for line in GOOD.splitlines():
        assert line in body


@needs_libxlutil
def test_good_file_parses() -> None:
    assert xlu.check_text(GOOD, "domain", "probe.cfg") == GOOD_VALUES


@needs_libxlutil
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "compleat-probe"', 'name = "compleat-probe', "probe.cfg:1: config parsing error"),
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
def test_bad_files_fail(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(xlu.XlCfgError, match=rf"(?s).*{re.escape(message)}"):
        xlu.check_text(GOOD.replace(old, new, 1), "domain", "probe.cfg")


def test_missing_library_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlu, "XLUTIL", "libxlutil-does-not-exist.so")
    with pytest.raises(xlu.XlCfgError, match=re.escape("cannot load libxlutil-does-not-exist.so")):
        xlu.XlConfig("/nonexistent")
    assert "libxlutil-does-not-exist.so" in (xlu.library_missing() or "")


@needs_libxlutil
def test_role_xl_conf_parses() -> None:
    assert xlu.check_text(rendered("xl.conf.j2"), "xl_conf", "xl.conf") == {
        "autoballoon": "off",
        "lockfile": "/var/lock/xl",
        "vif.default.bridge": "vm",
    }


@needs_libxlutil
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("autoballoon=off\n", "cannot parse"),
        ('autoballoon="sometimes"\n', "autoballoon: 'sometimes' is not one of"),
        ('vif.default.bridge=["vm"]\n', "vif.default.bridge: not a string"),
    ],
)
def test_bad_xl_conf_fails(text: str, message: str) -> None:
    with pytest.raises(xlu.XlCfgError, match=rf"(?s).*{re.escape(message)}"):
        xlu.check_text(text, "xl_conf", "xl.conf")


# ------------------------------------------------------------------------------------ the module
@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    return module_runner(xen_config, capsys, monkeypatch)


@needs_libxlutil
def test_module_writes_then_is_idempotent(tmp_path: Path, run: Runner) -> None:
    path = tmp_path / "probe.cfg"
    preview = run({"path": str(path), "content": GOOD}, check=True, diff=True)
    assert preview["changed"] and preview["values"] == GOOD_VALUES and not path.exists()
    assert preview["diff"]["before"] == "" and preview["diff"]["after"] == GOOD
    first = run({"path": str(path), "content": GOOD, "mode": "0640"})
    assert first["changed"] and path.read_text(encoding="utf-8") == GOOD
    assert oct(path.stat().st_mode & 0o777) == "0o640" and [p.name for p in tmp_path.iterdir()] == [
        "probe.cfg"
    ]
    again = run({"path": str(path), "content": GOOD}, diff=True)
    assert not again["changed"] and again["values"] == GOOD_VALUES and "diff" not in again


@needs_libxlutil
def test_module_writes_nothing_when_the_check_fails(tmp_path: Path, run: Runner) -> None:
    path = tmp_path / "xl.conf"
    path.write_text('autoballoon="off"\n', encoding="utf-8")
    for check in (True, False):
        result = run(
            {"path": str(path), "content": 'autoballoon="sometimes"\n', "kind": "xl_conf"}, check=check
        )
        assert result["failed"] and "nothing written" in result["msg"]
        assert "autoballoon: 'sometimes' is not one of" in result["msg"]
    assert path.read_text(encoding="utf-8") == 'autoballoon="off"\n'
    assert [p.name for p in tmp_path.iterdir()] == ["xl.conf"]


@needs_libxlutil
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"mode": "rw"}, "mode: 'rw' is not an octal file mode"),
        (
            {"path": "/nonexistent/compleat/probe.cfg"},
            "path: the directory of /nonexistent/compleat/probe.cfg",
        ),
        ({"kind": "guest"}, "value of kind must be one of: domain, xl_conf"),
    ],
)
def test_module_errors_name_the_option(
    tmp_path: Path, run: Runner, args: dict[str, Any], message: str
) -> None:
    result = run({"path": str(tmp_path / "probe.cfg"), "content": GOOD, **args})
    assert result["failed"] and message in result["msg"]


def test_check_mode_without_libxlutil_warns(
    tmp_path: Path, run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlu, "XLUTIL", "libxlutil-does-not-exist.so")
    path = tmp_path / "probe.cfg"
    preview = run({"path": str(path), "content": GOOD}, check=True)
    assert preview["changed"] and preview["values"] == {} and "was not checked" in " ".join(preview["warned"])
    failed = run({"path": str(path), "content": GOOD})
    assert (
        failed["failed"] and "cannot load libxlutil-does-not-exist.so" in failed["msg"] and not path.exists()
    )
