# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Resizing on a real libvirtd with QEMU (TCG): the root overlay and a pool volume grow online while
the domain runs (virDomainBlockResize) and offline while it is stopped (qemu-img resize, and the
pool's virStorageVolResize); shrinking is refused.

The template is an empty 64 MiB qcow2: SeaBIOS finds nothing to boot and keeps the domain running,
which is all an online resize needs. Sizes are read back with the real clients (virsh domblkinfo,
qemu-img info).

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from cloudlib import Cloud, dir_pool, empty_template, virtual_size

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.modules import image, instance, offering, volume

pytestmark = pytest.mark.libvirt
MIB, GIB = 1024**2, 1024**3


def capacity(uri: str, name: str, target: str) -> int:
    """The capacity libvirt reports for a domain's disk (``virsh domblkinfo``)."""
    out = subprocess.run(
        ["virsh", "-c", uri, "domblkinfo", name, target], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(fields["Capacity"].strip())


@pytest.fixture
def cloud(libvirtd, workdir, run_module):
    """Host hv-a, offerings with 0/1/2 GiB disks, a 64 MiB template and a dir pool named after the test."""
    tag = f"rsz{uuid.uuid4().hex[:6]}"
    c = Cloud(run_module, workdir, libvirtd, tag)
    pool = dir_pool(libvirtd, tag, workdir / "pool")
    c.add_hosts("hv-a")
    for name, disk_gb in (("d0", 0), ("d1", 1), ("d2", 2)):
        c(offering, name=name, vcpus=1, ram_mb=128, disk_gb=disk_gb)
    c(image, name="tpl", path=empty_template(workdir / "tpl.qcow2"), os="none", os_version="0")
    try:
        yield c
    finally:
        c.cleanup(pool)


def test_root_disk_grows_online_then_offline_and_never_shrinks(cloud):
    c = cloud
    vm = f"{c.tag}-vm"
    res = c(instance, name=vm, template="tpl", offering="d0", host="hv-a", state="running")
    root = res["instance"]["root_disk"]
    dom = virt.connect(c.uri).lookupByName(vm)
    domain_id = dom.ID()
    assert virtual_size(root) == 64 * MIB and capacity(c.uri, vm, "vda") == 64 * MIB

    res = c(instance, check=True, name=vm, offering="d1")
    assert f"grow root disk {root} from 64 MiB to 1 GiB (online)" in res["actions"]
    assert virtual_size(root) == 64 * MIB

    res = c(instance, name=vm, offering="d1")
    assert res["changed"] and f"grow root disk {root} from 64 MiB to 1 GiB (online)" in res["actions"]
    assert capacity(c.uri, vm, "vda") == GIB and virtual_size(root) == GIB
    assert dom.isActive() and dom.ID() == domain_id  # the guest kept running: grown online
    assert not c(instance, name=vm, offering="d1")["changed"]

    res = c(instance, name=vm, offering="d0", expect_failure=True)
    assert f"instance {vm}" in res["msg"] and "is 1 GiB; 64 MiB was asked" in res["msg"]
    assert "disk_gb >= 1" in res["hint"]

    c(instance, name=vm, state="stopped", stop_timeout=1)
    res = c(instance, name=vm, offering="d2")
    assert f"grow root disk {root} from 1 GiB to 2 GiB (offline)" in res["actions"]
    assert virtual_size(root) == 2 * GIB
    c(instance, name=vm, state="running")
    assert capacity(c.uri, vm, "vda") == 2 * GIB
    c(instance, name=vm, state="absent")


def test_pool_volume_grows_offline_then_online(cloud):
    c = cloud
    vm, data = f"{c.tag}-vm", f"{c.tag}-data"
    path = c(volume, name=data, size_gb=1, pool=c.tag, host="hv-a")["volume"]["path"]
    res = c(volume, name=data, size_gb=2)
    assert res["actions"] == ["grow from 1 GiB to 2 GiB (offline)"] and virtual_size(path) == 2 * GIB

    c(instance, name=vm, template="tpl", offering="d0", host="hv-a", state="running")
    c(volume, name=data, instance=vm, state="attached")
    assert capacity(c.uri, vm, "vdb") == 2 * GIB
    res = c(volume, check=True, name=data, size_gb=3)
    assert res["actions"] == ["grow from 2 GiB to 3 GiB (online)"] and virtual_size(path) == 2 * GIB
    res = c(volume, name=data, size_gb=3)
    assert res["changed"] and res["volume"]["size_gb"] == 3
    assert capacity(c.uri, vm, "vdb") == 3 * GIB and virtual_size(path) == 3 * GIB
    res = c(volume, name=data, size_gb=1, expect_failure=True)
    assert "shrinking" in res["msg"] and "size_gb >= 3" in res["hint"]
    c(instance, name=vm, state="absent")
    c(volume, name=data, state="absent")
