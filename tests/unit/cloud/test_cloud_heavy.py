# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Heavy workloads: pinned pCPUs, hugepages and PCI devices as placed resources, NIC queues.

Pure placement, store-backed allocation (SQLite and PostgreSQL), two processes racing for the
last device, the migration of an older store, and the domain XML of each option checked with
``virt-xml-validate`` and defined on libvirt's test driver.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess

import pytest
from cloud_testlib import new_row, place_one_by_one, race_attempt, race_two_processes, slow_reads

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import rebalance as planner
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import resources as res
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import store as store_mod
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import (
    Conflict,
    InvalidInput,
    NoCapacity,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store

GPU = (("gpu-a100", 1),)


def host(name, **kw):
    base = {"state": "up", "hypervisor": "kvm", "vcpus": 16, "ram_mb": 65536}
    base.update(kw)
    return pl.HostState(name=name, **base)


# ------------------------------------------------------------------------------------------------
# Pure values
# ------------------------------------------------------------------------------------------------
def test_cpuset_round_trip_and_refusals():
    assert res.parse_cpuset("4-7, 12,13") == frozenset({4, 5, 6, 7, 12, 13})
    assert res.format_cpuset({13, 4, 5, 6, 7, 12}) == "4-7,12-13"
    assert res.parse_cpuset("") == frozenset()
    for bad in ("7-4", "a", "1-", "4096"):
        with pytest.raises(InvalidInput) as info:
            res.parse_cpuset(bad)
        assert info.value.details["key"] == "dedicated_cpus"


def test_queues_pages_and_needs():
    assert [res.effective_queues(0, v) for v in (1, 2, 4, 32)] == [1, 2, 4, 8]
    assert res.effective_queues(3, 16) == 3
    assert res.pages_for(4096, "2M") == 2048 and res.pages_for(4096, "1G") == 4
    assert res.pages_for(1025, "2M") == 513  # a partial page is still a page
    assert res.needs(4, 4096, True, "1G", (("gpu-a100", 2),)) == (
        ("pcpu", 4),
        ("hugepages:1G", 4),
        ("pci:gpu-a100", 2),
    )
    assert res.needs(4, 4096, False, "", ()) == ()


def test_device_lists_are_checked_with_the_option_path():
    devs = res.host_devices(
        [{"address": "3B:00.0", "class": "gpu-a100", "vendor_device": "10DE:20B5", "iommu_group": 7}]
    )
    assert devs == [
        {"address": "0000:3b:00.0", "class": "gpu-a100", "vendor_device": "10de:20b5", "iommu_group": 7}
    ]
    bad = [
        ({"address": "3b:00", "class": "g", "vendor_device": "10de:20b5"}, "pci_devices[0].address"),
        ({"address": "3b:00.0", "class": "GPU A100", "vendor_device": "10de:20b5"}, "pci_devices[0].class"),
        ({"address": "3b:00.0", "class": "g", "vendor_device": "10de"}, "pci_devices[0].vendor_device"),
        ({"address": "3b:00.0", "class": "g", "vendor_device": "10de:20b5", "iommu_group": -1}, None),
    ]
    for item, key in bad:
        with pytest.raises(InvalidInput) as info:
            res.host_devices([item])
        assert info.value.details["key"] == (key or "pci_devices[0].iommu_group")
    with pytest.raises(InvalidInput, match=r"pci_devices\[1\].class=gpu is listed twice"):
        res.pci_request([{"class": "gpu", "count": 1}, {"class": "gpu", "count": 2}])
    with pytest.raises(InvalidInput) as info:
        res.pci_request([{"class": "gpu", "count": 17}])
    assert info.value.details["key"] == "pci_devices[0].count"
    with pytest.raises(InvalidInput, match=r"hugepages\.4M"):
        res.host_hugepages({"4M": 1})
    assert res.host_hugepages({"2M": 0, "1G": 4}) == {"1G": 4}


# ------------------------------------------------------------------------------------------------
# Pure placement
# ------------------------------------------------------------------------------------------------
def test_dedicated_resources_leave_the_shared_pools():
    h = host("a", vcpus=16, reserved_vcpus=2, dedicated_cpus=8, cpu_ratio=2.0, hugepage_mb=32768)
    assert h.vcpu_limit == 12  # (16 - 2 - 8) * 2
    assert h.ram_limit_mb == 32768
    pinned = pl.Request(4, 4096, cpu_pinning=True, hugepages="2M")
    assert (pinned.shared_vcpus, pinned.shared_ram_mb) == (0, 0)
    after = host("a", free=(("hugepages:2M", 4096), ("pcpu", 8))).with_allocation(pinned)
    assert after.free_resources == {"pcpu": 4, "hugepages:2M": 2048}
    assert (after.used_vcpus, after.used_ram_mb) == (0, 0)


@pytest.mark.parametrize(
    ("free", "req", "reason"),
    [
        ((), pl.Request(2, 1024, cpu_pinning=True), "pcpu"),
        ((("pcpu", 1),), pl.Request(2, 1024, cpu_pinning=True), "pcpu"),
        ((("pcpu", 2),), pl.Request(2, 1024, cpu_pinning=True), None),
        ((("hugepages:2M", 511),), pl.Request(1, 1024, hugepages="2M"), "hugepages:2M"),
        ((("hugepages:2M", 512),), pl.Request(1, 1024, hugepages="2M"), None),
        ((("hugepages:2M", 4096),), pl.Request(1, 1024, hugepages="1G"), "hugepages:1G"),
        ((("pci:gpu-t4", 4),), pl.Request(1, 1024, pci=GPU), "pci:gpu-a100"),
        ((("pci:gpu-a100", 1),), pl.Request(1, 1024, pci=(("gpu-a100", 2),)), "pci:gpu-a100"),
        ((("pci:gpu-a100", 1),), pl.Request(1, 1024, pci=GPU), None),
    ],
)
def test_filter_names_the_missing_resource(free, req, reason):
    assert pl.rejection(host("a", free=free), req) == reason


def test_pinned_instance_fits_where_the_shared_pool_is_full():
    full = host("a", used_vcpus=64, used_ram_mb=65536, free=(("pcpu", 4),))
    assert pl.rejection(full, pl.Request(4, 1, cpu_pinning=True)) == "ram"
    assert pl.rejection(full, pl.Request(4, 1024, cpu_pinning=True, hugepages="2M")) == "hugepages:2M"
    roomy = host("a", used_vcpus=64, free=(("pcpu", 4),))
    assert pl.rejection(roomy, pl.Request(4, 1024, cpu_pinning=True)) is None
    assert pl.rejection(roomy, pl.Request(1, 1024)) == "vcpu"


def test_no_capacity_message_names_the_resource_and_the_request():
    hosts = [host("a", free=(("pci:gpu-a100", 0),)), host("b"), host("c", state="down")]
    with pytest.raises(NoCapacity) as info:
        pl.select_host(hosts, pl.Request(8, 16384, cpu_pinning=True, pci=GPU))
    text = info.value.msg
    assert text.startswith("No host can take 8 vCPU / 16384 MiB with 8 pinned pCPUs, 1 x gpu-a100:")
    assert "1 not up [c]" in text and "2 not enough free dedicated pCPUs [a, b]" in text
    with pytest.raises(NoCapacity) as info:
        pl.select_host([host("a", free=(("pcpu", 8),))], pl.Request(8, 16384, cpu_pinning=True, pci=GPU))
    assert "1 no free gpu-a100 PCI device [a]" in info.value.msg
    assert "pci_devices" in info.value.hint


def test_place_many_matches_repeated_select_host_with_resources():
    rng = random.Random(21)
    hosts = [
        host(
            f"h{i:02d}",
            vcpus=32,
            dedicated_cpus=16,
            hugepage_mb=16384,
            free=(
                ("hugepages:1G", 16),
                ("pci:gpu-a100", rng.choice([0, 1, 2])),
                ("pcpu", 16),
            ),
            state=rng.choice(["up"] * 5 + ["down"]),
        )
        for i in range(12)
    ]
    requests = [
        pl.Request(
            rng.choice([1, 2, 4]),
            rng.choice([1024, 4096]),
            cpu_pinning=rng.random() < 0.5,
            hugepages=rng.choice(["", "", "1G"]),
            pci=rng.choice([(), (), GPU]),
        )
        for _attempt in range(200)
    ]
    fast, final = pl.place_many(hosts, requests)
    slow, states = place_one_by_one(pl, hosts, requests)
    assert fast == slow
    assert final == states
    assert None in fast
    assert all(v >= 0 for h in final for _k, v in h.free)  # never more than a host has


def test_rebalance_drain_targets_only_hosts_with_the_resources():
    hosts = [
        host("a", maintenance=True, free=(("pci:gpu-a100", 0),)),
        host("b", free=(("pci:gpu-a100", 1),)),
        host("c"),
    ]
    gpu = planner.Instance("train", "a", 2, 4096, resources=(("pci:gpu-a100", 1),))
    plain = planner.Instance("web", "a", 2, 4096)
    plan = planner.plan(hosts, [gpu, plain])
    targets = {m.instance: m.target for m in plan.moves}
    assert targets["train"] == "b"
    two = planner.Instance("train2", "a", 2, 4096, resources=(("pci:gpu-a100", 1),))
    plan = planner.plan(hosts, [gpu, two])
    assert len(plan.moves) == 1 and [n for n, _r in plan.unplaced] == ["train2"]


# ------------------------------------------------------------------------------------------------
# Store-backed allocation
# ------------------------------------------------------------------------------------------------
def gpu_cloud(store: Store, devices=(("0000:3b:00.0", 1), ("0000:5e:00.0", 2)), **host_kw):
    """Host gpu1 (16 pCPUs, 8-15 dedicated, 8 x 1G hugepages) with GPUs, and an offering row."""
    row = {
        "name": "gpu1",
        "uri": "test:///default",
        "hypervisor": "qemu",
        "vcpus": 16,
        "ram_mb": 65536,
        "cpu_ratio": 1.0,
        "ram_ratio": 1.0,
        "storage_dir": "/srv",
        "dedicated_cpus": "8-15",
        "hugepages": {"1G": 8},
        **host_kw,
    }
    h = store.insert("hosts", row)
    for address, group in devices:
        store.insert(
            "pci_devices",
            {
                "host_id": h["id"],
                "address": address,
                "device_class": "gpu-a100",
                "vendor_device": "10de:20b5",
                "iommu_group": group,
            },
        )
    return h, store.insert("offerings", {"name": "gpu", "vcpus": 4, "ram_mb": 4096})


HEAVY = pl.Request(4, 4096, cpu_pinning=True, hugepages="1G", pci=GPU, nic_queues=4)


def test_allocate_pins_distinct_pcpus_and_devices(any_store):
    _h, off = gpu_cloud(any_store)
    _chosen, one = pl.allocate(any_store, HEAVY, new_row=new_row("one", off["id"]))
    _chosen, two = pl.allocate(any_store, HEAVY, new_row=new_row("two", off["id"]))
    assert res.pins_of(any_store, one["id"]) == ((0, 8), (1, 9), (2, 10), (3, 11))
    assert res.pins_of(any_store, two["id"]) == ((0, 12), (1, 13), (2, 14), (3, 15))
    assert res.devices_of(any_store, one["id"]) == ("0000:3b:00.0",)
    assert res.devices_of(any_store, two["id"]) == ("0000:5e:00.0",)
    assert (two["nic_queues"], two["cpu_pinning"], two["hugepages"]) == (4, 1, "1G")
    assert two["pci_devices"] == [{"class": "gpu-a100", "count": 1}]
    (state,) = pl.load_hosts(any_store)
    assert state.free_resources == {"pcpu": 0, "hugepages:1G": 0, "pci:gpu-a100": 0}
    assert (state.used_vcpus, state.used_ram_mb) == (0, 0)  # nothing from the shared pools
    assert (state.vcpu_limit, state.ram_limit_mb) == (8, 65536 - 8192)
    with pytest.raises(NoCapacity, match="not enough free dedicated pCPUs"):
        pl.allocate(any_store, HEAVY, new_row=new_row("three", off["id"]))
    # the store itself refuses a pCPU pinned twice
    with pytest.raises(Conflict):
        any_store.insert(
            "pinned_cpus", {"host_id": one["host_id"], "cpu": 8, "vcpu": 9, "instance_id": two["id"]}
        )
    # deleting an instance gives its pCPUs and device back
    any_store.delete("instances", id=one["id"])
    (state,) = pl.load_hosts(any_store)
    assert state.free_resources == {"pcpu": 4, "hugepages:1G": 4, "pci:gpu-a100": 1}
    _chosen, three = pl.allocate(any_store, HEAVY, new_row=new_row("three", off["id"]))
    assert res.devices_of(any_store, three["id"]) == ("0000:3b:00.0",)


def test_iommu_group_goes_to_one_instance(any_store):
    _h, off = gpu_cloud(any_store, devices=(("0000:3b:00.0", 5), ("0000:3b:00.1", 5), ("0000:5e:00.0", 6)))
    req = pl.Request(1, 1024, pci=GPU)
    _c, one = pl.allocate(any_store, req, new_row=new_row("one", off["id"]))
    assert res.devices_of(any_store, one["id"]) == ("0000:3b:00.0",)
    (state,) = pl.load_hosts(any_store)
    assert state.free_resources["pci:gpu-a100"] == 1  # 3b:00.1 shares one's group
    _c, two = pl.allocate(any_store, req, new_row=new_row("two", off["id"]))
    assert res.devices_of(any_store, two["id"]) == ("0000:5e:00.0",)
    with pytest.raises(NoCapacity, match="no free gpu-a100 PCI device"):
        pl.allocate(any_store, req, new_row=new_row("three", off["id"]))
    # the holder of a group may take more of it (a resize to two devices)
    _c, one = pl.allocate(any_store, pl.Request(1, 1024, pci=(("gpu-a100", 2),)), instance_id=one["id"])
    assert res.devices_of(any_store, one["id"]) == ("0000:3b:00.0", "0000:3b:00.1")


def test_resize_releases_and_reassigns(any_store):
    _h, off = gpu_cloud(any_store)
    _c, one = pl.allocate(any_store, HEAVY, new_row=new_row("one", off["id"]))
    smaller = pl.Request(2, 2048, only=frozenset({"gpu1"}))
    _c, one = pl.allocate(any_store, smaller, instance_id=one["id"])
    assert res.pins_of(any_store, one["id"]) == () and res.devices_of(any_store, one["id"]) == ()
    assert (one["cpu_pinning"], one["hugepages"], one["pci_devices"]) == (0, "", [])
    (state,) = pl.load_hosts(any_store)
    assert state.free_resources == {"pcpu": 8, "hugepages:1G": 8, "pci:gpu-a100": 2}
    assert (state.used_vcpus, state.used_ram_mb) == (2, 2048)


# ------------------------------------------------------------------------------------------------
# Two processes race for the last device
# ------------------------------------------------------------------------------------------------
def _racer(target, name, barrier, results):
    store = Store.open(**target)
    slow_reads(pl, "load_hosts")  # without the lock both racers would win
    off = store.get("offerings", name="gpu")
    barrier.wait()

    def attempt():
        _chosen, row = pl.allocate(store, pl.Request(1, 512, pci=GPU), new_row=new_row(name, off["id"]))
        return res.devices_of(store, row["id"])

    race_attempt(results, name, store, attempt, lost=lambda exc: exc.msg)


def test_two_processes_race_for_the_last_device(any_store):
    _h, off = gpu_cloud(any_store, devices=(("0000:3b:00.0", 1), ("0000:5e:00.0", 2)))
    pl.allocate(any_store, pl.Request(1, 512, pci=GPU), new_row=new_row("first", off["id"]))  # one left
    outcome = race_two_processes(_racer, any_store.test_target_open)
    assert [o[1] for o in outcome] == ["no capacity", "won"], outcome
    assert outcome[1][2] == ("0000:5e:00.0",)
    assert "1 no free gpu-a100 PCI device [gpu1]" in outcome[0][2]
    assert abs(outcome[0][3] - outcome[1][3]) < 0.4  # both attempts really overlapped
    held = any_store.query("SELECT instance_id FROM pci_devices WHERE instance_id IS NOT NULL")
    assert len(held) == 2
    assert sorted(r["name"] for r in any_store.select("instances")) == ["first", outcome[1][0]]


# ------------------------------------------------------------------------------------------------
# An older store migrates without changing anything
# ------------------------------------------------------------------------------------------------
def test_version_4_store_migrates_with_neutral_defaults(tmp_path):
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL)"
    )
    for migration in store_mod.MIGRATIONS[:4]:
        for statement in migration.statements:
            conn.execute(store_mod.SQLITE.ddl(statement))
        conn.execute(
            "INSERT INTO schema_version VALUES (?, ?, 0)", (migration.version, migration.description)
        )
    conn.execute(
        "INSERT INTO hosts (name, uri, hypervisor, vcpus, ram_mb, storage_dir, created_at, updated_at)"
        " VALUES ('hv1', 'test:///default', 'qemu', 8, 16384, '/srv', 0, 0)"
    )
    conn.execute(
        "INSERT INTO offerings (name, vcpus, ram_mb, created_at, updated_at) VALUES ('big', 4, 4096, 0, 0)"
    )
    conn.execute(
        "INSERT INTO instances (uuid, name, instance_id, tenant, host_id, offering_id, vcpus, ram_mb, state,"
        " domain_type, networks, created_at, updated_at) VALUES ('u1', 'vm1', 'iid-u1', 't', 1, 1, 4, 4096,"
        ' \'running\', \'qemu\', \'[{"mac": "52:54:00:00:00:01", "type": "network", "source": "default",'
        ' "model": "virtio"}]\', 0, 0)'
    )
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version() == store_mod.SCHEMA_VERSION
        off = store.get("offerings", name="big")
        inst = store.get("instances", name="vm1")
        hv1 = store.get("hosts", name="hv1")
        assert (off["nic_queues"], off["cpu_pinning"], off["hugepages"], off["pci_devices"]) == (1, 0, "", [])
        assert (inst["nic_queues"], inst["cpu_pinning"], inst["hugepages"], inst["pci_devices"]) == (
            1,
            0,
            "",
            [],
        )
        assert (hv1["dedicated_cpus"], hv1["hugepages"]) == ("", {})
        (state,) = pl.load_hosts(store)
        assert (state.vcpu_limit, state.used_vcpus, state.free) == (32, 4, ())
        assert pl.offering_needs(off)["nic_queues"] == 1  # stays single-queue
        assert res.domain_extras(store, inst) == {"cpu_pins": (), "hugepage_kib": 0, "hostdevs": ()}


