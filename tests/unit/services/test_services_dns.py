# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""render/dns.py: names, reverse-zone boundaries, RFC 2317, serials, zone files named accepts."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
from services_testlib import DOC, LAB_FILE, doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import dns

NS = [{"name": "ns1", "address": "10.0.1.10"}]


def zones_of(document: dict | Path | None = None, **options: object) -> dict[str, dns.Zone]:
    document = DOC if document is None else document
    options.setdefault("nameservers", NS)
    return {zone.name: zone for zone in dns.render_dns(plan_of(document), **options)}


def a_records(zone: dns.Zone) -> dict[str, str]:
    return {r.name: r.value for r in zone.records if r.type == "A"}


def ptr_records(zones: dict[str, dns.Zone]) -> dict[str, str]:
    """address -> PTR target over every reverse zone (RFC 2317 children resolved)."""
    out = {}
    for zone in zones.values():
        if zone.kind not in ("reverse", "rfc2317"):
            continue
        for record in zone.records:
            if record.type != "PTR":
                continue
            if zone.kind == "rfc2317":
                base = zone.prefix.rsplit(".", 1)[0]
                out[f"{base}.{record.name}"] = record.value
            else:
                labels = f"{record.name}.{zone.name}".removesuffix(".in-addr.arpa").split(".")
                out[".".join(reversed(labels))] = record.value
    return out


# ------------------------------------------------------------------------------------ names
def test_forward_zone_name_and_device_names() -> None:
    zones = zones_of()
    fwd = zones["t1.compleat.internal"]
    assert fwd.kind == "forward"
    names = a_records(fwd)
    plan = plan_of(DOC)
    # every addressed interface of every device has <iface>.<device>
    for device in plan.devices.values():
        assert device.name in names
        for iface in device.interfaces:
            if iface.address:
                assert names[f"{iface.name}.{device.name}"] == iface.address.split("/")[0]
    # routers -> loopback, plain hosts -> mgmt address
    assert names["spine01"] == plan.devices["spine01"].router_id
    assert names["r001-tor2"] == plan.devices["r001-tor2"].router_id
    assert names["r001-h01"] == "10.0.1.10"
    assert names["up1.r001-tor1"] == plan.devices["r001-tor1"].interface("up1").address.split("/")[0]
    assert names["r1t1u1.spine01"] == plan.devices["spine01"].interface("r1t1u1").address.split("/")[0]
    assert names["ns1"] == "10.0.1.10"


def test_domain_option_and_trailing_dot() -> None:
    zones = zones_of(domain="Example.ORG.")
    assert "t1.example.org" in zones
    assert "$ORIGIN t1.example.org." in zones["t1.example.org"].text


def test_bgp_to_host_names_hosts_by_loopback() -> None:
    document = doc(bgp={"hosts": True})
    fwd = zones_of(document)["t1.compleat.internal"]
    plan = plan_of(document)
    assert a_records(fwd)["r001-h01"] == plan.devices["r001-h01"].router_id


def test_every_address_has_exactly_one_forward_confirmed_ptr() -> None:
    zones = zones_of()
    fwd = zones["t1.compleat.internal"]
    forward: dict[str, set[str]] = {}
    for name, addr in a_records(fwd).items():
        forward.setdefault(addr, set()).add(f"{name}.t1.compleat.internal.")
    ptrs = ptr_records(zones)
    for addr, names in forward.items():
        assert addr in ptrs, addr
        assert ptrs[addr] in names  # FCrDNS: the PTR target resolves back to the address
    # PTR count == distinct addresses in pools (ns1 is r001-h01's address: the plan name wins)
    assert ptrs["10.0.1.10"] == "r001-h01.t1.compleat.internal."
    assert len(ptrs) == len(forward)


