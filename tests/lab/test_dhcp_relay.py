# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DNS, DHCP and the ToR relay across the namespace fabric, deployed by playbooks/services.yml.

The lab fabric (inventories/lab/fabric.yml) runs in namespaces with its generated FRR configs.
Two systemd containers join fabric namespaces (``podman --network ns:/run/netns/...``):

- ``kea``: in host r001-h01's namespace (10.0.1.10, the fabric's ``dhcp_relay.servers``); the
  ``dns`` and ``dhcp`` roles configure BIND and Kea in it;
- ``relay``: in ToR r002-tor1's namespace; the ``dhcp_relay`` role configures dnsmasq there.

Then, with the real client (busybox udhcpc) on rack 2's mgmt bridge, two racks away from Kea:

- host r002-h02's own namespace gets the address reserved for its MAC (its inventory
  ``mgmt_mac``), with the gateway and the DNS server of the plan, from Kea through the relay;
- a fresh namespace with an unknown MAC gets a pool address; PXE clients (option 93 = UEFI, and
  iPXE's user class) get next-server and the iPXE file / the script URL;
- after a Kea restart the leases are still there: Kea counts them, and a new client does not get
  an address already leased;
- dig from rack 3 resolves plan names forward and reverse through the fabric.

Run (root): ``.venv/bin/pytest -m lab tests/lab/test_dhcp_relay.py -rP``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from labtestlib import FABRICS, ROOT, RUN_PREFIX, lab_skip_reason, render

from lab.fabric_lab import FabricLab
from lab.netns import NetnsError, sh, wait_for

pytestmark = pytest.mark.lab

IMAGE = "localhost/compleat-debian12:latest"
LABEL = "org.compleat.test=dhcp-relay"
PREFIX = f"{RUN_PREFIX}s-"
KEA_HOST, RELAY_TOR, CLIENT_HOST, DIG_HOST = "r001-h01", "r002-tor1", "r002-h02", "r003-h01"
NEXT_SERVER, IPXE_URL = "10.0.1.20", "http://10.0.1.20/boot.ipxe"
SUBNET_ID_RACK2 = 167772672  # 10.0.2.0 as an integer: Kea subnet ids are the network addresses
STAT = f"subnet[{SUBNET_ID_RACK2}].assigned-addresses"
UDHCPC_ENV = ("ip", "router", "dns", "domain", "serverid", "siaddr", "boot_file", "subnet")


# ------------------------------------------------------------------------------------ helpers
def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return sh(["podman", *args], check=check, timeout=timeout)


def container_skip_reason() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed"
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        return f"{IMAGE} is missing (scripts/images/build-container-image.sh)"
    if shutil.which("udhcpc") is None or shutil.which("dig") is None:
        return "udhcpc / dig missing (scripts/packages.d/services.txt)"
    return None


def remove_stale_containers() -> None:
    """Containers of earlier runs of this test whose pytest process is gone."""
    listing = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}", check=False)
    for name in listing.stdout.split():
        pid = name.removeprefix("cct").split("-", 1)[0]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            podman("rm", "-f", "-t", "0", name, check=False)


def start_container(name: str, netns: str, caps: tuple[str, ...]) -> str:
    """A systemd container inside namespace ``netns``; returns once systemd finished booting."""
    podman("rm", "-f", "-t", "0", name, check=False)
    cmd = ["run", "-d", "--name", name, "--hostname", name, "--label", LABEL, "--systemd=always"]
    cmd += ["--network", f"ns:/run/netns/{netns}"]
    for cap in caps:
        cmd += ["--cap-add", cap]
    podman(*cmd, IMAGE, "/sbin/init")

    def booted() -> bool:
        state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")

    wait_for(booted, timeout=90, interval=0.5, what=f"systemd in {name}")
    return name


def run_services_playbook(inventory: Path, log: Path) -> None:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",  # task timings in the log
    }
    playbook_bin = str(Path(sys.executable).with_name("ansible-playbook"))
    cmd = [playbook_bin, "-i", str(inventory), str(ROOT / "playbooks" / "services.yml")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900)
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    tail = f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, f"services.yml failed (log {log}):\n{tail}"


def kea_command(container: str, command: str, arguments: dict | None = None) -> dict:
    """One command over Kea's control socket, from inside the container."""
    request = {"command": command, **({"arguments": arguments} if arguments else {})}
    script = (
        "import json, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect('/run/kea/kea4-ctrl-socket')\n"
        "s.sendall(sys.argv[1].encode())\n"
        "data = b''\n"
        "while chunk := s.recv(65536):\n"
        "    data += chunk\n"
        "print(data.decode())\n"
    )
    out = podman("exec", container, "python3", "-c", script, json.dumps(request)).stdout
    return json.loads(out)


