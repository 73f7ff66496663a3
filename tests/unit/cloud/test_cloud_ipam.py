# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""IPAM: pools, the lowest-free rule, fixed addresses, release and reuse, the store, two racing allocators."""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path

import pytest
from cloud_testlib import race_attempt, race_two_processes, slow_reads

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import ipam
from ansible_collections.compleat.cloud.plugins.module_utils.cloud import store as store_mod
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import (
    Conflict,
    InvalidInput,
    NoCapacity,
    NotFound,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import load_fabric

ROOT = Path(__file__).resolve().parents[3]


def n(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


# ------------------------------------------------------------------------------------------------
# Pure
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("10.0.0.1/24", "did you mean 10.0.0.0/24"),
        ("10.0.0.0", "CIDR"),
        ("300.0.0.0/24", "not an IPv4 network"),
        ("10.0.0.0/31", "/30"),
        ("10.0.0.0/7", "/8"),
        ("fe80::/64", "not an IPv4 network"),
    ],
)
def test_parse_cidr_refuses_with_the_key_and_value(value, needle):
    with pytest.raises(InvalidInput) as info:
        ipam.parse_cidr("cidr", value)
    assert needle in info.value.msg and "cidr=" in info.value.msg and value in info.value.msg


def test_merge_joins_overlapping_and_adjacent_intervals():
    assert ipam.merge([(5, 7), (1, 2), (3, 3), (10, 12), (11, 20)]) == ((1, 3), (5, 7), (10, 20))
    assert ipam.merge([(5, 7), (1, 4)]) == ((1, 7),)
    assert ipam.merge([]) == ()


def test_pool_never_hands_out_network_gateway_broadcast_or_reserved():
    pool = ipam.make_pool("p", "10.0.0.0/29", "10.0.0.1", ["10.0.0.3-10.0.0.4"])
    a = ipam.Allocator(pool)
    got = [ipam.ntoa(a.allocate()) for _n in range(pool.capacity())]
    assert got == ["10.0.0.2", "10.0.0.5", "10.0.0.6"]
    assert pool.capacity() == 3
    with pytest.raises(NoCapacity) as info:
        a.allocate()
    assert "Network p (10.0.0.0/29)" in info.value.msg and "3 usable" in info.value.msg


def test_lowest_free_skips_blocked_and_used_from_any_start():
    pool = ipam.make_pool("p", "10.0.0.0/24", "10.0.0.1", ["10.0.0.10/31", "10.0.0.20"])
    used = [n("10.0.0.2"), n("10.0.0.3"), n("10.0.0.9"), n("10.0.0.12")]
    assert ipam.ntoa(ipam.lowest_free(pool, used)) == "10.0.0.4"
    assert ipam.ntoa(ipam.lowest_free(pool, used, n("10.0.0.9"))) == "10.0.0.13"
    assert ipam.ntoa(ipam.lowest_free(pool, used, n("10.0.0.20"))) == "10.0.0.21"
    assert ipam.lowest_free(pool, used, n("10.0.0.255")) is None


def test_lowest_free_matches_a_naive_scan_on_random_pools():
    import random

    rnd = random.Random(7)
    for _n in range(200):
        pool = ipam.make_pool(
            "p",
            "10.1.0.0/26",
            "10.1.0.1",
            [f"10.1.0.{a}-10.1.0.{a + rnd.randrange(4)}" for a in rnd.sample(range(2, 58), 3)],
        )
        used = sorted(rnd.sample(range(pool.first, pool.last + 1), rnd.randrange(40)))
        naive = next(
            (c for c in range(pool.first, pool.last + 1) if c not in used and not pool.is_blocked(c)), None
        )
        assert ipam.lowest_free(pool, used) == naive


