# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load balancers of tenant services: store rows, the HAProxy configuration, runtime-API changes.

A balancer (``load_balancers`` row) has a VIP allocated from an IPAM network (an ``ip_allocations``
row that names the balancer), listeners (port, protocol ``tcp``/``http``, backend port), a
health check and an algorithm; its members (``lb_members``) are instances, resolved to their
*current* address at every run, so an instance recreated in another rack stays registered.

Every LB node runs the same rendered configuration (one frontend and one backend per listener,
named ``lbf.<tenant>.<name>.<port>`` / ``lbb.<tenant>.<name>.<port>``).  Changes reach a running
HAProxy (>= 2.4) through its runtime API: ``add server``, ``set server ... addr/weight/state``,
and for a removal drain -> wait idle -> maint -> ``del server``, so no established connection is
cut.  Anything else (a new balancer or listener, another algorithm or health check) changes the
configuration's structure and needs a reload (master-worker: the old worker finishes its
connections).  The pure functions here decide which; :class:`RuntimeApi` talks to the socket.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..atomic_file import write_atomic
from . import ipam
from .errors import CommandError, Conflict, InvalidInput, NotFound
from .names import check_name
from .store import Store

PROTOCOLS = ("tcp", "http")
ALGORITHMS = ("roundrobin", "leastconn", "source")
CHECK_TYPES = ("tcp", "http", "none")
MEMBER_STATES = ("ready", "drain", "maint")
PORT_RANGE = (1, 65535)
WEIGHT_RANGE = (0, 256)
INTERVAL_RANGE = (100, 3_600_000)  # health check interval, ms
RISE_FALL_RANGE = (1, 100)
DEFAULT_WEIGHT = 100
DEFAULT_HEALTH: dict[str, Any] = {"type": "tcp", "path": "/", "interval": 2000, "rise": 2, "fall": 3}
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
PATH_RE = re.compile(r"^/[\x21-\x7e]{0,1023}$")  # one HAProxy config word: printable, no space
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
FRONTEND_PREFIX, BACKEND_PREFIX = "lbf.", "lbb."
NODE_HEADER = "X-LB-Node"  # HTTP listeners: which LB node answered
WAIT_IDLE = "# wait until idle: "  # pseudo command: wait for a draining server's sessions to end
# ``show servers state`` srv_admin_state bits (HAProxy src/server.h SRV_ADMF_*)
ADMF_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40  # forced, inherited, config, resolution, hostname
ADMF_DRAIN = 0x08 | 0x10  # forced, inherited
# runtime API answers that mean success (every other non-empty answer is an error)
OK_ANSWERS = ("New server registered.", "Server deleted.", "IP changed from", "no need to change")
NO_LISTENER_RC = 2  # haproxy -c: "no error but will not start (no listener)"
HEADER = "# Managed by compleat.cloud.load_balancer from the metadata store: do not edit.\n"
INDENT = "    "


# ------------------------------------------------------------------------------------------------
# Input (pure; every refusal names the key and its value)
# ------------------------------------------------------------------------------------------------
def invalid(key: str, value: Any, why: str, hint: str) -> InvalidInput:
    """An InvalidInput naming the option and its value."""
    return InvalidInput(f"{key}={value!r} {why}", hint, key=key, value=value)


def check_lb_name(key: str, value: Any) -> str:
    """A balancer or tenant name: 1-63 letters, digits, '-' and '_' (part of HAProxy proxy names)."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise invalid(key, value, "is not a valid name.", "Use 1-63 letters, digits, '-' and '_'.")
    return value


def _int_in(key: str, value: Any, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(key, value, f"is out of range ({low}..{high}).", f"Give an integer {low}..{high}.")
    return value


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise invalid(
            key, value, f"is not one of {', '.join(choices)}.", f"Give one of {', '.join(choices)}."
        )
    return str(value)


def parse_listeners(value: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Listeners as ``{port, protocol, backend_port}``, sorted by port; ports unique, at least one."""
    if not value:
        raise invalid(
            "listeners", value, "is empty.", "Give at least one listener: {port: 80, protocol: http}."
        )
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, item in enumerate(value):
        key = f"listeners[{i}]"
        if not isinstance(item, Mapping):
            raise invalid(key, item, "is not a mapping.", "Give {port: N, protocol: tcp|http}.")
        unknown = sorted(set(item) - {"port", "protocol", "backend_port"})
        if unknown:
            raise invalid(f"{key}.{unknown[0]}", item[unknown[0]], "is not a listener option.", "Drop it.")
        port = _int_in(f"{key}.port", item.get("port"), PORT_RANGE)
        if port in seen:
            raise invalid(f"{key}.port", port, "is given twice.", "Give each listener port once.")
        seen.add(port)
        protocol = _choice(f"{key}.protocol", item.get("protocol") or "tcp", PROTOCOLS)
        backend = item.get("backend_port")
        backend_port = port if backend is None else _int_in(f"{key}.backend_port", backend, PORT_RANGE)
        out.append({"port": port, "protocol": protocol, "backend_port": backend_port})
    return sorted(out, key=lambda listener: listener["port"])


