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
import tempfile
import time
from pathlib import Path

import pytest
from collection_path import put_collection_on_path

put_collection_on_path()

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
    from modargs import patch_module_args

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


# ------------------------------------------------------------------------------------------------
# A second, independent libvirtd (tests that need two hosts on separate daemons)
# ------------------------------------------------------------------------------------------------
# The directories a system-mode libvirtd keeps its config, state, cache, logs and runtime files in.
# Their paths are compiled in (a second `libvirtd -f CONF` with its own unix_sock_dir still fails on
# the lock of /run/libvirt/network/driver.pid), so the second daemon runs in its own mount namespace
# where each of them is a bind mount of a private directory.
PRIVATE_DIRS = (
    ("etc", "/etc/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
    ("run", "/run/libvirt"),
)


def _virsh_answers(uri: str) -> bool:
    return subprocess.run(["virsh", "-c", uri, "version"], capture_output=True, check=False).returncode == 0


class PrivateLibvirtd:
    """A libvirtd of its own: config, state, cache, logs and runtime files under ``base``, sockets in
    ``base/sock`` (reached with ``qemu+unix:///system?socket=...``), no virtlogd (QEMU's output goes
    to files: ``stdio_handler = "file"``). It can be killed and started again on the same state."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock_dir = base / "sock"
        self.uri = f"qemu+unix:///system?socket={self.sock_dir}/libvirt-sock"
        self.proc: subprocess.Popen | None = None
        self.hook_config: Path | None = None  # the tenant network hook's configuration, when installed
        for sub, _target in PRIVATE_DIRS:
            (base / sub).mkdir()
        self.sock_dir.mkdir()
        (base / "etc" / "libvirtd.conf").write_text(f'unix_sock_dir = "{self.sock_dir}"\n')
        (base / "etc" / "qemu.conf").write_text('stdio_handler = "file"\n')
        # the first daemon's QEMU capabilities: without them the first start probes QEMU (~8 s here)
        cache = Path("/var/cache/libvirt/qemu")
        if cache.is_dir():
            shutil.copytree(cache, base / "cache" / "qemu", symlinks=True)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running() else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        assert not self.running(), "already running"
        binds = "".join(f"mount --bind {self.base / sub} {target}\n" for sub, target in PRIVATE_DIRS)
        script = (
            f"set -e\n{binds}exec libvirtd -f {self.base / 'etc' / 'libvirtd.conf'} -p {self.base / 'pid'}\n"
        )
        with (self.base / "libvirtd.log").open("ab") as log:
            # unshare and sh exec: the child's PID is libvirtd's
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            if _virsh_answers(self.uri):
                return
            time.sleep(0.1)
        log_tail = (self.base / "libvirtd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise AssertionError(f"the second libvirtd did not answer at {self.uri}:\n{log_tail}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the daemon (SIGKILL: it dies like its host, without cleaning up); its domains stay."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove_cgroups(self) -> None:
        """Remove the machine cgroups a domain of this daemon left behind: a QEMU killed while its
        libvirtd was dead keeps them for good (a restarted libvirtd does not remove them either).
        Only empty cgroups can be removed: those of running QEMUs (of any daemon) stay."""
        for log in (self.base / "log" / "qemu").glob("*.log"):  # one per domain ever started
            for group in Path("/sys/fs/cgroup").glob(f"*/machine/qemu-*-{log.stem}.libvirt-qemu"):
                subs = sorted((d for d in group.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts))
                for sub in [*subs, group]:  # children first
                    with contextlib.suppress(OSError):
                        sub.rmdir()

    def qemu_pids(self) -> dict[str, int]:
        """Domain name -> PID of the QEMU processes this daemon started that are still alive."""
        found = {}
        for pidfile in (self.base / "run" / "qemu").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                if b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found[pidfile.stem] = pid
        return found


@contextlib.contextmanager
def private_libvirtd(prepare=None):
    """A started PrivateLibvirtd (``prepare(daemon)`` runs before it starts, e.g. to install hooks into
    ``daemon.base / "etc"``). Stopped, its domains forced off and its directories removed afterwards,
    also when the test fails."""
    base = Path(tempfile.mkdtemp(prefix="compleat-cit-d2-", dir="/var/tmp"))
    base.chmod(0o755)
    daemon = PrivateLibvirtd(base)
    try:
        if prepare is not None:
            prepare(daemon)
        daemon.start()
        yield daemon
    finally:
        try:
            if daemon.qemu_pids() and not daemon.running():
                daemon.start()  # it reconnects to its QEMUs: destroyed through it, they leave no cgroups
            if daemon.running():
                for name in daemon.qemu_pids():
                    subprocess.run(
                        ["virsh", "-c", daemon.uri, "destroy", name], capture_output=True, check=False
                    )
        finally:
            daemon.stop()
            for name, pid in daemon.qemu_pids().items():  # left over only if the daemon failed
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                print(f"killed QEMU {pid} of {name}")
            daemon.remove_cgroups()
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def second_libvirtd(libvirtd):
    """A second libvirtd, independent of the first (``libvirtd``): see PrivateLibvirtd and
    private_libvirtd."""
    with private_libvirtd() as daemon:
        yield daemon


@pytest.fixture
def hooked_libvirtd(libvirtd):
    """A private libvirtd (see private_libvirtd) started with the tenant network hook of the role
    compleat.cloud.tenant_vtep installed (cloudlib.install_tenant_vtep_hook); ``.hook_config`` is the
    hook's configuration file."""
    from cloudlib import install_tenant_vtep_hook

    def prepare(daemon: PrivateLibvirtd) -> None:
        daemon.hook_config = install_tenant_vtep_hook(daemon.base)

    with private_libvirtd(prepare) as daemon:
        yield daemon


@pytest.fixture
def two_hosts(libvirtd, second_libvirtd, workdir, run_module):
    """hv-a on the second libvirtd, hv-b on the suite's; a dir pool on hv-a, an offering, a template.
    Every domain of the test and the pool are removed afterwards."""
    import uuid

    from cloudlib import TwoDaemonCloud, virsh

    from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
    from ansible_collections.compleat.cloud.plugins.modules import hypervisor, image, offering

    tag = f"cit2d{uuid.uuid4().hex[:6]}"
    c = TwoDaemonCloud(run_module, workdir, tag, second_libvirtd.uri, libvirtd)
    (workdir / "pool").mkdir()
    virsh(c.uri_a, "pool-define-as", tag, "dir", "--target", str(workdir / "pool"))
    virsh(c.uri_a, "pool-start", tag)
    for name, uri in (("hv-a", c.uri_a), ("hv-b", c.uri_b)):
        (workdir / name).mkdir()
        c(
            hypervisor,
            name=name,
            uri=uri,
            hypervisor="qemu",
            vcpus=2,
            ram_mb=2048,
            storage_dir=str(workdir / name),
        )
    c(offering, name="tiny", vcpus=1, ram_mb=128)
    (workdir / "secondary").mkdir()
    tpl = workdir / "secondary" / "tpl.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tpl), "64M"], check=True)
    c(image, name="tpl", path=str(tpl), os="none", os_version="0")
    try:
        yield c
    finally:
        virt.forget_connections()  # hv-a's daemon was restarted: no stale cached connection
        for uri in (c.uri_a, c.uri_b):
            if second_libvirtd.running() or uri == c.uri_b:
                for name in virsh(uri, "list", "--all", "--name").stdout.split():
                    if name.startswith(tag):
                        virsh(uri, "destroy", name, check=False)
                        virsh(uri, "undefine", name, "--nvram", check=False)
        if second_libvirtd.running():
            virsh(c.uri_a, "pool-destroy", tag, check=False)
            virsh(c.uri_a, "pool-undefine", tag, check=False)
