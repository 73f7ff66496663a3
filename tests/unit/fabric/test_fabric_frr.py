# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The FRR renderer: content, determinism, speed, and ``vtysh -C -f`` on every rendered file."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fabric_testlib import (
    EXAMPLE_500,
    LAB_FILE,
    LAB_OSPF_FILE,
    assert_vtysh_accepts,
    make_doc,
    needs_vtysh,
    plan_of,
    vtysh_check,
)

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import (
    FrrRenderError,
    render_frr,
)


def _variants() -> dict[str, Plan]:
    """Every rendering mode: lab BGP/OSPF, unnumbered, BGP-to-host with two ToRs per rack, EVPN."""
    two_tors = {"tors": 2, "uplinks": 2, "hosts": 2}
    return {
        "lab-bgp": build_plan(load_fabric(LAB_FILE)),
        "lab-ospf": build_plan(load_fabric(LAB_OSPF_FILE)),
        "bgp-unnumbered": plan_of(
            make_doc(pools={"loopbacks": "10.255.0.0/20", "unnumbered": True}, bgp={"bfd": False})
        ),
        "ospf-unnumbered-bfd": plan_of(
            make_doc(
                routing="ospf",
                pools={"loopbacks": "10.255.0.0/20", "unnumbered": True},
                ospf={"area": 0, "bfd": True},
            )
        ),
        "bgp-hosts-2tors": plan_of(make_doc(defaults=two_tors, bgp={"hosts": True, "bfd_interval": 150})),
        "bgp-evpn-2tors": plan_of(make_doc(defaults=two_tors, bgp={"hosts": True, "evpn": True})),
        "bgp-evpn-unnumbered": plan_of(
            make_doc(
                pools={"loopbacks": "10.255.0.0/20", "unnumbered": True},
                bgp={"hosts": True, "evpn": True, "bfd": False},
            )
        ),
    }


VARIANTS = _variants()


def _conf(plan: Plan, name: str) -> str:
    return render_frr(plan, name)


def _section(text: str, start: str) -> list[str]:
    """Lines of the stanza starting with ``start`` up to its ``exit``."""
    lines = text.splitlines()
    begin = lines.index(start)
    end = lines.index("exit", begin)
    return lines[begin : end + 1]


# ------------------------------------------------------------------------------------ vtysh -C
@needs_vtysh
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_file_passesvtysh_check(variant: str, tmp_path: Path) -> None:
    plan = VARIANTS[variant]
    assert_vtysh_accepts(plan, tmp_path, label=f"{variant}/")


