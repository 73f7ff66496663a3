# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A corpus of bad module inputs: each must fail cleanly (message naming the key and the value, a
hint, no traceback) and leave nothing behind (no row, no file, no domain)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import TABLES, Store
from ansible_collections.compleat.cloud.plugins.modules import (
    hypervisor,
    image,
    instance,
    keypair,
    network,
    offering,
    reconcile,
    snapshot,
    volume,
)

VM = {"name": "vm1", "template": "tpl", "offering": "small", "tenant": "acme"}
LONG = "a" * 300

# (id, module, args, text the message must contain: the key and/or the value)
CORPUS = [
    ("name-dotdot", instance, {**VM, "name": "../x"}, ["name", "../x"]),
    ("name-slash", instance, {**VM, "name": "a/b"}, ["name", "a/b"]),
    ("name-unicode", instance, {**VM, "name": "vm-é"}, ["name", "vm-é"]),
    ("name-300-chars", instance, {**VM, "name": LONG}, ["name", "63"]),
    ("name-empty", instance, {**VM, "name": ""}, ["name"]),
    ("name-leading-dash", instance, {**VM, "name": "-vm"}, ["name", "-vm"]),
    ("unknown-template", instance, {**VM, "template": "nope"}, ["template", "nope"]),
    ("unknown-offering", instance, {**VM, "offering": "nope"}, ["offering", "nope"]),
    ("unknown-host", instance, {**VM, "host": "nope"}, ["host", "nope"]),
    ("unknown-key", instance, {**VM, "ssh_keys": ["nope"]}, ["key", "nope"]),
    ("bad-mac", instance, {**VM, "networks": [{"mac": "52:54:00:zz:00:01"}]}, ["networks[0].mac", "zz"]),
    ("multicast-mac", instance, {**VM, "networks": [{"mac": "01:00:5e:00:00:01"}]}, ["networks[0].mac"]),
    ("bad-uuid", instance, {**VM, "uuid": "not-a-uuid"}, ["uuid", "not-a-uuid"]),
    ("offering-too-big", instance, {**VM, "offering": "huge"}, ["vCPU", "64"]),
    ("offering-zero-vcpus", offering, {"name": "z", "vcpus": 0, "ram_mb": 512}, ["vcpus", "0"]),
    ("offering-huge-ram", offering, {"name": "z", "vcpus": 1, "ram_mb": 2**70}, ["ram_mb"]),
    (
        "offering-negative-disk",
        offering,
        {"name": "z", "vcpus": 1, "ram_mb": 1, "disk_gb": -1},
        ["disk_gb", "-1"],
    ),
    (
        "volume-name-path",
        volume,
        {"name": "../../etc/v", "size_gb": 1, "pool": "default-pool", "host": "hv1"},
        ["name"],
    ),
    (
        "volume-zero-size",
        volume,
        {"name": "v0", "size_gb": 0, "pool": "default-pool", "host": "hv1"},
        ["size_gb", "0"],
    ),
    (
        "volume-huge-size",
        volume,
        {"name": "v0", "size_gb": 2**60, "pool": "default-pool", "host": "hv1"},
        ["size_gb"],
    ),
    (
        "volume-unknown-instance",
        volume,
        {"name": "shared", "backend": "iscsi", "instance": "nope", "state": "attached"},
        ["instance", "nope"],
    ),
    (
        "volume-on-second-instance",
        volume,
        {"name": "shared", "backend": "iscsi", "instance": "vm-b", "state": "attached"},
        ["shared", "vm-a"],
    ),
    ("snapshot-name-path", snapshot, {"instance": "vm-a", "name": "../s"}, ["name", "../s"]),
    (
        "restore-to-unicode",
        snapshot,
        {
            "instance": "vm-a",
            "name": "b1",
            "state": "restored",
            "backup_dir": "/nonexistent",
            "restore_to": "ü",
        },
        ["restore_to"],
    ),
    (
        "backup-unknown-instance",
        snapshot,
        {"instance": "nope", "name": "b1", "state": "backed_up", "backup_dir": "/tmp"},
        ["instance", "nope"],
    ),
    (
        "host-negative-vcpus",
        hypervisor,
        {
            "name": "hv9",
            "uri": "test:///default",
            "hypervisor": "test",
            "vcpus": -4,
            "ram_mb": 1024,
            "storage_dir": "/tmp",
        },
        ["vcpus", "-4"],
    ),
    (
        "host-zero-ratio",
        hypervisor,
        {
            "name": "hv9",
            "uri": "test:///default",
            "hypervisor": "test",
            "vcpus": 4,
            "ram_mb": 1024,
            "cpu_ratio": 0.0,
            "storage_dir": "/tmp",
        },
        ["cpu_ratio"],
    ),
    (
        "image-missing-file",
        image,
        {"name": "img2", "path": "/nonexistent/t.qcow2", "os": "debian"},
        ["/nonexistent/t.qcow2"],
    ),
    ("key-garbage", keypair, {"name": "k2", "public_key": "not a key"}, ["public_key"]),
    ("reconcile-unknown-host", reconcile, {"hosts": ["nope"]}, ["hosts", "nope"]),
    # IPAM: the populated cloud has tenant network acme-net 10.10.0.0/24 (VNI 10010)
    (
        "nic-unknown-network",
        instance,
        {**VM, "networks": [{"network": "nope"}]},
        ["networks[0].network", "nope"],
    ),
    (
        "nic-ip-garbage",
        instance,
        {**VM, "networks": [{"network": "acme-net", "ip": "10.10.0.x"}]},
        ["networks[0].ip"],
    ),
    (
        "nic-ip-gateway",
        instance,
        {**VM, "networks": [{"network": "acme-net", "ip": "10.10.0.1"}]},
        ["10.10.0.1"],
    ),
    (
        "nic-ip-outside",
        instance,
        {**VM, "networks": [{"network": "acme-net", "ip": "192.0.2.1"}]},
        ["192.0.2.1"],
    ),
    (
        "nic-other-tenants-network",
        instance,
        {**VM, "tenant": "evil", "networks": [{"network": "acme-net"}]},
        ["networks[0].network", "acme-net"],
    ),
    (
        "dns-secret-not-base64",
        instance,
        {**VM, "dns_update": {"server": "127.0.0.1", "zone": "z.test", "key_name": "k", "key_secret": "%%"}},
        ["dns_update.key_secret"],
    ),
    (
        "network-host-bits",
        network,
        {"name": "n2", "cidr": "10.20.0.1/24", "vni": 7},
        ["cidr", "10.20.0.1/24"],
    ),
    ("network-vni-zero", network, {"name": "n2", "cidr": "10.20.0.0/24", "vni": 0}, ["vni", "0"]),
    ("network-vni-taken", network, {"name": "n2", "cidr": "10.20.0.0/24", "vni": 10010}, ["vni", "10010"]),
    (
        "network-mtu-vxlan",
        network,
        {"name": "n2", "cidr": "10.20.0.0/24", "vni": 7, "mtu": 1500},
        ["mtu", "1500"],
    ),
    ("network-name-path", network, {"name": "../n", "cidr": "10.20.0.0/24", "vni": 7}, ["name", "../n"]),
    (
        "network-overlap-same-tenant",
        network,
        {"name": "n2", "tenant": "acme", "cidr": "10.10.0.0/16", "vni": 7},
        ["cidr", "10.10.0.0/16", "acme-net"],
    ),
]


