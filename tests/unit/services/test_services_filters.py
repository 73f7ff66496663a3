# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/filter/services.py: argument forms, caching, errors, and rendering through Jinja."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from services_testlib import DOC, LAB_FILE, ROOT, doc, plan_of

from ansible_collections.compleat.cloud.plugins.filter import services
from ansible_collections.compleat.cloud.plugins.module_utils.fabric import adapter

FILTERS = services.FilterModule().filters()
NS = [{"name": "ns1", "address": "10.0.1.10"}]


def test_filter_names() -> None:
    assert set(FILTERS) == {
        "fabric_dns_zones",
        "fabric_dns_acl",
        "fabric_kea_subnets",
        "kea_pxe_client_classes",
        "dhcp_inventory_reservations",
        "fabric_dhcp_relay",
        "fabric_host_networks",
        "fabric_host_networkd",
    }


def test_inventory_reservations() -> None:
    hostvars = {
        "node-a": {"mgmt_mac": "52:54:00:00:02:01", "fabric_device": "r002-h01"},
        "r001-h01": {"mgmt_mac": "52:54:00:00:01:01"},
        "no-mac": {"fabric_device": "r001-h02"},
    }
    found = FILTERS["dhcp_inventory_reservations"](hostvars, ["node-a", "r001-h01", "no-mac", "gone"])
    assert found == {"r002-h01": "52:54:00:00:02:01", "r001-h01": "52:54:00:00:01:01"}
    assert FILTERS["dhcp_inventory_reservations"](hostvars, ["node-a"], mac_var="other") == {}
    twice = {
        "a": {"mgmt_mac": "52:54:00:00:00:01", "fabric_device": "x"},
        "x": {"mgmt_mac": "52:54:00:00:00:02"},
    }
    with pytest.raises(AnsibleFilterError, match="two hosts are named x"):
        FILTERS["dhcp_inventory_reservations"](twice, ["a", "x"])


def test_fabric_argument_forms_agree() -> None:
    by_path = FILTERS["fabric_dns_zones"](str(LAB_FILE), nameservers=NS)
    by_plan = FILTERS["fabric_dns_zones"](plan_of(LAB_FILE), nameservers=NS)
    assert by_path == by_plan
    zone = by_path[0]
    assert zone["name"] == "lab.compleat.internal"
    assert zone["file"] == "db.lab.compleat.internal"
    assert set(zone) >= {"kind", "prefix", "pools", "serial", "records", "text", "delegation"}
    assert FILTERS["fabric_dns_zones"](DOC, nameservers=NS) == FILTERS["fabric_dns_zones"](
        doc(), nameservers=NS
    )


def test_plan_cache_is_bounded() -> None:
    adapter._cache.clear()
    for index in range(6):
        FILTERS["fabric_dns_acl"](doc(name=f"c{index}"))
    assert len(adapter._cache) == adapter.CACHE_SIZE


def test_errors_become_filter_errors() -> None:
    with pytest.raises(AnsibleFilterError, match="fabric_dns_zones: at least one nameserver"):
        FILTERS["fabric_dns_zones"](DOC)
    with pytest.raises(AnsibleFilterError, match="fabric_kea_subnets: reservation nobody"):
        FILTERS["fabric_kea_subnets"](DOC, reservations={"nobody": "52:54:00:00:00:01"})
    with pytest.raises(AnsibleFilterError, match="fabric_dhcp_relay: 'spine01' is not a ToR"):
        FILTERS["fabric_dhcp_relay"](DOC, "spine01")
    with pytest.raises(AnsibleFilterError, match="fabric_dns_acl: fabric file has 1 error"):
        FILTERS["fabric_dns_acl"](doc(limits={"max_racks": 0}))
    with pytest.raises(AnsibleFilterError, match="not the plan data"):
        FILTERS["fabric_dns_acl"]({"devices": []})
    with pytest.raises(AnsibleFilterError, match="expected a fabric definition"):
        FILTERS["fabric_dns_acl"](42)
    with pytest.raises(AnsibleFilterError, match="unknown options bogus"):
        FILTERS["kea_pxe_client_classes"]({"bogus": 1})


@pytest.mark.parametrize("name", ["fabric_dns_zones", "fabric_dns_acl", "fabric_kea_subnets"])
def test_filter_error_says_it_once(tmp_path: Path, name: str) -> None:
    """The message names the filter and the problem once: Ansible prints an exception's causes
    after its message, so a filter error must not chain the error it already quotes."""
    missing = str(tmp_path / "missing.yml")
    with pytest.raises(AnsibleFilterError) as caught:
        FILTERS[name](missing)
    text = str(caught.value)
    assert text.startswith(f"{name}: fabric file has 1 error")
    assert text.count("cannot read the fabric file") == 1, text
    assert text.count(f"{name}:") == 1, text


def test_kea_filters() -> None:
    subnets = FILTERS["fabric_kea_subnets"](
        DOC, reservations={"r002-h01": "52:54:00:00:02:01"}, dns_servers="10.0.1.10, 10.0.2.10"
    )
    assert [s["subnet"] for s in subnets] == ["10.0.1.0/24", "10.0.2.0/24"]
    assert subnets[1]["reservations"][0]["ip-address"] == "10.0.2.10"
    assert subnets[0]["option-data"][1] == {"name": "domain-name-servers", "data": "10.0.1.10, 10.0.2.10"}
    classes = FILTERS["kea_pxe_client_classes"](
        {"next_server": "10.0.1.20", "ipxe_script_url": "", "uefi_arches": "7", "enabled": True}
    )
    assert [c["name"] for c in classes] == ["pxe-bios", "pxe-uefi"]
    assert FILTERS["kea_pxe_client_classes"]({"enabled": False, "next_server": "10.0.1.20"}) == []
    assert (
        FILTERS["fabric_dhcp_relay"](DOC, "r002-tor1", networks=["mgmt"])["relays"][0]["address"]
        == "10.0.2.1"
    )


def test_through_ansible_playbook(tmp_path: Path) -> None:
    """The filters resolve by FQCN and work on the values Ansible hands over (lazy/tagged data)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  vars:
    fab: "{{{{ lookup('ansible.builtin.file', '{LAB_FILE}') | from_yaml }}}}"
    ns: [{{name: ns1, address: 10.0.1.10}}]
  tasks:
    - ansible.builtin.debug:
        msg: >-
          RESULT {{{{ (fab | compleat.cloud.fabric_dns_zones(nameservers=ns, domain='x.test'))[0].name }}}}
          {{{{ fab | compleat.cloud.fabric_dns_acl | length }}}}
          {{{{ fab | compleat.cloud.fabric_kea_subnets | map(attribute='subnet') | join(',') }}}}
          {{{{ ('{LAB_FILE}' | compleat.cloud.fabric_dhcp_relay('r002-tor1')).relays[0].address }}}}
""",
        encoding="utf-8",
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RESULT lab.x.test 6 10.0.1.0/24,10.0.2.0/24,10.0.3.0/24 10.0.2.1" in proc.stdout