@needs_vtysh
def test_500_rack_spine_passesvtysh_check(tmp_path: Path) -> None:
    plan = build_plan(load_fabric(EXAMPLE_500))
    path = tmp_path / "spine01.conf"
    path.write_text(render_frr(plan, "spine01"), encoding="utf-8")
    proc = vtysh_check(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------ common
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_deterministic_and_self_contained(variant: str) -> None:
    plan = VARIANTS[variant]
    for device in plan.routers():
        first = render_frr(plan, device.name)
        assert first == render_frr(plan, device.name)
        assert first.startswith("frr version 8.4\nfrr defaults datacenter\n")
        assert f"\nhostname {device.name}\n" in first and first.endswith("\nend\n")
        # every interface of the plan has a stanza, loopback address on lo
        for iface in device.interfaces:
            assert f"\ninterface {iface.name}\n" in first
        assert f"interface lo\n ip address {device.loopback}\n" in first
        assert "\t" not in first and " \n" not in first


def test_unknown_device_and_plain_host_are_refused() -> None:
    plan = VARIANTS["lab-bgp"]
    with pytest.raises(FrrRenderError, match="unknown device"):
        render_frr(plan, "nope")
    host = plan.hosts()[0].name
    with pytest.raises(FrrRenderError, match="BGP-to-host"):
        render_frr(plan, host)


# ------------------------------------------------------------------------------------ BGP
def test_bgp_tor_rfc7938() -> None:
    plan = VARIANTS["lab-bgp"]
    tor = plan.devices["r001-tor1"]
    text = _conf(plan, tor.name)
    assert f"router bgp {tor.asn}\n" in text
    for line in (
        " bgp ebgp-requires-policy",
        " bgp bestpath as-path multipath-relax",
        " timers bgp 3 9",
        " neighbor SPINE peer-group",
        f" neighbor SPINE remote-as {plan.fabric.bgp.spine_asn}",
        " neighbor SPINE bfd",
        " neighbor SPINE bfd profile fabric",
        "  neighbor SPINE route-map FROM-SPINE in",
        "  neighbor SPINE route-map TO-SPINE out",
        f"  maximum-paths {plan.fabric.bgp.maximum_paths}",
        "  receive-interval 100",
        "  transmit-interval 100",
        "  detect-multiplier 3",
    ):
        assert f"\n{line}\n" in text, line
    assert "no bgp ebgp-requires-policy" not in text
    # one session per uplink, by the spine's link address
    uplinks = [i for i in tor.interfaces if i.kind == "uplink"]
    assert len(uplinks) == 3
    for nbr in tor.bgp_neighbors:
        assert f"\n neighbor {nbr.address} peer-group SPINE\n" in text
    assert plan.fabric.bgp.maximum_paths >= len(uplinks)
    # announces exactly its loopback and rack networks
    networks = re.findall(r"^  network (\S+)$", text, re.M)
    assert networks == list(tor.announce)
    local = re.findall(r"^ip prefix-list LOCAL seq \d+ permit (\S+)$", text, re.M)
    assert local == list(tor.announce)
    # addresses: /31 uplinks and rack network gateways
    assert "interface up1\n description uplink to spine01 r1t1u1, mtu 9000\n ip address 10.254.0." in text
    mgmt = _section(text, "interface mgmt")
    assert " ip address 10.0.1.1/24" in mgmt and any("vlan 10" in line for line in mgmt)


def test_bgp_spine_filters_per_rack() -> None:
    plan = VARIANTS["lab-bgp"]
    spine = plan.devices["spine01"]
    text = _conf(plan, "spine01")
    assert f"router bgp {plan.fabric.bgp.spine_asn}\n" in text
    for tor in plan.tors():
        rack = f"RACK{tor.rack:03d}"
        permitted = re.findall(rf"^ip prefix-list {rack} seq \d+ permit (\S+)$", text, re.M)
        assert permitted == list(tor.announce)
        for nbr in spine.bgp_neighbors:
            if nbr.peer_device == tor.name:
                assert f"\n neighbor {nbr.address} remote-as {tor.asn}\n" in text
                assert f"\n  neighbor {nbr.address} route-map FROM-{rack} in\n" in text
    assert "\n  neighbor TOR route-map TO-TOR out\n" in text
    assert re.findall(r"^  network (\S+)$", text, re.M) == [spine.loopback]


def test_fabric_prefix_list_matches_only_fabric_lengths() -> None:
    plan = VARIANTS["lab-bgp"]
    text = _conf(plan, "r002-tor1")
    fabric = re.findall(r"^ip prefix-list FABRIC seq \d+ permit (.+)$", text, re.M)
    assert fabric[0] == f"{plan.fabric.loopback_pool} ge 32"
    for net, clause in zip(plan.fabric.networks, fabric[1:], strict=True):
        assert clause == f"{net.pool} ge {net.prefix_len} le {net.prefix_len}"
    # link /31s are never announced nor accepted
    assert plan.fabric.link_pool not in "\n".join(fabric)


def test_bgp_unnumbered_uses_interface_peering() -> None:
    plan = VARIANTS["bgp-unnumbered"]
    tor = plan.devices["r001-tor1"]
    text = _conf(plan, tor.name)
    assert "/31" not in text
    assert "\n neighbor up1 interface peer-group SPINE\n" in text
    up1 = _section(text, "interface up1")
    assert f" ip address {tor.loopback}" in up1  # borrowed loopback, no link address
    assert "bfd" not in text
    spine = _conf(plan, "spine01")
    assert "\n neighbor r1t1u1 interface peer-group TOR\n" in spine
    assert f"\n neighbor r1t1u1 remote-as {tor.asn}\n" in spine
    assert "\n  neighbor r1t1u1 route-map FROM-RACK001 in\n" in spine


def test_bgp_to_host_and_two_tors() -> None:
    plan = VARIANTS["bgp-hosts-2tors"]
    tor2 = plan.devices["r001-tor2"]
    text = _conf(plan, tor2.name)
    mgmt = _section(text, "interface mgmt")
    assert " ip address 10.0.1.2/24" in mgmt  # ToR 2 owns first usable + 1
    assert "\n neighbor HOST peer-group\n" in text
    hosts = [nbr for nbr in tor2.bgp_neighbors if nbr.peer_device.startswith("r001-h")]
    assert len(hosts) == 2
    for nbr in hosts:
        assert f"\n neighbor {nbr.address} remote-as {nbr.remote_asn}\n" in text
    host_los = re.findall(r"^ip prefix-list HOSTS seq \d+ permit (\S+)$", text, re.M)
    assert host_los == [plan.devices[n.peer_device].loopback for n in hosts]
    # the ToR re-advertises its hosts' loopbacks upstream
    local = re.findall(r"^ip prefix-list LOCAL seq \d+ permit (\S+)$", text, re.M)
    assert set(host_los) <= set(local)
    spine = _conf(plan, "spine01")
    rack1 = re.findall(r"^ip prefix-list RACK001 seq \d+ permit (\S+)$", spine, re.M)
    assert set(host_los) <= set(rack1)
    assert plan.devices["r001-tor1"].loopback in rack1 and tor2.loopback in rack1
    assert len(rack1) == len(set(rack1))
    host = plan.devices["r001-h01"]
    htext = _conf(plan, host.name)
    assert "\nno ip forwarding\n" in htext
    assert f"router bgp {host.asn}\n" in htext
    assert re.findall(r"^  network (\S+)$", htext, re.M) == [host.loopback]
    assert "\n  neighbor TOR route-map TO-TOR out\n" in htext
    assert "  receive-interval 150" in htext


# ------------------------------------------------------------------------------------ OSPF
def test_ospf_point_to_point_single_area() -> None:
    plan = VARIANTS["lab-ospf"]
    tor = plan.devices["r001-tor1"]
    text = _conf(plan, tor.name)
    assert "router bgp" not in text and "\nrouter ospf\n" in text
    assert f"\n ospf router-id {tor.router_id}\n" in text
    area = str(plan.fabric.ospf.area)
    up1 = _section(text, "interface up1")
    for line in (
        f" ip ospf area {area}",
        " ip ospf network point-to-point",
        " ip ospf cost 10",
        f" ip ospf hello-interval {plan.fabric.ospf.hello}",
        f" ip ospf dead-interval {plan.fabric.ospf.dead}",
    ):
        assert line in up1
    assert "bfd" not in text  # the lab OSPF fabric has BFD off
    for role in ("mgmt", "storage", "service", "vm"):
        section = _section(text, f"interface {role}")
        assert f" ip ospf area {area}" in section and " ip ospf passive" in section
    lo = _section(text, "interface lo")
    assert f" ip ospf area {area}" in lo and " ip ospf passive" in lo


def test_ospf_unnumbered_borrows_loopback_and_bfd() -> None:
    plan = VARIANTS["ospf-unnumbered-bfd"]
    spine = plan.devices["spine01"]
    text = _conf(plan, "spine01")
    port = _section(text, "interface r1t1u1")
    assert f" ip address {spine.loopback}" in port
    assert " ip ospf network point-to-point" in port and " ip ospf bfd profile fabric" in port
    assert f" ip ospf area {plan.fabric.ospf.area}" in port
    assert "\nbfd\n profile fabric\n" in text


# ------------------------------------------------------------------------------------ speed
def test_500_racks_render_fast() -> None:
    plan = build_plan(load_fabric(EXAMPLE_500))
    routers = plan.routers()
    started = time.perf_counter()
    size = sum(len(render_frr(plan, device.name)) for device in routers)
    elapsed = time.perf_counter() - started
    assert len(routers) == 504 and size > 1_000_000
    assert elapsed < 2.0, f"{len(routers)} configs took {elapsed:.2f}s"