def test_allocator_releases_and_reuses_the_lowest_address():
    a = ipam.Allocator(ipam.make_pool("p", "10.0.0.0/24", "10.0.0.1"))
    first = [a.allocate() for _n in range(5)]
    assert [ipam.ntoa(x) for x in first] == [f"10.0.0.{i}" for i in range(2, 7)]
    a.release(first[1])
    a.release(first[3])
    assert ipam.ntoa(a.allocate()) == "10.0.0.3"  # the lowest released comes back first
    assert ipam.ntoa(a.allocate()) == "10.0.0.5"
    assert ipam.ntoa(a.allocate()) == "10.0.0.7"
    a.release(n("10.9.9.9"))  # not allocated: nothing happens
    assert ipam.ntoa(a.allocate()) == "10.0.0.8"


@pytest.mark.parametrize(
    ("address", "error", "needle"),
    [
        ("10.0.0.0", InvalidInput, "reserved"),  # network
        ("10.0.0.255", InvalidInput, "reserved"),  # broadcast
        ("10.0.0.1", InvalidInput, "reserved"),  # gateway
        ("10.0.0.50", InvalidInput, "reserved"),  # reserved range
        ("10.0.1.5", InvalidInput, "not in network p (10.0.0.0/24)"),
        ("10.0.0.7", Conflict, "already allocated"),
    ],
)
def test_fixed_address_is_checked_against_the_pool(address, error, needle):
    a = ipam.Allocator(ipam.make_pool("p", "10.0.0.0/24", "10.0.0.1", ["10.0.0.48/28"]))
    a.allocate(n("10.0.0.7"))
    with pytest.raises(error) as info:
        a.allocate(n(address))
    assert needle in info.value.msg and address in info.value.msg


def test_fixed_then_lowest_free_does_not_collide():
    a = ipam.Allocator(ipam.make_pool("p", "10.0.0.0/28", "10.0.0.1"))
    a.allocate(n("10.0.0.2"))
    assert ipam.ntoa(a.allocate()) == "10.0.0.3"


def test_reserved_range_must_be_inside_the_network():
    with pytest.raises(InvalidInput) as info:
        ipam.make_pool("p", "10.0.0.0/24", None, ["10.0.0.9-10.0.0.3"])
    assert "reserved[0]" in info.value.msg
    with pytest.raises(InvalidInput):
        ipam.make_pool("p", "10.0.0.0/24", None, ["10.0.1.0/28"])


@pytest.mark.parametrize("vni", [0, 16_777_216, -1])
def test_vni_range(vni):
    with pytest.raises(InvalidInput) as info:
        ipam.check_vni("vni", vni)
    assert f"vni={vni}" in info.value.msg


def test_vni_bounds_accepted():
    ipam.check_vni("vni", 1)
    ipam.check_vni("vni", 16_777_215)


def test_mtu_against_fabric_mtu_minus_vxlan_overhead():
    assert ipam.max_tenant_mtu(1500) == 1450 and ipam.max_tenant_mtu(9000) == 8950
    ipam.check_mtu("mtu", 1450, 1500)
    with pytest.raises(InvalidInput) as info:
        ipam.check_mtu("mtu", 1451, 1500)
    assert "mtu=1451" in info.value.msg and "1450" in info.value.msg
    ipam.check_mtu("mtu", 8950, 9000)
    with pytest.raises(InvalidInput):
        ipam.check_mtu("mtu", 67, 9000)


def test_rack_network_follows_the_addressing_law():
    fabric = load_fabric(ROOT / "inventories" / "lab" / "fabric.yml")
    got = ipam.rack_network(fabric, "vm", 1)
    # rack 1 = the 1st /22 of 10.64.0.0/18; offsets 1..9 gateways, 10..25 the 16 host slots
    assert got == {
        "cidr": "10.64.4.0/22",
        "gateway": "10.64.4.1",
        "mtu": 9000,
        "reserved": ["10.64.4.1-10.64.4.25"],
    }
    pool = ipam.make_pool("vm", got["cidr"], got["gateway"], got["reserved"])
    assert ipam.ntoa(ipam.lowest_free(pool, [])) == "10.64.4.26"
    assert ipam.rack_network(fabric, "vm", 3)["cidr"] == "10.64.12.0/22"
    with pytest.raises(NotFound):
        ipam.rack_network(fabric, "nope", 1)
    with pytest.raises(InvalidInput):
        ipam.rack_network(fabric, "vm", 16)


