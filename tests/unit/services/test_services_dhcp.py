# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""render/dhcp.py: Kea subnets, reservations, PXE classes, ToR relay settings."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from services_testlib import DOC, EXAMPLE_FILE, LAB_FILE, doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import law
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import dhcp

MAC1 = "52:54:00:00:01:01"


def subnets_of(document: dict | Path | None = None, **options: object) -> dict[str, dict]:
    document = DOC if document is None else document
    return {item["subnet"]: item for item in dhcp.kea_subnets(plan_of(document), **options)}


def test_one_subnet_per_rack_mgmt_network() -> None:
    subnets = subnets_of()
    assert list(subnets) == ["10.0.1.0/24", "10.0.2.0/24"]
    rack1 = subnets["10.0.1.0/24"]
    assert rack1["id"] == int(ipaddress.IPv4Address("10.0.1.0"))
    assert rack1["relay"] == {"ip-addresses": ["10.0.1.1", "10.0.1.2"]}  # both ToRs of rack 1
    assert subnets["10.0.2.0/24"]["relay"] == {"ip-addresses": ["10.0.2.1"]}
    assert rack1["option-data"] == [{"name": "routers", "data": "10.0.1.1"}]
    assert rack1["user-context"] == {"rack": 1, "network": "mgmt", "vlan": 10}


def test_pool_skips_every_reserved_offset() -> None:
    plan = plan_of(DOC)
    pool = subnets_of()["10.0.2.0/24"]["pools"]
    # hosts_per_rack 8: offsets 10..17 are host slots; the pool starts at 18, ends before broadcast
    assert pool == [{"pool": "10.0.2.18 - 10.0.2.254"}]
    first = law.host_offset(plan.fabric.limits.hosts_per_rack + 1)
    assert first == 18
    # no planned address of any device falls into a pool
    start, end = (int(ipaddress.IPv4Address(x.strip())) for x in pool[0]["pool"].split("-"))
    for device in plan.devices.values():
        for iface in device.interfaces:
            if iface.address:
                assert not start <= int(ipaddress.IPv4Address(iface.address.split("/")[0])) <= end


def test_no_pool_when_the_subnet_is_full() -> None:
    # vm /26 per rack: 64 addresses, hosts_per_rack 8 -> pool 18..62
    subnets = subnets_of(networks=["vm"])
    assert subnets["10.64.0.64/26"]["pools"] == [{"pool": "10.64.0.82 - 10.64.0.126"}]
    tight = doc(limits={**DOC["limits"], "hosts_per_rack": 53})
    tight["networks"] = {"mgmt": {"pool": "10.0.0.0/22", "prefix_len": 26, "vlan": 10, "mtu": 1500}}
    assert subnets_of(tight)["10.0.0.64/26"]["pools"] == []


def test_options() -> None:
    subnet = subnets_of(
        dns_servers=["10.0.1.10", "10.0.2.10"],
        domain_name="t1.compleat.internal",
        domain_search=["t1.compleat.internal"],
        ntp_servers=["10.0.1.11"],
    )["10.0.1.0/24"]
    assert subnet["option-data"] == [
        {"name": "routers", "data": "10.0.1.1"},
        {"name": "domain-name-servers", "data": "10.0.1.10, 10.0.2.10"},
        {"name": "domain-name", "data": "t1.compleat.internal"},
        {"name": "domain-search", "data": "t1.compleat.internal"},
        {"name": "ntp-servers", "data": "10.0.1.11"},
    ]


def test_reservations_by_plan_name() -> None:
    subnets = subnets_of(
        reservations={"r002-h02": "52-54-00-00-02-02", "r001-h01": {"mac": "52:54:00:00:01:01"}}
    )
    assert subnets["10.0.1.0/24"]["reservations"] == [
        {"hw-address": MAC1, "ip-address": "10.0.1.10", "hostname": "r001-h01"}
    ]
    assert subnets["10.0.2.0/24"]["reservations"] == [
        {"hw-address": "52:54:00:00:02:02", "ip-address": "10.0.2.11", "hostname": "r002-h02"}
    ]


def test_reservation_with_explicit_address() -> None:
    subnets = subnets_of(
        reservations={"bmc-7": {"mac": "5254.0000.0707".replace(".", ""), "address": "10.0.2.7"}}
    )
    assert subnets["10.0.2.0/24"]["reservations"] == [
        {"hw-address": "52:54:00:00:07:07", "ip-address": "10.0.2.7", "hostname": "bmc-7"}
    ]


