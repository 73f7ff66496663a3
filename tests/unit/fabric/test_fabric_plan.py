# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan derivation: devices, interfaces, links, networks, BGP neighbors, pools."""

from __future__ import annotations

import time

from fabric_testlib import make_doc, plan_of, scale_doc

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric


def test_lab_plan_shape(lab_plan: Plan) -> None:
    assert [d.name for d in lab_plan.spines()] == ["spine01", "spine02"]
    assert [d.name for d in lab_plan.tors()] == ["r001-tor1", "r002-tor1", "r003-tor1"]
    assert [d.name for d in lab_plan.hosts()] == [f"r00{r}-h0{h}" for r in (1, 2, 3) for h in (1, 2)]
    assert list(lab_plan.devices) == [d.name for d in lab_plan.spines() + lab_plan.tors() + lab_plan.hosts()]
    assert len(lab_plan.links) == 3 + 2 + 2
    assert len(lab_plan.networks) == 3 * 4
    assert lab_plan.routers() == lab_plan.spines() + lab_plan.tors()


def test_rack_one_tor_has_three_uplinks_round_robin(lab_plan: Plan) -> None:
    tor = lab_plan.devices["r001-tor1"]
    uplinks = [i for i in tor.interfaces if i.kind == "uplink"]
    assert [(i.name, i.peer_device, i.peer_interface) for i in uplinks] == [
        ("up1", "spine01", "r1t1u1"),
        ("up2", "spine02", "r1t1u2"),
        ("up3", "spine01", "r1t1u3"),
    ]


def test_worked_example_rack12_tor1_uplink3() -> None:
    """The example of docs/fabric.md: rack 12, ToR 1, uplink 3 with the contract's default limits."""
    doc = scale_doc(12, hosts=2)
    plan = plan_of(doc)
    tor = plan.devices["r012-tor1"]
    up3 = tor.interface("up3")
    # link index (12*2 + 0)*4 + 2 = 98 -> /31 at 10.254.0.196; ToR side is the odd address
    assert up3.address == "10.254.0.197/31"
    assert (up3.peer_device, up3.peer_interface) == ("spine03", "r12t1u3")
    assert plan.devices["spine03"].interface("r12t1u3").address == "10.254.0.196/31"
    # loopback offset 16 + 1 + 12*2 + 0 = 41
    assert tor.loopback == "10.255.0.41/32"
    assert tor.router_id == "10.255.0.41"
    assert tor.asn == 4200001000 + 24
    assert tor.interface("mgmt").address == "10.0.12.1/24"
    assert tor.interface("vm").address == "10.64.48.1/22"
    host = plan.devices["r012-h02"]
    assert host.interface("mgmt").address == "10.0.12.11/24"
    # host loopback offset 16 + 1 + 1024*2 + 12*48 + 1 = 2642 -> 10.255.10.82
    assert host.loopback == "10.255.10.82/32"


def test_links_and_bgp_neighbors_are_symmetric(base_plan: Plan) -> None:
    devices = base_plan.devices
    for link in base_plan.links:
        spine, tor = devices[link.a.device], devices[link.b.device]
        a, b = spine.interface(link.a.interface), tor.interface(link.b.interface)
        assert (a.kind, b.kind) == ("downlink", "uplink")
        assert (a.peer_device, a.peer_interface) == (tor.name, b.name)
        assert (b.peer_device, b.peer_interface) == (spine.name, a.name)
        assert a.address == link.prefix == link.a.address
        assert b.address == link.b.address
        assert a.mtu == b.mtu == 9000
        tor_nbr = next(n for n in tor.bgp_neighbors if n.interface == b.name)
        spine_nbr = next(n for n in spine.bgp_neighbors if n.interface == a.name)
        assert (tor_nbr.peer_device, tor_nbr.address, tor_nbr.remote_asn) == (
            spine.name,
            a.address.split("/")[0],
            spine.asn,
        )
        assert (spine_nbr.peer_device, spine_nbr.address, spine_nbr.remote_asn) == (
            tor.name,
            b.address.split("/")[0],
            tor.asn,
        )


def test_networks_and_announcements(base_plan: Plan) -> None:
    net = base_plan.networks[0]
    assert (net.rack, net.role, net.prefix, net.gateway, net.vlan, net.mtu, net.device, net.interface) == (
        1,
        "mgmt",
        "10.0.1.0/24",
        "10.0.1.1",
        10,
        1500,
        "r001-tor1",
        "mgmt",
    )
    tor = base_plan.devices["r002-tor1"]
    assert tor.announce == (tor.loopback, *base_plan.rack_prefixes(2))
    assert base_plan.rack_prefixes(2) == ("10.0.2.0/24", "10.4.2.0/24", "10.8.2.0/24", "10.64.8.0/22")
    assert base_plan.rack_prefixes(99) == ()
    assert base_plan.fabric_prefixes() == (
        "10.255.0.0/20",
        "10.0.0.0/18",
        "10.4.0.0/18",
        "10.8.0.0/18",
        "10.64.0.0/16",
    )
    spine = base_plan.devices["spine01"]
    assert spine.announce == (spine.loopback,)
    assert spine.rack is None and spine.pod is None