def test_primary_address_is_the_first_ipam_nic():
    nics = [
        {"ip": "192.0.2.5/24"},
        {"network": "a", "ip": "10.0.0.9/24"},
        {"network": "b", "ip": "10.1.0.2/24"},
    ]
    assert ipam.primary_address(nics) == "10.0.0.9"
    assert ipam.primary_address([{"ip": "192.0.2.5/24"}]) is None


# ------------------------------------------------------------------------------------------------
# Store
# ------------------------------------------------------------------------------------------------
def add_network(store: Store, name="net", tenant="acme", cidr="10.0.0.0/24", vni=100, **kw):
    row = {"name": name, "tenant": tenant, "kind": "tenant", "cidr": cidr, "gateway": kw.pop("gateway", None)}
    if row["gateway"] is None:
        row["gateway"] = str(ipaddress.IPv4Network(cidr).network_address + 1)
    row.update(vni=vni, mtu=1450, **kw)
    return store.insert("networks", row)


def add_instance(store: Store, name: str, tenant="acme"):
    off = store.get("offerings", name="small") or store.insert(
        "offerings", {"name": "small", "vcpus": 1, "ram_mb": 512}
    )
    return store.insert(
        "instances",
        {
            "uuid": f"uuid-{name}",
            "name": name,
            "instance_id": f"iid-{name}",
            "tenant": tenant,
            "offering_id": off["id"],
            "vcpus": 1,
            "ram_mb": 512,
            "state": "building",
            "domain_type": "qemu",
        },
    )


def alloc(store: Store, net, inst, index=0, fixed=None):
    with store.transaction(write=True):
        return ipam.ntoa(ipam.allocate(store, net, instance_id=inst["id"], nic_index=index, fixed=fixed))


def test_store_allocates_lowest_free_releases_and_reuses(any_store):
    net = add_network(any_store, reserved=["10.0.0.2-10.0.0.3"])
    vms = [add_instance(any_store, f"vm{i}") for i in range(4)]
    assert [alloc(any_store, net, v) for v in vms[:3]] == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with any_store.transaction(write=True):
        assert ipam.release(any_store, vms[1]["id"]) == 1
    assert alloc(any_store, net, vms[3]) == "10.0.0.5"  # reused, deterministically
    listed = ipam.allocations(any_store)
    assert [(r["instance"], r["address"], r["network"], r["tenant"]) for r in listed] == [
        ("vm0", "10.0.0.4", "net", "acme"),
        ("vm3", "10.0.0.5", "net", "acme"),
        ("vm2", "10.0.0.6", "net", "acme"),
    ]


def test_store_fixed_address_conflict_names_the_holder(any_store):
    net = add_network(any_store)
    a, b = add_instance(any_store, "a"), add_instance(any_store, "b")
    assert alloc(any_store, net, a, fixed=n("10.0.0.9")) == "10.0.0.9"
    with pytest.raises(Conflict) as info:
        alloc(any_store, net, b, fixed=n("10.0.0.9"))
    assert "10.0.0.9" in info.value.msg and "instance a" in info.value.msg
    with pytest.raises(InvalidInput):
        alloc(any_store, net, b, fixed=n("10.0.0.1"))  # the gateway
    assert len(any_store.select("ip_allocations")) == 1


def test_store_exhaustion_names_the_network(any_store):
    net = add_network(any_store, name="tiny", cidr="10.0.0.0/30")
    a, b = add_instance(any_store, "a"), add_instance(any_store, "b")
    assert alloc(any_store, net, a) == "10.0.0.2"
    with pytest.raises(NoCapacity) as info:
        alloc(any_store, net, b)
    assert "tiny (10.0.0.0/30)" in info.value.msg


