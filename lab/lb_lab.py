"""A load-balancer farm on the namespace fabric: anycast VIPs from LB nodes, real HAProxy and FRR.

Built on :class:`lab.fabric_lab.FabricLab`: the lab fabric with BGP-to-host and the VIP pool as
an anycast pool (``bgp.anycast``, :func:`lb_fabric_doc`), rendered by the engine and loaded as
rendered: every router accepts and spreads the VIP /32s, an LB node sends the ones it originates
(what the ``lb_node`` role installs too).

Per LB node: HAProxy in master-worker mode with the role's ``haproxy.cfg`` template rendered for
the namespace (runtime API and master socket in the node's run directory, balancer files in
``balancers.d``), and the role's announcer (``roles/lb_node/files/lb_vip_announcer.py``), which
keeps ``network VIP/32`` in FRR while HAProxy answers and some backend of the VIP is up.
Backends are tiny HTTP servers answering their name; the client is a loop of fresh TCP
connections (so L4 ECMP hashing spreads them) recording status, backend and ``X-LB-Node``.

Every router hashes ECMP on L4 (``net.ipv4.fib_multipath_hash_policy=1``): with the kernel's
default L3 hash one client address would always take one path.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lb  # no Ansible needed

from .fabric_lab import FabricLab
from .frr import VTYSH
from .netns import IP, kill_pids, netns_pids, wait_for

ROOT = Path(__file__).resolve().parent.parent

LB_BGP = {"hosts": True, "bfd": False}  # BFD off: 11 routers' timers on 2 shared cores
ANNOUNCER = ROOT / "roles" / "lb_node" / "files" / "lb_vip_announcer.py"
HAPROXY_TEMPLATE = ROOT / "roles" / "lb_node" / "templates" / "haproxy.cfg.j2"
HAPROXY = "/usr/sbin/haproxy"
PYTHON = "/usr/bin/python3"

BACKEND = r"""
import http.server, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
S(("0.0.0.0", port), H).serve_forever()
"""

CLIENT = r"""
import http.client, json, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rate, timeout = float(sys.argv[4]), float(sys.argv[5])
out = []
start = time.monotonic()
for i in range(count):
    due = start + i / rate if rate > 0 else 0
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    t = time.monotonic() - start
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("GET", "/")
        r = c.getresponse()
        body = r.read().decode().strip()
        out.append([round(t, 4), r.status == 200, r.getheader("X-LB-Node") or "", body])
        c.close()
    except Exception as exc:
        out.append([round(t, 4), False, "", type(exc).__name__])
print(json.dumps({"elapsed": time.monotonic() - start, "requests": out}))
"""


def lb_fabric_doc(base: dict[str, Any], pool: str) -> dict[str, Any]:
    """A copy of fabric document ``base`` with BGP-to-host (hosts peer over mgmt), no BFD, and the
    VIP ``pool`` as an anycast pool of the fabric."""
    doc = copy.deepcopy(base)
    doc["routing"] = "bgp"
    doc.setdefault("bgp", {}).update(LB_BGP)
    doc["bgp"]["anycast"] = [pool]
    return doc


def render_haproxy_base(run_dir: Path, **overrides: object) -> str:
    """The role's haproxy.cfg template rendered for a lab node (sockets in its run dir, no user);
    ``overrides`` replace any of the template's variables."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
    template = env.from_string(HAPROXY_TEMPLATE.read_text(encoding="utf-8"))
    values: dict[str, object] = {
        "ansible_managed": "rendered by lab/lb_lab.py from roles/lb_node/templates/haproxy.cfg.j2",
        "lb_node_balancer_dir": str(run_dir / "balancers.d"),
        "lb_node_log_target": "",
        "lb_node_user": "",
        "lb_node_group": "",
        "lb_node_maxconn": 4096,
        "lb_node_runtime_api_socket": str(run_dir / "admin.sock"),
        "lb_node_runtime_api_tcp": "",
        "lb_node_timeout_connect": "2s",
        "lb_node_timeout_client": "30s",
        "lb_node_timeout_server": "30s",
        "lb_node_extra_config": [],
    }
    return template.render(**{**values, **overrides})


@dataclass
class ClientRun:
    """The outcome of a client loop: per request (t, ok, LB node, backend or error)."""

    elapsed: float
    requests: list[tuple[float, bool, str, str]]

    @property
    def failed(self) -> list[tuple[float, bool, str, str]]:
        """The failed requests."""
        return [r for r in self.requests if not r[1]]

    def count(self, index: int) -> dict[str, int]:
        """Successful requests per value of field ``index`` (2: LB node, 3: backend)."""
        out: dict[str, int] = {}
        for request in self.requests:
            if request[1]:
                out[request[index]] = out.get(request[index], 0) + 1
        return out


