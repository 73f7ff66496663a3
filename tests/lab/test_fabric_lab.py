# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The generated fabric, routed for real: BGP and OSPF labs in network namespaces with FRR.

Run (root): ``.venv/bin/pytest -m lab tests/lab -rP`` (``-rP`` also prints the route paths of
passing tests).  Each protocol's lab is brought up once (module-scoped fixture) from the rendered
``inventories/lab/fabric*.yml`` and torn down whatever happens.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import awxjob
import pytest
from labtestlib import rack_prefixes, show_paths, tors, uplinks

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent
from lab.fabric_lab import FabricLab
from lab.netns import wait_for

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------ helpers
def run_validate(lab: FabricLab, tmp_path: Path, *, inventory: bool = True) -> tuple[int, dict, str]:
    """Run the AWX job template "compleat.cloud fabric validate" (playbooks/fabric_validate.yml)
    against the lab as AWX runs it (ansible-runner, survey answers as strings); return (rc, report,
    output).

    With ``inventory`` the lab's written inventory is used; without, the playbook finds the lab
    routers itself from topology.json and the namespace prefix.
    """
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    launch_vars = {"fabric_validate_report": str(report)}
    if not inventory:
        launch_vars["fabric_validate_lab_prefix"] = lab.prefix
    job = awxjob.launch(
        "compleat.cloud fabric validate",
        {"fabric_out": str(lab.topology.outdir), "fabric_validate_fail": "true"},
        private_data_dir=tmp_path / "job",
        inventory=lab.write_inventory(tmp_path / "lab-inventory.json") if inventory else None,
        envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        launch_vars=launch_vars,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return job.rc, data, job.stdout


# ------------------------------------------------------------------------------------ tests
def test_sessions_up(fabric_lab: FabricLab) -> None:
    lab = fabric_lab
    for name in lab.nodes:
        dev = lab.topology.devices[name]
        if lab.topology.routing == "bgp":
            summary = lab.nodes[name].json("show bgp vrf default ipv4 unicast summary json")
            peers = fabric_intent.bgp_peers(summary)
            expected = {n["address"] or n["interface"] for n in dev["bgp_neighbors"]}
            assert set(peers) == expected, name
            assert all(state == "Established" for state in peers.values()), (name, peers)
        else:
            full = fabric_intent.ospf_full_counts(lab.nodes[name].json("show ip ospf neighbor json"))
            links = sum(1 for i in dev["interfaces"] if i["kind"] in ("uplink", "downlink"))
            assert sum(full.values()) == links, (name, full)


def test_every_tor_reaches_every_other_rack_over_all_uplinks(fabric_lab: FabricLab) -> None:
    lab = fabric_lab
    racks = sorted({n["rack"] for n in lab.topology.networks})
    assert len(racks) >= 3 and len(lab.topology.devices) >= 2
    for tor in tors(lab):
        own = lab.topology.devices[tor]["rack"]
        count = len(uplinks(lab, tor))
        observed = lab.observe(tor)
        for rack in racks:
            if rack == own:
                continue
            for prefix in rack_prefixes(lab, rack):
                rib = fabric_intent.rib_nexthops(observed["routes"], prefix)
                fib = fabric_intent.fib_nexthops(observed["kernel_routes"], prefix)
                assert len(rib) == count, f"{tor} {prefix}: rib {rib}, expected {count} uplinks"
                assert len(fib) == count, f"{tor} {prefix}: fib {fib}, expected {count} uplinks"
    assert lab.differences() == []


def test_hosts_in_different_racks_ping(fabric_lab: FabricLab) -> None:
    lab = fabric_lab
    hosts = lab.topology.hosts()
    by_rack: dict[int, str] = {}
    for host in hosts:
        by_rack.setdefault(lab.topology.devices[host]["rack"], host)
    failures = []
    for src in hosts:
        for rack, dst in by_rack.items():
            if rack != lab.topology.devices[src]["rack"]:
                address = lab.host_address(dst, "mgmt")
                if not lab.ping(src, address):
                    failures.append(f"{src} -> {dst} {address}")
    assert not failures, failures
    # jumbo frames end to end on the 9000-byte storage network (DF set, no fragmentation)
    first, second = by_rack[min(by_rack)], by_rack[max(by_rack)]
    target = lab.host_address(second, "storage")
    jumbo = ("ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do", "-s", "8972", target)
    proc = lab.netns.exec(first, *jumbo, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_validate_playbook_finds_no_difference(fabric_lab: FabricLab, tmp_path: Path) -> None:
    # A BFD session starved of CPU on a loaded 2-core CI box can flap between the tests: wait
    # (bounded) until the fabric matches intent, then check that the playbook says so too.
    fabric_lab.wait_converged(timeout=60)
    rc, report, output = run_validate(fabric_lab, tmp_path, inventory=False)
    assert rc == 0, output[-4000:]
    assert report["ok"] is True and report["differences"] == []
    assert sorted(report["routers"]) == sorted(fabric_lab.nodes)


def test_uplink_failure_and_restore(fabric_lab: FabricLab, tmp_path: Path) -> None:
    lab = fabric_lab
    tor = max(tors(lab), key=lambda name: (len(uplinks(lab, name)), name))
    ports = uplinks(lab, tor)
    failed = ports[-1]
    count = len(ports)
    own = lab.topology.devices[tor]["rack"]
    remote = next(r for r in sorted({n["rack"] for n in lab.topology.networks}) if r != own)
    watched = rack_prefixes(lab, remote)
    src = next(h for h in lab.topology.hosts() if lab.topology.devices[h]["rack"] == own)
    dst = next(h for h in lab.topology.hosts() if lab.topology.devices[h]["rack"] == remote)
    dst_address = lab.host_address(dst, "mgmt")

    before = show_paths(lab, "before", tor, watched)
    assert all(len(p["rib"]) == count and len(p["fib"]) == count for p in before.values())

    def counts_are(expected: int) -> bool:
        observed = lab.observe(tor)
        return all(
            len(fabric_intent.rib_nexthops(observed["routes"], prefix)) == expected
            and len(fabric_intent.fib_nexthops(observed["kernel_routes"], prefix)) == expected
            for prefix in watched
        )

    started = time.monotonic()
    lab.set_link(tor, failed, up=False)
    try:
        wait_for(lambda: counts_are(count - 1), timeout=30, interval=0.05, what=f"{tor}: {count - 1} paths")
        took = time.monotonic() - started
        after = show_paths(lab, f"after {failed} down ({took:.2f}s)", tor, watched)
        for hops in after.values():
            assert not any(hop.endswith(f"%{failed}") for hop in hops["rib"] + hops["fib"]), hops
        assert lab.ping(src, dst_address, count=3), f"{src} -> {dst} {dst_address} after {failed} down"

        diffs = lab.differences()
        path_diffs = [d for d in diffs if d.kind == fabric_intent.KIND_PATHS and d.device == tor]
        assert {d.subject for d in path_diffs} >= set(watched), [str(d) for d in diffs]
        assert all(d.expected == f"{count} paths" for d in path_diffs if d.subject in watched)

        rc, report, output = run_validate(lab, tmp_path)
        print(output[output.find("TASK [Show every difference]") :][:3000])
        assert rc != 0 and report["ok"] is False, output[-3000:]
        reported = {(d["device"], d["kind"], d["subject"]) for d in report["differences"]}
        assert {(tor, "path-count", prefix) for prefix in watched} <= reported
    finally:
        lab.set_link(tor, failed, up=True)

    started = time.monotonic()
    try:
        wait_for(lambda: counts_are(count), timeout=60, interval=0.1, what=f"{tor}: {count} paths again")
    except TimeoutError:
        show_paths(lab, f"{failed} restored, paths did not come back", tor, watched)
        print("\n".join(str(d) for d in lab.differences()))
        print(lab.netns.ip(tor, "addr", "show", failed).stdout)
        raise
    took = time.monotonic() - started
    show_paths(lab, f"after {failed} restored ({took:.2f}s)", tor, watched)
    lab.wait_converged(timeout=60)
    assert lab.ping(src, dst_address, count=2)