@pytest.mark.parametrize(
    ("reservations", "message"),
    [
        ({"nobody": MAC1}, "not a host of the plan"),
        ({"spine01": MAC1}, "not a host of the plan"),
        ({"r001-h01": "52:54:00:00:01"}, "not a MAC address"),
        ({"r001-h01": {"address": "10.0.1.10"}}, "'mac' is required"),
        ({"x": {"mac": MAC1, "address": "10.9.0.1"}}, "in no DHCP subnet"),
        ({"r001-h01": MAC1, "r001-h02": MAC1}, "reserved twice"),
        ({"r001-h01": MAC1, "x": {"mac": "52:54:00:00:09:09", "address": "10.0.1.10"}}, "reserved twice"),
    ],
)
def test_reservation_errors(reservations: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        subnets_of(reservations=reservations)


def test_unknown_network_role() -> None:
    with pytest.raises(ValueError, match="not declared"):
        subnets_of(networks=["storage"])


def test_subnet_ids_are_stable_when_racks_are_added() -> None:
    before = {s["subnet"]: s["id"] for s in subnets_of().values()}
    racks = [*DOC["racks"], {"id": 7, "tors": 1, "uplinks": 2, "hosts": 1}]
    after = {s["subnet"]: s["id"] for s in subnets_of(doc(racks=racks)).values()}
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) == len(after)


def test_example_fabric_scales() -> None:
    subnets = subnets_of(EXAMPLE_FILE)
    assert len(subnets) == 500
    assert len({s["id"] for s in subnets.values()}) == 500


# ------------------------------------------------------------------------------------ PXE
def test_pxe_classes() -> None:
    classes = dhcp.kea_pxe_client_classes(
        next_server="10.0.1.20", ipxe_script_url="http://10.0.1.20/boot.ipxe"
    )
    assert [c["name"] for c in classes] == ["ipxe", "pxe-bios", "pxe-uefi"]
    ipxe, bios, uefi = classes
    assert ipxe["test"] == "substring(option[77].hex,0,4) == 'iPXE'"
    assert ipxe["boot-file-name"] == "http://10.0.1.20/boot.ipxe"
    assert bios["test"] == "not member('ipxe') and (option[93].hex == 0x0000)"
    assert (bios["next-server"], bios["boot-file-name"]) == ("10.0.1.20", "undionly.kpxe")
    assert uefi["test"] == "not member('ipxe') and (option[93].hex == 0x0007 or option[93].hex == 0x0009)"
    assert uefi["boot-file-name"] == "ipxe.efi"


def test_pxe_off_and_without_ipxe() -> None:
    assert dhcp.kea_pxe_client_classes() == []
    classes = dhcp.kea_pxe_client_classes(next_server="10.0.1.20", uefi_arches=(7,), uefi_file="snp.efi")
    assert [c["name"] for c in classes] == ["pxe-bios", "pxe-uefi"]
    assert classes[1]["test"] == "(option[93].hex == 0x0007)"
    assert classes[1]["boot-file-name"] == "snp.efi"


# ------------------------------------------------------------------------------------ relay
def test_relay_config() -> None:
    plan = plan_of(DOC)
    assert dhcp.relay_config(plan, "r001-tor2") == {
        "device": "r001-tor2",
        "servers": ["10.0.1.10"],
        "relays": [
            {
                "network": "mgmt",
                "interface": "mgmt",
                "address": "10.0.1.2",
                "prefix": "10.0.1.0/24",
                "rack": 1,
            }
        ],
    }
    assert dhcp.relay_config(plan, "r002-tor1")["relays"][0]["address"] == "10.0.2.1"
    with pytest.raises(ValueError, match="not a ToR"):
        dhcp.relay_config(plan, "spine01")


def test_lab_fabric_relay_points_at_rack1_host() -> None:
    plan = plan_of(LAB_FILE)
    config = dhcp.relay_config(plan, "r002-tor1")
    assert config["servers"] == ["10.0.1.10"]
    assert config["relays"][0]["address"] == "10.0.2.1"


# ------------------------------------------------------------------------------------ kea -t
@pytest.mark.skipif(shutil.which("kea-dhcp4") is None, reason="kea-dhcp4 not installed on this machine")
def test_kea_accepts_the_rendered_config(tmp_path: Path) -> None:
    config = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": ["*"]},
            "lease-database": {"type": "memfile", "persist": False},
            "client-classes": dhcp.kea_pxe_client_classes(
                next_server="10.0.1.20", ipxe_script_url="http://x/b"
            ),
            "subnet4": dhcp.kea_subnets(plan_of(LAB_FILE), reservations={"r002-h01": MAC1}),
        }
    }
    path = tmp_path / "kea.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    proc = subprocess.run(["kea-dhcp4", "-t", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