# ------------------------------------------------------------------------------------ reverse zones
def test_reverse_blocks_octet_boundaries() -> None:
    assert dns.reverse_blocks("10.0.0.0/14") == [
        (int(ipaddress.IPv4Address(f"10.{i}.0.0")), 16) for i in range(4)
    ]
    assert len(dns.reverse_blocks("10.64.0.0/10")) == 64
    assert dns.reverse_blocks("10.255.0.0/16") == [(int(ipaddress.IPv4Address("10.255.0.0")), 16)]
    assert [plen for _start, plen in dns.reverse_blocks("10.255.0.0/22")] == [24] * 4
    assert dns.reverse_blocks("10.0.0.0/7") == [(int(ipaddress.IPv4Address("10.0.0.0")), 8), (0x0B000000, 8)]
    assert dns.reverse_blocks("192.0.2.64/26") == [(int(ipaddress.IPv4Address("192.0.2.64")), 26)]


def test_reverse_zone_names() -> None:
    net = int(ipaddress.IPv4Address("10.1.0.0"))
    assert dns.reverse_zone_name(net, 16) == "1.10.in-addr.arpa"
    assert dns.reverse_zone_name(net, 8) == "10.in-addr.arpa"
    assert dns.reverse_zone_name(int(ipaddress.IPv4Address("192.0.2.64")), 26) == "64-26.2.0.192.in-addr.arpa"
    assert dns.ptr_owner(int(ipaddress.IPv4Address("10.1.2.3")), 16) == "3.2"
    assert dns.ptr_owner(int(ipaddress.IPv4Address("10.1.2.3")), 8) == "3.2.1"
    assert dns.ptr_owner(int(ipaddress.IPv4Address("192.0.2.70")), 26) == "70"


def test_reverse_zones_cover_every_pool() -> None:
    zones = zones_of()
    reverse = {name for name, zone in zones.items() if zone.kind == "reverse"}
    expected = {"255.10.in-addr.arpa", "0.254.10.in-addr.arpa"}
    expected |= {f"{i}.10.in-addr.arpa" for i in range(4)}  # mgmt /14
    expected |= {f"{i}.64.10.in-addr.arpa" for i in range(4)}  # vm /22
    assert reverse == expected
    assert zones["0.10.in-addr.arpa"].pools == ("mgmt",)
    # empty blocks are still served (authoritative NXDOMAIN instead of leaking the query)
    assert [r.type for r in zones["3.10.in-addr.arpa"].records] == ["NS"]


def test_unnumbered_fabric_has_no_link_zone() -> None:
    zones = zones_of(doc(pools={"loopbacks": "10.255.0.0/16", "links": "10.254.0.0/24", "unnumbered": True}))
    assert "0.254.10.in-addr.arpa" not in zones
    assert not any(name.startswith("up1.") for name in a_records(zones["t1.compleat.internal"]))


SMALL_LIMITS = {"max_racks": 4, "tors_per_rack": 2, "uplinks_per_tor": 2, "hosts_per_rack": 8, "spines": 2}


def rfc2317_doc() -> dict:
    """Loopback pool 192.0.2.0/26: too small for octet-aligned reverse zones."""
    return doc(limits=SMALL_LIMITS, pools={"loopbacks": "192.0.2.0/26", "links": "10.254.0.0/24"})


def test_rfc2317_for_pools_longer_than_24() -> None:
    document = rfc2317_doc()
    zones = zones_of(document)
    child = zones["0-26.2.0.192.in-addr.arpa"]
    parent = zones["2.0.192.in-addr.arpa"]
    assert child.kind == "rfc2317" and parent.kind == "rfc2317-parent"
    assert {r.name for r in child.records if r.type == "PTR"} >= {"1", "2"}
    assert ("5", "CNAME", "5.0-26") in {(r.name, r.type, r.value) for r in parent.records}
    assert ("0-26", "NS", "ns1.t1.compleat.internal.") in {(r.name, r.type, r.value) for r in parent.records}
    assert len([r for r in parent.records if r.type == "CNAME"]) == 64
    assert child.delegation and all(r in parent.records for r in child.delegation)
    without = zones_of(document, rfc2317_parents=False)
    assert "2.0.192.in-addr.arpa" not in without
    assert without["0-26.2.0.192.in-addr.arpa"].delegation == child.delegation


