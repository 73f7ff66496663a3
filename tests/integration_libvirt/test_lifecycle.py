# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Instance lifecycle and evacuation on a real libvirtd with QEMU (TCG).

The guest is a 1 GiB template with 32 MiB of data and no operating system: SeaBIOS finds nothing
to boot and keeps the domain running, which is all the lifecycle needs (and, like a minbase
guest, it ignores ACPI shutdown, so stop exercises the forced fallback).

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import cloudlib
import pytest
from cloudlib import dir_pool, seed_meta

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lifecycle, virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import (
    evacuate,
    hypervisor,
    image,
    instance,
    offering,
    snapshot,
    snapshot_info,
    volume,
)

pytestmark = pytest.mark.libvirt
ROOT = Path(__file__).resolve().parents[2]
KIB, MIB, GIB = 1024, 1024**2, 1024**3
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f cit@test"


def qemu_info(path: str) -> dict:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def make_template(path: Path) -> str:
    """1 GiB virtual, 32 MiB of real data: the template an overlay must not copy."""
    raw = path.with_suffix(".raw")
    subprocess.run(["dd", "if=/dev/urandom", f"of={raw}", "bs=1M", "count=32", "status=none"], check=True)
    os.truncate(raw, GIB)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True)
    raw.unlink()
    return str(path)


class Cloud(cloudlib.Cloud):
    """The modules against one store, plus the checks that store and libvirt agree."""

    def agree(self, name: str) -> dict:
        """Store row, domain definition and power state agree; returns the row."""
        with Store.open(self.store) as s:
            inst = s.get("instances", name=name)
            host = s.get("hosts", id=inst["host_id"])
            spec = lifecycle.domain_spec(s, inst, host)
        dom = virt.lookup(virt.connect(host["uri"]), inst["uuid"])
        assert dom is not None, f"{name} is not defined on {host['name']}"
        assert virt.owned_fields(virt.inactive_xml(dom)) == virt.spec_fields(spec)
        assert virt.power_state(dom) == inst["state"], (virt.power_state(dom), inst["state"])
        return inst


@pytest.fixture
def cloud(libvirtd, workdir, run_module):
    tag = f"cit{uuid.uuid4().hex[:6]}"
    c = Cloud(run_module, workdir, libvirtd, tag)
    pool = dir_pool(libvirtd, tag, workdir / "pool")
    c.add_hosts("hv-a", "hv-b", cpu_ratio=1.0)
    c(offering, name="tiny", vcpus=1, ram_mb=256)
    (workdir / "secondary").mkdir()
    c(image, name="tpl", path=make_template(workdir / "secondary" / "tpl.qcow2"), os="none", os_version="0")
    try:
        yield c
    finally:
        c.cleanup(pool)


