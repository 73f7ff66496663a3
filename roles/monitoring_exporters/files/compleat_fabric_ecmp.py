# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat-fabric-ecmp: kernel FIB next hops of fabric prefixes versus the fabric plan's intent.

Installed by the compleat.cloud.monitoring_exporters role on fabric routers as
/usr/local/sbin/compleat-fabric-ecmp (this file with a python3 shebang) and run by
compleat-fabric-ecmp.timer.  It reads the intent file the role renders from the plan
(``{"device": NAME, "routes": {PREFIX: NEXTHOPS, ...}}``), counts the next hops of every listed
prefix in the kernel's main routing table (``ip -j route``; multipath routes and nexthop-object
groups expanded) and writes a node-exporter textfile atomically:

    compleat_fabric_ecmp_prefixes_checked            prefixes compared
    compleat_fabric_ecmp_prefixes_below_intent       prefixes with fewer next hops than planned
    compleat_fabric_route_nexthops_below_intent{prefix, intent}
                                                     next hops of each such prefix (0 = no route)
    compleat_fabric_ecmp_last_check_timestamp_seconds

Only prefixes below intent get a per-prefix series, so a healthy 500-rack fabric costs four
series per router.  When ``ip`` fails, nothing is written (the timestamp goes stale and the
FabricEcmpCheckStale alert fires).  Python 3 standard library only.

The textfile is replaced with ``write_atomic`` of atomic_file.py, the collection's
plugins/module_utils/atomic_file.py (one copy of that code for the modules and this exporter):
the role installs it in LIB_DIR; run from a checkout, the script takes the checkout's.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

LIB_DIR = "/usr/local/lib/compleat"
for _lib in (LIB_DIR, str(Path(__file__).resolve().parents[3] / "plugins" / "module_utils")):
    if _lib not in sys.path:
        sys.path.insert(0, _lib)
from atomic_file import write_atomic  # noqa: E402

DEFAULT_INTENT = "/etc/compleat/fabric-ecmp-intent.json"
DEFAULT_OUTPUT = "/var/lib/prometheus/node-exporter/compleat_fabric_ecmp.prom"


def normalise_prefix(text: str) -> str | None:
    """Canonical ``network/len`` text of a route destination (``None`` for ``default`` or junk)."""
    try:
        return str(ipaddress.ip_network(str(text), strict=False))
    except ValueError:
        return None


def load_intent(path: str) -> dict[str, int]:
    """``{prefix: next hops}`` from the intent file (prefixes normalised, counts >= 1)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    routes = data.get("routes", {}) if isinstance(data, Mapping) else {}
    intent: dict[str, int] = {}
    for prefix, count in routes.items():
        key = normalise_prefix(prefix)
        if key is not None:
            intent[key] = max(1, int(count))
    return intent


def run_ip(args: list[str], netns: str | None = None) -> Any:
    """Run ``ip -j [-n NS] ARGS`` and parse its JSON (``[]`` for empty output)."""
    cmd = ["ip", "-j"] + (["-n", netns] if netns else []) + args
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    return json.loads(out) if out else []


def group_sizes(nexthops: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Next hop object id -> number of paths (``ip -j nexthop show``): a group counts its members."""
    sizes: dict[int, int] = {}
    for entry in nexthops:
        if "id" not in entry:
            continue
        group = entry.get("group")
        sizes[int(entry["id"])] = len(group) if isinstance(group, list) and group else 1
    return sizes


def count_nexthops(
    routes: Iterable[Mapping[str, Any]], groups: Mapping[int, int] | None = None
) -> dict[str, int]:
    """``{prefix: next hops}`` of the unicast routes of ``ip -j route`` output.

    A multipath route counts its ``nexthops``; a route using a nexthop object without an expanded
    list counts the object's group size; any other route counts one.  When a destination appears
    more than once (several metrics) the largest count wins.
    """
    counts: dict[str, int] = {}
    for route in routes:
        if route.get("type", "unicast") != "unicast":
            continue
        prefix = normalise_prefix(str(route.get("dst", "")))
        if prefix is None:
            continue
        hops = route.get("nexthops")
        if isinstance(hops, list) and hops:
            count = len(hops)
        elif "nhid" in route and groups and int(route["nhid"]) in groups:
            count = groups[int(route["nhid"])]
        else:
            count = 1
        counts[prefix] = max(count, counts.get(prefix, 0))
    return counts


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(intent: Mapping[str, int], counts: Mapping[str, int], now: float) -> str:
    """The textfile: totals, one series per prefix below intent, the check timestamp."""
    below = {prefix: counts.get(prefix, 0) for prefix, want in intent.items() if counts.get(prefix, 0) < want}
    lines = [
        "# HELP compleat_fabric_ecmp_prefixes_checked Fabric prefixes compared with the plan.",
        "# TYPE compleat_fabric_ecmp_prefixes_checked gauge",
        f"compleat_fabric_ecmp_prefixes_checked {len(intent)}",
        "# HELP compleat_fabric_ecmp_prefixes_below_intent Prefixes with fewer next hops than planned.",
        "# TYPE compleat_fabric_ecmp_prefixes_below_intent gauge",
        f"compleat_fabric_ecmp_prefixes_below_intent {len(below)}",
        "# HELP compleat_fabric_route_nexthops_below_intent Next hops of a prefix below its planned count.",
        "# TYPE compleat_fabric_route_nexthops_below_intent gauge",
    ]
    for prefix in sorted(below):
        lines.append(
            f'compleat_fabric_route_nexthops_below_intent{{intent="{intent[prefix]}",prefix="{_label(prefix)}"}}'
            f" {below[prefix]}"
        )
    lines += [
        "# HELP compleat_fabric_ecmp_last_check_timestamp_seconds When the ECMP check last ran.",
        "# TYPE compleat_fabric_ecmp_last_check_timestamp_seconds gauge",
        f"compleat_fabric_ecmp_last_check_timestamp_seconds {now:.3f}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intent", default=DEFAULT_INTENT, help=f"intent JSON (default {DEFAULT_INTENT})")
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=f"textfile to write (default {DEFAULT_OUTPUT})"
    )
    parser.add_argument("--netns", default=None, help="read the routes of this network namespace (ip -n)")
    parser.add_argument("--stdout", action="store_true", help="print the metrics instead of writing them")
    args = parser.parse_args(argv)
    try:
        intent = load_intent(args.intent)
        routes = run_ip(["route", "show", "table", "main"], args.netns)
        groups: dict[int, int] = {}
        if any("nhid" in route and not route.get("nexthops") for route in routes):
            groups = group_sizes(run_ip(["nexthop", "show"], args.netns))
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        print(f"compleat-fabric-ecmp: {exc}", file=sys.stderr)
        return 1
    text = render(intent, count_nexthops(routes, groups), time.time())
    if args.stdout:
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