def test_second_tor_owns_gateway_plus_one() -> None:
    plan = plan_of(make_doc(racks=[{"id": 5, "tors": 2, "hosts": 1}]))
    assert plan.devices["r005-tor1"].interface("mgmt").address == "10.0.5.1/24"
    assert plan.devices["r005-tor2"].interface("mgmt").address == "10.0.5.2/24"
    assert plan.devices["r005-tor2"].loopback == "10.255.0.16/32"  # 4 + 1 + 5*2 + 1
    assert plan.devices["r005-tor2"].asn == 4200001000 + 11
    assert {n.gateway for n in plan.networks} == {"10.0.5.1", "10.4.5.1", "10.8.5.1", "10.64.20.1"}


def test_explicit_uplink_spines() -> None:
    doc = make_doc(spines=[{"id": 1}, {"id": 2}, {"id": 3, "name": "core-c"}])
    doc["racks"] = [{"id": 1, "uplinks": ["core-c", "spine01"]}]
    plan = plan_of(doc)
    tor = plan.devices["r001-tor1"]
    assert [(i.name, i.peer_device) for i in tor.interfaces if i.kind == "uplink"] == [
        ("up1", "core-c"),
        ("up2", "spine01"),
    ]
    assert [i.name for i in plan.devices["spine02"].interfaces] == ["lo"]


def test_unnumbered_links_have_no_addresses() -> None:
    plan = plan_of(make_doc(pools={"loopbacks": "10.255.0.0/20", "unnumbered": True}))
    for link in plan.links:
        assert link.prefix is None and link.a.address is None and link.b.address is None
    tor = plan.devices["r001-tor1"]
    assert all(n.address is None for n in tor.bgp_neighbors)
    assert [p.name for p in plan.pools] == ["loopbacks", "mgmt", "storage", "service", "vm"]


def test_ospf_has_no_asns_or_bgp_sessions() -> None:
    plan = plan_of(make_doc(routing="ospf"))
    assert all(d.asn is None and d.bgp_neighbors == () for d in plan.devices.values())


def test_bgp_to_host() -> None:
    plan = plan_of(make_doc(bgp={"hosts": True, "host_network": "storage"}))
    host = plan.devices["r002-h01"]
    assert host.asn == 4210000000 + 2 * 16
    assert [(n.peer_device, n.interface, n.address, n.remote_asn) for n in host.bgp_neighbors] == [
        ("r002-tor1", "storage", "10.4.2.1", plan.devices["r002-tor1"].asn)
    ]
    tor_hosts = [n for n in plan.devices["r002-tor1"].bgp_neighbors if n.peer_device.startswith("r002-h")]
    assert [(n.peer_device, n.address, n.remote_asn) for n in tor_hosts] == [
        ("r002-h01", "10.4.2.10", 4210000032),
        ("r002-h02", "10.4.2.11", 4210000033),
    ]
    assert plan.routers() == plan.spines() + plan.tors() + plan.hosts()


def test_hosts_without_bgp_have_no_asn(base_plan: Plan) -> None:
    host = base_plan.devices["r001-h01"]
    assert host.asn is None and host.bgp_neighbors == ()
    assert [(i.name, i.address) for i in host.interfaces] == [
        ("lo", host.loopback),
        ("mgmt", "10.0.1.10/24"),
        ("storage", "10.4.1.10/24"),
        ("service", "10.8.1.10/24"),
        ("vm", "10.64.4.10/22"),
    ]


def test_pool_usage(base_plan: Plan) -> None:
    pools = {p.name: p for p in base_plan.pools}
    assert (pools["loopbacks"].capacity, pools["loopbacks"].used) == (4096, len(base_plan.devices))
    assert (pools["links"].capacity, pools["links"].used, pools["links"].unit) == (2048, 7, "/31 links")
    assert (pools["mgmt"].capacity, pools["mgmt"].used) == (64, 3)
    assert pools["mgmt"].utilisation == 100 * 3 / 64
    assert pools["vm"].unit == "/22 subnets"


def test_plan_is_deterministic() -> None:
    doc = make_doc(racks=[{"id": 3}, {"id": 1, "uplinks": 3}, {"id": 2}], spines=[{"id": 2}, {"id": 1}])
    assert plan_to_dict(plan_of(doc)) == plan_to_dict(plan_of(make_doc()))


def test_every_address_is_unique(base_plan: Plan) -> None:
    addresses = [
        i.address.split("/")[0] for d in base_plan.devices.values() for i in d.interfaces if i.address
    ]
    assert len(addresses) == len(set(addresses))


def test_plan_to_dict_shape(lab_plan: Plan) -> None:
    data = plan_to_dict(lab_plan)
    assert set(data) == {"fabric", "devices", "links", "networks", "pools"}
    spine = data["devices"][0]
    assert spine["config"] == "spine01/frr.conf" and spine["asn"] == 4200000000
    host = next(d for d in data["devices"] if d["role"] == "host")
    assert host["config"] is None and "asn" not in host
    assert data["links"][0]["a"] == {"device": "spine01", "interface": "r1t1u1", "address": "10.254.0.16/31"}


def test_1000_racks_plan_quickly() -> None:
    """Scaling guard (not the benchmark): 1000 racks x 40 hosts plan in well under 2 s of CPU."""
    fabric = load_fabric(scale_doc(1000))
    started = time.process_time()
    plan = build_plan(fabric)
    elapsed = time.process_time() - started
    assert len(plan.devices) == 4 + 1000 + 40_000
    assert elapsed < 3.0, f"planning took {elapsed:.2f}s of CPU"