def test_overlapping_cidrs_of_two_tenants_are_separate_pools(any_store):
    net_a = add_network(any_store, name="net", tenant="a", vni=101)
    net_b = add_network(any_store, name="net", tenant="b", vni=102)
    va, vb = add_instance(any_store, "va", "a"), add_instance(any_store, "vb", "b")
    assert alloc(any_store, net_a, va) == alloc(any_store, net_b, vb) == "10.0.0.2"
    with any_store.transaction():
        assert ipam.resolve(any_store, "a", "net", None, "k")["id"] == net_a["id"]
        assert ipam.resolve(any_store, "b", "net", None, "k")["id"] == net_b["id"]
        with pytest.raises(NotFound) as info:
            ipam.resolve(any_store, "c", "net", None, "networks[0].network")
    assert "networks[0].network" in info.value.msg and "tenant c" in info.value.msg


def test_the_store_refuses_an_address_twice_even_without_the_allocator(any_store):
    net = add_network(any_store)
    a, b = add_instance(any_store, "a"), add_instance(any_store, "b")
    alloc(any_store, net, a)
    with pytest.raises(Conflict):
        any_store.insert(
            "ip_allocations", {"network_id": net["id"], "address": n("10.0.0.2"), "instance_id": b["id"]}
        )


def test_deleting_the_instance_row_releases_its_addresses(any_store):
    net = add_network(any_store)
    a = add_instance(any_store, "a")
    alloc(any_store, net, a, 0)
    alloc(any_store, net, a, 1)
    with any_store.transaction(write=True):
        any_store.delete("instances", id=a["id"])
    assert any_store.select("ip_allocations") == []


def test_vni_is_unique_and_in_range_in_the_store(any_store):
    add_network(any_store, vni=5)
    with pytest.raises(Conflict):
        add_network(any_store, name="other", vni=5)
    with pytest.raises(Conflict):  # CHECK constraint
        add_network(any_store, name="big", vni=16_777_216)


def rack_rows(store: Store):
    rows = []
    for rack, hosts in ((1, ["hv1"]), (2, ["hv2"])):
        rows.append(
            store.insert(
                "networks",
                {
                    "name": "vm",
                    "tenant": "",
                    "kind": "rack",
                    "rack": rack,
                    "cidr": f"10.64.{4 * rack}.0/22",
                    "gateway": f"10.64.{4 * rack}.1",
                    "mtu": 9000,
                    "bridge": "vm",
                    "reserved": [f"10.64.{4 * rack}.1-10.64.{4 * rack}.25"],
                    "hosts": hosts,
                },
            )
        )
    return rows


def test_assign_nics_keeps_tenant_addresses_and_moves_rack_addresses(any_store):
    add_network(any_store, vni=300, dns=["10.0.0.53"])
    rack_rows(any_store)
    inst = add_instance(any_store, "vm1")
    nics = [{"network": "net", "mac": "52:54:00:00:00:01"}, {"network": "vm", "mac": "52:54:00:00:00:02"}]
    with any_store.transaction(write=True):
        out = ipam.assign_nics(any_store, inst, {"name": "hv1"}, nics, write=True)
    assert out[0] == {
        "network": "net",
        "mac": "52:54:00:00:00:01",
        "type": "bridge",
        "source": "brv300",
        "ip": "10.0.0.2/24",
        "gateway": "10.0.0.1",
        "mtu": 1450,
        "nameservers": ["10.0.0.53"],
    }
    assert out[1]["ip"] == "10.64.4.26/22" and out[1]["source"] == "vm" and out[1]["mtu"] == 9000
    any_store.update("instances", inst["id"], {"networks": out})
    moved = {**inst, "networks": out}
    with any_store.transaction(write=True):
        new = ipam.follow(any_store, moved, {"name": "hv2"})
    assert new[0] == out[0]  # the tenant address and MAC follow the instance
    assert new[1]["ip"] == "10.64.8.26/22"  # the rack address is the new rack's
    rows = {(r["network"], r["rack"]): r["address"] for r in ipam.allocations(any_store)}
    assert rows == {("net", None): "10.0.0.2", ("vm", 2): "10.64.8.26"}
    with any_store.transaction(write=True):
        assert ipam.follow(any_store, {**inst, "networks": new}, {"name": "hv2"}) is None  # nothing to do
        ipam.restore(any_store, {**inst, "networks": out}, {"name": "hv1"})  # undo the move
    rows = {(r["network"], r["rack"]): r["address"] for r in ipam.allocations(any_store)}
    assert rows == {("net", None): "10.0.0.2", ("vm", 1): "10.64.4.26"}


