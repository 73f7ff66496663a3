# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the libvirt integration test: virtlogd + libvirtd started (and stopped) by the suite,
a scratch directory libvirt's QEMU can read, and an in-process module runner."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
if str(COLLECTIONS) not in sys.path:
    link = COLLECTIONS / "ansible_collections" / "compleat" / "cloud"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."), target_is_directory=True)
    sys.path.insert(0, str(COLLECTIONS))

URI = "qemu:///system"
DAEMONS = (("virtlogd", "/run/virtlogd.pid"), ("libvirtd", "/run/libvirtd.pid"))


def pytest_configure(config):
    config.addinivalue_line("markers", "libvirt: needs root and starts virtlogd + libvirtd (QEMU TCG)")


def _answers() -> bool:
    return subprocess.run(["virsh", "-c", URI, "version"], capture_output=True, check=False).returncode == 0


def _pid(pidfile: str) -> int | None:
    try:
        pid = int(Path(pidfile).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _stop(pid: int, timeout: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def libvirtd():
    """virtlogd and libvirtd, started here when none runs, stopped by PID afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirtd qemu:///system)")
    for binary in ("libvirtd", "virtlogd", "virsh", "qemu-img", "qemu-system-x86_64"):
        if not shutil.which(binary):
            pytest.skip(
                f"{binary} not installed (Debian: libvirt-daemon-system, qemu-system-x86, qemu-utils)"
            )
    started: list[int] = []
    if not _answers():
        for name, pidfile in DAEMONS:
            if _pid(pidfile) is None:
                subprocess.run([name, "-d"], check=True)
                for _attempt in range(50):
                    if _pid(pidfile):
                        break
                    time.sleep(0.1)
                pid = _pid(pidfile)
                assert pid, f"{name} did not start"
                started.append(pid)
        for _attempt in range(100):
            if _answers():
                break
            time.sleep(0.1)
        assert _answers(), "libvirtd does not answer"
    try:
        yield URI
    finally:
        from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt

        virt.forget_connections()
        for pid in reversed(started):  # libvirtd first, then virtlogd
            _stop(pid)


@pytest.fixture
def workdir():
    """A scratch directory libvirt's QEMU (user libvirt-qemu) can traverse."""
    path = Path(tempfile.mkdtemp(prefix="compleat-cit-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class ModuleExit(BaseException):
    def __init__(self, result: dict, failed: bool) -> None:
        super().__init__(json.dumps(result, default=str)[:2000])
        self.result, self.failed = result, failed


@pytest.fixture
def run_module(monkeypatch):
    """``run_module(module, args, check=False) -> result``; fails the test when the module fails."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise ModuleExit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        raise ModuleExit({**kwargs, "msg": msg, "failed": True}, True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args: dict, check: bool = False, expect_failure: bool = False):
        with (
            patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": True}),
            pytest.raises(ModuleExit) as info,
        ):
            module.main()
        assert info.value.failed == expect_failure, info.value.result
        return info.value.result

    return run
