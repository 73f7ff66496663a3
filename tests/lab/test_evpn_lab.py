# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tenant networks over EVPN/VXLAN, for real: the lab fabric with hypervisors as VTEPs.

``inventories/lab/fabric.yml`` with BGP-to-host and ``bgp.evpn`` (lab/evpn_lab.py) is rendered by
the engine and run unchanged: 2 spines, 3 ToRs, 3 racks x 2 hypervisors, FRR in every namespace.
The tenant bridges and VXLAN devices are made by ``cloud.vtep`` (the instance module's code)
inside the hypervisor namespaces; instances are namespaces with a veth into their tenant bridge.

Two tenants share the CIDR 192.168.10.0/24 (VNI 10100: MTU 8950 = the 9000-byte underlay minus
50; VNI 10200: MTU 1450) and even the same addresses (.11 and .13 exist in both).  Each has a
router namespace in rack 1 with the gateway .1 that SNATs to rack 1's service network.

Run (root): ``.venv/bin/python -m pytest -q -p no:cacheprovider -rP tests/lab/test_evpn_lab.py``
(``-rP`` prints the measured figures).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml
from labtestlib import FABRICS, RUN_PREFIX, skip_unless_lab  # sets sys.path

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.evpn import max_tenant_mtu
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all
from lab.evpn_lab import Endpoint, EvpnLab, evpn_fabric_doc
from lab.netns import wait_for

pytestmark = pytest.mark.lab

VNI_A, VNI_B = 10100, 10200
CIDR_LEN = 24
SERVICE_TOR, SERVICE_HOST = "r001-tor1", "r001-h02"  # routers' service leg, rack 1
SVC_TOR, SVC_ADDR, SVC_GW = "r003-tor1", "10.8.3.200", "10.8.3.1"  # the service, rack 3


def _ep(name: str, host: str, vni: int, last: int, mtu: int) -> Endpoint:
    tenant = 0x0A if vni == VNI_A else 0x0B
    return Endpoint(
        name, host, vni, f"02:00:00:{tenant:02x}:00:{last:02x}", f"192.168.10.{last}/{CIDR_LEN}", mtu
    )


@pytest.fixture(scope="module")
def evpn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EvpnLab, dict[str, Endpoint], dict]]:
    """The EVPN lab with both tenants' instances and routers (module-scoped)."""
    skip_unless_lab()
    doc = evpn_fabric_doc(yaml.safe_load(FABRICS["bgp"].read_text(encoding="utf-8")))
    plan = build_plan(load_fabric(doc))
    out = tmp_path_factory.mktemp("fabric-evpn")
    render_all(plan, out)
    mtu_a, mtu_b = max_tenant_mtu(plan), 1450
    eps = {
        "a1": _ep("a1", "r001-h01", VNI_A, 11, mtu_a),
        "a2": _ep("a2", "r002-h01", VNI_A, 12, mtu_a),
        "a3": _ep("a3", "r003-h01", VNI_A, 13, mtu_a),
        "b1": _ep("b1", "r001-h01", VNI_B, 11, mtu_b),  # same hypervisor and address as a1
        "b2": _ep("b2", "r002-h02", VNI_B, 22, mtu_b),  # an address only tenant B has
        "b3": _ep("b3", "r003-h02", VNI_B, 13, mtu_b),  # same address as a3
    }
    gw_a = _ep("gwa", SERVICE_HOST, VNI_A, 1, mtu_a)
    gw_b = _ep("gwb", SERVICE_HOST, VNI_B, 1, mtu_b)
    figures: dict[str, float] = {}
    lab = EvpnLab(out, prefix=f"{RUN_PREFIX}e-")
    try:
        figures["fabric_up_s"] = lab.up(timeout=120)
        for ep in eps.values():
            lab.attach(ep, gateway="192.168.10.1")
        lab.add_router(
            gw_a, service_tor=SERVICE_TOR, service_cidr="10.8.1.200/24", service_gateway="10.8.1.1"
        )
        lab.add_router(
            gw_b, service_tor=SERVICE_TOR, service_cidr="10.8.1.201/24", service_gateway="10.8.1.1"
        )
        lab.add_service("svc", tor=SVC_TOR, cidr=f"{SVC_ADDR}/24", gateway=SVC_GW)
        figures["evpn_flood_lists_s"] = lab.wait_evpn([VNI_A, VNI_B], timeout=60)
    except BaseException:
        print(lab.logs())
        lab.down()
        raise
    try:
        yield lab, eps, figures
    finally:
        print("EVPN lab figures: " + ", ".join(f"{key} {value:.2f}" for key, value in figures.items()))
        lab.down()


