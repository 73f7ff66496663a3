# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metadata store on SQLite and on a real PostgreSQL server (started by the suite)."""

from __future__ import annotations

import sqlite3

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import store as store_mod
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import Conflict, StoreError

HOST = {
    "name": "hv1",
    "uri": "test:///default",
    "hypervisor": "qemu",
    "vcpus": 8,
    "ram_mb": 16384,
    "storage_dir": "/srv/primary",
}


def test_fresh_store_has_every_table_and_version(any_store):
    assert any_store.schema_version() == store_mod.SCHEMA_VERSION
    for table in store_mod.TABLES:
        assert any_store.select(table) == []
    rows = any_store.query("SELECT version, description FROM schema_version ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in store_mod.MIGRATIONS]


def test_insert_update_get_delete_and_json(any_store):
    host = any_store.insert("hosts", HOST)
    assert host["state"] == "up" and host["cpu_ratio"] == 4.0 and isinstance(host["ram_ratio"], float)
    off = any_store.insert("offerings", {"name": "small", "vcpus": 1, "ram_mb": 512})
    inst = any_store.insert(
        "instances",
        {
            "uuid": "u1",
            "name": "vm1",
            "instance_id": "iid-u1",
            "tenant": "t",
            "host_id": host["id"],
            "offering_id": off["id"],
            "vcpus": 1,
            "ram_mb": 512,
            "state": "building",
            "domain_type": "qemu",
            "networks": [{"mac": "52:54:00:00:00:01", "source": "default"}],
            "cloud_init": {"ssh_keys": ["k"]},
        },
    )
    assert inst["networks"][0]["mac"] == "52:54:00:00:00:01"
    assert any_store.update("instances", inst["id"], {"state": "running"}) == 1
    got = any_store.get("instances", name="vm1")
    assert got["state"] == "running" and got["cloud_init"] == {"ssh_keys": ["k"]}
    assert any_store.get("instances", name="nope") is None
    assert any_store.get("instances", host_id=None) is None
    assert any_store.delete("instances", id=inst["id"]) == 1


def test_foreign_keys_and_unique_are_enforced(any_store):
    any_store.insert("hosts", HOST)
    with pytest.raises(Conflict):
        any_store.insert("hosts", HOST)
    with pytest.raises(Conflict):
        any_store.insert(
            "instances",
            {
                "uuid": "u",
                "name": "x",
                "instance_id": "i",
                "tenant": "t",
                "offering_id": 999,
                "vcpus": 1,
                "ram_mb": 1,
                "state": "building",
                "domain_type": "qemu",
            },
        )
    with pytest.raises(Conflict):
        any_store.insert("hosts", {**HOST, "name": "hv2", "state": "exploded"})


def test_transaction_rolls_back_on_error(any_store):
    with pytest.raises(RuntimeError), any_store.transaction(write=True):
        any_store.insert("hosts", HOST)
        raise RuntimeError("boom")
    assert any_store.select("hosts") == []
    with any_store.transaction(write=True), any_store.transaction(write=True):  # nested joins the outer
        any_store.insert("hosts", HOST)
    assert len(any_store.select("hosts")) == 1


def test_usage_event_recorded(any_store):
    inst = {"uuid": "u1", "name": "vm1", "tenant": "acme", "vcpus": 2, "ram_mb": 1024}
    any_store.record_usage("start", inst, "small", "hv1")
    (event,) = any_store.select("usage_events")
    assert event["event"] == "start" and event["offering"] == "small" and event["vcpus"] == 2


def test_reopen_is_idempotent_and_migrations_are_ordered(any_store):
    assert any_store.check_version() == []
    assert [m.version for m in store_mod.MIGRATIONS] == list(range(1, len(store_mod.MIGRATIONS) + 1))


def test_partial_store_is_migrated_forward(store_path):
    conn = sqlite3.connect(store_path)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL)"
    )
    for stmt in store_mod.MIGRATIONS[0].statements:
        conn.execute(store_mod.SQLITE.ddl(stmt))
    conn.execute("INSERT INTO schema_version VALUES (1, 'core tables', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="needs"):
        store_mod.Store.open(store_path, migrate=False)
    s = store_mod.Store.open(store_path)
    assert s.schema_version() == store_mod.SCHEMA_VERSION
    assert s.select("stale_definitions") == []
    s.close()


def test_newer_store_is_refused(sqlite_store, store_path):
    sqlite_store.execute(
        "INSERT INTO schema_version VALUES (?, 'future', 0)", (store_mod.SCHEMA_VERSION + 1,)
    )
    sqlite_store.close()
    with pytest.raises(StoreError, match="newer") as info:
        store_mod.Store.open(store_path)
    assert "Upgrade" in info.value.hint


def test_corrupt_store_gives_actionable_error(store_path):
    with open(store_path, "wb") as handle:
        handle.write(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="corrupt") as info:
        store_mod.Store.open(store_path)
    assert "backup" in info.value.hint


def test_missing_store_not_created_for_readers(tmp_path):
    path = tmp_path / "sub" / "cloud.db"
    with pytest.raises(StoreError, match="No metadata store"):
        store_mod.Store.open(str(path), create=False)
    assert not path.exists()


def test_sqlite_uses_wal_and_foreign_keys(sqlite_store):
    assert sqlite_store.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
    assert sqlite_store.query_one("PRAGMA foreign_keys")["foreign_keys"] == 1


def test_bad_dsn_is_actionable():
    if not store_mod.HAS_PSYCOPG:
        pytest.skip("psycopg missing")
    with pytest.raises(StoreError, match="Cannot connect"):
        store_mod.Store.open(dsn="host=/nonexistent-socket-dir dbname=x user=y connect_timeout=2")


def test_identifiers_are_checked(sqlite_store):
    with pytest.raises(ValueError):
        sqlite_store.get("hosts; DROP TABLE hosts", name="x")
    with pytest.raises(ValueError):
        sqlite_store.delete("hosts")
