# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Monitoring on the namespace fabric: FRR exporters, Prometheus and the compleat.cloud alerts.

The BGP lab fabric (inventories/lab/fabric.yml) runs in namespaces with its generated FRR configs.
Then, with the Debian binaries the monitoring roles install:

- ``prometheus-frr-exporter`` in every spine and ToR namespace, listening on the device's loopback
  and talking to that namespace's FRR through its vty socket directory
  (``--frr.socket.dir-path``; vtysh, used for BFD, gets ``--vty_socket`` the same way);
- ``prometheus-node-exporter`` in the ToR under test, with only the textfile collector, which
  publishes what ``compleat-fabric-ecmp`` (the router-side ECMP check) writes;
- Prometheus in host r001-h01's namespace, configured exactly as ``monitoring_server`` configures it
  (``prometheus_config``, ``fabric_targets`` and ``alert_rules`` from plugins/filter/monitoring.py),
  with 1 s scrape/evaluation intervals and ``for: 0s``.

Checks, through Prometheus' HTTP API with bounded waits: every generated target (each spine's and
ToR's FRR exporter at its loopback, reached over the fabric) is up and no alert fires; after
``neighbor X shutdown`` on the ToR, ``BgpSessionDown`` fires for that session and, once the ECMP
check has run, ``FabricEcmpBelowIntent`` fires for the ToR; after ``no neighbor X shutdown`` both
resolve.  Everything started here runs inside the lab's namespaces and is stopped with them.

Run (root): ``.venv/bin/pytest -m lab tests/lab/test_bgp_alert.py -rP``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labtestlib import FABRICS, ROOT, RUN_PREFIX, lab_skip_reason, render

from ansible_collections.compleat.cloud.plugins.filter import monitoring as mon
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from lab.fabric_lab import FabricLab
from lab.netns import wait_for

pytestmark = pytest.mark.lab

PREFIX = f"{RUN_PREFIX}m-"
TOR = "r001-tor1"  # 3 uplinks: two to spine01, one to spine02
# Prometheus runs on a host, as in production: its rack address is announced, so every loopback
# answers it (a ToR's own uplink /31 source addresses are not announced and would not be).
PROM_HOST = "r001-h01"
ECMP_SCRIPT = ROOT / "roles" / "monitoring_exporters" / "files" / "compleat_fabric_ecmp.py"
FRR_PORT, NODE_PORT, PROM = 9342, 9100, "127.0.0.1:9090"
BINARIES = ("prometheus", "promtool", "prometheus-frr-exporter", "prometheus-node-exporter", "curl")
WAIT = 90.0


def _skip_reason() -> str | None:
    reason = lab_skip_reason()
    if reason:
        return reason
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        return f"missing {', '.join(missing)} (scripts/packages.d/observability.txt)"
    return None