def _macs_of(lab: EvpnLab, host: str, vni: int) -> dict[str, dict]:
    return lab.evpn_macs(host).get(vni, {})


# ------------------------------------------------------------------------------------ control plane
def test_evpn_sessions_and_flood_lists(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    lab, eps, figures = evpn
    assert lab.evpn_sessions_up()
    for host in lab.vteps:
        peers = lab.evpn_peers(host)
        assert len(peers) == 1 and set(peers.values()) == {"Established"}, (host, peers)
    # each hypervisor floods a VNI to exactly the other VTEPs that have it (type-3 routes)
    for vni in (VNI_A, VNI_B):
        for host, others in lab.expected_vteps(vni).items():
            assert lab.remote_vteps(host, vni) == others, (host, vni)
            assert lab.evpn_vni(host, vni)["vtepIp"] == lab.vteps[host]
    # a hypervisor without instances of a tenant has no VNI of it (created on demand only)
    assert "brv10200" not in lab.links("r002-h01") and lab.evpn_vni("r002-h01", VNI_B) in ({}, None)
    # the spines keep every EVPN route (type-2 and type-3) with the originating VTEP as next hop
    routes = lab.fabric.nodes["spine01"].json("show bgp l2vpn evpn json")
    nexthops = {
        hop.get("ip")
        for rd in routes.values()
        if isinstance(rd, dict)
        for route in rd.values()
        if isinstance(route, dict)
        for path in route.get("paths", [])
        for hop in path.get("nexthops", [])
    }
    assert {lab.vteps[ep.host] for ep in eps.values()} <= nexthops, nexthops
    up, flood = figures["fabric_up_s"], figures["evpn_flood_lists_s"]
    print(f"fabric up {up:.1f}s, EVPN flood lists complete {flood:.1f}s after the instances attached")


# ------------------------------------------------------------------------------------ data plane
def test_same_tenant_pings_across_racks(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    lab, eps, _rest = evpn
    failures = [
        f"{src} -> {dst}"
        for src, dst in (("a1", "a2"), ("a1", "a3"), ("a2", "a3"), ("b1", "b2"), ("b1", "b3"), ("b2", "b3"))
        if not lab.ping(src, eps[dst].address, count=2)
    ]
    assert not failures, failures


def test_overlapping_cidrs_reach_their_own_tenant(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    """192.168.10.13 is a3 in tenant A and b3 in tenant B: each tenant's ARP resolves its own."""
    lab, eps, _rest = evpn
    assert lab.ping("a1", "192.168.10.13") and lab.ping("b1", "192.168.10.13")
    assert lab.neighbor_mac("a1", "192.168.10.13") == eps["a3"].mac
    assert lab.neighbor_mac("b1", "192.168.10.13") == eps["b3"].mac
    # a1 and b1 share hypervisor r001-h01 and address .11: two bridges, two VXLAN devices
    links = lab.links("r001-h01")
    assert links["t-a1"].master == "brv10100" and links["t-b1"].master == "brv10200"
    assert links["vxv10100"].vni == VNI_A and links["vxv10200"].vni == VNI_B


def test_cross_tenant_refused(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    lab, eps, _rest = evpn
    # b2's address exists only in tenant B; from tenant A nothing answers, ARP stays unresolved
    assert not lab.ping("a1", eps["b2"].address, count=2)
    assert not lab.ping("a3", eps["b2"].address)
    assert lab.neighbor_mac("a1", eps["b2"].address) is None
    assert lab.ping("b1", eps["b2"].address)  # the same address answers inside tenant B
    # no tenant's MAC leaks into the other tenant's EVPN tables, on any VTEP
    a_macs = {ep.mac for ep in eps.values() if ep.vni == VNI_A}
    b_macs = {ep.mac for ep in eps.values() if ep.vni == VNI_B}
    for host in lab.vteps:
        tables = lab.evpn_macs(host)
        assert not set(tables.get(VNI_A, {})) & b_macs, host
        assert not set(tables.get(VNI_B, {})) & a_macs, host


def test_tenant_mtu_is_underlay_minus_vxlan_overhead(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    """A full-size frame at the tenant MTU crosses racks with DF set; one byte more does not leave."""
    lab, eps, _rest = evpn
    mtu = eps["a1"].mtu
    assert mtu == 9000 - 50
    payload = mtu - 28  # IPv4 20 + ICMP 8
    assert lab.ping("a1", eps["a3"].address, size=payload, df=True)
    assert not lab.ping("a1", eps["a3"].address, size=payload + 1, df=True)
    assert lab.ping("b1", eps["b3"].address, size=1450 - 28, df=True)


def test_gateway_router_snats_to_the_service_network(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    """Instances in rack 3 reach a service in rack 3 through their tenant's router in rack 1.

    The service has no route to 192.168.10.0/24 (nor does the fabric): an answer proves the SNAT.
    """
    lab, _eps, _rest = evpn
    assert lab.ping("a3", SVC_ADDR, count=2)
    assert lab.ping("b3", SVC_ADDR, count=2)  # same CIDR, its own router
    assert not lab.ping("svc", "192.168.10.13")  # nothing routes back into a tenant
    routes = lab.netns.ip_json("svc", "route", "show")
    assert all(not str(r.get("dst", "")).startswith("192.168.") for r in routes)
    assert lab.snat_packets("gwa") > 0 and lab.snat_packets("gwb") > 0


def _mac_at(lab: EvpnLab, host: str, vni: int, mac: str, vtep_ip: str) -> dict | None:
    """The remote entry of ``mac`` on ``host`` once it points at ``vtep_ip`` (else None)."""
    entry = _macs_of(lab, host, vni).get(mac)
    if entry and entry.get("type") == "remote" and entry.get("remoteVtep") == vtep_ip:
        return entry
    return None


def _start_move(
    lab: EvpnLab, eps: dict[str, Endpoint], name: str, host: str, *, peer: str, vni: int
) -> tuple[Endpoint, Endpoint, str, dict]:
    """Endpoint ``name`` as it is and as it will be on ``host``, the host of ``peer`` (which must
    reach it) that watches the move, and the MAC route the watcher holds before it."""
    old = eps[name]
    new = Endpoint(old.name, host, old.vni, old.mac, old.cidr, old.mtu)
    observer = eps[peer].host
    assert lab.ping(peer, old.address)
    before = _mac_at(lab, observer, vni, old.mac, lab.vteps[old.host])
    assert before is not None
    return old, new, observer, before


def test_cold_move_from_rack1_to_rack3(evpn: tuple[EvpnLab, dict[str, Endpoint], dict]) -> None:
    """Cold move of a1 (same MAC and IP): deleted on r001-h01, recreated on r003-h02.

    a2 in rack 2 pings it; measured from the new attach (network created, NIC in the bridge,
    gratuitous ARP) to a2's first reply -- printed, never asserted.  The old hypervisor withdraws
    the MAC before the new one learns it, so the new type-2 route starts a fresh MAC (sequence 0);
    the sequence only rises when both VTEPs claim the MAC at once (next test).
    """
    lab, eps, figures = evpn
    old, new, observer, before = _start_move(lab, eps, "a1", "r003-h02", peer="a2", vni=VNI_A)

    # r001-h01 keeps tenant B (b1) but loses its last tenant-A port: the A devices go away
    assert lab.detach("a1") is True
    r1 = lab.links(old.host)
    assert "brv10100" not in r1 and "vxv10100" not in r1 and "brv10200" in r1
    assert "brv10100" not in lab.links(new.host)  # r003-h02 had only tenant B so far

    attached = lab.attach(new, gateway="192.168.10.1")
    took = lab.ping_until_answered("a2", old.address, attached, timeout=30)
    figures["cold_move_ping_s"] = took
    print(f"cold move a1 r001-h01 -> r003-h02: first reply from rack 2 {took:.2f}s after the new attach")
    after = wait_for(
        lambda: _mac_at(lab, observer, VNI_A, old.mac, lab.vteps[new.host]),
        timeout=30,
        interval=0.2,
        what="a1's MAC at the new VTEP",
    )
    print(f"sequence of {old.mac} at {observer}: {before['remoteSequence']} -> {after['remoteSequence']}")
    for host in lab.expected_vteps(VNI_A):
        if host != new.host:
            assert _mac_at(lab, host, VNI_A, old.mac, lab.vteps[new.host]), host
    assert lab.ping("a3", old.address) and lab.neighbor_mac("a3", old.address) == old.mac
    lab.wait_evpn([VNI_A], timeout=30)
    eps["a1"] = new


def test_evacuate_after_hypervisor_failure_raises_mac_sequence(
    evpn: tuple[EvpnLab, dict[str, Endpoint], dict],
) -> None:
    """r001-h01 fails (its underlay link goes down: nothing is withdrawn until the ToR's hold timer
    expires); b1 is recreated on r003-h01 (rack 3) with the same MAC and IP.  The new VTEP learns
    the MAC while the old VTEP's route still stands: MAC mobility raises the sequence number and
    every VTEP follows the higher sequence.  Time to the first reply from rack 2 is printed."""
    lab, eps, figures = evpn
    old, new, observer, before = _start_move(lab, eps, "b1", "r003-h01", peer="b2", vni=VNI_B)

    lab.netns.link_set(old.host, "vm", up=False)  # the hypervisor's only underlay path
    failed = time.monotonic()
    assert lab.detach("b1", release=False) is False  # the VM died with its host: nothing released
    # the evacuation: network on the new hypervisor, then the domain starts (its NIC joins)
    assert lab.ensure_network(new.host, VNI_B, new.mtu) is True
    wait_for(
        lambda: _mac_at(lab, new.host, VNI_B, old.mac, lab.vteps[old.host]),
        timeout=30,
        interval=0.1,
        what="the new VTEP importing b1's old route",
    )
    attached = lab.attach(new, gateway="192.168.10.1")
    took = lab.ping_until_answered("b2", old.address, attached, timeout=30)
    figures["evacuate_ping_s"] = took
    print(
        f"evacuate b1 r001-h01 -> r003-h01: first reply from rack 2 {took:.2f}s after the new attach "
        f"({time.monotonic() - failed:.2f}s after the hypervisor failed)"
    )
    after = wait_for(
        lambda: _mac_at(lab, observer, VNI_B, old.mac, lab.vteps[new.host]),
        timeout=30,
        interval=0.2,
        what="b1's MAC at the new VTEP",
    )
    assert after["remoteSequence"] > before["remoteSequence"], (before, after)
    local = _macs_of(lab, new.host, VNI_B)[old.mac]
    assert local["type"] == "local" and local["localSequence"] == after["remoteSequence"]
    sequences = f"{before['remoteSequence']} -> {after['remoteSequence']}"
    print(f"MAC mobility sequence of {old.mac} at {observer}: {sequences}")
    assert lab.ping("b3", old.address) and lab.neighbor_mac("b3", old.address) == old.mac