def playbook(c: Cloud, tasks: str) -> dict:
    """Run tasks through ansible-playbook (the real AnsiballZ path); returns the registered results."""
    out = c.dir / "results.json"
    book = c.dir / "play.yml"
    book.write_text(f"""---
- name: Integration step
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: {sys.executable}
  tasks:
{tasks}
    - name: Results are saved
      ansible.builtin.copy:
        content: "{{{{ {{'check': check, 'real': real, 'again': again}} | to_json }}}}"
        dest: {out}
        mode: "0600"
""")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(book)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_instance_lifecycle(cloud):
    c = cloud
    vm = c.name("vm1")
    args = (
        f"name: {vm}\n        template: tpl\n        offering: tiny\n        tenant: acme\n"
        f"        host: hv-a\n        store: {c.store}\n        networks: [{{type: user}}]\n"
        f"        ssh_authorized_keys: ['{KEY}']"
    )
    results = playbook(
        c,
        f"""    - name: Check mode predicts the creation
      compleat.cloud.instance:
        {args}
      check_mode: true
      register: check
    - name: Instance is created from the template overlay
      compleat.cloud.instance:
        {args}
      register: real
    - name: Second run changes nothing
      compleat.cloud.instance:
        {args}
      register: again
""",
    )
    assert results["check"]["changed"] and results["real"]["changed"] and not results["again"]["changed"]
    inst = c.agree(vm)
    assert inst["state"] == "stopped"
    info = qemu_info(inst["root_disk"])
    assert info["backing-filename"] == str(c.dir / "secondary" / "tpl.qcow2")
    assert info["backing-filename-format"] == "qcow2" and info["virtual-size"] == GIB
    overlay_bytes = info["actual-size"]
    assert overlay_bytes < MIB, f"overlay is {overlay_bytes} bytes: not an overlay"
    assert qemu_info(str(c.dir / "secondary" / "tpl.qcow2"))["actual-size"] > 30 * MIB
    print(f"\noverlay actual size: {overlay_bytes / KIB:.0f} KiB over a 1 GiB template")

    res = c(instance, name=vm, state="running")
    assert res["changed"] and res["console"]["pty"], res["console"]
    c.agree(vm)
    assert not c(instance, name=vm, state="running")["changed"]

    res = c(instance, name=vm, state="stopped", stop_timeout=3)
    assert res["power_action"] == "forced"  # no OS: ACPI is ignored, so the fallback forces it off
    c.agree(vm)

    # snapshot while stopped, start, revert: back to stopped
    assert c(snapshot, instance=vm, name="off")["changed"]
    c(instance, name=vm, state="running")
    res = c(snapshot, instance=vm, name="off", state="reverted")
    assert res["changed"]
    assert c.agree(vm)["state"] == "stopped"
    # snapshot of the running domain (memory included), stop, revert: running again
    c(instance, name=vm, state="running")
    assert c(snapshot, instance=vm, name="live")["changed"]
    assert c(snapshot_info, instance=vm)["libvirt_snapshots"] == ["live", "off"]
    c(instance, name=vm, state="stopped", stop_timeout=1)
    c(snapshot, instance=vm, name="live", state="reverted")
    assert c.agree(vm)["state"] == "running"
    assert c(snapshot, instance=vm, name="off", state="absent")["changed"]

    # volume: create in the pool, attach live+config, detach
    res = c(volume, name=c.name("data"), size_gb=1, pool=c.tag, host="hv-a")
    assert res["changed"] and Path(res["volume"]["path"]).exists()
    res = c(volume, name=c.name("data"), instance=vm, state="attached")
    assert res["attach_mode"] == "live+config" and res["volume"]["target_dev"] == "vdb"
    dom = virt.connect(c.uri).lookupByName(vm)
    live = {d["target"] for d in virt.owned_fields(dom.XMLDesc(0))["disks"]}
    assert "vdb" in live
    c.agree(vm)
    assert not c(volume, name=c.name("data"), instance=vm, state="attached")["changed"]
    res = c(volume, name=c.name("data"), state="detached")
    assert res["changed"] and isinstance(res["live_detach_pending"], bool)
    c.agree(vm)  # the definition no longer has vdb, like the store
    assert "vdb" not in {d["target"] for d in virt.owned_fields(virt.inactive_xml(dom))["disks"]}

    # delete
    res = c(instance, name=vm, state="absent")
    assert res["changed"]
    assert virt.lookup(virt.connect(c.uri), inst["uuid"]) is None
    assert not os.path.exists(inst["root_disk"]) and not os.path.exists(inst["seed_path"])
    with Store.open(c.store) as s:
        assert s.get("instances", name=vm) is None
        assert s.get("volumes", name=c.name("data"))["attached_to"] is None
    assert c(volume, name=c.name("data"), state="absent")["changed"]


def test_evacuate_dead_host(cloud):
    c = cloud
    vm = c.name("evac")
    c(volume, name=c.name("keep"), size_gb=1, pool=c.tag, host="hv-a")
    c(instance, name=vm, template="tpl", offering="tiny", tenant="acme", host="hv-a", state="stopped")
    c(volume, name=c.name("keep"), instance=vm, state="attached")
    before = c(instance, name=vm, state="running")["instance"]
    assert before["host"] == "hv-a"
    c.agree(vm)
    vol_path = c(volume, name=c.name("keep"))["volume"]["path"]

    # hv-a "dies": its guest is gone; without a fence the stack refuses
    virt.connect(c.uri).lookupByName(vm).destroy()
    res = c(evacuate, host="hv-a", expect_failure=True)
    assert "not fenced" in res["msg"]
    c(hypervisor, name="hv-a", host_state="fenced")
    plan = c(evacuate, host="hv-a", check=True)
    assert plan["evacuated"][0]["to"] == "hv-b"
    res = c(evacuate, host="hv-a")
    (moved,) = res["evacuated"]
    assert moved["to"] == "hv-b" and moved["instance_id"] == before["instance_id"]
    assert moved["volumes"] == [c.name("keep")] and moved["state"] == "running"

    inst = c.agree(vm)
    with Store.open(c.store) as s:
        assert s.get("hosts", id=inst["host_id"])["name"] == "hv-b"
    dom = virt.connect(c.uri).lookupByUUIDString(before["uuid"])
    fields = virt.owned_fields(virt.inactive_xml(dom))
    assert fields["metadata"]["host"] == "hv-b" and fields["metadata"]["instance-id"] == before["instance_id"]
    disks = {d["target"]: d["source"] for d in fields["disks"]}
    assert disks["vdb"] == vol_path  # same volume
    assert disks["vda"].startswith(str(c.dir / "hv-b"))
    assert qemu_info(disks["vda"])["backing-filename"].endswith("tpl.qcow2")
    assert seed_meta(inst["seed_path"])["instance-id"] == before["instance_id"]  # same instance-id

    # hv-a returns: the old files go, the new definition (same libvirtd here) stays
    res = c(evacuate, host="hv-a", state="cleaned")
    assert res["cleaned"] == [vm]
    assert not os.path.exists(before["root_disk"]) and dom.isActive()
    c(hypervisor, name="hv-a", host_state="up")
    c.agree(vm)
    c(instance, name=vm, state="absent")
    c(volume, name=c.name("keep"), state="absent")
