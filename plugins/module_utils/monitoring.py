# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Monitoring views of the inventory and the fabric plan: scrape targets, ECMP intent, rules, config.

Pure functions (no I/O, deterministic, sorted output); the ``compleat.cloud.monitoring_*`` filters
(``plugins/filter/monitoring.py``) are thin views of them, used by the ``monitoring_server`` and
``monitoring_exporters`` roles:

- ``inventory_targets(exporters, groups, hostvars)``: Prometheus file_sd documents, one per
  exporter job, with every host of the exporter's inventory groups;
- ``fabric_targets(plan)``: file_sd groups for the FRR exporter of every spine and ToR, addressed
  by the device's loopback (the plan is the only source of these addresses);
- ``ecmp_intent(plan, device)``: the next hops every fabric prefix should have on a router, from
  the fabric engine's intent module (``module_utils/fabric/intent.py``);
- ``enabled_exporters(exporters, group_names)``: the exporters a host runs;
- ``alert_rules(options)`` / ``prometheus_config(jobs, options)``: the rule file and
  ``prometheus.yml`` as data (the roles template them with ``to_nice_yaml``; the lab test builds
  its Prometheus from the same functions).

A *plan* argument may be a ``model.Plan``, its plain-dict view (``export.plan_to_dict``, what the
``compleat.cloud.fabric_plan`` filter returns) or a fabric definition (a mapping with ``spines`` /
``racks``, or the path of a fabric YAML file), which is then validated and planned (and cached)
by ``module_utils/fabric/adapter.py``.  Problems raise :class:`MonitoringError` or
``adapter.FabricSourceError`` (both ``ValueError``); the filters turn them into filter errors.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .fabric import adapter
from .fabric import intent as fabric_intent


class MonitoringError(ValueError):
    """An argument of the monitoring views that cannot be used; the message says which and why."""


DEFAULT_FRR_PORT = 9342
DEFAULT_FABRIC_ROLES = ("spine", "tor")
ADDRESS_VARS = ("monitoring_address", "ansible_host")

#: Alert rule options and their defaults (``monitoring_alert_rules``).
DEFAULT_RULE_OPTIONS: dict[str, Any] = {
    "group": "compleat-cloud",
    "host_down_for": "2m",
    "bgp_down_for": "1m",
    "ecmp_for": "2m",
    "ecmp_stale_after": 300,
    "ecmp_stale_for": "5m",
    "disk_free_percent": 10,
    "disk_for": "10m",
    "disk_fstypes_excluded": "tmpfs|ramfs|devtmpfs|squashfs|overlay|nsfs|fuse.*",
}

#: Prometheus configuration options and their defaults (``monitoring_prometheus_config``).
DEFAULT_CONFIG_OPTIONS: dict[str, Any] = {
    "scrape_interval": "15s",
    "scrape_timeout": "10s",
    "evaluation_interval": "15s",
    "external_labels": {},
    "rule_files": [],
    "alertmanagers": [],
    "self_target": "localhost:9090",
    "self_instance": "",
    "sd_dir": "/etc/prometheus/file_sd",
}


# ------------------------------------------------------------------------------------ helpers
def _field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for dataclasses/objects, else ``default``."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _as_list(value: Any) -> list[Any]:
    """A scalar becomes a one-element list; None an empty list."""
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping):
        return [value]
    return list(value)


def host_port(address: str, port: int) -> str:
    """``address:port``, with brackets for IPv6 literals; a prefix length is dropped."""
    host = str(address).strip().partition("/")[0]
    if not host:
        raise MonitoringError("empty address for a scrape target")
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a DNS name
    return f"{host}:{int(port)}"


def listen_address(address: str | None, port: int) -> str:
    """An exporter's ``--web.listen-address``: ``:port`` for every address, else ``host:port``."""
    text = str(address or "").strip()
    if text in ("", "*", "::", "0.0.0.0"):
        return f"{text}:{int(port)}" if text == "0.0.0.0" else f":{int(port)}"
    return host_port(text, port)


def plan_dict(plan: Any, caller: str = "monitoring") -> dict[str, Any]:
    """The plain-dict view of a plan (see the module docstring for the accepted forms)."""
    return adapter.plan_view(plan, caller)