def snapshot_state(cloud, conn):
    """Rows of every table, files under the temp dir, domain names: what must not change."""
    with Store.open(cloud.store) as s:
        rows = {t: len(s.select(t)) for t in TABLES}
    files = sorted(
        os.path.join(d, f)
        for d, _dirs, names in os.walk(cloud.tmp)
        for f in names
        if not f.startswith("cloud.db")
    )
    pool = conn.storagePoolLookupByName("default-pool")
    pool.refresh(0)
    return rows, files, virt.domain_names(conn), sorted(pool.listVolumes())


@pytest.fixture
def populated(cloud, libvirt_test):
    """Two instances and a volume attached to the first (for the 'volume on two instances' case)."""
    cloud.ok(offering, name="huge", vcpus=64, ram_mb=1024)
    cloud.ok(network, name="acme-net", tenant="acme", cidr="10.10.0.0/24", vni=10010)
    cloud.ok(instance, **{**VM, "name": "vm-a"})
    cloud.ok(instance, **{**VM, "name": "vm-b"})
    cloud.ok(
        volume,
        name="shared",
        size_gb=1,
        backend="iscsi",
        iscsi_portal="192.0.2.5:3260",
        iscsi_iqn="iqn.2026-01.cloud.compleat:s1.shared",
        iscsi_lun=1,
    )
    cloud.ok(volume, name="shared", backend="iscsi", instance="vm-a", state="attached")
    return cloud


@pytest.mark.parametrize(("module", "args", "needles"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_input_fails_cleanly_and_leaves_nothing(populated, libvirt_test, module, args, needles):
    before = snapshot_state(populated, libvirt_test)
    failed, res = populated.run(module, **args)
    assert failed, res
    assert "exception" not in res and "Unexpected error" not in res["msg"], res
    for needle in needles:
        assert needle in res["msg"], (needle, res["msg"])
    assert res.get("hint") or "Hint:" in res["msg"] or "value of" in res["msg"], res
    assert snapshot_state(populated, libvirt_test) == before


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 20
