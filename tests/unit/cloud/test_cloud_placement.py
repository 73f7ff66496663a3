# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Placement: pure filter/weigh, store-backed allocation, and the race for the last slot."""

from __future__ import annotations

import random

import pytest
from cloud_testlib import new_row, place_one_by_one, race_attempt, race_two_processes, slow_reads

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import NoCapacity
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store


def host(name, **kw):
    base = {"state": "up", "hypervisor": "kvm", "vcpus": 8, "ram_mb": 16384}
    base.update(kw)
    return pl.HostState(name=name, **base)


def test_limits_apply_reservation_then_overcommit():
    h = host("a", vcpus=8, reserved_vcpus=2, cpu_ratio=4.0, ram_mb=16384, reserved_ram_mb=1024, ram_ratio=1.5)
    assert h.vcpu_limit == 24
    assert h.ram_limit_mb == 23040
    assert h.with_allocation(pl.Request(2, 1024)).free_vcpus == 22


@pytest.mark.parametrize(
    ("h", "req", "reason"),
    [
        (host("a", state="down"), pl.Request(1, 1), "not_up"),
        (host("a", state="fenced"), pl.Request(1, 1), "not_up"),
        (host("a", hypervisor="xen"), pl.Request(1, 1, hypervisors=frozenset({"kvm"})), "hypervisor"),
        (host("a", groups=frozenset({"db"})), pl.Request(1, 1, anti_affinity_group="db"), "anti_affinity"),
        (host("a", used_vcpus=8), pl.Request(1, 1), "vcpu"),
        (host("a", used_ram_mb=16000), pl.Request(1, 512), "ram"),
        (host("a"), pl.Request(1, 1, exclude=frozenset({"a"})), "excluded"),
        (host("a"), pl.Request(1, 1, only=frozenset({"b"})), "excluded"),
        (host("a", groups=frozenset({"db"})), pl.Request(1, 1, anti_affinity_group="web"), None),
    ],
)
def test_filter_reasons(h, req, reason):
    assert pl.rejection(h, req) == reason


def test_weigh_prefers_free_ram_then_vcpu_then_fewer_instances():
    hosts = [host("a", used_ram_mb=8000), host("b"), host("c", used_vcpus=4), host("d", instances=3)]
    norm = pl.normalisers(hosts)
    assert [h.name for h in pl.weigh(hosts, pl.DEFAULT_WEIGHTS, norm)] == ["b", "d", "c", "a"]


def test_ties_break_on_name_deterministically():
    hosts = [host("z"), host("m"), host("a")]
    assert pl.select_host(hosts, pl.Request(1, 512)).name == "a"


def test_no_capacity_explains_every_reason():
    hosts = [host("a", state="down"), host("b", used_vcpus=8), host("c", hypervisor="xen")]
    with pytest.raises(NoCapacity) as info:
        pl.select_host(hosts, pl.Request(1, 512, hypervisors=frozenset({"kvm"})))
    text = info.value.msg
    assert (
        "1 not up [a]" in text and "1 other hypervisor type [c]" in text and "1 not enough vCPU [b]" in text
    )
    assert info.value.hint
    with pytest.raises(NoCapacity, match=r"(?i)no hosts are registered"):
        pl.select_host([], pl.Request(1, 1))


def test_place_many_matches_repeated_select_host():
    rng = random.Random(7)
    hosts = [
        host(
            f"h{i:02d}",
            vcpus=rng.choice([4, 8, 16]),
            ram_mb=rng.choice([8192, 16384]),
            cpu_ratio=rng.choice([1.0, 2.0]),
            hypervisor=rng.choice(["kvm", "kvm", "xen"]),
            state=rng.choice(["up"] * 5 + ["down"]),
        )
        for i in range(30)
    ]
    requests = [
        pl.Request(
            rng.choice([1, 2, 4]),
            rng.choice([512, 1024, 4096]),
            hypervisors=frozenset({rng.choice(["kvm", "xen"])}),
            anti_affinity_group=rng.choice([None, None, "g1", "g2"]),
        )
        for _attempt in range(300)
    ]
    fast, final = pl.place_many(hosts, requests)
    slow, states = place_one_by_one(pl, hosts, requests)
    assert fast == slow
    assert final == states
    assert None in fast  # the scenario does fill up


