# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tenant network devices on a hypervisor (``cloud.vtep``): names, command planning, idempotent apply.

A small fake kernel plays ``ip``: it keeps links, answers ``ip -j -d link show`` in the kernel's
JSON shape and applies the commands the module emits (the real kernel runs them in
``tests/lab/test_evpn_lab.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud.vtep import (
    VXLAN_OVERHEAD,
    VXLAN_PORT,
    VtepError,
    bridge_name,
    bridge_ports,
    ensure_commands,
    ensure_network,
    max_tenant_mtu,
    parse_links,
    release_commands,
    release_network,
    vxlan_name,
)

VTEP = "10.255.0.21"


class FakeKernel:
    """Links as the kernel reports them; runs the ``ip`` argv lists the module produces."""

    def __init__(self) -> None:
        self.links: dict[str, dict[str, Any]] = {}
        self.calls: list[list[str]] = []
        self.fail_on: str | None = None

    def add_port(self, name: str, master: str) -> None:
        self.links[name] = {"ifname": name, "mtu": 1500, "flags": ["UP"], "master": master, "linkinfo": {}}

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv == ["ip", "-j", "-d", "link", "show"]:
            return 0, json.dumps(list(self.links.values())), ""
        if self.fail_on and self.fail_on in argv:
            return 2, "", "RTNETLINK answers: Operation not permitted"
        assert argv[:2] == ["ip", "link"], argv
        verb, rest = argv[2], argv[3:]
        if verb == "add":
            name, mtu, kind = rest[1], int(rest[3]), rest[5]
            assert name not in self.links
            info: dict[str, Any] = {"info_kind": kind}
            if kind == "vxlan":
                info["info_data"] = {
                    "id": int(rest[7]),
                    "local": rest[9],
                    "port": int(rest[11]),
                    "learning": "nolearning" not in rest,
                }
            self.links[name] = {"ifname": name, "mtu": mtu, "flags": [], "linkinfo": info}
        elif verb == "del":
            del self.links[rest[1]]
        elif verb == "set":
            link = self.links[rest[1]]
            opts = rest[2:]
            if opts == ["up"]:
                link["flags"] = ["UP"]
            elif opts[0] == "mtu":
                link["mtu"] = int(opts[1])
            elif opts[0] == "master":
                link["master"] = opts[1]
                link["linkinfo"].update(
                    info_slave_kind="bridge", info_slave_data={"learning": True, "neigh_suppress": False}
                )
            elif opts[:2] == ["type", "bridge_slave"]:
                data = link["linkinfo"]["info_slave_data"]
                data["learning"] = opts[3] == "on"
                data["neigh_suppress"] = opts[5] == "on"
            else:
                raise AssertionError(argv)
        else:
            raise AssertionError(argv)
        return 0, "", ""

    def parsed(self) -> dict:
        return parse_links(self.links.values())


# ------------------------------------------------------------------------------------ names
def test_names_fit_linux_interface_names() -> None:
    assert bridge_name(100) == "brv100" and vxlan_name(100) == "vxv100"
    assert len(bridge_name(16777215)) <= 15 and len(vxlan_name(16777215)) <= 15
    for bad in (0, 1 << 24, -5, "100", True):
        with pytest.raises(VtepError, match="VNI"):
            vxlan_name(bad)  # type: ignore[arg-type]


def test_mtu_math() -> None:
    assert VXLAN_OVERHEAD == 50 and VXLAN_PORT == 4789
    assert max_tenant_mtu(1500) == 1450 and max_tenant_mtu(9000) == 8950


def test_parse_links_reads_vxlan_and_bridge_port_details() -> None:
    sample = [
        {"ifname": "brv100", "mtu": 1450, "flags": ["BROADCAST", "UP"], "linkinfo": {"info_kind": "bridge"}},
        {
            "ifname": "vxv100",
            "mtu": 1450,
            "flags": ["BROADCAST"],
            "master": "brv100",
            "linkinfo": {
                "info_kind": "vxlan",
                "info_data": {"id": 100, "local": VTEP, "port": 4789, "learning": False},
                "info_slave_kind": "bridge",
                "info_slave_data": {"learning": False, "neigh_suppress": True},
            },
        },
        {"ifname": "lo", "mtu": 65536, "flags": ["LOOPBACK"]},
    ]
    links = parse_links(sample)
    vx = links["vxv100"]
    assert (vx.kind, vx.vni, vx.local, vx.port, vx.learning) == ("vxlan", 100, VTEP, 4789, False)
    assert (vx.master, vx.up, vx.port_learning, vx.neigh_suppress) == ("brv100", False, False, True)
    assert links["brv100"].up and links["brv100"].kind == "bridge" and links["lo"].kind == ""


# ------------------------------------------------------------------------------------ planning
def test_create_from_nothing() -> None:
    cmds = ensure_commands({}, 100, VTEP, 1450)
    assert [" ".join(cmd) for cmd in cmds] == [
        "ip link add name brv100 mtu 1450 type bridge stp_state 0 forward_delay 0",
        f"ip link add name vxv100 mtu 1450 type vxlan id 100 local {VTEP} dstport 4789 nolearning",
        "ip link set dev vxv100 master brv100",
        "ip link set dev vxv100 type bridge_slave learning off neigh_suppress off",
        "ip link set dev brv100 up",
        "ip link set dev vxv100 up",
    ]


@pytest.mark.parametrize("bad", [("vtep", "not-an-ip"), ("vtep", "224.0.0.1"), ("vtep", "::1"), ("mtu", 10)])
def test_bad_input_refused(bad: tuple[str, Any]) -> None:
    args: dict[str, Any] = {"vtep_ip": VTEP, "mtu": 1450}
    args["vtep_ip" if bad[0] == "vtep" else "mtu"] = bad[1]
    with pytest.raises(VtepError):
        ensure_commands({}, 100, args["vtep_ip"], args["mtu"])


def test_foreign_device_under_our_name_is_refused() -> None:
    kernel = FakeKernel()
    kernel.links["brv100"] = {"ifname": "brv100", "mtu": 1500, "flags": [], "linkinfo": {"info_kind": "veth"}}
    with pytest.raises(VtepError, match="not a bridge"):
        ensure_commands(kernel.parsed(), 100, VTEP, 1450)


# ------------------------------------------------------------------------------------ apply
def test_ensure_is_idempotent_and_repairs_only_the_difference() -> None:
    kernel = FakeKernel()
    assert ensure_network(kernel, 100, VTEP, 1450) is True
    links = kernel.parsed()
    assert links["vxv100"].master == "brv100" and links["vxv100"].port_learning is False
    assert links["brv100"].up and links["vxv100"].up and links["vxv100"].mtu == 1450
    calls = len(kernel.calls)
    assert ensure_network(kernel, 100, VTEP, 1450) is False
    assert kernel.calls[calls:] == [["ip", "-j", "-d", "link", "show"]]  # only read, nothing changed
    # MTU drift and a downed bridge: exactly those two are fixed
    kernel.links["brv100"]["mtu"] = 1500
    kernel.links["brv100"]["flags"] = []
    calls = len(kernel.calls)
    assert ensure_network(kernel, 100, VTEP, 1450) is True
    assert kernel.calls[calls + 1 :] == [
        ["ip", "link", "set", "dev", "brv100", "mtu", "1450"],
        ["ip", "link", "set", "dev", "brv100", "up"],
    ]
    # neigh_suppress switched on: one bridge_slave change
    assert ensure_network(kernel, 100, VTEP, 1450, neigh_suppress=True) is True
    assert kernel.parsed()["vxv100"].neigh_suppress is True
    assert ensure_network(kernel, 100, VTEP, 1450, neigh_suppress=True) is False


def test_vxlan_with_another_vtep_address_is_recreated() -> None:
    kernel = FakeKernel()
    ensure_network(kernel, 100, VTEP, 1450)
    kernel.add_port("vnet0", "brv100")
    assert ensure_network(kernel, 100, "10.255.0.22", 1450) is True
    links = kernel.parsed()
    assert links["vxv100"].local == "10.255.0.22" and links["vxv100"].master == "brv100"
    assert links["vnet0"].master == "brv100"  # instance port untouched


def test_release_only_when_unused() -> None:
    kernel = FakeKernel()
    ensure_network(kernel, 100, VTEP, 1450)
    ensure_network(kernel, 200, VTEP, 1450)
    kernel.add_port("vnet0", "brv100")
    assert bridge_ports(kernel.parsed(), 100) == ["vnet0"]
    assert release_commands(kernel.parsed(), 100) == []
    assert release_network(kernel, 100) is False and "brv100" in kernel.links
    del kernel.links["vnet0"]
    assert release_network(kernel, 100) is True
    assert "brv100" not in kernel.links and "vxv100" not in kernel.links
    assert "brv200" in kernel.links and "vxv200" in kernel.links  # the other network stays
    assert release_network(kernel, 100) is False


def test_failed_command_raises_with_stderr() -> None:
    kernel = FakeKernel()
    kernel.fail_on = "vxlan"
    with pytest.raises(VtepError, match="Operation not permitted"):
        ensure_network(kernel, 100, VTEP, 1450)