def udhcpc(lab: FabricLab, node: str, ifname: str, out_dir: Path, tag: str, *options: str) -> dict[str, str]:
    """Run busybox udhcpc once in ``node`` (no interface change); return the variables it got."""
    result = out_dir / f"{tag}.env"
    script = out_dir / f"{tag}.sh"
    keys = "|".join(UDHCPC_ENV)
    script.write_text(
        f'#!/bin/sh\n[ "$1" = bound ] && env | grep -E "^({keys})=" > {result}\nexit 0\n', encoding="utf-8"
    )
    script.chmod(0o755)
    # -f foreground, -q quit once bound, -n fail without a lease; the script only records the values
    argv = ["udhcpc", "-f", "-q", "-n", "-i", ifname, "-t", "6", "-T", "2", "-A", "1", "-s", str(script)]
    proc = lab.netns.exec(node, *argv, *options, check=False, timeout=40)
    assert proc.returncode == 0 and result.exists(), f"udhcpc {tag}: no lease\n{proc.stdout}\n{proc.stderr}"
    lines = result.read_text(encoding="utf-8").splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    print(f"udhcpc {tag}: {values}")
    return values


def fresh_client(lab: FabricLab, name: str, mac: str) -> str:
    """A new namespace with eth0 (MAC ``mac``) plugged into rack 2's mgmt bridge."""
    lab.netns.add(name)
    port = f"c{name[-4:]}"
    lab.netns.veth(RELAY_TOR, port, name, "eth0", up=False)
    lab.netns.ip(name, "link", "set", "eth0", "address", mac)
    lab.netns.link_set(name, "eth0", up=True)
    lab.netns.attach(RELAY_TOR, port, "mgmt")
    return name


def mac_of(lab: FabricLab, node: str, ifname: str) -> str:
    return str(lab.netns.ip_json(node, "link", "show", "dev", ifname)[0]["address"])


