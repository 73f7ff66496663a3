# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small cloud for module tests: a store, a template, hosts on libvirt's test driver."""

from __future__ import annotations

import multiprocessing
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import NoCapacity

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f user@test"
# An instance on hv1 (no name): what the tests of hosts (health, evacuation, rebalancing) place.
VM_ON_HV1 = {
    "template": "tpl",
    "offering": "small",
    "tenant": "acme",
    "host": "hv1",
    "networks": [{"source": "default"}],
    "ssh_keys": ["ops"],
}
# The iSCSI volume of vm1 in those tests.
ISCSI_VM1 = {
    "backend": "iscsi",
    "iscsi_portal": "192.0.2.5",
    "iscsi_iqn": "iqn.2026-01.cloud.compleat:s1.vm1",
}


def vm1_moved_to_hv2(instance_id: str) -> dict[str, Any]:
    """The evacuation entry of vm1 (running, volume ``data``) recreated from hv1 on hv2."""
    return {
        "instance": "vm1",
        "from": "hv1",
        "to": "hv2",
        "instance_id": instance_id,
        "state": "running",
        "volumes": ["data"],
    }


@dataclass
class Cloud:
    """Paths and a runner bound to one store."""

    tmp: Path
    store: str
    run_module: object

    def args(self, **kw):
        return {"store": self.store, **kw}

    def run(self, module, check=False, diff=False, **kw):
        return self.run_module(module, self.args(**kw), check=check, diff=diff)

    def ok(self, module, check=False, diff=False, **kw):
        failed, result = self.run(module, check=check, diff=diff, **kw)
        assert not failed, result
        return result

    def fails(self, module, check=False, **kw):
        failed, result = self.run(module, check=check, **kw)
        assert failed, result
        return result

    def add_host(self, name, uri, **kw):
        """Register another test-driver host with its own storage dir (ratio 1: capacity is exact)."""
        from ansible_collections.compleat.cloud.plugins.modules import hypervisor

        (self.tmp / name).mkdir()
        args = {"hypervisor": "test", "cpu_ratio": 1.0, "storage_dir": str(self.tmp / name), **kw}
        return self.ok(hypervisor, name=name, uri=uri, **args)


def make_template(path: Path, size: str = "64M") -> str:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return str(path)


def new_row(name: str, offering_id: int, **kw: Any) -> dict[str, Any]:
    """The columns of a new instance row that placement inserts (``kw`` adds or overrides)."""
    return {
        "uuid": f"uuid-{name}",
        "name": name,
        "instance_id": f"iid-{name}",
        "tenant": "t",
        "offering_id": offering_id,
        "state": "building",
        "domain_type": "qemu",
        **kw,
    }


def race_attempt(
    results: Any,
    name: str,
    store: Any,
    attempt: Callable[[], Any],
    lost: Callable[[NoCapacity], Any] = lambda _exc: None,
) -> None:
    """A racer's one try: ``results`` gets (name, "won", what ``attempt`` returns, start time),
    (name, "no capacity", ``lost(exc)``, start) or (name, "error ...", None, start); ``store`` is
    closed in every case."""
    started = time.monotonic()
    try:
        results.put((name, "won", attempt(), started))
    except NoCapacity as exc:
        results.put((name, "no capacity", lost(exc), started))
    except Exception as exc:  # report, don't hang the parent
        results.put((name, f"error {exc!r}", None, started))
    finally:
        store.close()


def race_two_processes(racer: Callable[..., None], target_open: Any) -> list[tuple]:
    """Run ``racer(target_open, name, barrier, results)`` in two forked processes ("left" and
    "right") that meet at a barrier before they compete; each puts one outcome tuple on
    ``results``. The outcomes, sorted by their second item ("no capacity" before "won")."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=racer, args=(target_open, n, barrier, results)) for n in ("left", "right")]
    for proc in procs:
        proc.start()
    outcome = sorted((results.get(timeout=60) for _proc in procs), key=lambda o: o[1])
    for proc in procs:
        proc.join(timeout=30)
    return outcome


def place_one_by_one(placement: Any, hosts: list, requests: list) -> tuple[list, list]:
    """The reference for ``place_many``: ``select_host`` per request, each choice applied to the
    chosen host's state before the next request. (names or None, final host states)."""
    states = list(hosts)
    names = []
    for req in requests:
        try:
            chosen = placement.select_host(states, req)
        except placement.NoCapacity:
            names.append(None)
            continue
        i = next(i for i, h in enumerate(states) if h.name == chosen.name)
        states[i] = states[i].with_allocation(req)
        names.append(chosen.name)
    return names, states


def slow_reads(module: Any, name: str, seconds: float = 0.4) -> None:
    """Make ``module.name`` (the read a racer does before it writes) sleep ``seconds`` after it
    returns: it widens the read->write window, so without the store's lock both racers would win.
    Called inside a forked racer only (the patch dies with the process)."""
    original = getattr(module, name)

    def slow(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        time.sleep(seconds)
        return value

    setattr(module, name, slow)
