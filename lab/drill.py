# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``make lab-drill``: lose the hypervisor of the lab's tenant instance and get the instance back.

On a lab built by ``make lab`` (the instance ``web1`` on r002-h02, its iSCSI volume, the tenant
probe in rack 1), in order, with the time of each step:

1. baseline: the instance as the store has it (host, instance-id, MAC, address, volume), and from
   the probe in rack 1 a ping and the instance's ``/cgi-bin/id`` and ``/cgi-bin/volume`` answers;
2. **kill**: the hypervisor VM's QEMU gets SIGKILL (no shutdown, like a power cut);
3. **detected**: ``compleat.cloud.host_health`` (on the surviving hypervisor) until the host is down;
   and **alert firing**: the lab's Prometheus fires HostDown for it;
4. **fenced**: the lab's "BMC" (``lab/vm.py``) confirms the VM is off, then the host is marked
   fenced (``compleat.cloud.hypervisor host_state=fenced``);
5. **recreated**: ``compleat.cloud.evacuate`` defines and starts the instance on the other host;
6. **reachable**: the first answered ping from the probe, then the same instance-id from the guest,
   the volume's first line unchanged (written before the drill, read back by the guest's new boot),
   the same MAC and address in the store, and the instance's A and PTR records on the lab's DNS
   server (``dig`` from rack 3) still giving its name and address.

Every check that fails stops the drill with a message; the timeline is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tenant_probe, vm
from .netns import Netns, wait_for

ROOT = Path(__file__).resolve().parent.parent
INVENTORIES = ("inventories/lab/hosts.yml", "build/lab/vms.yml")


class DrillError(RuntimeError):
    """A drill step whose check failed."""


@dataclass
class Timeline:
    """Named instants, printed relative to the first."""

    marks: list[tuple[str, float]] = field(default_factory=list)

    def mark(self, name: str) -> float:
        now = time.monotonic()
        self.marks.append((name, now))
        print(f"--- {name} (+{now - self.marks[0][1]:.1f} s)", flush=True)
        return now

    def lines(self) -> list[str]:
        start = self.marks[0][1]
        return [f"  {name:<12} +{at - start:6.1f} s" for name, at in self.marks]


def playbook(step: str, runner: str, **extra: str) -> list[str]:
    """Run one step of playbooks/lab_drill.yml on ``runner``; return its LAB-DRILL-* payload lines."""
    argv = ["ansible-playbook"]
    for inv in INVENTORIES:
        argv += ["-i", str(ROOT / inv)]
    argv += ["playbooks/lab_drill.yml", "-e", f"lab_drill_step={step}", "-e", f"lab_drill_runner={runner}"]
    for key, value in extra.items():
        argv += ["-e", f"{key}={value}"]
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DrillError(f"lab_drill.yml step {step} failed (rc={proc.returncode}): {_failure(proc.stdout)}")
    return _messages(proc.stdout)


def _messages(stdout: str) -> list[str]:
    """The debug messages of a json-callback run."""
    try:
        doc = json.loads(stdout[stdout.index("{") :])
    except (ValueError, json.JSONDecodeError):
        return []
    out: list[str] = []
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            for result in task.get("hosts", {}).values():
                msg = result.get("msg")
                if isinstance(msg, str) and msg.startswith("LAB-DRILL-"):
                    out.append(msg)
    return out


def _failure(stdout: str) -> str:
    try:
        doc = json.loads(stdout[stdout.index("{") :])
    except (ValueError, json.JSONDecodeError):
        return stdout[-2000:]
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed") or result.get("unreachable"):
                    return f"{task['task']['name']} on {host}: {result.get('msg', '')}"
    return "no failed task in the output"


def payload(lines: list[str], tag: str) -> Any:
    for line in lines:
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1 :])
    raise DrillError(f"{tag} missing from the playbook output")


def instance_state(runner: str, name: str) -> dict[str, Any]:
    """Host, instance-id, MACs, addresses and volumes of instance ``name`` from the store."""
    data = payload(playbook("state", runner), "LAB-DRILL-STATE")
    inst = next((i for i in data["instances"] if i["name"] == name), None)
    if inst is None:
        raise DrillError(f"instance {name} is not in the store")
    return {
        "host": inst.get("host"),
        "state": inst.get("state"),
        "instance_id": inst.get("instance_id"),
        "macs": sorted(a["mac"] for a in data["addresses"] if a.get("instance") == name),
        "addresses": sorted(a["address"] for a in data["addresses"] if a.get("instance") == name),
        "volumes": sorted(
            v["name"] for v in data["volumes"] if name in (v.get("attached_to"), v.get("instance"))
        ),
    }


