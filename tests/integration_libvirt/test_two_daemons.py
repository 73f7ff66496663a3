# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evacuation between two separate libvirt daemons (QEMU TCG).

Host hv-a is a libvirtd of its own (conftest.py ``second_libvirtd``: own mount namespace, config,
state, cache, logs and sockets, URI ``qemu+unix:///system?socket=...``); host hv-b is the suite's
libvirtd (``qemu:///system``). hv-a "dies" (its guest's QEMU killed, then its libvirtd with
SIGKILL), the instance is evacuated to hv-b, hv-a comes back on the same state and its stale
definition is cleaned. Every check of where a domain is goes through ``virsh -c URI``.

The template has no operating system: SeaBIOS finds nothing to boot and the domain keeps running.

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cloudlib import seed_meta, virsh, wait_for

from ansible_collections.compleat.cloud.plugins.modules import (
    evacuate,
    hypervisor,
    instance,
    volume,
)

pytestmark = pytest.mark.libvirt


def uuids(uri: str) -> set[str]:
    """UUIDs of every domain (running or not) the daemon at ``uri`` knows."""
    return set(virsh(uri, "list", "--all", "--uuid").stdout.split())


def domstate(uri: str, name: str) -> str:
    return virsh(uri, "domstate", name).stdout.strip()


def dominfo(uri: str, name: str) -> dict[str, str]:
    out = virsh(uri, "dominfo", name).stdout
    pairs = (line.partition(":") for line in out.splitlines())
    return {key.strip(): value.strip() for key, _sep, value in pairs if value}


def domain_facts(uri: str, name: str) -> dict:
    """MACs, disk target -> source and our metadata from ``virsh dumpxml`` (the live definition)."""
    root = ET.fromstring(virsh(uri, "dumpxml", name).stdout)
    disks = {}
    for disk in root.iter("disk"):
        source = disk.find("source")
        if source is not None:
            disks[disk.find("target").get("dev")] = source.get("file") or source.get("dev")
    meta = {}
    for el in root.iter():
        if el.tag.split("}")[-1] in ("instance-id", "host") and el.text:
            meta[el.tag.split("}")[-1]] = el.text
    return {"macs": [m.get("address") for m in root.iter("mac")], "disks": disks, "metadata": meta}


def test_evacuate_between_two_daemons(two_hosts, second_libvirtd):
    c, daemon_a = two_hosts, second_libvirtd
    uri_a, uri_b = c.uri_a, c.uri_b

    # two daemons: different processes, different mount namespaces, different domain lists
    pid_a = daemon_a.pid
    assert os.path.basename(os.readlink(f"/proc/{pid_a}/exe")) == "libvirtd"
    assert os.readlink(f"/proc/{pid_a}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    pid_b = int(Path("/run/libvirtd.pid").read_text())
    assert pid_b != pid_a and os.readlink(f"/proc/{pid_b}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    assert virsh(uri_a, "list", "--all", "--name").stdout.split() == []  # a fresh daemon
    assert virsh(uri_a, "pool-list", "--name").stdout.split() == [c.tag]
    assert c.tag not in virsh(uri_b, "pool-list", "--all", "--name").stdout.split()

    vm = c.name("vm")
    vol = c(volume, name=c.name("data"), size_gb=1, pool=c.tag, host="hv-a")["volume"]
    c(
        instance,
        name=vm,
        template="tpl",
        offering="tiny",
        tenant="acme",
        host="hv-a",
        networks=[{"type": "user"}],
        state="stopped",
    )
    c(volume, name=c.name("data"), instance=vm, state="attached")
    before = c(instance, name=vm, state="running")["instance"]
    assert before["host"] == "hv-a"
    assert before["uuid"] in uuids(uri_a) and before["uuid"] not in uuids(uri_b)
    assert domstate(uri_a, vm) == "running"
    facts_a = domain_facts(uri_a, vm)
    assert facts_a["metadata"] == {"instance-id": before["instance_id"], "host": "hv-a"}
    assert facts_a["disks"]["vdb"] == vol["path"]
    (mac,) = facts_a["macs"]
    qemu_a = daemon_a.qemu_pids()[vm]

    # hv-a dies: its guest's QEMU first (daemon A notices and cleans up), then daemon A itself
    os.kill(qemu_a, signal.SIGKILL)
    wait_for("daemon A to see its guest die", lambda: domstate(uri_a, vm).startswith("shut off"))
    daemon_a.stop(signal.SIGKILL)
    assert virsh(uri_a, "version", check=False).returncode != 0
    assert virsh(uri_b, "version", check=False).returncode == 0  # daemon B did not notice
    assert os.path.exists(f"/proc/{pid_b}")

    res = c(evacuate, host="hv-a", expect_failure=True)
    assert "not fenced" in res["msg"]
    c(hypervisor, name="hv-a", host_state="fenced")
    plan = c(evacuate, host="hv-a", check=True)
    assert [(m["instance"], m["to"]) for m in plan["evacuated"]] == [(vm, "hv-b")]
    res = c(evacuate, host="hv-a", fence_method="mark")  # verify_dead: hv-a's socket refuses
    (moved,) = res["evacuated"]
    assert moved["to"] == "hv-b" and moved["instance_id"] == before["instance_id"]
    assert moved["volumes"] == [c.name("data")] and moved["state"] == "running"

    # the real client on daemon B: same UUID, MAC, instance-id and volume, running
    info = dominfo(uri_b, vm)
    assert info["UUID"] == before["uuid"] and info["State"] == "running"
    facts_b = domain_facts(uri_b, vm)
    assert facts_b["macs"] == [mac]
    assert facts_b["metadata"] == {"instance-id": before["instance_id"], "host": "hv-b"}
    assert facts_b["disks"]["vdb"] == vol["path"]
    assert facts_b["disks"]["vda"] == str(c.dir / "hv-b" / f"{vm}.qcow2") != before["root_disk"]
    seeds = [p for t, p in facts_b["disks"].items() if t not in ("vda", "vdb")]
    assert len(seeds) == 1 and seeds[0].startswith(str(c.dir / "hv-b"))
    assert seed_meta(seeds[0])["instance-id"] == before["instance_id"]
    qemu_b = int(Path(f"/run/libvirt/qemu/{vm}.pid").read_text())  # daemon B's QEMU, a new process
    assert qemu_b != qemu_a and b"qemu" in Path(f"/proc/{qemu_b}/cmdline").read_bytes()

    # hv-a comes back on the same state: it still has the old definition (shut off) and files
    daemon_a.start()
    assert daemon_a.pid != pid_a
    assert uuids(uri_a) == {before["uuid"]} and domstate(uri_a, vm) == "shut off"
    assert daemon_a.qemu_pids() == {}  # B's QEMU is not A's
    assert domain_facts(uri_a, vm)["metadata"]["host"] == "hv-a"
    assert os.path.exists(before["root_disk"]) and os.path.exists(before["seed_path"])
    assert c(evacuate, host="hv-a", state="cleaned", check=True)["cleaned"] == [vm]
    assert uuids(uri_a) == {before["uuid"]}  # check mode left it
    res = c(evacuate, host="hv-a", state="cleaned")
    assert res["changed"] and res["cleaned"] == [vm]
    assert uuids(uri_a) == set()
    assert not os.path.exists(before["root_disk"]) and not os.path.exists(before["seed_path"])
    assert domstate(uri_b, vm) == "running" and dominfo(uri_b, vm)["UUID"] == before["uuid"]
    assert not c(evacuate, host="hv-a", state="cleaned")["changed"]

    c(hypervisor, name="hv-a", host_state="up")
    assert c(instance, name=vm, state="absent")["changed"]
    assert before["uuid"] not in uuids(uri_b)
    assert c(volume, name=c.name("data"), state="absent")["changed"]  # through hv-a's pool
    assert not os.path.exists(vol["path"])
