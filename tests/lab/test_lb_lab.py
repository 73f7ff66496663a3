# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The load-balancer farm, for real: anycast VIPs from two LB nodes over the lab fabric.

``inventories/lab/fabric.yml`` with BGP-to-host (lab/lb_lab.py), rendered by the engine: 2 spines,
3 racks.  LB nodes r001-h01 (lb1) and r002-h01 (lb2) run HAProxy and the lb_node role's announcer;
backends b1 (r001-h02), b2 (r002-h02) and b3 (r003-h02) answer their name; the client is r003-h01.
The balancer is created, changed and applied by the real ``compleat.cloud.load_balancer`` module
(run as Ansible runs it: the module file with an args file) against a SQLite store in which the
backends are instances of tenant acme.

Run (root): ``.venv/bin/python -m pytest -q -p no:cacheprovider -m lab tests/lab/test_lb_lab.py -rP``
(``-rP`` prints the measured figures; they are indicative on a shared machine).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from collection_path import collections_dir
from labtestlib import FABRICS, ROOT, RUN_PREFIX, lab_skip_reason  # sets sys.path

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all
from lab.lb_lab import HAPROXY, LbLab, lb_fabric_doc
from lab.netns import wait_for

pytestmark = pytest.mark.lab

POOL, VIP, PORT, BACKEND_PORT = "10.96.0.0/24", "10.96.0.10", 80, 8080
LB_HOSTS = {"lb1": "r001-h01", "lb2": "r002-h01"}
BACKENDS = {"b1": "r001-h02", "b2": "r002-h02", "b3": "r003-h02"}
CLIENT_HOST, CLIENT_TOR, SPINE = "r003-h01", "r003-tor1", "spine01"
MODULE = ROOT / "plugins" / "modules" / "load_balancer.py"


