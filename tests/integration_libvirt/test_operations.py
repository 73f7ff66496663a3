# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Operating the cloud on a real libvirtd (QEMU TCG), read back with virsh:

* a refused name and a create that libvirt refuses leave nothing behind (rollback);
* a given MAC that another instance has is refused;
* drift made with virsh behind the store's back is seen by the health check and repaired by
  compleat.cloud.reconcile (check mode first);
* compleat.cloud.host_health probes the daemon;
* compleat.cloud.rebalance drains a host put in maintenance: a cold move of a running instance
  (same UUID, MAC and instance-id; files moved to the target's storage_dir).

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET

import pytest
from cloudlib import Cloud, empty_template, seed_meta, virsh

from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import (
    cloud_info,
    host_health,
    hypervisor,
    image,
    instance,
    offering,
    rebalance,
    reconcile,
)

pytestmark = pytest.mark.libvirt


@pytest.fixture
def cloud(libvirtd, workdir, run_module):
    """Hosts hv-a and hv-b (separate storage dirs on the suite's libvirtd), offering tiny, template tpl."""
    c = Cloud(run_module, workdir, libvirtd, f"ops{uuid.uuid4().hex[:6]}")
    c.add_hosts("hv-a", "hv-b")
    c(offering, name="tiny", vcpus=1, ram_mb=128)
    c(image, name="tpl", path=empty_template(workdir / "tpl.qcow2"), os="none", os_version="0")
    try:
        yield c
    finally:
        c.cleanup()


def files(c: Cloud, host: str) -> list[str]:
    return sorted(os.listdir(c.dir / host))


def rows(c: Cloud) -> list[str]:
    with Store.open(c.store) as s:
        return [r["name"] for r in s.select("instances")]


def domblklist(c: Cloud, name: str, inactive: bool = False) -> dict[str, str]:
    args = ["domblklist", name, "--details"] + (["--inactive"] if inactive else [])
    out = virsh(c.uri, *args).stdout.splitlines()[2:]
    return {parts[2]: parts[3] for parts in (line.split() for line in out) if len(parts) == 4}


def macs(c: Cloud, name: str) -> list[str]:
    return [m.get("address") for m in ET.fromstring(virsh(c.uri, "dumpxml", name).stdout).iter("mac")]


def test_bad_and_failed_creates_leave_nothing(cloud):
    c = cloud
    res = c(instance, name="../x", template="tpl", offering="tiny", host="hv-a", expect_failure=True)
    assert "../x" in res["msg"] and files(c, "hv-a") == [] and rows(c) == []

    # a foreign domain holds the name: libvirt-side refusal after overlay and seed were written
    clash = c.name("clash")
    xml = c.dir / "clash.xml"
    xml.write_text(
        f"<domain type='qemu'><name>{clash}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os></domain>"
    )
    virsh(c.uri, "define", str(xml))
    res = c(instance, name=clash, template="tpl", offering="tiny", host="hv-a", expect_failure=True)
    assert "already has a domain named" in res["msg"] and res["rolled_back"] is True
    assert files(c, "hv-a") == [] and rows(c) == []
    assert virsh(c.uri, "domstate", clash).returncode == 0  # the foreign domain is untouched

    vm = c.name("vm")
    mac = "52:54:00:0a:0b:0c"
    c(
        instance,
        name=vm,
        template="tpl",
        offering="tiny",
        host="hv-a",
        networks=[{"type": "user", "mac": mac}],
    )
    res = c(
        instance,
        name=c.name("twin"),
        template="tpl",
        offering="tiny",
        networks=[{"type": "user", "mac": mac}],
        expect_failure=True,
    )
    assert f"used by instance {vm}" in res["msg"] and rows(c) == [vm]


def test_reconcile_repairs_drift_made_with_virsh(cloud):
    c = cloud
    vm = c.name("vm")
    c(instance, name=vm, template="tpl", offering="tiny", host="hv-a", state="running")
    intruder = empty_template(c.dir / "intruder.qcow2", "16M")
    virsh(c.uri, "attach-disk", vm, intruder, "vdc", "--subdriver", "qcow2", "--config")
    virsh(c.uri, "setmaxmem", vm, "262144", "--config")
    assert "vdc" in domblklist(c, vm, inactive=True)

    health = c(cloud_info, gather=["hosts"], check_health=True)["health"]
    entry = health["instances"][vm]
    assert health["mismatched"] == [vm] and entry["drift"]["disks"]["extra"] == ["vdc"]
    assert set(entry["drift"]["config"]) >= {"disks", "memory_kib"}

    check = c(reconcile, check=True)
    assert check["changed"] and "vdc" in domblklist(c, vm, inactive=True)
    res = c(reconcile)
    assert res["changed"] and res["instances"][0]["repaired"]
    assert "vdc" not in domblklist(c, vm, inactive=True)
    assert virsh(c.uri, "dominfo", vm).stdout.count("131072 KiB") >= 1  # max memory back to the offering
    assert virsh(c.uri, "domstate", vm).stdout.strip() == "running"
    assert not c(reconcile)["changed"]
    assert c(cloud_info, gather=["hosts"], check_health=True)["health"]["mismatched"] == []

    virsh(c.uri, "destroy", vm)  # the guest went away behind the store's back
    res = c(reconcile, power="enforce")
    assert res["instances"][0]["power"] == {"store": "running", "libvirt": "stopped"}
    assert virsh(c.uri, "domstate", vm).stdout.strip() == "running"

    probes = c(host_health)
    assert not probes["changed"] and all(h["reachable"] for h in probes["hosts"])


def test_rebalance_drains_a_host_in_maintenance(cloud):
    c = cloud
    vm = c.name("vm")
    inst = c(instance, name=vm, template="tpl", offering="tiny", host="hv-a", state="running")["instance"]
    c(hypervisor, name="hv-a", maintenance=True)
    plan = c(rebalance, check=True)
    assert [(m["instance"], m["from"], m["to"]) for m in plan["moves"]] == [(vm, "hv-a", "hv-b")]
    assert virsh(c.uri, "domstate", vm).stdout.strip() == "running" and files(c, "hv-b") == []

    res = c(rebalance, stop_timeout=1)  # the OS-less guest ignores ACPI: forced off after 1 s
    assert res["changed"] and res["moves"][0]["state"] == "running"
    moved = c(instance, name=vm)["instance"]
    assert moved["host"] == "hv-b" and moved["uuid"] == inst["uuid"]
    assert moved["root_disk"].startswith(str(c.dir / "hv-b"))
    assert virsh(c.uri, "domuuid", vm).stdout.strip() == inst["uuid"]
    assert virsh(c.uri, "domstate", vm).stdout.strip() == "running"
    assert macs(c, vm) == [n["mac"] for n in inst["networks"]]
    assert seed_meta(moved["seed_path"])["instance-id"] == inst["instance_id"]
    assert domblklist(c, vm)["vda"] == moved["root_disk"]
    assert files(c, "hv-a") == []
    assert not c(rebalance)["changed"]