class Monitoring:
    """The exporters and Prometheus started in the lab's namespaces, and API helpers."""

    def __init__(self, lab: FabricLab, workdir: Path) -> None:
        self.lab = lab
        self.work = workdir
        self.plan = plan_to_dict(build_plan(load_fabric(FABRICS["bgp"])))  # what fabric_plan returns
        self.devices = {dev["name"]: dev for dev in self.plan["devices"]}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.textfiles = workdir / "textfile"
        self.textfiles.mkdir(parents=True, exist_ok=True)

    # -- processes ------------------------------------------------------------------------------
    def spawn(self, node: str, name: str, *argv: str) -> None:
        log = (self.work / f"{node}-{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                ["ip", "netns", "exec", self.lab.netns.ns(node), *argv], stdout=log, stderr=subprocess.STDOUT
            )
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.work.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def loopback(self, device: str) -> str:
        return str(self.devices[device]["loopback"]).split("/", maxsplit=1)[0]

    def start(self) -> None:
        """FRR exporters on every router, node exporter in the ToR under test, Prometheus on a host."""
        routing = self.lab.topology.routing
        for name, node in self.lab.nodes.items():
            if self.devices[name]["role"] not in ("spine", "tor"):
                continue
            sockets = str(node.directory)
            self.spawn(
                name,
                "frr-exporter",
                "prometheus-frr-exporter",
                f"--web.listen-address={self.loopback(name)}:{FRR_PORT}",
                f"--frr.socket.dir-path={sockets}",
                f"--frr.vtysh.options=--vty_socket={sockets}",
                "--no-collector.ospf" if routing == "bgp" else "--no-collector.bgp",
            )
        self.spawn(
            TOR,
            "node-exporter",
            "prometheus-node-exporter",
            f"--web.listen-address={self.loopback(TOR)}:{NODE_PORT}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={self.textfiles}",
        )
        intent = {"device": TOR, "routes": mon.ecmp_intent(self.plan, TOR)}
        (self.work / "ecmp-intent.json").write_text(json.dumps(intent), encoding="utf-8")
        self.run_ecmp_check()

        sd = self.work / "file_sd"
        sd.mkdir(exist_ok=True)
        jobs = {
            "frr": mon.fabric_targets(self.plan, FRR_PORT),
            "node": [{"targets": [f"{self.loopback(TOR)}:{NODE_PORT}"], "labels": {"instance": TOR}}],
        }
        for job, groups in jobs.items():
            (sd / f"{job}.json").write_text(json.dumps(groups), encoding="utf-8")
        rules = self.work / "compleat.rules.yml"
        rules.write_text(
            yaml.safe_dump(
                mon.alert_rules({"host_down_for": "0s", "bgp_down_for": "0s", "ecmp_for": "0s"}),
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        config = self.work / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                mon.prometheus_config(
                    sorted(jobs),
                    {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                        "rule_files": [str(rules)],
                        "sd_dir": str(sd),
                        "self_target": PROM,
                        "self_instance": PROM_HOST,
                    },
                ),
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        for args in (["check", "rules", str(rules)], ["check", "config", str(config)]):
            proc = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
            assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
        self.expected = {("prometheus", PROM_HOST)} | {
            (job, group["labels"]["instance"]) for job, groups in jobs.items() for group in groups
        }
        self.spawn(
            PROM_HOST,
            "prometheus",
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={self.work / 'tsdb'}",
            f"--web.listen-address={PROM}",
            "--storage.tsdb.retention.time=1h",
        )

    def run_ecmp_check(self) -> str:
        """One run of the router-side ECMP check against the ToR namespace's kernel FIB."""
        out = self.textfiles / "compleat_fabric_ecmp.prom"
        subprocess.run(
            [
                sys.executable,
                str(ECMP_SCRIPT),
                "--netns",
                self.lab.netns.ns(TOR),
                "--intent",
                str(self.work / "ecmp-intent.json"),
                "--output",
                str(out),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.read_text(encoding="utf-8")

    # -- Prometheus API -------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        url = f"http://{PROM}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        proc = self.lab.netns.exec(PROM_HOST, "curl", "-sf", "--max-time", "5", url, check=False, timeout=15)
        if proc.returncode != 0:
            return None
        body = json.loads(proc.stdout)
        return body.get("data") if body.get("status") == "success" else None

    def targets(self) -> dict[tuple[str, str], str]:
        data = self.api("targets", state="active") or {}
        return {
            (t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in data.get("activeTargets", [])
        }

    def firing(self, alertname: str) -> list[dict[str, str]]:
        data = self.api("alerts") or {}
        return [
            a["labels"]
            for a in data.get("alerts", [])
            if a["labels"].get("alertname") == alertname and a.get("state") == "firing"
        ]


@pytest.fixture(scope="module")
def monitored_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    """The BGP lab fabric, up, with exporters and Prometheus; everything torn down afterwards."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    out = render(FABRICS["bgp"], tmp_path_factory.mktemp("fabric-bgp-monitoring"))
    lab = FabricLab(out, prefix=PREFIX)
    mon_lab: Monitoring | None = None
    try:
        lab.up(timeout=120)
        mon_lab = Monitoring(lab, tmp_path_factory.mktemp("monitoring"))
        mon_lab.start()
        yield mon_lab
    except BaseException:
        print(lab.logs())
        if mon_lab is not None:
            print(mon_lab.logs())
        raise
    finally:
        if mon_lab is not None:
            mon_lab.stop()
        lab.down()


def test_every_generated_target_is_up_and_nothing_fires(monitored_lab: Monitoring) -> None:
    mon_lab = monitored_lab
    started = time.monotonic()
    try:
        wait_for(
            lambda: (t := mon_lab.targets()).keys() == mon_lab.expected and set(t.values()) == {"up"},
            timeout=WAIT,
            interval=0.5,
            what="every generated target up",
        )
    except TimeoutError:
        print(mon_lab.targets(), mon_lab.logs(), sep="\n")
        raise
    took = time.monotonic() - started
    print(f"{len(mon_lab.expected)} targets up after {took:.1f}s: {sorted(mon_lab.expected)}")
    rules = mon_lab.api("rules", type="alert") or {}
    names = sorted(r["name"] for g in rules.get("groups", []) for r in g["rules"])
    assert names == mon.alert_names(mon.alert_rules())
    # the fabric is converged: no session down, no prefix below intent (the ECMP check said so)
    assert "compleat_fabric_ecmp_prefixes_below_intent 0\n" in mon_lab.run_ecmp_check()
    time.sleep(3)  # a few evaluation rounds
    assert mon_lab.firing("BgpSessionDown") == []
    assert mon_lab.firing("FabricEcmpBelowIntent") == []


def test_bgp_session_shutdown_fires_its_alerts(monitored_lab: Monitoring) -> None:
    mon_lab = monitored_lab
    lab = mon_lab.lab
    device = mon_lab.devices[TOR]
    neighbor = device["bgp_neighbors"][0]  # uplink 1, to spine01 (which stays reachable via uplink 3)
    peer = neighbor["address"] or neighbor["interface"]
    node = lab.nodes[TOR]
    shutdown = ["conf t", f"router bgp {device['asn']}", f"neighbor {peer} shutdown"]
    node.vtysh(*shutdown)
    try:
        started = time.monotonic()
        firing = wait_for(
            lambda: [
                a
                for a in mon_lab.firing("BgpSessionDown")
                if a.get("instance") == TOR and a.get("peer") == peer
            ],
            timeout=WAIT,
            interval=0.5,
            what=f"BgpSessionDown for {TOR} -> {peer}",
        )
        print(f"BgpSessionDown firing after {time.monotonic() - started:.1f}s: {firing}")

        def ecmp_alert() -> list[dict[str, str]]:
            mon_lab.run_ecmp_check()
            return [a for a in mon_lab.firing("FabricEcmpBelowIntent") if a.get("instance") == TOR]

        firing = wait_for(ecmp_alert, timeout=WAIT, interval=1.0, what=f"FabricEcmpBelowIntent for {TOR}")
        print(f"FabricEcmpBelowIntent firing after {time.monotonic() - started:.1f}s: {firing}")
        print(mon_lab.run_ecmp_check())
    finally:
        node.vtysh("conf t", f"router bgp {device['asn']}", f"no neighbor {peer} shutdown")

    def resolved() -> bool:
        mon_lab.run_ecmp_check()
        return not [a for a in mon_lab.firing("BgpSessionDown") if a.get("instance") == TOR] and not [
            a for a in mon_lab.firing("FabricEcmpBelowIntent") if a.get("instance") == TOR
        ]

    started = time.monotonic()
    wait_for(resolved, timeout=WAIT, interval=1.0, what="alerts resolved after no neighbor shutdown")
    print(f"resolved {time.monotonic() - started:.1f}s after 'no neighbor {peer} shutdown'")