class Farm:
    """The lab, the store and a runner of the real module."""

    def __init__(self, lab: LbLab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.store = str(tmp / "cloud.db")
        self.figures: dict[str, float] = {}
        self.runs = 0

    def module(self, **args: Any) -> dict[str, Any]:
        """Run compleat.cloud.load_balancer with ``args`` (plus store and nodes); its result."""
        self.runs += 1
        full = {"store": self.store, "nodes": [self.lab.node_spec(n) for n in LB_HOSTS], **args}
        path = self.tmp / f"args-{self.runs}.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": full}), encoding="utf-8")
        env = {"PYTHONPATH": str(collections_dir()), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        proc = subprocess.run(
            [sys.executable, str(MODULE), str(path)],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        result = json.loads(proc.stdout)
        assert not result.get("failed"), result
        return result

    def network(self, **args: Any) -> dict[str, Any]:
        """Run compleat.cloud.network (the VIP pool)."""
        path = self.tmp / "network.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"store": self.store, **args}}), encoding="utf-8")
        env = {"PYTHONPATH": str(collections_dir()), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        module = ROOT / "plugins" / "modules" / "network.py"
        proc = subprocess.run(
            [sys.executable, str(module), str(path)], check=False, capture_output=True, text=True, env=env
        )
        result = json.loads(proc.stdout)
        assert not result.get("failed"), result
        return result


def _add_instances(store_path: str, lab: LbLab) -> None:
    """The backends as instances of tenant acme, with their mgmt address as their NIC's address."""
    sys.path.insert(0, str(collections_dir()))
    from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store

    with Store.open(store_path) as store, store.transaction(write=True):
        offering = store.insert("offerings", {"name": "small", "vcpus": 1, "ram_mb": 512})
        for name, host in BACKENDS.items():
            store.insert(
                "instances",
                {
                    "uuid": f"uuid-{name}",
                    "name": name,
                    "instance_id": f"iid-{name}",
                    "tenant": "acme",
                    "offering_id": offering["id"],
                    "vcpus": 1,
                    "ram_mb": 512,
                    "state": "running",
                    "domain_type": "qemu",
                    "networks": [{"network": "mgmt", "ip": f"{lab.address(host)}/24"}],
                },
            )


def _members(*names: str) -> list[dict[str, Any]]:
    return [{"instance": name} for name in names]


BALANCER = {
    "name": "web",
    "tenant": "acme",
    "vip_network": "vips",
    "vip_network_tenant": "ops",
    "vip": VIP,
    "listeners": [{"port": PORT, "protocol": "http", "backend_port": BACKEND_PORT}],
    "health_check": {"type": "http", "path": "/", "interval": 500, "rise": 1, "fall": 2},
    "drain_timeout": 10,
}


def _origins_are(lab: LbLab, device: str, hosts: set[str]) -> bool:
    return lab.vip_origins(device, VIP) == hosts


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """The fabric, two LB nodes announcing the VIP of balancer acme/web, three backends."""
    reason = lab_skip_reason() or (None if shutil.which(HAPROXY) else "HAProxy is not installed")
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("fabric-lb")
    render_all(build_plan(load_fabric(lb_fabric_doc(yaml.safe_load(FABRICS["bgp"].read_text()), POOL))), out)
    lab = LbLab(out, prefix=f"{RUN_PREFIX}l-", lb_hosts=LB_HOSTS, vips=[VIP])
    farm = Farm(lab, tmp_path_factory.mktemp("lb-store"))
    try:
        farm.figures["fabric_up_s"] = lab.up(timeout=150)
        for name, host in BACKENDS.items():
            lab.start_backend(host, name, BACKEND_PORT)
        for node in LB_HOSTS:
            lab.start_haproxy(node)
        farm.network(name="vips", tenant="ops", cidr=POOL, vni=4000)
        _add_instances(farm.store, lab)
        created = farm.module(**BALANCER, members=_members("b1", "b2"))
        assert created["changed"] and created["load_balancer"]["vip"] == VIP
        assert all(node["reloaded"] for node in created["nodes"]), created["nodes"]
        started = time.monotonic()
        for node in LB_HOSTS:
            lab.start_announcer(node)
        wait_for(
            lambda: _origins_are(lab, SPINE, set(LB_HOSTS.values())),
            timeout=60,
            interval=0.2,
            what="the VIP from both LB nodes at spine01",
        )
        farm.figures["vip_announced_s"] = time.monotonic() - started
    except BaseException:
        print(lab.logs())
        lab.down()
        raise
    try:
        yield farm
    finally:
        print("LB lab figures: " + ", ".join(f"{key} {value:.2f}" for key, value in farm.figures.items()))
        lab.down()


# ------------------------------------------------------------------------------------ ECMP
def test_two_racks_serve_one_vip_by_ecmp(farm: Farm) -> None:
    lab = farm.lab
    assert lab.announced("lb1", VIP) and lab.announced("lb2", VIP)
    assert len(lab.vip_paths(CLIENT_TOR, VIP)) == 2  # both spines
    assert lab.vip_origins(SPINE, VIP) == {"r001-h01", "r002-h01"}
    run = lab.client(CLIENT_HOST, VIP, PORT, count=300, rate=100)
    per_node, per_backend = run.count(2), run.count(3)
    print(f"300 flows from {CLIENT_HOST}: per LB node {per_node}, per backend {per_backend}")
    assert not run.failed, run.failed[:5]
    assert per_node.get("lb1", 0) > 0 and per_node.get("lb2", 0) > 0
    assert per_backend.get("b1", 0) > 0 and per_backend.get("b2", 0) > 0  # rack 1 and rack 2
    assert set(per_backend) == {"b1", "b2"}


# ------------------------------------------------------------------------------------ members
def test_add_and_remove_a_member_without_failed_requests(farm: Farm) -> None:
    """b3 joins and leaves through the runtime API while a client sends 100 requests/s."""
    lab = farm.lab
    client = lab.client_start(CLIENT_HOST, VIP, PORT, count=900, rate=100)
    time.sleep(1.5)
    added = farm.module(**BALANCER, members=_members("b1", "b2", "b3"))
    time.sleep(3)
    removed = farm.module(**BALANCER, members=_members("b1", "b2"))
    run = lab.client_result(client)
    per_backend = run.count(3)
    print(
        f"member change under load: {len(run.requests)} requests in {run.elapsed:.1f}s, "
        f"failed {len(run.failed)}, per backend {per_backend}"
    )
    for result in (added, removed):
        assert result["changed"] and not any(node["reloaded"] for node in result["nodes"]), result["nodes"]
    add_cmds = added["nodes"][0]["commands"]
    assert any(c.startswith("add server lbb.acme.web.80/b3 ") for c in add_cmds), add_cmds
    assert "del server lbb.acme.web.80/b3" in removed["nodes"][0]["commands"]
    assert not run.failed, run.failed[:10]
    assert per_backend.get("b3", 0) > 0  # the new member took traffic
    for node in LB_HOSTS:
        state = (lab.node_dir(node) / "balancers.d" / "balancers.cfg").read_text()
        assert "server b3 " not in state
    again = farm.module(**BALANCER, members=_members("b1", "b2"))
    assert not again["changed"], again


def test_member_drain(farm: Farm) -> None:
    """A drained member takes no new requests; ready again, it does."""
    lab = farm.lab
    farm.module(**BALANCER, members=[{"instance": "b1", "state": "drain"}, {"instance": "b2"}])
    run = lab.client(CLIENT_HOST, VIP, PORT, count=100, rate=100)
    assert not run.failed and set(run.count(3)) == {"b2"}, run.count(3)
    farm.module(**BALANCER, members=_members("b1", "b2"))
    run = lab.client(CLIENT_HOST, VIP, PORT, count=100, rate=100)
    assert not run.failed and set(run.count(3)) == {"b1", "b2"}, run.count(3)


# ------------------------------------------------------------------------------------ LB nodes
def test_drain_a_whole_lb_node(farm: Farm) -> None:
    """The drain file makes lb1 withdraw the VIP; every flow then goes to lb2; undrained it is back."""
    lab = farm.lab
    lab.drain("lb1", on=True)
    wait_for(lambda: _origins_are(lab, SPINE, {"r002-h01"}), timeout=30, interval=0.1, what="lb1 withdrawn")
    assert not lab.announced("lb1", VIP) and lab.announced("lb2", VIP)
    run = lab.client(CLIENT_HOST, VIP, PORT, count=100, rate=100)
    assert not run.failed and set(run.count(2)) == {"lb2"}, run.count(2)
    lab.drain("lb1", on=False)
    wait_for(
        lambda: _origins_are(lab, SPINE, {"r001-h01", "r002-h01"}), timeout=30, interval=0.1, what="lb1 back"
    )


def test_killed_haproxy_withdraws_the_vip(farm: Farm) -> None:
    """lb1's HAProxy dies under a 100 requests/s loop: its announcer withdraws the VIP, lb2 serves."""
    lab = farm.lab
    client = lab.client_start(CLIENT_HOST, VIP, PORT, count=800, rate=100)
    started = time.monotonic()
    time.sleep(2)
    killed = lab.kill_haproxy("lb1")
    wait_for(
        lambda: not lab.announced("lb1", VIP), timeout=30, interval=0.05, what="lb1's network statement gone"
    )
    withdrawn_node = time.monotonic()
    wait_for(
        lambda: _origins_are(lab, SPINE, {"r002-h01"}), timeout=30, interval=0.05, what="spine01 via lb2 only"
    )
    withdrawn_spine = time.monotonic()
    wait_for(
        lambda: len(lab.vip_paths(CLIENT_TOR, VIP)) > 0, timeout=30, interval=0.05, what="VIP route at r003"
    )
    run = lab.client_result(client)
    kill_at = killed - started
    failures = [r[0] for r in run.failed]
    gap = (max(failures) - min(failures)) if failures else 0.0
    after = [r for r in run.requests if r[0] > kill_at and r[1]]
    farm.figures.update(
        kill_to_withdraw_node_s=withdrawn_node - killed,
        kill_to_withdraw_spine_s=withdrawn_spine - killed,
        failed_requests=len(failures),
        failure_window_s=gap,
    )
    print(
        f"HAProxy on lb1 killed at ~{kill_at:.2f}s of the loop: network statement gone after "
        f"{withdrawn_node - killed:.2f}s, spine01 via lb2 only after {withdrawn_spine - killed:.2f}s; "
        f"{len(failures)} of {len(run.requests)} requests failed, failure window {gap:.2f}s; "
        f"{len(after)} answered after the kill"
    )
    assert after and {r[2] for r in after} >= {"lb2"}
    steady = lab.client(CLIENT_HOST, VIP, PORT, count=100, rate=100)
    assert not steady.failed and set(steady.count(2)) == {"lb2"}, steady.count(2)
    # HAProxy back (same configuration files): lb1 announces again
    lab.start_haproxy("lb1")
    wait_for(
        lambda: _origins_are(lab, SPINE, {"r001-h01", "r002-h01"}), timeout=30, interval=0.1, what="lb1 back"
    )