@dataclass
class LbLab:
    """The fabric, LB nodes with HAProxy and the announcer, backends and a client."""

    outdir: Path
    prefix: str
    lb_hosts: dict[str, str]  # LB node name -> plan host
    vips: list[str]
    fabric: FabricLab = field(init=False)
    procs: list[subprocess.Popen[str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        for host in self.lb_hosts.values():  # loaded as rendered: the engine's anycast policy
            outside = lb.vips_outside_anycast((self.outdir / host / "frr.conf").read_text("utf-8"), self.vips)
            if outside:
                raise ValueError(f"{host}: VIPs {outside} are in no anycast pool of the fabric")
        self.fabric = FabricLab(self.outdir, prefix=self.prefix)
        self.netns = self.fabric.netns

    # -- bring-up ---------------------------------------------------------------------------------
    def up(self, *, timeout: float = 120) -> float:
        """Fabric up and converged; L4 ECMP hashing everywhere; LB nodes may bind absent VIPs."""
        took = self.fabric.up(timeout=timeout)
        for name in self.fabric.topology.devices:
            self.netns.sysctl(name, "net.ipv4.fib_multipath_hash_policy", 1)
        for host in self.lb_hosts.values():
            self.netns.sysctl(host, "net.ipv4.ip_nonlocal_bind", 1)
        return took

    def _spawn(self, host: str, argv: list[str], log: Path) -> subprocess.Popen[str]:
        handle = log.open("w", encoding="utf-8")
        proc = subprocess.Popen(
            [IP, "netns", "exec", self.netns.ns(host), *argv],
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        handle.close()
        self.procs.append(proc)
        return proc

    def address(self, host: str) -> str:
        """The host's mgmt address (what the store records for an instance there)."""
        return self.fabric.host_address(host, "mgmt")

    def start_backend(self, host: str, name: str, port: int = 8080) -> None:
        """An HTTP server answering ``name`` on every address of ``host``."""
        self._spawn(host, [PYTHON, "-c", BACKEND, name, str(port)], self.netns.node_dir(host) / f"{name}.log")
        wait_for(lambda: self._listening(host, port), timeout=15, what=f"backend {name} on {host}:{port}")

    def _listening(self, host: str, port: int) -> bool:
        out = self.netns.exec(host, "ss", "-Hltn", f"sport = :{port}", check=False).stdout
        return bool(out.strip())

    def node_dir(self, node: str) -> Path:
        """Run directory of an LB node's HAProxy (sockets, pid, balancer files)."""
        return self.netns.node_dir(self.lb_hosts[node]) / "haproxy"

    def node_spec(self, node: str) -> dict[str, Any]:
        """The module's ``nodes[]`` entry of an LB node."""
        d = self.node_dir(node)
        return {
            "name": node,
            "runtime_api": str(d / "admin.sock"),
            "config": str(d / "balancers.d" / "balancers.cfg"),
            "master_socket": str(d / "master.sock"),
        }

    def start_haproxy(self, node: str) -> None:
        """HAProxy (master-worker) in the LB node's namespace with the role's base configuration."""
        d = self.node_dir(node)
        (d / "balancers.d").mkdir(parents=True, exist_ok=True)
        (d / "haproxy.cfg").write_text(render_haproxy_base(d), encoding="utf-8")
        balancers = d / "balancers.d" / "balancers.cfg"
        if not balancers.exists():
            balancers.write_text(lb.HEADER, encoding="utf-8")
        for stale in ("admin.sock", "master.sock"):
            (d / stale).unlink(missing_ok=True)
        argv = [HAPROXY, "-W", "-D", "-p", str(d / "haproxy.pid"), "-S", str(d / "master.sock")]
        argv += ["-f", str(d / "haproxy.cfg"), "-f", str(d / "balancers.d")]
        # -D: the foreground process exits once the master is daemonized (its output goes to the log)
        self._spawn(self.lb_hosts[node], argv, d / "haproxy.log").wait(timeout=15)
        wait_for((d / "admin.sock").exists, timeout=15, what=f"{node}: HAProxy runtime API")

    def haproxy_pids(self, node: str) -> list[int]:
        """PIDs of HAProxy (master and workers) in the LB node's namespace."""
        pids = []
        for pid in netns_pids(self.netns.ns(self.lb_hosts[node])):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
                    pids.append(pid)
            except OSError:
                continue
        return pids

    def kill_haproxy(self, node: str) -> float:
        """SIGKILL every HAProxy process of the node (a crash); returns the monotonic time."""
        pids = self.haproxy_pids(node)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return time.monotonic()  # not waited for: the measurement starts now (down() reaps them)

    def start_announcer(self, node: str, *, interval: float = 0.2) -> None:
        """The role's announcer in the LB node's namespace, against its FRR and HAProxy."""
        host, d = self.lb_hosts[node], self.node_dir(node)
        argv = [PYTHON, str(ANNOUNCER), "--socket", str(d / "admin.sock"), "--interval", str(interval)]
        argv += ["--config", str(d / "haproxy.cfg"), "--config", str(d / "balancers.d")]
        argv += ["--drain-file", str(d / "drain")]
        for vip in self.vips:
            argv += ["--vip", vip]
        argv += ["--vtysh", VTYSH, "--vty-socket", str(self.fabric.nodes[host].directory)]
        self._spawn(host, argv, d / "announcer.log")

    def drain(self, node: str, *, on: bool) -> None:
        """Drain a whole LB node (its announcer withdraws every VIP) or put it back."""
        flag = self.node_dir(node) / "drain"
        if on:
            flag.write_text("maintenance\n", encoding="utf-8")
        else:
            flag.unlink(missing_ok=True)

    def announced(self, node: str, vip: str) -> bool:
        """Whether the LB node's FRR has ``network VIP/32``."""
        text = self.fabric.nodes[self.lb_hosts[node]].vtysh("show running-config")
        return f" network {vip}/32" in text

    def vip_paths(self, device: str, vip: str) -> list[str]:
        """Kernel next hops of ``vip``/32 on a router."""
        return self.fabric.route_paths(device, f"{vip}/32")["fib"]

    def vip_origins(self, device: str, vip: str) -> set[str]:
        """Which LB hosts ``device``'s best BGP paths for the VIP lead to (by the path's origin AS)."""
        data = self.fabric.nodes[device].json(f"show bgp ipv4 unicast {vip}/32 json")
        asns = {int(dev["asn"]): name for name, dev in self.fabric.topology.devices.items() if dev.get("asn")}
        out = set()
        for path in data.get("paths", []):
            if not (path.get("multipath") or path.get("bestpath", {}).get("overall")):
                continue
            segments = path.get("aspath", {}).get("segments") or []
            hops = [asn for seg in segments for asn in seg.get("list", [])]
            if hops and int(hops[-1]) in asns:
                out.add(asns[int(hops[-1])])
        return out

    # -- client -----------------------------------------------------------------------------------
    def client_argv(self, vip: str, port: int, count: int, rate: float, timeout: float) -> list[str]:
        """The client loop's argv (inside a namespace)."""
        return [PYTHON, "-c", CLIENT, vip, str(port), str(count), str(rate), str(timeout)]

    def client_start(
        self, host: str, vip: str, port: int, *, count: int, rate: float, timeout: float = 1.0
    ) -> subprocess.Popen[str]:
        """Start a client loop in ``host``'s namespace (collect it with :meth:`client_result`)."""
        proc = subprocess.Popen(
            [IP, "netns", "exec", self.netns.ns(host), *self.client_argv(vip, port, count, rate, timeout)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def client_result(proc: subprocess.Popen[str], timeout: float = 120) -> ClientRun:
        """Wait for a client loop and parse what it printed."""
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"client loop rc={proc.returncode}: {err.strip()}")
        data = json.loads(out)
        return ClientRun(data["elapsed"], [tuple(r) for r in data["requests"]])

    def client(
        self, host: str, vip: str, port: int, *, count: int, rate: float, timeout: float = 1.0
    ) -> ClientRun:
        """Run a client loop to completion."""
        return self.client_result(self.client_start(host, vip, port, count=count, rate=rate, timeout=timeout))

    # -- teardown ---------------------------------------------------------------------------------
    def logs(self) -> str:
        """FRR logs and the announcers' logs (failure reports)."""
        parts = [self.fabric.logs()]
        for node in self.lb_hosts:
            log = self.node_dir(node) / "announcer.log"
            if log.exists():
                parts.append(f"--- {node} announcer.log ---\n" + log.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def down(self) -> None:
        """Stop every process this lab started, then the fabric (namespaces, run dirs)."""
        try:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            for node in self.lb_hosts:
                kill_pids(self.haproxy_pids(node), timeout=2)
        finally:
            self.fabric.down()