def _devices(plan: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    devices = plan.get("devices", [])
    if isinstance(devices, Mapping):
        return list(devices.values())
    return list(devices)


# ------------------------------------------------------------------------------------ exporters
def normalise_exporters(exporters: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate an exporter list (``name``, ``groups``, ``port``); sorted by name, names unique."""
    seen: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(_as_list(exporters)):
        if not isinstance(item, Mapping) or not item.get("name"):
            raise MonitoringError(f"exporters[{index}]: a mapping with a name is required")
        name = str(item["name"])
        if name in seen:
            raise MonitoringError(f"exporters[{index}]: duplicate exporter name {name!r}")
        try:
            port = int(item.get("port", 0))
        except (TypeError, ValueError) as exc:
            raise MonitoringError(f"exporters[{index}] ({name}): port must be an integer") from exc
        if not 0 < port < 65536:
            raise MonitoringError(f"exporters[{index}] ({name}): port {port} out of range")
        seen[name] = {
            "name": name,
            "groups": sorted({str(g) for g in _as_list(item.get("groups", []))}),
            "port": port,
            "metrics_path": str(item.get("metrics_path", "/metrics")),
        }
    return [seen[name] for name in sorted(seen)]


def enabled_exporters(exporters: Iterable[Mapping[str, Any]], group_names: Iterable[str]) -> list[str]:
    """Names of the exporters whose groups include one of ``group_names`` (``all`` matches any host)."""
    member = set(group_names) | {"all"}
    return [item["name"] for item in normalise_exporters(exporters) if member & set(item["groups"])]


def _host_address(host: str, hostvars: Mapping[str, Any], address_vars: Sequence[str]) -> str:
    variables = hostvars.get(host, {}) if hasattr(hostvars, "get") else {}
    for var in address_vars:
        value = _field(variables, var)
        if value not in (None, ""):
            return str(value)
    return host


def inventory_targets(
    exporters: Iterable[Mapping[str, Any]],
    groups: Mapping[str, Iterable[str]],
    hostvars: Mapping[str, Any] | None = None,
    address_vars: Sequence[str] | str = ADDRESS_VARS,
) -> dict[str, list[dict[str, Any]]]:
    """Per exporter job, the Prometheus file_sd groups of every host of its inventory groups.

    A host's address is the first defined of ``address_vars`` in its hostvars (default
    ``monitoring_address``, then ``ansible_host``), else its inventory name.  Every target gets
    its own group so that ``instance`` is the inventory hostname, not ``address:port``.
    """
    hostvars = hostvars or {}
    variables = [address_vars] if isinstance(address_vars, str) else list(address_vars)
    jobs: dict[str, list[dict[str, Any]]] = {}
    for item in normalise_exporters(exporters):
        hosts: set[str] = set()
        for group in item["groups"]:
            hosts.update(str(h) for h in _as_list(groups.get(group, [])))
        jobs[item["name"]] = [
            {
                "targets": [host_port(_host_address(host, hostvars, variables), item["port"])],
                "labels": {"instance": host},
            }
            for host in sorted(hosts)
        ]
    return jobs


def fabric_targets(
    plan: Any, port: int = DEFAULT_FRR_PORT, roles: Iterable[str] = DEFAULT_FABRIC_ROLES
) -> list[dict[str, Any]]:
    """file_sd groups for the FRR exporter of every fabric router, at its loopback address.

    Labels: ``instance`` (device name), ``fabric_role`` and, for ToRs, ``rack``.
    """
    wanted = set(_as_list(roles))
    out = []
    for device in _devices(plan_dict(plan, "monitoring_fabric_targets")):
        role = str(_field(device, "role", ""))
        if role not in wanted:
            continue
        loopback = _field(device, "loopback") or _field(device, "router_id")
        if not loopback:
            raise MonitoringError(f"device {_field(device, 'name')} has no loopback address")
        labels = {"instance": str(_field(device, "name")), "fabric_role": role}
        if _field(device, "rack") is not None:
            labels["rack"] = str(_field(device, "rack"))
        out.append({"targets": [host_port(str(loopback), port)], "labels": labels})
    return sorted(out, key=lambda group: group["labels"]["instance"])


def fabric_router(plan: Any, device: str) -> dict[str, Any]:
    """What a router's exporters need from the plan, in one call (``{}`` when ``device`` is none).

    ``{"name", "role", "address" (loopback, no prefix length), "routing" ("bgp"|"ospf"),
    "ecmp_intent" ({prefix: next hops})}``; hosts without routing get ``{}``.
    """
    view = plan_dict(plan, "monitoring_fabric_router")
    for item in _devices(view):
        if _field(item, "name") != device:
            continue
        role = str(_field(item, "role", ""))
        intent = ecmp_intent(view, device)
        if role not in DEFAULT_FABRIC_ROLES and not intent:
            return {}
        loopback = str(_field(item, "loopback") or _field(item, "router_id") or "")
        return {
            "name": str(device),
            "role": role,
            "address": loopback.partition("/")[0],
            "routing": str(_field(view.get("fabric", {}), "routing", "bgp")),
            "ecmp_intent": intent,
        }
    return {}


# ------------------------------------------------------------------------------------ ECMP intent
def router_routes(view: Mapping[str, Any], device: str) -> dict[str, int] | None:
    """The engine's route intent (``fabric.intent``) for one router, without planning every router.

    Same rules as ``intent.intent_from_topology`` (``tests/unit/monitoring`` proves the results
    equal for every router of the lab and example fabrics), but only ``device``'s prefixes are
    worked out: per host of a 500-rack fabric that is milliseconds instead of seconds.  Returns
    ``None`` when ``device`` is not a router (no FRR configuration).
    """
    routing = str(_field(view.get("fabric", {}), "routing", "bgp"))
    devices = {str(_field(dev, "name")): dev for dev in _devices(view)}
    me = devices.get(device)
    if me is None or not _field(me, "config"):
        return None
    far: dict[str, list[str]] = {}
    for link in view.get("links", []):
        a, b = link["a"]["device"], link["b"]["device"]
        far.setdefault(a, []).append(b)
        far.setdefault(b, []).append(a)
    ends = far.get(device, [])
    neighbours = {end: set(far.get(end, [])) for end in set(ends)}
    origins: dict[str, set[str]] = {}
    host_prefixes: set[str] = set()
    for name, dev in devices.items():
        if not _field(dev, "config"):
            continue
        for prefix in _field(dev, "announce", ()) or ():
            origins.setdefault(prefix, set()).add(name)
            if _field(dev, "role") == "host":
                host_prefixes.add(prefix)
    role = str(_field(me, "role"))
    routes: dict[str, int] = {}
    for prefix, owners in origins.items():
        if device in owners:
            continue
        if prefix in host_prefixes or role == "host":
            routes[prefix] = fabric_intent.PRESENT
            continue
        if (
            routing == "bgp"
            and role == "spine"
            and all(_field(devices[o], "role") == "spine" for o in owners)
        ):
            continue
        count = sum(1 for end in ends if end in owners) or sum(
            1 for end in ends if neighbours.get(end, set()) & owners
        )
        if count:
            routes[prefix] = count
    return routes


def ecmp_intent(plan: Any, device: str | None = None) -> dict[str, Any]:
    """Next hops each fabric prefix should have: ``{prefix: count}`` for ``device``.

    Without ``device``: ``{device: {prefix: count}}`` for every router.  The counts follow the
    fabric engine's intent (two-tier Clos ECMP over the plan's links); a prefix that only has to
    be present (BGP-to-host loopbacks) counts 1.  Prefixes the router originates itself are not
    listed.  A device that is not a router of the plan gets ``{}``.
    """
    view = plan_dict(plan, "monitoring_ecmp_intent")
    if device is None:
        table = {name: item.routes for name, item in fabric_intent.intent_from_topology(view).items()}
    else:
        routes = router_routes(view, str(device))
        table = {str(device): routes or {}}
    out = {
        name: {prefix: max(1, int(count)) for prefix, count in sorted(routes.items())}
        for name, routes in sorted(table.items())
    }
    return out if device is None else out[str(device)]


# ------------------------------------------------------------------------------------ rules
def _options(defaults: Mapping[str, Any], options: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in (options or {}).items():
        if key not in defaults:
            raise MonitoringError(f"{what}: unknown option {key!r} (known: {', '.join(sorted(defaults))})")
        if value is not None:
            merged[key] = value
    return merged


def _rule(
    alert: str, expr: str, duration: Any, severity: str, *, summary: str, description: str
) -> dict[str, Any]:
    """One alerting rule of the rule file."""
    return {
        "alert": alert,
        "expr": expr,
        "for": str(duration),
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def alert_rules(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Prometheus rule file (as data) with the four fabric/host alerts and the ECMP staleness.

    Options (see ``DEFAULT_RULE_OPTIONS``): ``*_for`` durations, ``disk_free_percent``, the
    ``ecmp_stale_after`` seconds and the excluded file system types.
    """
    opts = _options(DEFAULT_RULE_OPTIONS, options, "alert rules")
    free = float(opts["disk_free_percent"])
    if not 0 < free < 100:
        raise MonitoringError(f"disk_free_percent must be between 0 and 100, got {free}")
    fs = f'fstype!~"{opts["disk_fstypes_excluded"]}"'
    rules = [
        _rule(
            "HostDown",
            "up == 0",
            opts["host_down_for"],
            "critical",
            summary="{{ $labels.job }} target {{ $labels.instance }} is down",
            description="Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.job }}): "
            "the host or its exporter is down or unreachable.",
        ),
        _rule(
            "BgpSessionDown",
            "frr_bgp_peer_state != 1",
            opts["bgp_down_for"],
            "critical",
            summary="BGP session {{ $labels.instance }} -> {{ $labels.peer }} is not established",
            description="FRR on {{ $labels.instance }} (AS {{ $labels.local_as }}) reports peer "
            "{{ $labels.peer }} (AS {{ $labels.peer_as }}) in state {{ $value }} "
            "(0 = down, 2 = administratively down); every planned session should be established.",
        ),
        _rule(
            "FabricEcmpBelowIntent",
            "compleat_fabric_ecmp_prefixes_below_intent > 0",
            opts["ecmp_for"],
            "warning",
            summary="{{ $value }} fabric prefixes on {{ $labels.instance }} "
            "have fewer next hops than planned",
            description="The kernel FIB of {{ $labels.instance }} has fewer ECMP next hops than the "
            "fabric plan intends for {{ $value }} prefixes; see "
            "compleat_fabric_route_nexthops_below_intent.",
        ),
        _rule(
            "FabricEcmpCheckStale",
            f"time() - compleat_fabric_ecmp_last_check_timestamp_seconds > {int(opts['ecmp_stale_after'])}",
            opts["ecmp_stale_for"],
            "warning",
            summary="The ECMP check on {{ $labels.instance }} has not run recently",
            description="compleat-fabric-ecmp.timer on {{ $labels.instance }} last wrote its "
            "metrics {{ $value | humanizeDuration }} ago.",
        ),
        _rule(
            "DiskNearlyFull",
            f"100 * node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}}"
            f" < {free:g} and node_filesystem_readonly{{{fs}}} == 0",
            opts["disk_for"],
            "warning",
            summary="{{ $labels.mountpoint }} on {{ $labels.instance }} is nearly full",
            description='Only {{ $value | printf "%.1f" }}% of {{ $labels.mountpoint }} '
            f"({{{{ $labels.device }}}}) on {{{{ $labels.instance }}}} is free (threshold {free:g}%).",
        ),
    ]
    return {"groups": [{"name": str(opts["group"]), "rules": rules}]}