# ------------------------------------------------------------------------------------ serials
def test_serial_is_deterministic_and_content_driven() -> None:
    first, again = zones_of(), zones_of()
    assert {n: z.serial for n, z in first.items()} == {n: z.serial for n, z in again.items()}
    assert all(z.text == again[n].text for n, z in first.items())
    assert all(0 < z.serial < 2**31 for z in first.values())
    # one more host in rack 2: the forward zone and the zones of its three new addresses change
    # (mgmt 10.0.2.12, vm 10.64.0.140, loopback); links, the other /16s and /24s keep their serial
    racks = [{"id": 1, "tors": 2, "uplinks": 2, "hosts": 3}, {"id": 2, "tors": 1, "uplinks": 2, "hosts": 3}]
    grown = zones_of(doc(racks=racks))
    changed = {name for name, zone in grown.items() if zone.serial != first[name].serial}
    assert changed == {
        "t1.compleat.internal",
        "0.10.in-addr.arpa",
        "255.10.in-addr.arpa",
        "0.64.10.in-addr.arpa",
    }
    # SOA timers are content too
    assert zones_of(ttl=60)["t1.compleat.internal"].serial != first["t1.compleat.internal"].serial


def test_soa_and_ns_lines() -> None:
    zone = zones_of(hostmaster="noc@example.org")["t1.compleat.internal"]
    soa_line = next(line for line in zone.text.splitlines() if " SOA " in line)
    assert soa_line.split()[3:6] == ["ns1.t1.compleat.internal.", "noc.example.org.", str(zone.serial)]
    assert zone.records[0] == dns.Record("@", "NS", "ns1.t1.compleat.internal.")


# ------------------------------------------------------------------------------------ inputs
def test_nameserver_forms_and_errors() -> None:
    zones = zones_of(nameservers=["r001-h01", "ns.example.net."])
    ns = [r.value for r in zones["t1.compleat.internal"].records if r.type == "NS"]
    assert ns == ["r001-h01.t1.compleat.internal.", "ns.example.net."]
    with pytest.raises(ValueError, match="at least one nameserver"):
        zones_of(nameservers=[])
    with pytest.raises(ValueError, match="give its address"):
        zones_of(nameservers=["ns9"])
    with pytest.raises(ValueError, match="plan names it"):
        zones_of(nameservers=[{"name": "spine01", "address": "10.9.9.9"}])


def test_extra_records() -> None:
    extra = [
        {"name": "pxe", "type": "cname", "value": "r001-h01"},
        {"name": "txt", "type": "TXT", "value": '"hi"'},
    ]
    records = zones_of(extra_records=extra)["t1.compleat.internal"].records
    assert dns.Record("pxe", "CNAME", "r001-h01") in records
    with pytest.raises(ValueError, match="type must be"):
        zones_of(extra_records=[{"name": "x", "type": "BOGUS", "value": "y"}])
    with pytest.raises(ValueError, match="CNAME cannot share"):
        zones_of(extra_records=[{"name": "spine01", "type": "CNAME", "value": "x"}])


def test_acl_lists_every_fabric_pool() -> None:
    assert dns.fabric_acl(plan_of(DOC)) == ["10.0.0.0/14", "10.64.0.0/22", "10.254.0.0/24", "10.255.0.0/16"]


# ------------------------------------------------------------------------------------ named-checkzone
@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="bind9-utils not installed")
@pytest.mark.parametrize("source", ["doc", "lab", "rfc2317"])
def test_named_checkzone_accepts_every_zone(tmp_path: Path, source: str) -> None:
    document = {
        "doc": DOC,
        "lab": LAB_FILE,
        "rfc2317": rfc2317_doc(),
    }[source]
    for zone in dns.render_dns(plan_of(document), nameservers=NS):
        path = tmp_path / f"db.{zone.name}"
        path.write_text(zone.text, encoding="utf-8")
        proc = subprocess.run(
            ["named-checkzone", "-k", "fail", "-n", "fail", "-i", "full", zone.name, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{zone.name}: {proc.stdout}{proc.stderr}"
        assert f"serial {zone.serial}" in proc.stdout