# ------------------------------------------------------------------------------------------------
# Domain XML: each option validates against libvirt's schema and defines on the test driver
# ------------------------------------------------------------------------------------------------
BASE = {
    "name": "heavy",
    "uuid": "6f1c2a9e-0b7d-4c55-9a53-3d2e8f1b7c40",
    "domain_type": "kvm",
    "memory_mib": 4096,
    "vcpus": 4,
    "disks": (virt.DiskSpec(target="vda", source="/srv/heavy.qcow2"),),
    "metadata": {"instance-id": "iid-heavy"},
}
NIC = virt.NicSpec(mac="52:54:00:12:34:56", kind="bridge", source="vm")
OPTIONS = {
    "nic_queues": {"nics": (virt.NicSpec(mac=NIC.mac, kind="bridge", source="vm", queues=4),)},
    "cpu_pinning": {"cpu_pins": ((0, 8), (1, 9), (2, 10), (3, 11))},
    "hugepages": {"hugepage_kib": 1048576},
    "pci_devices": {"hostdevs": ("0000:3b:00.0", "0000:5e:00.1")},
}
OPTIONS["all"] = {k: v for o in OPTIONS.values() for k, v in o.items()}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_domain_xml_of_each_option_validates(option, tmp_path):
    validator = shutil.which("virt-xml-validate")
    assert validator, "virt-xml-validate (libvirt-clients, with xmllint from libxml2-utils) is required"
    spec = virt.DomainSpec(**{**BASE, "nics": (NIC,), **OPTIONS[option]})
    xml = virt.build_xml(spec)
    path = tmp_path / "domain.xml"
    path.write_text(xml)
    done = subprocess.run([validator, str(path), "domain"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr + xml
    fields = virt.owned_fields(xml)
    expected = {
        "nic_queues": lambda f: f["nics"][0]["queues"] == 4 and '<driver queues="4"' in xml,
        "cpu_pinning": lambda f: (
            f["cpu_pins"] == [[0, "8"], [1, "9"], [2, "10"], [3, "11"]]
            and '<emulatorpin cpuset="8-11"' in xml
        ),
        "hugepages": lambda f: f["hugepage_kib"] == 1048576,
        "pci_devices": lambda f: (
            f["hostdevs"] == ["0000:3b:00.0", "0000:5e:00.1"]
            and 'mode="subsystem" type="pci" managed="yes"' in xml
        ),
    }
    for name, check in expected.items():
        assert check(fields) == (option in (name, "all")), (name, xml)


def test_schema_check_can_fail(tmp_path):
    """The validator refuses a broken hostdev: the test above would catch bad XML."""
    xml = virt.build_xml(virt.DomainSpec(**{**BASE, **OPTIONS["pci_devices"]}))
    path = tmp_path / "bad.xml"
    path.write_text(xml.replace('type="pci"', 'type="pcie-nonsense"'))
    done = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, check=False)
    assert done.returncode != 0


def test_queues_only_on_virtio_tap_nics():
    for nic, queues in (
        (virt.NicSpec(mac=NIC.mac, kind="network", queues=2), 2),
        (virt.NicSpec(mac=NIC.mac, kind="user", queues=2), 1),  # slirp has no multiqueue
        (virt.NicSpec(mac=NIC.mac, kind="bridge", source="vm", model="e1000", queues=2), 1),
        (virt.NicSpec(mac=NIC.mac, kind="bridge", source="vm", queues=1), 1),
    ):
        xml = virt.build_xml(virt.DomainSpec(**{**BASE, "nics": (nic,)}))
        assert virt.owned_fields(xml)["nics"][0]["queues"] == queues
        assert ("queues=" in xml) == (queues > 1)


def test_passthrough_domain_defines_on_the_test_driver(libvirt_test):
    spec = virt.DomainSpec(**{**BASE, "domain_type": "qemu", "nics": (NIC,), **OPTIONS["all"]})
    dom = virt.define(libvirt_test, virt.build_xml(spec))
    try:
        stored = virt.inactive_xml(dom)
        assert "<hostdev mode='subsystem' type='pci' managed='yes'>" in stored
        assert virt.changed_fields(virt.spec_fields(spec), virt.owned_fields(stored)) == []
        # merge_owned replaces exactly our parts: dropping the devices and pins leaves none behind
        plain = virt.DomainSpec(**{**BASE, "domain_type": "qemu", "nics": (NIC,)})
        merged = virt.merge_owned(stored, plain)
        assert virt.changed_fields(virt.spec_fields(plain), virt.owned_fields(merged)) == []
        assert "hostdev" not in merged and "vcpupin" not in merged and "hugepages" not in merged
        assert "<clock offset" in merged  # what libvirt added stays
    finally:
        virt.undefine(dom)


def test_pins_left_outside_a_shrunk_set_do_not_count(any_store):
    h, off = gpu_cloud(any_store)
    pl.allocate(any_store, HEAVY, new_row=new_row("one", off["id"]))  # pCPUs 8-11
    any_store.update("hosts", h["id"], {"dedicated_cpus": "10-15"})  # shrunk with force=true
    (state,) = pl.load_hosts(any_store)
    assert state.free_resources["pcpu"] == 4 and state.dedicated_cpus == 6  # 12-15 free
    _c, two = pl.allocate(any_store, HEAVY, new_row=new_row("two", off["id"]))
    assert [c for _v, c in res.pins_of(any_store, two["id"])] == [12, 13, 14, 15]
