# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rebalancing: the pure planner (moves, lower bound, evenness) and compleat.cloud.rebalance between
two test-driver "hosts" (test:///default and a second node file)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from cloud_testlib import VM_ON_HV1

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import rebalance as rb
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import CommandError, NoCapacity
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import hypervisor, instance
from ansible_collections.compleat.cloud.plugins.modules import rebalance as rebalance_module

KVM = frozenset({"kvm", "qemu", "test"})
XEN = frozenset({"xen"})
ROOT = Path(__file__).resolve().parents[3]


# ------------------------------------------------------------------------------------------------
# Pure planner
# ------------------------------------------------------------------------------------------------
def host(name, **kw):
    base = {"state": "up", "hypervisor": "kvm", "vcpus": 8, "ram_mb": 16384, "cpu_ratio": 1.0}
    base.update(kw)
    return pl.HostState(name=name, **base)


def vm(name, on, vcpus=1, ram_mb=512, *, group=None, kinds=frozenset(), movable=True):
    return rb.Instance(name, on, vcpus, ram_mb, group, kinds, movable)


def committed(hosts, insts):
    """Hosts with used vCPU/RAM, instance count and groups taken from the instances on them."""
    out = []
    for h in hosts:
        mine = [i for i in insts if i.host == h.name]
        out.append(
            dataclasses.replace(
                h,
                used_vcpus=sum(i.vcpus for i in mine),
                used_ram_mb=sum(i.ram_mb for i in mine),
                instances=len(mine),
                groups=frozenset(i.anti_affinity_group for i in mine if i.anti_affinity_group),
            )
        )
    return out


def smalls(on, count, prefix="s"):
    return [vm(f"{prefix}{n:02d}", on) for n in range(count)]


def _load_replay():
    """``replay`` of benchmarks/cloud_workload.py: the independent check of a plan the benchmark uses too."""
    spec = importlib.util.spec_from_file_location("cloud_workload", ROOT / "benchmarks" / "cloud_workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.replay


replay = _load_replay()


def test_even_cloud_makes_no_move():
    insts = smalls("a", 2, "a") + smalls("b", 2, "b")
    hosts = committed([host("a"), host("b")], insts)
    plan = rb.plan(hosts, insts)
    assert plan.moves == () and plan.lower_bound == 0 and plan.complete
    assert plan.before.outside == 0 and plan.before == plan.after
    assert plan.before.level == pytest.approx(0.25) and plan.before.spread == 0.0


def test_new_empty_host_takes_half_with_moves_equal_to_the_lower_bound():
    insts = smalls("a", 4)
    hosts = committed([host("a"), host("b")], insts)
    plan = rb.plan(hosts, insts)
    assert [(m.source, m.target, m.reason) for m in plan.moves] == [("a", "b", "balance")] * 2
    assert plan.lower_bound == rb.lower_bound(hosts, insts) == 2
    assert plan.before.outside == 2 and plan.after.outside == 0
    assert (plan.before.max, plan.after.max, plan.after.min) == (0.5, 0.25, 0.25)
    assert not replay(hosts, insts, plan.moves)


def test_grow_from_one_to_four_hosts():
    insts = smalls("a", 8)  # host a full (8 of 8 vCPU)
    hosts = committed([host("a"), host("b"), host("c"), host("d")], insts)
    plan = rb.plan(hosts, insts)
    assert len(plan.moves) == plan.lower_bound == 6
    after, _placed = rb.apply_moves(hosts, insts, plan.moves)
    assert [h.used_vcpus for h in after] == [2, 2, 2, 2]
    assert plan.after.outside == 0 and plan.after.stddev == 0.0


def test_largest_instance_first_gives_the_lower_bound():
    insts = [vm("big", "a", 4, 8192), *smalls("a", 4)]  # a: 8 vCPU = 1.0; b empty
    hosts = committed([host("a"), host("b")], insts)
    plan = rb.plan(hosts, insts, tolerance=0.05)
    assert [m.instance for m in plan.moves] == ["big"]
    assert plan.lower_bound == 1


def test_lower_bound_counts_removals_additions_and_drains():
    insts = smalls("a", 8) + smalls("m", 3, "m")
    hosts = committed([host("a"), host("b"), host("c"), host("m", maintenance=True)], insts)
    # level 11 vCPU over 24 = 0.458, window [0.408, 0.508]: a (1.0) must lose 4 and m's 3 are
    # drained (removals 7), b and c need 4 each (additions 8): 12 > 11, so no plan can make it even
    assert rb.lower_bound(hosts, insts, tolerance=0.05) == 8
    insts.append(vm("m03", "m"))
    hosts = committed(hosts, insts)
    # level 0.5, window [0.45, 0.55]: a loses 4, m's 4 drained (removals 8), b and c need 4 each (8)
    plan = rb.plan(hosts, insts, tolerance=0.05)
    assert len(plan.moves) == plan.lower_bound == 8
    assert plan.after.outside == 0 and plan.after.draining == 0


def test_capacity_and_anti_affinity_never_broken():
    insts = [vm(f"db{n}", "a", 2, 2048, group="db") for n in range(1)]
    insts += [vm("db-b", "b", 2, 2048, group="db"), *smalls("a", 6)]
    hosts = committed([host("a"), host("b"), host("c", vcpus=2)], insts)
    plan = rb.plan(hosts, insts)
    assert all(not (m.instance.startswith("db") and m.target == "b") for m in plan.moves)
    assert not replay(hosts, insts, plan.moves)
    after, _placed = rb.apply_moves(hosts, insts, plan.moves)
    assert all(h.used_vcpus <= h.vcpu_limit and h.used_ram_mb <= h.ram_limit_mb for h in after)


def test_capacity_holds_when_the_cloud_is_over_its_limits():
    # a's limit was lowered below what it commits (hypervisor force=true); b has one vCPU free
    insts = [vm(f"d{n}", "a", 2, 1024) for n in range(6)] + smalls("b", 7)
    hosts = committed([host("a"), host("b")], insts)
    assert rb.plan(hosts, insts).moves == ()  # a 2-vCPU move would help both, but b has 1 vCPU
    insts.append(vm("one", "a"))
    hosts = committed(hosts, insts)
    plan = rb.plan(hosts, insts)
    assert [m.instance for m in plan.moves] == ["one"] and not replay(hosts, insts, plan.moves)


def test_hypervisor_family_is_kept():
    insts = [vm(f"x{n}", "xa", kinds=XEN) for n in range(4)] + [
        vm(f"k{n}", "ka", kinds=KVM) for n in range(4)
    ]
    hosts = committed(
        [host("xa", hypervisor="xen"), host("ka"), host("kb"), host("xb", hypervisor="xen")], insts
    )
    plan = rb.plan(hosts, insts)
    kinds = {h.name: h.hypervisor for h in hosts}
    assert plan.moves and all(kinds[m.target] == kinds[m.source] for m in plan.moves)
    assert set(plan.after.levels) == {"kvm", "xen"} and plan.after.outside == 0


def test_max_moves_takes_the_most_useful_moves_first():
    insts = smalls("a", 8) + smalls("b", 5, "b")
    hosts = committed([host("a"), host("b"), host("c"), host("d")], insts)
    full = rb.plan(hosts, insts)
    cut = rb.plan(hosts, insts, max_moves=2)
    assert len(cut.moves) == 2 and not cut.complete and full.complete
    assert cut.moves == full.moves[:2]
    assert all(m.source == "a" for m in cut.moves)  # the most loaded host is relieved first
    assert rb.plan(hosts, insts, max_moves=len(full.moves)).complete


def test_maintenance_host_is_drained_first_and_never_a_target():
    insts = smalls("m", 3, "m") + smalls("a", 4) + [vm("stuck", "m", movable=False)]
    hosts = committed([host("a"), host("b"), host("m", maintenance=True)], insts)
    plan = rb.plan(hosts, insts)
    assert [m.reason for m in plan.moves[:3]] == ["drain"] * 3
    assert {m.instance for m in plan.moves[:3]} == {"m00", "m01", "m02"}
    assert all(m.target != "m" for m in plan.moves)
    assert plan.unplaced == (("stuck", "not movable, stays on m (maintenance)"),)
    assert plan.before.draining == 3 and plan.after.draining == 0
    cut = rb.plan(hosts, insts, max_moves=2)
    assert [m.reason for m in cut.moves] == ["drain", "drain"] and not cut.complete


def test_drain_without_room_reports_unplaced():
    insts = [vm("huge", "m", 8, 16384), *smalls("a", 1)]
    hosts = committed([host("a"), host("m", maintenance=True)], insts)
    plan = rb.plan(hosts, insts)
    assert plan.moves == () and plan.unplaced[0][0] == "huge"


def test_hosts_not_up_are_ignored():
    insts = smalls("a", 4) + smalls("d", 4, "d")
    hosts = committed([host("a"), host("b"), host("d", state="down"), host("f", state="fenced")], insts)
    plan = rb.plan(hosts, insts)
    assert len(plan.moves) == 2 and all(m.target == "b" and m.source == "a" for m in plan.moves)
    assert plan.before.hosts == 2 and plan.before.level == pytest.approx(0.25)
    down_maintenance = committed([host("a"), host("m", state="down", maintenance=True)], smalls("m", 2))
    assert rb.plan(down_maintenance, smalls("m", 2)).moves == ()


def test_not_movable_instances_stay_and_keep_their_capacity():
    insts = [vm(f"p{n}", "a", movable=False) for n in range(4)]
    hosts = committed([host("a"), host("b")], insts)
    plan = rb.plan(hosts, insts)
    assert plan.moves == () and plan.lower_bound == 0 and plan.after.outside == 2


def test_plan_is_deterministic_whatever_the_input_order():
    rng = random.Random(7)
    insts = [
        vm(f"v{n:02d}", rng.choice("abc"), rng.choice((1, 2)), rng.choice((512, 2048))) for n in range(20)
    ]
    hosts = committed([host(n, vcpus=16) for n in "abcdef"], insts)
    first = rb.plan(hosts, insts)
    again = rb.plan(list(reversed(hosts)), rng.sample(insts, len(insts)))
    assert first == again and first.moves


def test_second_plan_after_the_moves_is_empty():
    insts = [*smalls("a", 8), vm("big", "a", 4, 8192)]
    hosts = committed([host("a", vcpus=16, ram_mb=32768), host("b"), host("c")], insts)
    plan = rb.plan(hosts, insts)
    # only a (16 vCPU) can hold big inside the window: six small ones move (the bound, 3, counts big)
    assert len(plan.moves) == 6 and "big" not in {m.instance for m in plan.moves}
    assert plan.lower_bound == 3 and plan.after.outside == 0
    after_hosts, after_insts = rb.apply_moves(hosts, insts, plan.moves)
    assert rb.plan(after_hosts, after_insts).moves == ()


def test_each_instance_moves_at_most_once():
    insts = [vm("big", "a", 6, 1024), *smalls("a", 2), *smalls("b", 1, "b")]
    hosts = committed([host("a"), host("b"), host("c")], insts)
    plan = rb.plan(hosts, insts, tolerance=0.1)
    names = [m.instance for m in plan.moves]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("seed", range(60))
def test_random_clouds_keep_every_constraint(seed):
    rng = random.Random(seed)
    hosts = [
        host(
            f"h{n:02d}",
            state=rng.choice(["up"] * 8 + ["down", "fenced"]),
            hypervisor=rng.choice(["kvm", "kvm", "qemu", "xen"]),
            vcpus=rng.choice((8, 16, 32)),
            ram_mb=rng.choice((16384, 32768)),
            cpu_ratio=rng.choice((1.0, 4.0)),
            maintenance=rng.random() < 0.1,
        )
        for n in range(rng.randint(2, 12))
    ]
    insts, used = [], {h.name: [0, 0, set()] for h in hosts}
    for n in range(rng.randint(0, 60)):
        h = rng.choice(hosts[: max(1, len(hosts) // 3)])
        vcpus, ram = rng.choice(((1, 512), (2, 2048), (4, 8192)))
        kinds = XEN if h.hypervisor == "xen" else KVM
        group = rng.choice([None, None, "g1", "g2"])
        u = used[h.name]
        if u[0] + vcpus > h.vcpu_limit or u[1] + ram > h.ram_limit_mb or group in u[2]:
            continue
        u[0], u[1] = u[0] + vcpus, u[1] + ram
        if group:
            u[2].add(group)
        insts.append(
            vm(f"i{n:02d}", h.name, vcpus, ram, group=group, kinds=kinds, movable=rng.random() < 0.95)
        )
    hosts = committed(hosts, insts)
    cap = rng.choice([None, 3])
    plan = rb.plan(hosts, insts, tolerance=rng.choice((0.05, 0.1)), max_moves=cap)
    assert not replay(hosts, insts, plan.moves)
    assert cap is None or len(plan.moves) <= cap
    assert len({m.instance for m in plan.moves}) == len(plan.moves)
    if plan.after.outside == 0 and not plan.unplaced and plan.after.draining == 0:
        assert len(plan.moves) >= plan.lower_bound  # the bound is a bound


def test_evenness_and_dicts():
    insts = smalls("a", 4)
    hosts = committed([host("a"), host("b")], insts)
    ev = rb.evenness(hosts, insts)
    assert ev.as_dict() == {
        "level": 0.25,
        "tolerance": 0.05,
        "hosts": 2,
        "min": 0.0,
        "max": 0.5,
        "mean": 0.25,
        "stddev": 0.25,
        "spread": 0.5,
        "outside": 2,
        "draining": 0,
        "levels": {"kvm": 0.25},
    }
    out = rb.plan(hosts, insts).as_dict()
    assert out["moves"][0] == {"instance": "s00", "from": "a", "to": "b", "reason": "balance"}
    json.dumps(out)


# ------------------------------------------------------------------------------------------------
# Store view (SQLite and PostgreSQL)
# ------------------------------------------------------------------------------------------------
def add_host(store, name, **kw):
    row = {
        "name": name,
        "uri": "test:///default",
        "hypervisor": "qemu",
        "vcpus": 8,
        "ram_mb": 16384,
        "cpu_ratio": 1.0,
        "ram_ratio": 1.0,
        "storage_dir": "/srv",
    }
    row.update(kw)
    return store.insert("hosts", row)


def add_instance(store, name, host_row, offering, **kw):
    row = {
        "uuid": f"uuid-{name}",
        "name": name,
        "instance_id": f"iid-{name}",
        "tenant": "t",
        "offering_id": offering["id"],
        "host_id": host_row["id"],
        "vcpus": 1,
        "ram_mb": 512,
        "state": "running",
        "domain_type": "qemu",
    }
    row.update(kw)
    return store.insert("instances", row)


def test_store_view_and_allocation_to_the_target(any_store):
    a, b = add_host(any_store, "a"), add_host(any_store, "b", vcpus=1)
    add_host(any_store, "x", hypervisor="xen", state="down")
    off = any_store.insert("offerings", {"name": "small", "vcpus": 1, "ram_mb": 512})
    for n in range(4):
        add_instance(any_store, f"vm{n}", a, off, state="building" if n == 3 else "running")
    hosts, insts = rebalance_module.cloud_view(any_store, None)
    assert [h.name for h in hosts] == ["a", "b", "x"] and [i.movable for i in insts] == [True] * 3 + [False]
    assert insts[0].hypervisors == KVM
    assert [h.name for h in rebalance_module.cloud_view(any_store, ["b"])[0]] == ["b"]
    assert rb.plan(hosts, insts).moves == ()  # b (1 vCPU) would end fuller than a is: nothing improves

    inst = any_store.get("instances", name="vm0")
    any_store.insert(
        "stale_definitions", {"instance_uuid": inst["uuid"], "instance_name": "vm0", "host_id": b["id"]}
    )
    mover = rebalance_module.Mover(any_store, lambda argv: (0, "", ""), False, 1.0)
    rebalance_module.allocate_to(mover, inst, b, ("/b/vm0.qcow2", "/b/vm0-seed.iso"))
    row = any_store.get("instances", name="vm0")
    assert (row["host_id"], row["root_disk"], row["state"]) == (b["id"], "/b/vm0.qcow2", "building")
    assert any_store.select("stale_definitions") == []
    with pytest.raises(NoCapacity):  # b is full now: capacity is checked again in the transaction
        rebalance_module.allocate_to(mover, any_store.get("instances", name="vm1"), b, ("/b/x", "/b/y"))
    assert any_store.get("instances", name="vm1")["host_id"] == a["id"]


def test_unknown_host_in_subset(sqlite_store):
    add_host(sqlite_store, "a")
    with pytest.raises(Exception, match="Unknown host"):
        rebalance_module.cloud_view(sqlite_store, ["a", "nope"])


# ------------------------------------------------------------------------------------------------
# The module, between two test-driver hosts
# ------------------------------------------------------------------------------------------------
VM = VM_ON_HV1


@pytest.fixture
def grown(cloud, second_node):
    """hv1 runs four small instances (vm-a, vm-b running; vm-c, vm-d stopped); hv2 is new and empty."""
    cloud.add_host("hv2", second_node)
    made = {}
    for name, state in (("vm-a", "running"), ("vm-b", "running"), ("vm-c", "stopped"), ("vm-d", "stopped")):
        made[name] = cloud.ok(instance, name=name, state=state, **VM)["instance"]
    return cloud, second_node, made


def where(cloud):
    with Store.open(cloud.store) as s:
        hosts = {h["id"]: h["name"] for h in s.select("hosts")}
        return {i["name"]: hosts[i["host_id"]] for i in s.select("instances")}


def backing_of(path):
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", path], check=True, capture_output=True)
    return json.loads(out.stdout)["backing-filename"]


def test_check_mode_returns_the_plan_and_changes_nothing(grown):
    cloud, uri_b, _made = grown
    res = cloud.ok(rebalance_module, check=True)
    assert res["changed"] and res["planned"] == len(res["moves"]) == res["lower_bound"] == 2
    assert {m["from"] for m in res["moves"]} == {"hv1"} and {m["to"] for m in res["moves"]} == {"hv2"}
    assert res["evenness_before"]["outside"] == 2 and res["evenness_after"]["outside"] == 0
    assert res["complete"] and len(res["actions"]) == 2
    assert set(where(cloud).values()) == {"hv1"}
    assert virt.domain_names(virt.connect(uri_b)) == []
    assert os.listdir(cloud.tmp / "hv2") == []


def test_rebalance_moves_cold_and_is_idempotent(grown, libvirt_test):
    cloud, uri_b, made = grown
    res = cloud.ok(rebalance_module)
    assert res["changed"] and len(res["moves"]) == 2 and res["evenness_after"]["outside"] == 0
    placed = where(cloud)
    moved = sorted(n for n, h in placed.items() if h == "hv2")
    assert moved == sorted(m["instance"] for m in res["moves"]) and len(moved) == 2
    conn_b = virt.connect(uri_b)
    with Store.open(cloud.store) as s:
        tpl = s.get("images", name="tpl")["path"]
        for name in moved:
            row, first = s.get("instances", name=name), made[name]
            dom = conn_b.lookupByUUIDString(first["uuid"])
            assert bool(dom.isActive()) == (first["state"] == "running") == (row["state"] == "running")
            fields = virt.owned_fields(dom.XMLDesc(virt.XML_INACTIVE))
            assert (
                fields["metadata"]["instance-id"] == first["instance_id"]
                and fields["metadata"]["host"] == "hv2"
            )
            assert fields["nics"][0]["mac"] == first["networks"][0]["mac"]
            assert row["root_disk"] == str(cloud.tmp / "hv2" / f"{name}.qcow2") and os.path.exists(
                row["root_disk"]
            )
            assert backing_of(row["root_disk"]) == tpl  # copied overlay, same template
            assert os.path.exists(row["seed_path"]) and row["seed_path"].startswith(str(cloud.tmp / "hv2"))
            assert not os.path.exists(first["root_disk"]) and not os.path.exists(first["seed_path"])
            assert name not in virt.domain_names(libvirt_test)
            events = [(e["event"], e["host"]) for e in s.select("usage_events") if e["instance_name"] == name]
            if first["state"] == "running":
                assert events[-2:] == [("stop", "hv1"), ("start", "hv2")]
    for name in moved:  # store and libvirt agree
        assert not cloud.ok(instance, name=name, state=made[name]["state"])["changed"]
    again = cloud.ok(rebalance_module)
    assert not again["changed"] and again["moves"] == [] and again["lower_bound"] == 0


def test_reuse_keeps_the_overlay_in_place(grown):
    cloud, uri_b, made = grown
    res = cloud.ok(rebalance_module, root_disk="reuse", max_moves=1)
    (move,) = res["moves"]
    assert not res["complete"]
    with Store.open(cloud.store) as s:
        row = s.get("instances", name=move["instance"])
    assert row["root_disk"] == made[move["instance"]]["root_disk"] and os.path.exists(row["root_disk"])
    dom = virt.connect(uri_b).lookupByUUIDString(row["uuid"])
    vda = next(d for d in virt.owned_fields(dom.XMLDesc(virt.XML_INACTIVE))["disks"] if d["target"] == "vda")
    assert vda["source"] == row["root_disk"]


def test_maintenance_host_is_drained(grown):
    cloud, _uri_b, _made = grown
    cloud.ok(hypervisor, name="hv1", maintenance=True)
    res = cloud.ok(rebalance_module)
    assert [m["reason"] for m in res["moves"]] == ["drain"] * 4
    assert set(where(cloud).values()) == {"hv2"}
    assert res["evenness_after"]["draining"] == 0
    assert not cloud.ok(rebalance_module)["changed"]


def test_failure_while_defining_on_the_target_puts_the_instance_back(grown, libvirt_test):
    cloud, uri_b, made = grown
    first = cloud.ok(rebalance_module, check=True, max_moves=1)["moves"][0]["instance"]
    conn_b = virt.connect(uri_b)
    squatter = virt.build_xml(
        virt.DomainSpec(
            name=first,
            uuid="6b1c3a51-0000-4000-8000-000000000001",
            domain_type="qemu",
            memory_mib=64,
            vcpus=1,
        )
    )
    conn_b.defineXML(squatter)
    res = cloud.fails(rebalance_module, max_moves=1)
    assert f"Moving {first} from hv1 to hv2 failed" in res["msg"] and "another UUID" in res["msg"]
    assert f"It is back on hv1 ({made[first]['state']})" in res["msg"] and res["hint"]
    assert res["moves"] == [] and not res["changed"] and "Traceback" not in res["msg"]
    assert where(cloud)[first] == "hv1"
    with Store.open(cloud.store) as s:
        row = s.get("instances", name=first)
    assert row["state"] == made[first]["state"] and row["root_disk"] == made[first]["root_disk"]
    assert not os.path.exists(cloud.tmp / "hv2" / f"{first}.qcow2")
    dom = libvirt_test.lookupByUUIDString(made[first]["uuid"])
    assert bool(dom.isActive()) == (made[first]["state"] == "running")
    assert not cloud.ok(instance, name=first, state=made[first]["state"])["changed"]


def test_failure_while_copying_puts_the_instance_back(grown, libvirt_test, monkeypatch):
    cloud, _uri_b, made = grown

    def broken_copy(run, src, dest):
        raise CommandError("cp: No space left on device", "Free some space.")

    monkeypatch.setattr(rebalance_module, "copy_overlay", broken_copy)
    res = cloud.fails(rebalance_module)
    name = res["msg"].split()[1]
    assert "No space left" in res["msg"] and res["hint"] == "Free some space."
    assert where(cloud)[name] == "hv1" and os.path.exists(made[name]["root_disk"])
    dom = libvirt_test.lookupByUUIDString(made[name]["uuid"])
    assert bool(dom.isActive()) == (made[name]["state"] == "running")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ({"tolerance": 0.0}, "tolerance=0.0 is out of range"),
        ({"max_moves": 0}, "max_moves=0 must be at least 1"),
        ({"hosts": ["hv1", "hv9"]}, "Unknown host(s) hv9"),
    ],
)
def test_bad_options_fail_with_a_hint(grown, args, text):
    res = grown[0].fails(rebalance_module, **args)
    assert text in res["msg"] and res["hint"] and "exception" not in res


def test_hosts_subset_limits_sources_and_targets(grown):
    cloud = grown[0]
    res = cloud.ok(rebalance_module, hosts=["hv1"], check=True)
    assert not res["changed"] and res["evenness_before"]["hosts"] == 1