def add_hosts(store: Store, *specs):
    for name, vcpus, ram in specs:
        store.insert(
            "hosts",
            {
                "name": name,
                "uri": "test:///default",
                "hypervisor": "qemu",
                "vcpus": vcpus,
                "ram_mb": ram,
                "cpu_ratio": 1.0,
                "ram_ratio": 1.0,
                "storage_dir": "/srv",
            },
        )
    return store.insert("offerings", {"name": "small", "vcpus": 1, "ram_mb": 512})


def test_allocate_counts_committed_allocations(any_store):
    off = add_hosts(any_store, ("a", 2, 4096), ("b", 1, 4096))
    chosen = [
        pl.allocate(any_store, pl.Request(1, 512), new_row=new_row(f"vm{i}", off["id"]))[0].name
        for i in range(3)
    ]
    assert sorted(chosen) == ["a", "a", "b"]
    with pytest.raises(NoCapacity):
        pl.allocate(any_store, pl.Request(1, 512), new_row=new_row("vm9", off["id"]))
    assert len(any_store.select("instances")) == 3  # nothing written by the failed attempt
    assert pl.plan(
        any_store, pl.Request(1, 512), ignore_instance=any_store.get("instances", name="vm0")["id"]
    )


def test_allocate_respects_anti_affinity(any_store):
    off = add_hosts(any_store, ("a", 8, 8192), ("b", 8, 8192))
    req = pl.Request(1, 512, anti_affinity_group="db")
    names = {pl.allocate(any_store, req, new_row=new_row(f"db{i}", off["id"]))[0].name for i in range(2)}
    assert names == {"a", "b"}
    with pytest.raises(NoCapacity, match="anti-affinity"):
        pl.allocate(any_store, req, new_row=new_row("db3", off["id"]))


def test_resize_in_place_excludes_own_usage(any_store):
    off = add_hosts(any_store, ("a", 2, 2048))
    row = pl.allocate(any_store, pl.Request(1, 1024), new_row=new_row("vm", off["id"]))[1]
    req = pl.Request(2, 2048, only=frozenset({"a"}))
    chosen, row = pl.allocate(any_store, req, instance_id=row["id"], changes={"state": "stopped"})
    assert chosen.name == "a" and row["vcpus"] == 2 and row["ram_mb"] == 2048 and row["state"] == "stopped"


# ------------------------------------------------------------------------------------------------
# Two processes race for the last slot
# ------------------------------------------------------------------------------------------------
def _racer(target, name, barrier, results):
    store = Store.open(**target)
    slow_reads(pl, "load_hosts")  # without the lock both racers would win
    off = store.get("offerings", name="small")
    barrier.wait()
    race_attempt(
        results,
        name,
        store,
        lambda: pl.allocate(store, pl.Request(1, 512), new_row=new_row(name, off["id"]))[0].name,
    )


def test_two_processes_race_for_the_last_slot(any_store):
    off = add_hosts(any_store, ("a", 2, 4096))
    pl.allocate(any_store, pl.Request(1, 512), new_row=new_row("first", off["id"]))  # one slot left
    outcome = race_two_processes(_racer, any_store.test_target_open)
    assert sorted(o[1] for o in outcome) == ["no capacity", "won"], outcome
    assert abs(outcome[0][3] - outcome[1][3]) < 0.4  # both attempts really overlapped
    assert sorted(r["name"] for r in any_store.select("instances")) == sorted(
        ["first", *[o[0] for o in outcome if o[1] == "won"]]
    )
