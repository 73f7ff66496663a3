# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tenant network devices made by the libvirt QEMU hook of compleat.cloud.tenant_vtep (real
libvirtd, real kernel).

A private libvirtd (conftest.py ``hooked_libvirtd``) starts with the role's hook file installed in its
own /etc/libvirt/hooks. The modules create a tenant network and an instance on it; nothing in the
modules touches the devices: the hook creates bridge brv<VNI> and VXLAN device vxv<VNI> when libvirt
starts the domain (also by ``virsh start``), removes them when it stops, and refuses the start when it
cannot make them. VNI 16000123 and the VTEP address 192.0.2.123 (TEST-NET-1) clash with nothing; the
devices are deleted at the end even when the test fails.

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import json
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest
from cloudlib import HOOK_MTU, HOOK_VTEP_IP, Cloud, empty_template, virsh

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.modules import image, instance, network, offering

pytestmark = pytest.mark.libvirt

VNI = 16000123
BRIDGE, VXLAN = f"brv{VNI}", f"vxv{VNI}"


def links() -> dict[str, dict]:
    """The host's links by name, as the kernel reports them (``ip -j -d link show``)."""
    argv = ["ip", "-j", "-d", "link", "show"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {link["ifname"]: link for link in json.loads(out)}


def taps(uri: str, name: str) -> list[str]:
    """The host-side devices of the domain's NICs (``<target dev>`` of the live XML)."""
    root = ET.fromstring(virsh(uri, "dumpxml", name).stdout)
    return [t.get("dev") for t in root.iter("target") if t.get("dev", "").startswith("vnet")]


def assert_devices(uri: str, name: str) -> None:
    now = links()
    assert now[BRIDGE]["linkinfo"]["info_kind"] == "bridge" and "UP" in now[BRIDGE]["flags"]
    assert now[BRIDGE]["mtu"] == HOOK_MTU
    vx = now[VXLAN]
    data = vx["linkinfo"]["info_data"]
    assert vx["linkinfo"]["info_kind"] == "vxlan" and "UP" in vx["flags"]
    assert (data["id"], data["local"], data["port"], data["learning"]) == (VNI, HOOK_VTEP_IP, 4789, False)
    assert vx["master"] == BRIDGE and vx["mtu"] == HOOK_MTU
    assert vx["linkinfo"]["info_slave_data"]["learning"] is False
    (tap,) = taps(uri, name)
    assert now[tap]["master"] == BRIDGE  # the instance's NIC is a port of the tenant bridge


def assert_no_devices() -> None:
    now = links()
    assert BRIDGE not in now and VXLAN not in now


@pytest.fixture
def hooked_cloud(hooked_libvirtd, workdir, run_module):
    """hv-a on the hooked daemon, an offering, an empty template, a tenant network with VNI 16000123.
    Afterwards: the test's domains removed, and both devices deleted if anything left them."""
    c = Cloud(run_module, workdir, hooked_libvirtd.uri, f"citvx{uuid.uuid4().hex[:6]}")
    c.add_hosts("hv-a", vcpus=2, ram_mb=2048)
    c(offering, name="tiny", vcpus=1, ram_mb=128)
    (workdir / "secondary").mkdir()
    c(image, name="tpl", path=empty_template(workdir / "secondary" / "tpl.qcow2"), os="none", os_version="0")
    c(network, name="tn", tenant="acme", cidr="10.99.0.0/24", vni=VNI)
    try:
        yield c
    finally:
        try:
            c.cleanup()
            virt.forget_connections()
        finally:
            for dev in (VXLAN, BRIDGE):
                subprocess.run(["ip", "link", "del", "dev", dev], capture_output=True, check=False)


def test_hook_makes_and_removes_the_tenant_devices(hooked_cloud, hooked_libvirtd):
    c, uri = hooked_cloud, hooked_libvirtd.uri
    assert_no_devices()
    vm = c.name("vm")
    res = c(instance, name=vm, template="tpl", offering="tiny", tenant="acme", host="hv-a",
            networks=[{"network": "tn"}], state="running")  # fmt: skip
    (nic,) = res["instance"]["networks"]
    assert nic["source"] == BRIDGE and nic["ip"].startswith("10.99.0.")
    assert_devices(uri, vm)

    # stopped outside the modules: the release hook removes both devices
    virsh(uri, "destroy", vm)
    assert_no_devices()

    # the hook cannot make the devices: libvirt refuses the start, with the hook's reason
    good = hooked_libvirtd.hook_config.read_text()
    hooked_libvirtd.hook_config.write_text(json.dumps({"vtep_ip": "not-an-address", "mtu": HOOK_MTU}))
    proc = virsh(uri, "start", vm, check=False)
    assert proc.returncode != 0 and "compleat tenant network devices" in proc.stderr, proc.stderr
    assert "not-an-address" in proc.stderr
    assert virsh(uri, "domstate", vm).stdout.strip() == "shut off"
    assert_no_devices()

    # started by virsh directly: the prepare hook makes them again
    hooked_libvirtd.hook_config.write_text(good)
    virsh(uri, "start", vm)
    assert_devices(uri, vm)

    # deleted through the module: gone again
    assert c(instance, name=vm, state="absent")["changed"]
    assert vm not in virsh(uri, "list", "--all", "--name").stdout.split()
    assert_no_devices()