def guest(net: Netns, address: str, path: str) -> str:
    body = tenant_probe.get(net, f"http://{address}{path}", 240.0)
    if body is None:
        raise DrillError(f"the guest at {address} does not answer {path} from the probe")
    return body


PROMETHEUS_QUERY = """
import json, sys, urllib.request
data = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/alerts", timeout=5))
print(json.dumps(data["data"]["alerts"]))
"""


def is_instance_of(labels: dict[str, str], host: str, address: str) -> bool:
    """Whether alert ``labels`` are about ``host``: its inventory name (the generated targets'
    ``instance`` label) or its monitoring address (``address:port``)."""
    instance = labels.get("instance", "")
    return instance == host or instance.split(":")[0] == address


def dns_answer(net: Netns, node: str, server: str, name: str) -> str:
    """What ``dig +short`` from namespace ``node`` gets for ``name`` (A, or PTR when ``name`` is an
    address) from ``server``; empty when nothing answers."""
    query = ["-x", name] if name.replace(".", "").isdigit() else [name]
    proc = net.exec(node, "dig", "+short", "+time=2", "+tries=3", f"@{server}", *query, check=False)
    return proc.stdout.strip()


def firing_alerts(net: Netns, monitoring_ns: str) -> list[dict[str, Any]]:
    """Alerts of the lab's Prometheus (in ``monitoring_ns``) that are firing."""
    proc = net.exec(monitoring_ns, sys.executable, "-c", PROMETHEUS_QUERY, check=False)
    if proc.returncode != 0:
        return []
    return [a for a in json.loads(proc.stdout or "[]") if a.get("state") == "firing"]


def kill_vm(name: str) -> int:
    state = vm.load_state(name)
    pid = vm.qemu_pid(state)
    if pid is None:
        raise DrillError(f"lab VM {name} is not running")
    os.kill(pid, signal.SIGKILL)
    return pid


def baseline(net: Netns, args: argparse.Namespace) -> tuple[dict[str, Any], str, str, str]:
    """The instance before the drill: store state, its address, what the guest says, its volume."""
    before = instance_state(args.survivor, args.instance)
    print(f"before: {json.dumps(before)}")
    if before["host"] != args.host:
        raise DrillError(f"{args.instance} runs on {before['host']}, not on {args.host}: nothing to drill")
    if not before["addresses"]:
        raise DrillError(f"{args.instance} has no tenant address")
    address = before["addresses"][0]
    if not tenant_probe.ping(net, address, 1, 120.0):
        raise DrillError(f"{args.instance} ({address}) does not answer the probe before the drill")
    ident = guest(net, address, "/cgi-bin/id")
    data = guest(net, address, "/cgi-bin/volume")
    print(f"guest says: {ident}; volume: {data}")
    if before["instance_id"] not in ident:
        raise DrillError(f"the guest says {ident!r}, the store {before['instance_id']}")
    if not data.startswith("COMPLEAT-DATA "):
        raise DrillError(f"the volume holds no data written by the guest: {data!r}")
    return before, address, ident, data


def lose_host(args: argparse.Namespace, tl: Timeline) -> None:
    """Kill the hypervisor VM, wait for host_health to mark it down, fence it, evacuate it."""
    tl.mark("killed")
    pid = kill_vm(args.vm)
    print(f"SIGKILL to {args.vm} (QEMU pid {pid})")

    def detected() -> bool:
        health = payload(playbook("detect", args.survivor), "LAB-DRILL-HEALTH")
        hosts = {h["name"]: h for h in health.get("hosts", [])}
        print(f"  host_health: {args.host} {hosts.get(args.host, {}).get('state')}")
        return hosts.get(args.host, {}).get("state") == "down"

    wait_for(detected, timeout=300.0, interval=1.0, what=f"host_health marking {args.host} down")
    tl.mark("detected")
    net = Netns(args.prefix, keep=True)

    def alerted() -> bool:
        alerts = [
            a
            for a in firing_alerts(net, args.monitoring)
            if a["labels"].get("alertname") == "HostDown"
            and is_instance_of(a["labels"], args.vm, args.address)
        ]
        for alert in alerts:
            print(f"  Prometheus: {alert['labels']['alertname']} firing for {alert['labels']['instance']}")
        return bool(alerts)

    wait_for(alerted, timeout=180.0, interval=2.0, what=f"Prometheus HostDown firing for {args.address}")
    tl.mark("alert firing")
    vm.stop(args.vm, timeout=10.0)  # the lab's BMC: make sure it is off (it is: killed)
    if vm.qemu_pid(vm.load_state(args.vm)) is not None:
        raise DrillError(f"{args.vm} is still running after the fence")
    playbook("fence", args.survivor, lab_drill_host=args.host)
    tl.mark("fenced")
    evac = payload(playbook("evacuate", args.survivor, lab_drill_host=args.host), "LAB-DRILL-EVACUATE")
    print(f"evacuate: {json.dumps(evac.get('moved', evac.get('instances', evac)))[:400]}")
    tl.mark("recreated")


