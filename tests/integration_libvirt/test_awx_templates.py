# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloud job templates of awx/controller.yml, run as AWX runs them (ansible-runner, a private
data dir, survey answers as AWX types them, the store named by the environment as the
"compleat.cloud metadata store" credential names it) against two real libvirt daemons:
instance create -> inventory source -> health check -> hv-a dies -> health check fails -> evacuate
(the fence command kills hv-a's libvirtd) -> inventory source -> instance delete.

Run (as root):  .venv/bin/python -m pytest -q -p no:cacheprovider -m libvirt tests/integration_libvirt
"""

from __future__ import annotations

import os
import signal

import awxjob
import pytest
import yaml
from cloudlib import virsh, wait_for

from ansible_collections.compleat.cloud.plugins.modules import cloud_info, hypervisor

pytestmark = pytest.mark.libvirt
ROOT = awxjob.ROOT
INSTANCES_SOURCE = ROOT / "inventories" / "awx" / "instances.cloud.yml"


def groups_of(host: str, env: dict[str, str]) -> set[str]:
    """Groups of ``host`` in the instances inventory source, read with ansible-runner as AWX's
    inventory update reads it."""
    out = awxjob.inventory_update(INSTANCES_SOURCE, env)
    return {g for g, v in out.items() if isinstance(v, dict) and host in v.get("hosts", [])}


def test_cloud_job_templates_through_ansible_runner(two_hosts, second_libvirtd):
    c = two_hosts
    vm = c.name("web")
    env = {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "COMPLEAT_CLOUD_STORE": c.store,  # what the credential injects (a DSN in AWX)
    }
    jobs = c.dir / "jobs"

    def job(name: str, answers: dict, **kw) -> awxjob.Job:
        pdd = jobs / name.rsplit(maxsplit=1)[-1]
        return awxjob.launch(name, answers, private_data_dir=pdd, envvars=env, **kw)

    # instance create: on hv-a (hv-b is in maintenance, so placement has one choice)
    c(hypervisor, name="hv-b", maintenance=True)
    create = {
        "cloud_instance_name": vm,
        "cloud_instance_offering": "tiny",
        "cloud_instance_template": "tpl",
        "cloud_instance_tenant": "acme",
        "cloud_instance_keys": "",
    }
    created = job("compleat.cloud instance create", create)
    awxjob.assert_successful(created)
    (res,) = created.results("Instance is running")
    before = res["instance"]
    assert before["host"] == "hv-a" and res["changed"]
    assert virsh(c.uri_a, "domstate", vm).stdout.strip() == "running"
    again = job("compleat.cloud instance create", create)
    awxjob.assert_successful(again)
    assert again.stats()["changed"] == {}, again.stdout[-2000:]
    c(hypervisor, name="hv-b", maintenance=False)

    # the inventory source lists it on hv-a, running, for tenant acme
    groups = groups_of(vm, env)
    assert {"host_hv_a", "tenant_acme", "offering_tiny", "state_running"} <= groups, groups

    # health check (answers as strings and numbers, as the survey types them): all agree
    healthy = job(
        "compleat.cloud health check", {"cloud_health_timeout": "5", "cloud_health_evacuate": "false"}
    )
    awxjob.assert_successful(healthy)

    # hv-a dies: its guest's QEMU first; the health check job fails naming the instance
    os.kill(second_libvirtd.qemu_pids()[vm], signal.SIGKILL)
    wait_for(
        "daemon A to see its guest die", lambda: virsh(c.uri_a, "domstate", vm).stdout.startswith("shut off")
    )
    sick = job("compleat.cloud health check", {"cloud_health_timeout": "5"})
    assert (sick.status, sick.rc) == ("failed", 2), sick.stdout[-2000:]
    (failed,) = sick.results("No host is dead and every instance agrees with the store")
    assert vm in failed["msg"], failed["msg"]

    # evacuate: the fence command powers hv-a off (kills its libvirtd), then hv-a is verified dead
    answers = {
        "cloud_evacuate_host": "hv-a",
        "cloud_evacuate_fence_method": "command",
        "cloud_evacuate_fence_command": f"kill -KILL {second_libvirtd.pid}",
        "cloud_evacuate_verify_dead": "true",
    }
    evacuated = job("compleat.cloud evacuate", answers)
    awxjob.assert_successful(evacuated)
    (res,) = evacuated.results("Instances run elsewhere than hv-a")
    (moved,) = res["evacuated"]
    assert (moved["instance"], moved["to"], moved["instance_id"]) == (vm, "hv-b", before["instance_id"])
    assert res["fenced"] == "command"
    assert virsh(c.uri_a, "version", check=False).returncode != 0  # the fence did kill it
    info = virsh(c.uri_b, "dominfo", vm).stdout
    assert before["uuid"] in info and "running" in info
    assert {"host_hv_b", "state_running"} <= groups_of(vm, env)

    # instance delete: the survey's integer answer arrives as a number
    deleted = job(
        "compleat.cloud instance delete", {"cloud_instance_name": vm, "cloud_instance_stop_timeout": "1"}
    )
    awxjob.assert_successful(deleted)
    extra = yaml.safe_load((jobs / "delete" / "env" / "extravars").read_text())
    assert extra == {
        "cloud_instance_state": "absent",
        "cloud_instance_name": vm,
        "cloud_instance_stop_timeout": 1,
    }
    assert vm not in virsh(c.uri_b, "list", "--all", "--name").stdout.split()
    assert c(cloud_info, gather=["instances"])["instances"] == []
    assert groups_of(vm, env) == set()