def alert_names(rules: Mapping[str, Any]) -> list[str]:
    """Names of the alerting rules of a rule file document, sorted."""
    return sorted(
        str(rule["alert"])
        for group in rules.get("groups", [])
        for rule in group.get("rules", [])
        if "alert" in rule
    )


# ------------------------------------------------------------------------------------ prometheus.yml
def prometheus_config(
    jobs: Iterable[Mapping[str, Any]], options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``prometheus.yml`` as data: a self-scrape job plus one file_sd job per entry of ``jobs``.

    ``jobs`` entries are job names (targets file ``<sd_dir>/<name>.json``) or mappings with
    ``name``, optional ``file``, ``metrics_path`` and ``scrape_interval``.  Options: see
    ``DEFAULT_CONFIG_OPTIONS``.
    """
    opts = _options(DEFAULT_CONFIG_OPTIONS, options, "prometheus config")
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": str(opts["scrape_interval"]),
            "scrape_timeout": str(opts["scrape_timeout"]),
            "evaluation_interval": str(opts["evaluation_interval"]),
        }
    }
    if opts["external_labels"]:
        config["global"]["external_labels"] = {
            str(k): str(v) for k, v in sorted(opts["external_labels"].items())
        }
    if opts["alertmanagers"]:
        config["alerting"] = {
            "alertmanagers": [
                {"static_configs": [{"targets": sorted(str(t) for t in opts["alertmanagers"])}]}
            ]
        }
    config["rule_files"] = [str(path) for path in _as_list(opts["rule_files"])]
    self_job: dict[str, Any] = {
        "job_name": "prometheus",
        "static_configs": [{"targets": [str(opts["self_target"])]}],
    }
    if opts["self_instance"]:
        self_job["static_configs"][0]["labels"] = {"instance": str(opts["self_instance"])}
    scrape = [self_job]
    names = {"prometheus"}
    entries = [{"name": job} if isinstance(job, str) else dict(job) for job in _as_list(jobs)]
    for index, job in enumerate(sorted(entries, key=lambda j: str(j.get("name", "")))):
        name = str(job.get("name", ""))
        if not name:
            raise MonitoringError(f"jobs[{index}]: a job name is required")
        if name in names:
            raise MonitoringError(f"jobs[{index}]: duplicate job name {name!r}")
        names.add(name)
        entry: dict[str, Any] = {"job_name": name}
        if job.get("scrape_interval"):
            entry["scrape_interval"] = str(job["scrape_interval"])
        if job.get("metrics_path", "/metrics") != "/metrics":
            entry["metrics_path"] = str(job["metrics_path"])
        sd_file = job.get("file") or f"{str(opts['sd_dir']).rstrip('/')}/{name}.json"
        entry["file_sd_configs"] = [{"files": [str(sd_file)]}]
        scrape.append(entry)
    config["scrape_configs"] = scrape
    return config