def compare(before: dict[str, Any], after: dict[str, Any], seen: tuple[str, str, str, str]) -> list[str]:
    """What changed that must not have: ``seen`` is (identity, data) before and after."""
    ident, data, ident_after, data_after = seen
    problems = [f"still on {before['host']}"] if after["host"] == before["host"] else []
    problems += [
        f"{key} changed: {before[key]} -> {after[key]}"
        for key in ("instance_id", "macs", "addresses", "volumes")
        if after[key] != before[key]
    ]
    if ident_after != ident:
        problems.append(f"the guest identifies as {ident_after!r}, before {ident!r}")
    if data_after != data:
        problems.append(f"the volume's data changed: {data!r} -> {data_after!r}")
    return problems


def run(args: argparse.Namespace) -> list[str]:
    net = Netns(args.prefix, keep=True)
    tl = Timeline()
    before, address, ident, data = baseline(net, args)
    lose_host(args, tl)
    if not tenant_probe.ping(net, address, 1, 600.0):
        raise DrillError(f"{args.instance} ({address}) does not answer after the evacuation")
    tl.mark("reachable")
    after = instance_state(args.survivor, args.instance)
    print(f"after: {json.dumps(after)}")
    ident_after = guest(net, address, "/cgi-bin/id")
    data_after = guest(net, address, "/cgi-bin/volume")
    print(f"guest says: {ident_after}; volume: {data_after}")
    problems = compare(before, after, (ident, data, ident_after, data_after))
    fqdn = f"{args.instance}.{args.zone}"
    names = (dns_answer(net, args.client, args.dns, fqdn), dns_answer(net, args.client, args.dns, address))
    print(f"dig @{args.dns} {fqdn}: {names[0] or '(no answer)'}; -x {address}: {names[1] or '(no answer)'}")
    if names != (address, f"{fqdn}."):
        problems.append(f"DNS: {fqdn} -> {names[0]!r}, {address} -> {names[1]!r}")
    if problems:
        raise DrillError("; ".join(problems))
    return [
        f"drill passed: {args.instance} moved {args.host} -> {after['host']} keeping instance-id "
        f"{after['instance_id']}, MAC {', '.join(after['macs'])}, address {address} and volume "
        f"{', '.join(after['volumes'])} (data read back intact)",
        "timeline:",
        *tl.lines(),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.drill", description=__doc__.split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--prefix", default="ccf-lab-")
    parser.add_argument("--instance", default="web1")
    parser.add_argument("--host", default="r002-h02", help="the hypervisor (store name) to lose")
    parser.add_argument("--vm", default="lab-r002-h02", help="the lab VM that is that hypervisor")
    parser.add_argument("--survivor", default="lab-r003-h02", help="where the cloud modules run")
    parser.add_argument("--address", default="10.0.2.11", help="the lost host's monitoring address")
    parser.add_argument("--monitoring", default="r002-h01", help="namespace (plan host) of Prometheus")
    parser.add_argument("--dns", default="10.0.1.10", help="the DNS server the cloud keeps names on")
    parser.add_argument("--zone", default="cloud.lab.compleat.internal", help="the instances' zone")
    parser.add_argument("--client", default="r003-h01", help="namespace (plan host) asking the DNS server")
    parser.add_argument("--state", action="store_true", help="only print the instance as the store has it")
    args = parser.parse_args(argv)
    if args.state:
        try:
            print(json.dumps(instance_state(args.survivor, args.instance)))
        except DrillError as exc:
            print(f"state: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        lines = run(args)
    except (DrillError, TimeoutError) as exc:
        print(f"drill failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
