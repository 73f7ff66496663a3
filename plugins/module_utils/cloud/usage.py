# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Usage metering: turn usage events (create/start/stop/resize/delete) into a report per tenant and offering.

Each event carries the instance's tenant, offering, vCPUs and RAM *after* the event, so a resize
closes the intervals at the old size and opens new ones at the new size.  Intervals still open
at the end of the period are closed there.  Everything is clipped to ``[start, end)``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import Conflict

EVENTS = ("create", "start", "stop", "resize", "delete")


@dataclass
class Bucket:
    """Usage of one (tenant, offering)."""

    instances: set[str] = field(default_factory=set)
    running_s: int = 0
    allocated_s: int = 0
    vcpu_s: int = 0
    ram_mb_s: int = 0
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENTS, 0))


def overlap(a: int, b: int, start: int, end: int) -> int:
    """Seconds of ``[a, b)`` inside ``[start, end)``."""
    return max(0, min(b, end) - max(a, start))


def _close(
    buckets: dict[tuple[str, str], Bucket],
    cur: dict[str, Any],
    span: tuple[int | None, int],
    period: tuple[int, int],
    *,
    running: bool,
) -> None:
    """Add the interval ``span`` of instance state ``cur`` (clipped to ``period``) to its bucket."""
    since, until = span
    start, end = period
    if since is None:
        return
    seconds = overlap(since, until, start, end)
    if seconds <= 0:
        return
    bucket = buckets.setdefault((cur["tenant"], cur["offering"]), Bucket())
    bucket.instances.add(cur["instance_uuid"])
    if running:
        bucket.running_s += seconds
        bucket.vcpu_s += seconds * int(cur["vcpus"])
        bucket.ram_mb_s += seconds * int(cur["ram_mb"])
    else:
        bucket.allocated_s += seconds


def _instance(
    events: list[dict[str, Any]], buckets: dict[tuple[str, str], Bucket], start: int, end: int
) -> None:
    """Fold one instance's events (sorted by time) into ``buckets``."""
    running_since: int | None = None
    allocated_since: int | None = None
    cur: dict[str, Any] = events[0]
    for ev in events:
        ts = int(ev["ts"])
        if start <= ts < end:
            bucket = buckets.setdefault((ev["tenant"], ev["offering"]), Bucket())
            bucket.events[ev["event"]] += 1
            bucket.instances.add(ev["instance_uuid"])
        kind = ev["event"]
        if kind in ("stop", "delete", "resize"):
            _close(buckets, cur, (running_since, ts), (start, end), running=True)
            running_since = ts if kind == "resize" and running_since is not None else None
        if kind in ("delete", "resize"):
            _close(buckets, cur, (allocated_since, ts), (start, end), running=False)
            allocated_since = ts if kind == "resize" and allocated_since is not None else None
        if kind == "create":
            allocated_since = ts
        if kind == "start" and running_since is None:
            running_since = ts
        cur = ev
    _close(buckets, cur, (running_since, end), (start, end), running=True)
    _close(buckets, cur, (allocated_since, end), (start, end), running=False)


def report(events: Iterable[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
    """Rows per (tenant, offering), sorted, with hours rounded to 4 decimals."""
    if end <= start:
        raise Conflict(f"The period is empty ({start} >= {end}).", "Give start before end.")
    per_instance: dict[str, list[dict[str, Any]]] = {}
    for ev in sorted(events, key=lambda e: (e["instance_uuid"], int(e["ts"]), e.get("id") or 0)):
        per_instance.setdefault(ev["instance_uuid"], []).append(ev)
    buckets: dict[tuple[str, str], Bucket] = {}
    for evs in per_instance.values():
        _instance(evs, buckets, start, end)
    rows = []
    for (tenant, offering), b in sorted(buckets.items()):
        rows.append(
            {
                "tenant": tenant,
                "offering": offering,
                "instances": len(b.instances),
                "running_hours": round(b.running_s / 3600, 4),
                "allocated_hours": round(b.allocated_s / 3600, 4),
                "vcpu_hours": round(b.vcpu_s / 3600, 4),
                "ram_gb_hours": round(b.ram_mb_s / 1024 / 3600, 4),
                "events": dict(b.events),
            }
        )
    return rows


def parse_time(value: str | int | None, default: int) -> int:
    """Epoch seconds from an int, a digit string or an ISO 8601 date/time (UTC when no zone is given)."""
    if value is None or value == "":
        return default
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise Conflict(
            f"Cannot read the time {value!r}.",
            "Use ISO 8601 (2026-11-01 or 2026-11-01T00:00:00+00:00) or epoch seconds.",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())
