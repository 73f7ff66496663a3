#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Usage report per tenant and offering for a period, from the usage events of the metadata store."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: usage_report
short_description: Usage per tenant and offering for a period (metering)
version_added: "0.1.0"
description:
  - Reads the usage events that the cloud modules record (C(create), C(start), C(stop), C(resize),
    C(delete)) and reports, per tenant and offering, the running hours, vCPU-hours, RAM GiB-hours,
    allocated hours (from create to delete, stopped time included), the number of instances
    and the count of each event in the period.
  - Intervals are clipped to the period; an instance still running at O(end) counts until O(end).
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.cloud_store.read_only
options:
  start:
    description: Start of the period (ISO 8601 date or time, UTC unless a zone is given, or epoch seconds).
      Default 30 days before O(end).
    type: str
  end:
    description: End of the period, excluded (same formats). Default now (this second included).
    type: str
  tenant:
    description: Only this tenant.
    type: str
  offering:
    description: Only this offering.
    type: str
"""

EXAMPLES = r"""
- name: November 2026
  compleat.cloud.usage_report:
    start: "2026-11-01"
    end: "2026-12-01"
  register: usage

- name: One tenant, last 30 days
  compleat.cloud.usage_report:
    tenant: acme
"""

RETURN = r"""
period:
  description: The period as epoch seconds and ISO 8601 UTC.
  returned: always
  type: dict
  sample: {"start": 1793491200, "end": 1796083200, "start_iso": "2026-11-01T00:00:00+00:00",
           "end_iso": "2026-12-01T00:00:00+00:00"}
usage:
  description: One row per tenant and offering, sorted.
  returned: always
  type: list
  elements: dict
  sample: [{"tenant": "acme", "offering": "small", "instances": 2, "running_hours": 1440.0,
            "allocated_hours": 1440.0, "vcpu_hours": 1440.0, "ram_gb_hours": 1440.0,
            "events": {"create": 0, "start": 1, "stop": 1, "resize": 0, "delete": 0}}]
"""

import datetime  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, usage  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "start": {"type": "str"},
    "end": {"type": "str"},
    "tenant": {"type": "str"},
    "offering": {"type": "str"},
}
DAY = 86400


def iso(ts: int) -> str:
    """ISO 8601 UTC of epoch seconds."""
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat()


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Build the report."""
    p = module.params
    end = usage.parse_time(p["end"], store.now() + 1)
    start = usage.parse_time(p["start"], end - 30 * DAY)
    sql, params = "SELECT * FROM usage_events WHERE ts < ?", [end]
    if p["tenant"]:
        sql, params = sql + " AND tenant = ?", [*params, p["tenant"]]
    rows = usage.report(store.query(sql + " ORDER BY instance_uuid, ts, id", params), start, end)
    if p["offering"]:
        rows = [r for r in rows if r["offering"] == p["offering"]]
    return {
        "changed": False,
        "usage": rows,
        "period": {"start": start, "end": end, "start_iso": iso(start), "end_iso": iso(end)},
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, write=False)


if __name__ == "__main__":
    main()
