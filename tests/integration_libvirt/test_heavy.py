# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virtio-net multiqueue on a real libvirtd with QEMU (TCG): an offering with ``nic_queues: 2``
gives the running guest's NIC two queue pairs.

The template is an empty 64 MiB qcow2 (no OS, so nothing inside the guest can run ``ethtool -l``):
the evidence is what libvirt and QEMU report for the running domain: the live XML's
``<driver queues='2'/>``, the tap backend QEMU was given (one file descriptor per queue) and the
multiqueue virtio-net device (``mq`` on, 2 * queues + 2 MSI-X vectors) on QEMU's command line.
The NIC sits on an isolated libvirt network (a bridge with tap ports) the test creates and removes.

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import itertools
import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cloudlib import Cloud, empty_template, virsh

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.modules import image, instance, offering

pytestmark = pytest.mark.libvirt


@pytest.fixture
def cloud(libvirtd, workdir, run_module):
    """Host hv-a, an isolated network named after the test, a 64 MiB template, multiqueue offerings."""
    tag = f"hvy{uuid.uuid4().hex[:6]}"
    c = Cloud(run_module, workdir, libvirtd, tag)
    conn = virt.connect(libvirtd)
    net = conn.networkDefineXML(f"<network><name>{tag}</name><bridge name='br{tag}'/></network>")
    try:
        net.create()
        c.add_hosts("hv-a")
        c(offering, name="mq2", vcpus=2, ram_mb=128, nic_queues=2)
        c(offering, name="auto1", vcpus=1, ram_mb=128)  # nic_queues 0: one per vCPU
        c(image, name="tpl", path=empty_template(workdir / "tpl.qcow2"), os="none", os_version="0")
        yield c
    finally:
        c.cleanup()
        if net.isActive():
            net.destroy()
        net.undefine()


def qemu_argv(name: str) -> list[str]:
    """The running QEMU's command line (libvirt writes its PID to /run/libvirt/qemu/NAME.pid)."""
    pid = Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip()
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def json_args(argv: list[str], flag: str) -> list[dict]:
    """The JSON values given to ``flag`` (libvirt 9 passes -netdev and -device as JSON)."""
    return [json.loads(v) for f, v in itertools.pairwise(argv) if f == flag and v.startswith("{")]


def nic_backend(argv: list[str]) -> tuple[dict, dict]:
    """(the tap -netdev, the virtio-net -device) of the domain's first NIC."""
    netdev = next(n for n in json_args(argv, "-netdev") if n.get("type") == "tap")
    device = next(d for d in json_args(argv, "-device") if d.get("netdev") == netdev["id"])
    return netdev, device


def test_nic_queues_reach_the_running_guest(cloud):
    c = cloud
    vm = c.name("mq")
    nets = [{"type": "network", "source": c.tag}]
    res = c(instance, name=vm, template="tpl", offering="mq2", host="hv-a", state="running", networks=nets)
    assert res["instance"]["nic_queues"] == 2
    assert not c(instance, name=vm, state="running")["changed"]

    live = ET.fromstring(virsh(c.uri, "dumpxml", vm).stdout)
    (iface,) = live.findall("devices/interface")
    assert iface.find("driver").get("queues") == "2" and iface.find("model").get("type") == "virtio"
    netdev, device = nic_backend(qemu_argv(vm))
    assert len(str(netdev["fds"]).split(":")) == 2, netdev  # one tap queue per queue pair
    assert device["driver"] == "virtio-net-pci" and device.get("mq") in (True, "on"), device
    assert device.get("vectors") == 6, device  # 2 * queues + 2

    single = c.name("one")
    c(instance, name=single, template="tpl", offering="auto1", host="hv-a", state="running", networks=nets)
    (iface,) = ET.fromstring(virsh(c.uri, "dumpxml", single).stdout).findall("devices/interface")
    assert iface.find("driver") is None or iface.find("driver").get("queues") is None
    netdev, device = nic_backend(qemu_argv(single))
    assert ":" not in str(netdev.get("fds", netdev.get("fd", ""))) and not device.get("mq"), (netdev, device)
    for name in (vm, single):
        c(instance, name=name, state="absent", stop_timeout=1)
