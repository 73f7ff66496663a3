# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the cloud-stack unit tests: temp SQLite stores, a throw-away PostgreSQL server,
libvirt's test driver, and a harness that runs a module's ``main()`` in process."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from collection_path import put_collection_on_path

put_collection_on_path()

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import store as store_mod  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt  # noqa: E402

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
_db_counter = itertools.count()


# ------------------------------------------------------------------------------------------------
# Stores
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "cloud.db")


@pytest.fixture
def sqlite_store(store_path):
    s = store_mod.Store.open(store_path)
    yield s
    s.close()


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, run as an unprivileged user, on a unix socket only."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="compleat-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.uid = self.gid = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            self.uid, self.gid = 65534, 65534
        self.base.chmod(0o755)
        self.sock.mkdir()
        if self.uid is not None:
            os.chown(self.base, self.uid, self.gid)
            os.chown(self.sock, self.uid, self.gid)

    def _run(self, *argv: str) -> None:
        kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []} if self.uid is not None else {}
        subprocess.run(argv, check=True, capture_output=True, cwd=self.base, **kwargs)

    def start(self) -> None:
        self._run(
            str(PG_BINDIR / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "cloud",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        opts = f"-k {self.sock} -c listen_addresses='' -F"
        self._run(
            str(PG_BINDIR / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start"
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self._run(str(PG_BINDIR / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.sock} dbname={dbname} user=cloud"


@pytest.fixture(scope="session")
def pg_server():
    if not (PG_BINDIR / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BINDIR} (Debian package postgresql)")
    if not store_mod.HAS_PSYCOPG:
        pytest.skip("psycopg is not installed")
    server = PostgresServer()
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log.read_text() if server.log.exists() else ""
        server.stop()
        pytest.fail(f"could not start PostgreSQL: {exc.stderr!r} {log}")
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server):
    """A fresh database for one test (dropped afterwards)."""
    import psycopg

    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn(name)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, store_path):
    """The same test on a SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        s = store_mod.Store.open(store_path)
        s.test_target = {"store": store_path}
        s.test_target_open = {"path": store_path}
    else:
        dsn = request.getfixturevalue("pg_dsn")
        s = store_mod.Store.open(dsn=dsn)
        s.test_target = {"store_dsn": dsn}
        s.test_target_open = {"dsn": dsn}
    yield s
    s.close()


# ------------------------------------------------------------------------------------------------
# libvirt test driver
# ------------------------------------------------------------------------------------------------
NODE_XML = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>
  <active>8</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>16777216</memory>
</node>
"""


@pytest.fixture
def libvirt_test():
    """A clean test:///default (shared by every connection in this process)."""
    if not virt.HAS_LIBVIRT:
        pytest.skip("libvirt-python is not installed")
    conn = virt.connect("test:///default")
    for dom in conn.listAllDomains(0):
        if dom.name() == "test":
            continue
        virt.undefine(dom)
    yield conn


@pytest.fixture
def second_node(tmp_path):
    """A second, separate test-driver "host" (kept alive by virt's connection cache)."""
    path = tmp_path / "node-b.xml"
    path.write_text(NODE_XML)
    uri = f"test://{path}"
    yield uri
    conn = virt._CONNECTIONS.pop(uri, None)
    if conn is not None:
        conn.close()


# ------------------------------------------------------------------------------------------------
# Running modules in process
# ------------------------------------------------------------------------------------------------
class ModuleExit(BaseException):  # BaseException: never swallowed by the modules' own handlers
    def __init__(self, result: dict, failed: bool) -> None:
        super().__init__(json.dumps(result, default=str)[:2000])
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs["msg"] = msg
    kwargs["failed"] = True
    raise ModuleExit(kwargs, failed=True)


@pytest.fixture
def run_module(monkeypatch):
    """``run_module(module, args, check=False, diff=False) -> (failed, result)``."""
    from ansible.module_utils import basic
    from modargs import patch_module_args

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def run(module, args: dict, check: bool = False, diff: bool = False):
        full = dict(args)
        full["_ansible_check_mode"] = check
        full["_ansible_diff"] = diff
        with patch_module_args(full), pytest.raises(ModuleExit) as info:
            module.main()
        return info.value.failed, info.value.result

    return run


@pytest.fixture
def cloud(tmp_path, run_module, libvirt_test):
    """Store with host hv1 (test:///default, 8 vCPU / 16 GiB, ratio 1), offerings, key ops, template tpl."""
    from cloud_testlib import KEY, Cloud, make_template

    from ansible_collections.compleat.cloud.plugins.modules import hypervisor, image, keypair, offering

    c = Cloud(tmp_path, str(tmp_path / "cloud.db"), run_module)
    (tmp_path / "hv1").mkdir()
    c.ok(
        hypervisor,
        name="hv1",
        uri="test:///default",
        hypervisor="test",
        vcpus=8,
        ram_mb=16384,
        cpu_ratio=1.0,
        storage_dir=str(tmp_path / "hv1"),
    )
    c.ok(offering, name="small", vcpus=1, ram_mb=512, disk_gb=0)
    c.ok(offering, name="large", vcpus=4, ram_mb=8192, disk_gb=1)
    c.ok(keypair, name="ops", public_key=KEY)
    (tmp_path / "secondary").mkdir()
    c.ok(
        image,
        name="tpl",
        kind="template",
        path=make_template(tmp_path / "secondary" / "tpl.qcow2"),
        os="debian",
        os_version="12",
    )
    return c