def parse_health(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """The health check with defaults filled in (``type`` tcp, http or none)."""
    raw = dict(value or {})
    unknown = sorted(set(raw) - set(DEFAULT_HEALTH))
    if unknown:
        raise invalid(
            f"health_check.{unknown[0]}", raw[unknown[0]], "is not a health check option.", "Drop it."
        )
    out = {**DEFAULT_HEALTH, **{k: v for k, v in raw.items() if v is not None}}
    out["type"] = _choice("health_check.type", out["type"], CHECK_TYPES)
    if not isinstance(out["path"], str) or not PATH_RE.match(out["path"]):
        raise invalid("health_check.path", out["path"], "is not a URL path.", "Give a path like /healthz.")
    out["interval"] = _int_in("health_check.interval", out["interval"], INTERVAL_RANGE)
    out["rise"] = _int_in("health_check.rise", out["rise"], RISE_FALL_RANGE)
    out["fall"] = _int_in("health_check.fall", out["fall"], RISE_FALL_RANGE)
    return out


def parse_members(value: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Members as ``{instance, weight, state, network}`` sorted by instance; names unique."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, given in enumerate(value or ()):
        key = f"members[{i}]"
        item = {"instance": given} if isinstance(given, str) else given
        if not isinstance(item, Mapping):
            raise invalid(key, item, "is not a mapping.", "Give {instance: NAME} or an instance name.")
        unknown = sorted(set(item) - {"instance", "weight", "state", "network"})
        if unknown:
            raise invalid(f"{key}.{unknown[0]}", item[unknown[0]], "is not a member option.", "Drop it.")
        name = check_name(f"{key}.instance", item.get("instance"))
        if name in seen:
            raise invalid(f"{key}.instance", name, "is listed twice.", "List each instance once.")
        seen.add(name)
        weight = item.get("weight")
        out.append(
            {
                "instance": name,
                "weight": DEFAULT_WEIGHT
                if weight is None
                else _int_in(f"{key}.weight", weight, WEIGHT_RANGE),
                "state": _choice(f"{key}.state", item.get("state") or "ready", MEMBER_STATES),
                "network": item.get("network") or None,
            }
        )
    return sorted(out, key=lambda member: member["instance"])


# ------------------------------------------------------------------------------------------------
# The configuration (pure)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Member:
    """A member with its resolved address (None: the instance has no address now)."""

    name: str
    address: str | None
    weight: int = DEFAULT_WEIGHT
    state: str = "ready"


@dataclass(frozen=True, slots=True)
class Balancer:
    """Everything the configuration of one balancer depends on."""

    tenant: str
    name: str
    vip: str
    algorithm: str
    listeners: tuple[Mapping[str, Any], ...]
    health: Mapping[str, Any]
    members: tuple[Member, ...] = ()


@dataclass(frozen=True, slots=True)
class Server:
    """A server line as HAProxy runs it (desired or observed)."""

    name: str
    address: str
    port: int
    weight: int
    state: str  # ready, drain, maint


def frontend_name(tenant: str, name: str, port: int) -> str:
    """HAProxy frontend of a listener ('.' never occurs in tenant or balancer names)."""
    return f"{FRONTEND_PREFIX}{tenant}.{name}.{port}"


def backend_name(tenant: str, name: str, port: int) -> str:
    """HAProxy backend of a listener."""
    return f"{BACKEND_PREFIX}{tenant}.{name}.{port}"


def desired_servers(balancer: Balancer) -> dict[str, dict[str, Server]]:
    """{backend: {server: Server}}: every listener's backend with the members that have an address."""
    out: dict[str, dict[str, Server]] = {}
    for listener in balancer.listeners:
        backend = backend_name(balancer.tenant, balancer.name, int(listener["port"]))
        out[backend] = {
            m.name: Server(m.name, m.address, int(listener["backend_port"]), m.weight, m.state)
            for m in balancer.members
            if m.address
        }
    return out


def check_words(health: Mapping[str, Any]) -> str:
    """The ``check ...`` keywords of a server line ('' without health checks)."""
    if health.get("type", "tcp") == "none":
        return ""
    return f" check inter {health['interval']} rise {health['rise']} fall {health['fall']}"


def server_line(server: Server, health: Mapping[str, Any]) -> str:
    """A configuration ``server`` line: a draining server starts at weight 0, maint as disabled."""
    weight = 0 if server.state == "drain" else server.weight
    line = f"server {server.name} {server.address}:{server.port} weight {weight}{check_words(health)}"
    return line + (" disabled" if server.state == "maint" else "")


def render_balancer(balancer: Balancer, node: str = "") -> list[str]:
    """Frontend and backend sections of every listener of ``balancer``."""
    servers = desired_servers(balancer)
    health = balancer.health
    out: list[str] = []
    for listener in balancer.listeners:
        port, mode = int(listener["port"]), str(listener["protocol"])
        fe = frontend_name(balancer.tenant, balancer.name, port)
        be = backend_name(balancer.tenant, balancer.name, port)
        out += [f"frontend {fe}", f"{INDENT}bind {balancer.vip}:{port}", f"{INDENT}mode {mode}"]
        if mode == "http":
            out.append(f"{INDENT}option forwardfor")
            if node:
                out.append(f"{INDENT}http-response set-header {NODE_HEADER} {node}")
        out += [f"{INDENT}default_backend {be}", "", f"backend {be}", f"{INDENT}mode {mode}"]
        out.append(f"{INDENT}balance {balancer.algorithm}")
        if balancer.algorithm == "source":  # dynamic servers need a dynamic (consistent) hash
            out.append(f"{INDENT}hash-type consistent")
        if health.get("type") == "http":
            out.append(f"{INDENT}option httpchk GET {health['path']}")
        out += [INDENT + server_line(s, health) for _n, s in sorted(servers[be].items())]
        out.append("")
    return out


def render_config(balancers: Iterable[Balancer], node: str = "") -> str:
    """The balancer part of an LB node's HAProxy configuration (sections sorted: deterministic)."""
    lines = [HEADER.rstrip("\n")]
    for balancer in sorted(balancers, key=lambda b: (b.tenant, b.name)):
        lines += ["", *render_balancer(balancer, node)]
    return "\n".join(lines).rstrip("\n") + "\n"


def config_structure(text: str) -> list[str]:
    """A configuration without comments, blank lines and ``server`` lines (what a reload changes)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and not line.startswith("server "):
            out.append(line)
    return out


def needs_reload(old: str | None, new: str) -> bool:
    """Whether going from configuration ``old`` to ``new`` needs a reload (servers change at runtime)."""
    return old is None or config_structure(old) != config_structure(new)


def servers_from_config(text: str) -> dict[str, dict[str, Server]]:
    """{backend: {server: Server}} of a rendered configuration (what HAProxy runs after a reload)."""
    out: dict[str, dict[str, Server]] = {}
    backend = None
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if not raw[:1].isspace():
            backend = words[1] if words[0] == "backend" and len(words) > 1 else None
            if backend:
                out[backend] = {}
            continue
        if backend and words[0] == "server" and len(words) >= 3:
            address, _sep, port = words[2].rpartition(":")
            weight = int(words[words.index("weight") + 1]) if "weight" in words else 1
            state = "maint" if "disabled" in words else "ready"
            out[backend][words[1]] = Server(words[1], address, int(port), weight, state)
    return out


def frontends_by_vip(text: str) -> dict[str, set[str]]:
    """{VIP: backends of its frontends} of a configuration (``bind A:P`` and ``default_backend``)."""
    out: dict[str, set[str]] = {}
    vips: list[str] = []
    backend: str | None = None

    def flush() -> None:
        for vip in vips:
            out.setdefault(vip, set()).update({backend} if backend else set())

    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if not raw[:1].isspace():
            flush()
            vips, backend = [], None
            continue
        if words[0] == "bind" and len(words) > 1:
            vips.append(words[1].rpartition(":")[0])
        elif words[0] == "default_backend" and len(words) > 1:
            backend = words[1]
    flush()
    return out


# ------------------------------------------------------------------------------------------------
# Runtime API: observed state and the commands to the desired state (pure)
# ------------------------------------------------------------------------------------------------
def admin_state(bits: int) -> str:
    """ready, drain or maint from ``srv_admin_state``."""
    if bits & ADMF_MAINT:
        return "maint"
    if bits & ADMF_DRAIN:
        return "drain"
    return "ready"


def parse_servers_state(text: str) -> dict[str, dict[str, Server]]:
    """``show servers state`` (format 1) as {backend: {server: Server}}."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1":
        raise CommandError(
            f"Unexpected 'show servers state' answer: {text[:200]!r}.", "Is this HAProxy >= 2.4?"
        )
    header: list[str] = []
    out: dict[str, dict[str, Server]] = {}
    for line in lines[1:]:
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        row = dict(zip(header, line.split(), strict=False))
        be, name = row["be_name"], row["srv_name"]
        out.setdefault(be, {})[name] = Server(
            name,
            row["srv_addr"],
            int(row["srv_port"]),
            int(row["srv_uweight"]),
            admin_state(int(row["srv_admin_state"])),
        )
    return out


def parse_backends(text: str) -> set[str]:
    """``show backend``: the backend names."""
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def parse_stat(text: str) -> list[dict[str, str]]:
    """``show stat`` CSV rows as dicts (header ``# pxname,svname,...``)."""
    body = text.lstrip("# ")
    return [dict(row) for row in csv.DictReader(io.StringIO(body)) if row.get("pxname")]


def server_commands(
    backend: str,
    current: Mapping[str, Server],
    desired: Mapping[str, Server],
    health: Mapping[str, Any],
) -> list[str]:
    """Runtime API commands that turn ``current`` servers of ``backend`` into ``desired``.

    New servers are added (in maintenance, as HAProxy adds them), their health check enabled, then
    set to their state.  Removed servers drain, wait until idle (:data:`WAIT_IDLE`), go to
    maintenance and are deleted; established connections finish on their server.
    """
    out: list[str] = []
    for name in sorted(desired):
        want, have, target = desired[name], current.get(name), f"{backend}/{name}"
        if have is None:
            out.append(
                f"add server {target} {want.address}:{want.port} weight {want.weight}{check_words(health)}"
            )
            if check_words(health):
                out.append(f"enable health {target}")
            out.append(f"set server {target} state {want.state}")
            continue
        if (have.address, have.port) != (want.address, want.port):
            out.append(f"set server {target} addr {want.address} port {want.port}")
        if have.weight != want.weight:
            out.append(f"set server {target} weight {want.weight}")
        if have.state != want.state:
            out.append(f"set server {target} state {want.state}")
    for name in sorted(set(current) - set(desired)):
        target = f"{backend}/{name}"
        if current[name].state != "maint":
            if current[name].state != "drain":
                out.append(f"set server {target} state drain")
            out.append(f"{WAIT_IDLE}{target}")
            out.append(f"set server {target} state maint")
        out += [f"shutdown sessions server {target}", f"del server {target}"]
    return out


def runtime_commands(current: Mapping[str, Mapping[str, Server]], balancers: Iterable[Balancer]) -> list[str]:
    """Commands for every balancer backend that ``current`` (observed) has."""
    out: list[str] = []
    for balancer in sorted(balancers, key=lambda b: (b.tenant, b.name)):
        for backend, servers in sorted(desired_servers(balancer).items()):
            if backend in current:
                out += server_commands(backend, current[backend], servers, balancer.health)
    return out


@dataclass(frozen=True, slots=True)
class NodePlan:
    """What one LB node needs: a new config file, a reload, runtime commands."""

    write: bool
    reload: bool
    commands: tuple[str, ...]
    missing: tuple[str, ...] = ()  # balancer backends the running HAProxy lacks
    stale: tuple[str, ...] = ()  # balancer backends it runs but the store no longer has


def plan_node(
    current: Mapping[str, Mapping[str, Server]],
    old_config: str | None,
    new_config: str,
    balancers: Sequence[Balancer],
) -> NodePlan:
    """Decide a node's changes.  ``old_config`` None: the node has no config file here (runtime only).

    After a reload HAProxy runs the servers of the new file; the commands are then computed
    against those (and recomputed from the live state once the reload is done).
    """
    wanted = {be for b in balancers for be in desired_servers(b)}
    running = {be for be in current if be.startswith(BACKEND_PREFIX)}
    missing, stale = tuple(sorted(wanted - running)), tuple(sorted(running - wanted))
    has_file = old_config is not None
    reload = bool(missing or stale) or (has_file and needs_reload(old_config, new_config))
    after = servers_from_config(new_config) if reload else current
    return NodePlan(
        write=has_file and old_config != new_config,
        reload=reload,
        commands=tuple(runtime_commands(after, balancers)),
        missing=missing,
        stale=stale,
    )


def command_ok(answer: str) -> bool:
    """Whether a runtime API answer means success."""
    text = answer.strip()
    return not text or text.startswith(OK_ANSWERS)


# ------------------------------------------------------------------------------------------------
# Runtime API client
# ------------------------------------------------------------------------------------------------
@dataclass
class RuntimeApi:
    """HAProxy's runtime API: a unix socket path, or ``[ipv4@]host:port``; one connection per command."""

    address: str
    timeout: float = 5.0

    def _connect(self) -> socket.socket:
        if self.address.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = self.address
        else:
            host, _sep, port = self.address.removeprefix("ipv4@").rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, command: str) -> str:
        """Send one command, return the whole answer."""
        try:
            with self._connect() as sock:
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise CommandError(
                f"HAProxy runtime API {self.address} failed on {command!r}: {exc}.",
                "Is HAProxy running with 'stats socket ... level admin' there (compleat.cloud.lb_node)?",
            ) from exc
        return b"".join(chunks).decode(errors="replace")

    def run(self, command: str) -> str:
        """Send a change command; CommandError unless HAProxy answers success."""
        answer = self.send(command)
        if not command_ok(answer):
            raise CommandError(
                f"HAProxy {self.address} refused {command!r}: {answer.strip()}",
                "Check the node's HAProxy version (>= 2.4) and its configuration.",
            )
        return answer

    def servers(self) -> dict[str, dict[str, Server]]:
        """Every backend's servers as running, with backends that have none."""
        state = parse_servers_state(self.send("show servers state"))
        for backend in parse_backends(self.send("show backend")):
            state.setdefault(backend, {})
        return state

    def sessions(self, backend: str, server: str) -> int:
        """Current sessions of one server (0 when it is gone)."""
        for row in parse_stat(self.send("show stat")):
            if row["pxname"] == backend and row["svname"] == server:
                return int(row.get("scur") or 0)
        return 0


def execute(api: RuntimeApi, commands: Iterable[str], *, drain_timeout: float, interval: float = 0.2) -> None:
    """Run commands in order; a WAIT_IDLE step waits (at most ``drain_timeout``) for idleness."""
    for command in commands:
        if command.startswith(WAIT_IDLE):
            backend, _sep, server = command.removeprefix(WAIT_IDLE).partition("/")
            deadline = time.monotonic() + drain_timeout
            while api.sessions(backend, server) and time.monotonic() < deadline:
                time.sleep(interval)
            continue
        api.run(command)


def master_reload(path: str, timeout: float = 10.0) -> None:
    """``reload`` on HAProxy's master CLI socket (master-worker mode)."""
    answer = RuntimeApi(path, timeout).send("reload")
    if answer.strip():
        raise CommandError(
            f"HAProxy master {path} answered the reload with: {answer.strip()}", "See its log."
        )


def wait_backends(api: RuntimeApi, wanted: Iterable[str], gone: Iterable[str], timeout: float) -> None:
    """Wait until the running HAProxy has every ``wanted`` backend and none of ``gone`` (a reload took)."""
    need, drop = set(wanted), set(gone)
    deadline = time.monotonic() + timeout
    last: set[str] = set()
    while time.monotonic() < deadline:
        try:
            last = parse_backends(api.send("show backend"))
        except CommandError:
            last = set()
        if need <= last and not drop & last:
            return
        time.sleep(0.1)
    raise CommandError(
        f"HAProxy {api.address} did not take the new configuration within {timeout:g}s "
        f"(missing {', '.join(sorted(need - last)) or '-'}; "
        f"still running {', '.join(sorted(drop & last)) or '-'}).",
        "The reload failed: check 'haproxy -c' of the node's configuration and HAProxy's log.",
    )


# ------------------------------------------------------------------------------------------------
# Store
# ------------------------------------------------------------------------------------------------
def get_balancer(store: Store, tenant: str, name: str) -> dict[str, Any] | None:
    """The balancer row (decoded), or None."""
    row = store.get("load_balancers", tenant=tenant, name=name)
    return row  # the store decodes listeners and health (JSON_COLUMNS)


def vip_network(store: Store, tenant: str, name: str) -> dict[str, Any]:
    """The IPAM network VIPs come from."""
    network = store.get("networks", tenant=tenant, name=name, rack=0)
    if network is None:
        raise NotFound(
            f"vip_network={name!r}: tenant {tenant} has no network {name!r}.",
            "Create the VIP pool with compleat.cloud.network (or give vip_network_tenant).",
            key="vip_network",
            value=name,
        )
    return network


def _vip_holder(store: Store, network_id: int, address: int) -> str | None:
    row = store.query_one(
        "SELECT a.lb_id AS lb_id, i.name AS instance, b.tenant AS tenant, b.name AS balancer"
        " FROM ip_allocations a LEFT JOIN instances i ON i.id = a.instance_id"
        " LEFT JOIN load_balancers b ON b.id = a.lb_id WHERE a.network_id = ? AND a.address = ?",
        (network_id, address),
    )
    if row is None:
        return None
    if row["balancer"]:
        return f"load balancer {row['tenant']}/{row['balancer']}"
    return f"instance {row['instance']}" if row["instance"] else "an allocation without instance"


def pick_vip(store: Store, network: Mapping[str, Any], fixed: str | None, keep: str | None) -> str:
    """The VIP: ``fixed`` (checked against the pool), else ``keep`` (the current one), else lowest free."""
    pool = ipam.pool_of(network)
    if fixed is not None:
        address = int(ipam.parse_address("vip", fixed))
        if fixed != keep:
            ipam.check_fixed(pool, address, _vip_holder(store, int(network["id"]), address), "vip")
        return ipam.ntoa(address)
    if keep is not None:
        return keep
    found = ipam.lowest_free(pool, ipam.used_addresses(store, int(network["id"])))
    if found is None:
        raise ipam.exhausted(pool)
    return ipam.ntoa(found)


def member_address(instance: Mapping[str, Any], network: str | None, key: str) -> str | None:
    """The instance's current address on ``network`` (default its first allocated address)."""
    nics = list(instance.get("networks") or [])
    if network is None:
        return ipam.primary_address(nics)
    for nic in nics:
        if nic.get("network") == network and nic.get("ip"):
            return str(nic["ip"]).split("/", 1)[0]
    raise NotFound(
        f"{key}={network!r}: instance {instance['name']} has no address on network {network!r}.",
        "Name a network the instance has a NIC on, or omit it (first address).",
        key=key,
        value=network,
    )


def resolve_members(store: Store, tenant: str, members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Members with their instance row id and current address; each instance must be the tenant's."""
    out = []
    for i, member in enumerate(members):
        key = f"members[{i}].instance"
        inst = store.get("instances", name=member["instance"])
        if inst is None:
            raise NotFound(
                f"{key}={member['instance']!r}: no such instance.",
                "Create it with compleat.cloud.instance first.",
                key=key,
                value=member["instance"],
            )
        if inst["tenant"] != tenant:
            raise Conflict(
                f"{key}={member['instance']!r} belongs to tenant {inst['tenant']}, not {tenant}.",
                "A balancer's members are instances of its own tenant.",
                key=key,
                value=member["instance"],
            )
        address = member_address(inst, member.get("network"), f"members[{i}].network")
        out.append({**member, "instance_id": inst["id"], "address": address})
    return out


def members_of(store: Store, lb_id: int) -> list[dict[str, Any]]:
    """Stored members with instance name and current address (sorted by instance)."""
    rows = store.query(
        "SELECT m.id AS id, m.weight AS weight, m.state AS state, m.network AS network,"
        " m.instance_id AS instance_id, i.name AS instance, i.networks AS networks"
        " FROM lb_members m JOIN instances i ON i.id = m.instance_id WHERE m.lb_id = ? ORDER BY i.name",
        (lb_id,),
    )
    out = []
    for row in rows:
        nics = json.loads(row["networks"]) if isinstance(row["networks"], str) else row["networks"]
        inst = {"name": row["instance"], "networks": nics}
        try:
            address = member_address(inst, row["network"], "network")
        except NotFound:
            address = None
        out.append(
            {
                **{k: row[k] for k in ("id", "instance_id", "instance", "weight", "state", "network")},
                "address": address,
            }
        )
    return out


def view(
    row: Mapping[str, Any] | None, members: Sequence[Mapping[str, Any]], vip_net: str | None
) -> dict[str, Any]:
    """The balancer for results and diff (no ids, no timestamps)."""
    if not row:
        return {}
    return {
        "tenant": row["tenant"],
        "name": row["name"],
        "vip": row["vip"],
        "vip_network": vip_net,
        "algorithm": row["algorithm"],
        "listeners": list(row["listeners"]),
        "health_check": dict(row["health"]),
        "members": [
            {k: m.get(k) for k in ("instance", "weight", "state", "network", "address")} for m in members
        ],
    }


def balancer_of(row: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> Balancer:
    """The rendering input of a stored balancer."""
    return Balancer(
        tenant=row["tenant"],
        name=row["name"],
        vip=row["vip"],
        algorithm=row["algorithm"],
        listeners=tuple(row["listeners"]),
        health=dict(row["health"]),
        members=tuple(Member(m["instance"], m["address"], int(m["weight"]), m["state"]) for m in members),
    )


def all_balancers(store: Store) -> list[Balancer]:
    """Every stored balancer with its members' current addresses."""
    rows = store.select("load_balancers", order_by="name")
    return [balancer_of(r, members_of(store, int(r["id"]))) for r in rows]


@dataclass
class Desired:
    """The checked parameters of one balancer."""

    tenant: str
    name: str
    vip_network: str | None = None
    vip_network_tenant: str | None = None
    vip: str | None = None
    algorithm: str | None = None
    listeners: list[dict[str, Any]] | None = None
    health: dict[str, Any] | None = None
    members: list[dict[str, Any]] | None = None
    purge_members: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_balancer(store: Store, want: Desired, write: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create or update the balancer and its members (inside a write transaction); (before, after) views."""
    current = get_balancer(store, want.tenant, want.name)
    net_tenant = want.vip_network_tenant or want.tenant
    old_members = members_of(store, int(current["id"])) if current else []
    old_net = store.get("networks", id=current["network_id"]) if current else None
    before = view(current, old_members, old_net["name"] if old_net else None)
    if current is None and (want.listeners is None or want.vip_network is None):
        missing = "listeners" if want.listeners is None else "vip_network"
        raise NotFound(
            f"Load balancer {want.tenant}/{want.name} does not exist; creating it needs {missing}.",
            "Give vip_network and listeners.",
            key=missing,
        )
    if want.vip_network is not None:
        network = vip_network(store, net_tenant, want.vip_network)
    else:
        network = old_net or {}
    same_net = current is not None and int(network["id"]) == int(current["network_id"])
    if write:
        ipam.lock_network(store, int(network["id"]))
    vip = pick_vip(store, network, want.vip, current["vip"] if same_net and current else None)
    row = {
        "tenant": want.tenant,
        "name": want.name,
        "network_id": int(network["id"]),
        "vip": vip,
        "algorithm": want.algorithm or (current["algorithm"] if current else "roundrobin"),
        "listeners": want.listeners if want.listeners is not None else current["listeners"],  # type: ignore[index]
        "health": want.health
        if want.health is not None
        else (current["health"] if current else DEFAULT_HEALTH),
    }
    # the store encodes listeners/health as JSON and keeps created_at/updated_at (TABLES)
    if current is None:
        lb_id = int(store.insert("load_balancers", row)["id"]) if write else 0
    else:
        lb_id = int(current["id"])
        changes = {k: v for k, v in row.items() if current.get(k) != v}
        if changes and write:
            store.update("load_balancers", lb_id, changes)
    if write and (current is None or current["vip"] != vip or not same_net):
        if current is not None:
            store.delete("ip_allocations", lb_id=lb_id)
        store.insert(
            "ip_allocations",
            {
                "network_id": int(network["id"]),
                "address": int(ipam.parse_address("vip", vip)),
                "instance_id": None,
                "nic_index": 0,
                "lb_id": lb_id,
            },
        )
    new_members = _sync_members(store, lb_id, old_members, want, write=write)
    return before, view(row, new_members, network["name"])


def _sync_members(
    store: Store, lb_id: int, old: list[dict[str, Any]], want: Desired, *, write: bool
) -> list[dict[str, Any]]:
    """Bring ``lb_members`` in line with ``want.members``; returns the members after."""
    if want.members is None:
        return old
    listed = resolve_members(store, want.tenant, want.members)
    by_instance = {m["instance"]: m for m in old}
    after: dict[str, dict[str, Any]] = {} if want.purge_members else dict(by_instance)
    for member in listed:
        have = by_instance.get(member["instance"])
        fields_ = {"weight": member["weight"], "state": member["state"], "network": member["network"]}
        if have is None:
            if write:
                store.insert(
                    "lb_members",
                    {
                        "lb_id": lb_id,
                        "instance_id": member["instance_id"],
                        **fields_,
                    },
                )
        elif write and any(have[k] != v for k, v in fields_.items()):
            store.update("lb_members", int(have["id"]), fields_)
        after[member["instance"]] = {**(have or {}), **member}
    if write and want.purge_members:
        for name, have in by_instance.items():
            if name not in after:
                store.delete("lb_members", id=int(have["id"]))
    return [after[name] for name in sorted(after)]


def delete_balancer(store: Store, tenant: str, name: str, write: bool) -> dict[str, Any]:
    """Delete the balancer (members and VIP allocation cascade); the before view ({} when absent)."""
    current = get_balancer(store, tenant, name)
    if current is None:
        return {}
    net = store.get("networks", id=current["network_id"])
    before = view(current, members_of(store, int(current["id"])), net["name"] if net else None)
    if write:
        store.delete("ip_allocations", lb_id=int(current["id"]))
        store.delete("lb_members", lb_id=int(current["id"]))
        store.delete("load_balancers", id=int(current["id"]))
    return before


# ------------------------------------------------------------------------------------------------
# Applying to LB nodes
# ------------------------------------------------------------------------------------------------
Runner = Callable[[list[str]], tuple[int, str, str]]


def read_config(path: str | None) -> str | None:
    """A node's balancer config file ('' when it does not exist yet; None without a path)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def validate_config(path: str, text: str, run: Runner, haproxy: str | None) -> None:
    """``haproxy -c`` on ``text`` (written next to ``path``) when HAProxy is installed here."""
    if not haproxy:
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".lb-check-", suffix=".cfg", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        rc, out, err = run([haproxy, "-c", "-q", "-f", tmp])
    finally:
        os.unlink(tmp)
    if rc not in (0, NO_LISTENER_RC):  # a file without balancers is valid, it just listens nowhere
        raise CommandError(
            f"haproxy -c refused the rendered configuration for {path}: {(err or out).strip()}",
            "Report it: the balancer parameters passed the module's checks.",
        )


def apply_node(
    node: Mapping[str, Any],
    balancers: Sequence[Balancer],
    *,
    check_mode: bool,
    drain_timeout: float,
    run: Runner,
    haproxy: str | None,
) -> dict[str, Any]:
    """Converge one LB node; returns {name, changed, reloaded, wrote, commands}."""
    api = RuntimeApi(str(node["runtime_api"]))
    new_config = render_config(balancers, str(node.get("name") or ""))
    old_config = read_config(node.get("config"))
    plan = plan_node(api.servers(), old_config, new_config, balancers)
    if plan.reload and not (node.get("master_socket") or node.get("reload_command")):
        raise Conflict(
            f"LB node {node.get('name') or api.address} needs a reload (backends missing: "
            f"{', '.join(plan.missing) or '-'}; stale: {', '.join(plan.stale) or '-'}; or the configuration "
            "changed beyond servers), but neither master_socket nor reload_command is given.",
            "Give nodes[].config and nodes[].master_socket (or reload_command).",
            key="nodes",
        )
    if plan.reload and old_config is None:
        raise Conflict(
            f"LB node {node.get('name') or api.address} lacks backends {', '.join(plan.missing)} and has no "
            "config path: a runtime-only node cannot get new frontends.",
            "Give nodes[].config (the file HAProxy loads from its balancer directory).",
            key="nodes",
        )
    result = {
        "name": node.get("name") or api.address,
        "changed": plan.write or plan.reload or bool(plan.commands),
        "wrote": plan.write,
        "reloaded": plan.reload,
        "commands": list(plan.commands),
    }
    if check_mode:
        return result
    commands = list(plan.commands)
    if plan.write:
        validate_config(str(node["config"]), new_config, run, haproxy)
        write_atomic(str(node["config"]), new_config)
    if plan.reload:
        if node.get("master_socket"):
            master_reload(str(node["master_socket"]))
        else:
            rc, out, err = run(list(node["reload_command"]))
            if rc != 0:
                raise CommandError(
                    f"reload_command failed (rc={rc}): {(err or out).strip()}", "See HAProxy's log."
                )
        wanted = [be for b in balancers for be in desired_servers(b)]
        wait_backends(api, wanted, plan.stale, timeout=float(node.get("reload_timeout") or 15))
        commands = runtime_commands(api.servers(), balancers)
        result["commands"] = commands
    execute(api, commands, drain_timeout=drain_timeout)
    return result


# ------------------------------------------------------------------------------------------------
# The LB node's FRR configuration: the engine's, as rendered (the role checks the same)
# ------------------------------------------------------------------------------------------------
ANYCAST_PREFIX_LIST = "ANYCAST"  # the fabric engine's list of anycast pools (bgp.anycast)
ANYCAST_RE = re.compile(rf"^ip prefix-list {ANYCAST_PREFIX_LIST} seq \d+ permit (\S+)", re.M)


def anycast_pools(host_config: str) -> list[str]:
    """The anycast pools a rendered BGP-to-host ``frr.conf`` lets out (``bgp.anycast`` of the fabric)."""
    if "\nrouter bgp " not in host_config:
        raise InvalidInput(
            "The FRR configuration is not a BGP-to-host configuration (no router bgp).",
            "Render the fabric with bgp.hosts: true and use the LB node's own frr.conf.",
        )
    return ANYCAST_RE.findall(host_config)


def vips_outside_anycast(host_config: str, vips: Sequence[str]) -> list[str]:
    """The ``vips`` no anycast pool of the node's rendered ``frr.conf`` holds (the node could
    originate them, but its ToRs would drop them): sorted, without duplicates."""
    pools = [ipaddress.IPv4Network(pool) for pool in anycast_pools(host_config)]
    addresses = {ipam.parse_address("vip", vip) for vip in vips}
    return [str(address) for address in sorted(addresses) if not any(address in pool for pool in pools)]