def test_assign_nics_check_mode_writes_nothing_and_avoids_its_own_picks(any_store):
    add_network(any_store)
    inst = {"id": None, "tenant": "acme"}
    nics = [
        {"network": "net", "mac": "m1"},
        {"network": "net", "mac": "m2"},
        {"network": "net", "fixed_ip": "10.0.0.3"},
    ]
    with pytest.raises(Conflict) as info, any_store.transaction():
        ipam.assign_nics(any_store, inst, None, nics, write=False)
    assert "networks[2].ip=10.0.0.3" in info.value.msg
    with any_store.transaction():
        out = ipam.assign_nics(any_store, inst, None, nics[:2], write=False)
    assert [x["ip"] for x in out] == ["10.0.0.2/24", "10.0.0.3/24"]
    assert any_store.select("ip_allocations") == []


def test_rack_network_of_a_host_outside_every_rack_is_refused(any_store):
    rack_rows(any_store)
    with any_store.transaction(), pytest.raises(Conflict) as info:
        ipam.resolve(any_store, "acme", "vm", {"name": "hv9"}, "networks[0].network")
    assert "hv9" in info.value.msg and "racks 1, 2" in info.value.msg


def test_an_existing_store_is_migrated_to_ipam(store_path):
    """A store at version 4 (before IPAM) with an instance gains the tables and keeps its rows."""
    conn = sqlite3.connect(store_path)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL)"
    )
    for m in store_mod.MIGRATIONS:
        if m.version > 4:
            break
        for stmt in m.statements:
            conn.execute(store_mod.SQLITE.ddl(stmt))
        conn.execute("INSERT INTO schema_version VALUES (?, ?, 0)", (m.version, m.description))
    conn.commit()
    conn.close()
    with pytest.raises(store_mod.StoreError):
        Store.open(store_path, create=False, migrate=False)
    with Store.open(store_path) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION
        net = add_network(s)
        inst = add_instance(s, "old")
        assert alloc(s, net, inst) == "10.0.0.2"


# ------------------------------------------------------------------------------------------------
# Two processes race for the last address
# ------------------------------------------------------------------------------------------------
def _racer(target, name, barrier, results):
    store = Store.open(**target)
    slow_reads(ipam, "used_addresses")  # without the lock both racers would win
    net = store.get("networks", name="tiny")
    inst = store.get("instances", name=name)
    barrier.wait()

    def attempt():
        with store.transaction(write=True):
            address = ipam.allocate(store, net, instance_id=inst["id"], nic_index=0)
        return ipam.ntoa(address)

    race_attempt(results, name, store, attempt)


def test_two_processes_race_for_the_last_address(any_store):
    add_network(any_store, name="tiny", cidr="10.0.0.0/30")  # .1 gateway: one address to give
    for name in ("left", "right"):
        add_instance(any_store, name)
    outcome = race_two_processes(_racer, any_store.test_target_open)
    # without the lock both read "nothing used" and the loser hits the UNIQUE constraint instead
    assert sorted(o[1] for o in outcome) == ["no capacity", "won"], outcome
    assert abs(outcome[0][3] - outcome[1][3]) < 0.4  # both attempts really overlapped
    assert [o[2] for o in outcome if o[1] == "won"] == ["10.0.0.2"]
    assert len(any_store.select("ip_allocations")) == 1