# ------------------------------------------------------------------------------------ fixture
@pytest.fixture(scope="module")
def services_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The lab fabric with Kea + BIND in r001-h01 and the relay in r002-tor1, deployed by Ansible."""
    reason = lab_skip_reason() or container_skip_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("services")
    remove_stale_containers()
    lab = FabricLab(render(FABRICS["bgp"], work / "fabric"), prefix=PREFIX)
    containers: list[str] = []
    try:
        started = time.monotonic()
        print(f"fabric up in {lab.up(timeout=120):.1f}s")
        kea = start_container(f"{PREFIX}kea", lab.netns.ns(KEA_HOST), ("NET_RAW",))
        containers.append(kea)
        relay = start_container(f"{PREFIX}relay", lab.netns.ns(RELAY_TOR), ("NET_RAW", "NET_ADMIN"))
        containers.append(relay)
        print(f"containers booted at {time.monotonic() - started:.1f}s")
        client_mac = mac_of(lab, CLIENT_HOST, "mgmt")
        inventory = {
            "all": {
                "vars": {"fabric_file": str(FABRICS["bgp"])},
                "hosts": {CLIENT_HOST: {"mgmt_mac": client_mac, "ansible_connection": "local"}},
                "children": {
                    "dns_servers": {"hosts": {kea: None}},
                    "dhcp_servers": {"hosts": {kea: None}},
                    "tors": {"hosts": {relay: {"fabric_device": RELAY_TOR}}},
                    "containers": {
                        "hosts": {kea: None, relay: None},
                        "vars": {
                            "ansible_connection": "containers.podman.podman",
                            "ansible_python_interpreter": "/usr/bin/python3",
                        },
                    },
                    "services": {
                        "hosts": {kea: {"fabric_device": KEA_HOST}},
                        "vars": {
                            "dns_nameservers": [{"name": KEA_HOST}],
                            "dns_listen_on_v6": ["none"],
                            "dhcp_interfaces": ["mgmt"],
                            "dhcp_dns_servers": ["10.0.1.10"],
                            "dhcp_domain_name": "lab.compleat.internal",
                            "dhcp_pxe": {"next_server": NEXT_SERVER, "ipxe_script_url": IPXE_URL},
                        },
                    },
                },
            }
        }
        path = work / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
        run_services_playbook(path, work / "services.log")
        print(f"services deployed at {time.monotonic() - started:.1f}s")
        yield {"lab": lab, "kea": kea, "relay": relay, "work": work, "client_mac": client_mac}
    except BaseException:
        print(lab.logs())
        raise
    finally:
        for name in containers:
            podman("rm", "-f", "-t", "0", name, check=False)
        lab.down()


# ------------------------------------------------------------------------------------ tests
def test_reserved_mac_gets_its_planned_address_through_the_relay(services_lab: dict) -> None:
    lab: FabricLab = services_lab["lab"]
    # the host's namespace forgets its static address and asks DHCP instead
    lab.netns.ip(CLIENT_HOST, "addr", "flush", "dev", "mgmt")
    got = udhcpc(lab, CLIENT_HOST, "mgmt", services_lab["work"], "reserved")
    assert got["ip"] == lab.host_address(CLIENT_HOST, "mgmt") == "10.0.2.11"
    assert got["serverid"] == "10.0.1.10"  # Kea two racks away, reached through r002-tor1's relay
    assert got["router"] == "10.0.2.1"
    assert got["subnet"] == "255.255.255.0"
    assert got["dns"].split() == ["10.0.1.10"]
    assert got["domain"] == "lab.compleat.internal"
    # the address works across the fabric
    lab.netns.addr(CLIENT_HOST, "mgmt", f"{got['ip']}/24")
    lab.netns.route(CLIENT_HOST, "default", got["router"])
    assert lab.ping(CLIENT_HOST, "10.0.1.10")


def test_unknown_mac_gets_a_pool_address_and_pxe_options(services_lab: dict) -> None:
    lab: FabricLab = services_lab["lab"]
    fresh_client(lab, "cli1", "02:00:5e:10:00:01")
    got = udhcpc(lab, "cli1", "eth0", services_lab["work"], "unknown")
    offset = int(got["ip"].rsplit(".", 1)[1])
    assert got["ip"].startswith("10.0.2.") and 26 <= offset <= 254  # after the 16 host slots
    assert got["router"] == "10.0.2.1"
    services_lab["pool_ip"] = got["ip"]
    # a UEFI firmware PXE client (option 93 = 7) and iPXE (user class "iPXE", option 77)
    fresh_client(lab, "cli2", "02:00:5e:10:00:02")
    uefi = udhcpc(lab, "cli2", "eth0", services_lab["work"], "uefi", "-x", "0x5d:0007")
    assert (uefi["siaddr"], uefi["boot_file"]) == (NEXT_SERVER, "ipxe.efi")
    ipxe = udhcpc(lab, "cli2", "eth0", services_lab["work"], "ipxe", "-x", "0x5d:0007", "-x", "0x4d:69505845")
    assert ipxe["boot_file"] == IPXE_URL


def test_leases_survive_a_kea_restart(services_lab: dict) -> None:
    lab: FabricLab = services_lab["lab"]
    kea = services_lab["kea"]
    pool_ip = services_lab.get("pool_ip")
    if pool_ip is None:
        pytest.skip("needs the leases of the two tests before")
    leases = podman("exec", kea, "cat", "/var/lib/kea/kea-leases4.csv").stdout
    assert "10.0.2.11," in leases and f"{pool_ip}," in leases
    podman("exec", kea, "systemctl", "restart", "kea-dhcp4-server")

    def assigned() -> int | None:
        try:
            reply = kea_command(kea, "statistic-get", {"name": STAT})
        except (NetnsError, json.JSONDecodeError):  # the control socket is back a moment after the start
            return None
        samples = reply.get("arguments", {}).get(STAT) or []
        return int(samples[0][0]) if samples else None

    count = wait_for(lambda: (assigned() or 0) >= 3 and assigned(), timeout=30, what="Kea's lease count")
    print(f"after the restart Kea counts {count} leases in rack 2's subnet")
    # the restarted server knows the pool lease: a new client does not get that address...
    fresh_client(lab, "cli3", "02:00:5e:10:00:03")
    newcomer = udhcpc(lab, "cli3", "eth0", services_lab["work"], "after-restart")
    assert newcomer["ip"] != pool_ip
    # ...while its owner gets it back
    again = udhcpc(lab, "cli1", "eth0", services_lab["work"], "renew-after-restart")
    assert again["ip"] == pool_ip


def test_dns_answers_plan_names_across_the_fabric(services_lab: dict) -> None:
    lab: FabricLab = services_lab["lab"]
    topo = lab.topology.devices
    link = next(i for i in topo["r002-tor1"]["interfaces"] if i["name"] == "up1")["address"].split("/")[0]
    loopback = topo["spine01"]["loopback"].split("/")[0]

    def dig(*args: str) -> list[str]:
        argv = ["dig", "+short", "+time=2", "+tries=2", "@10.0.1.10", *args]
        return lab.netns.exec(DIG_HOST, *argv, check=False).stdout.split()

    assert wait_for(lambda: dig("up1.r002-tor1.lab.compleat.internal", "A") == [link], timeout=30, what="dig")
    assert dig("-x", link) == ["up1.r002-tor1.lab.compleat.internal."]
    assert dig("spine01.lab.compleat.internal", "A") == [loopback]
    assert dig("-x", loopback) == ["spine01.lab.compleat.internal."]
    assert dig("r002-h02.lab.compleat.internal", "A") == ["10.0.2.11"]
