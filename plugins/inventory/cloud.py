# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inventory of cloud instances from the compleat.cloud metadata store."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: cloud
short_description: Instances of the compleat.cloud metadata store, grouped by host, tenant and offering
version_added: "0.1.0"
description:
  - Lists the instances recorded in the cloud stack's metadata store (SQLite file or PostgreSQL)
    as inventory hosts, in groups C(host_<hypervisor>), C(tenant_<tenant>) and C(offering_<offering>)
    (names made safe for Ansible), plus C(state_<state>).
  - Host variables carry the store's view (C(cloud_uuid), C(cloud_instance_id), C(cloud_host),
    C(cloud_tenant), C(cloud_offering), C(cloud_template), C(cloud_state), C(cloud_vcpus),
    C(cloud_ram_mb), C(cloud_networks)); C(ansible_host) is the first static address of the
    instance's NICs when it has one.
  - The inventory source file must end in C(cloud.yml) or C(cloud.yaml).
  - The store is read only; it is never created or migrated.
author:
  - compleat.cloud developers (@compleat-cloud)
requirements:
  - psycopg (3.x) for O(store_dsn)
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [compleat.cloud.cloud]
  store:
    description: Path of the SQLite metadata store. Ignored when O(store_dsn) is set.
    type: path
    default: /var/lib/compleat-cloud/cloud.db
    env:
      - name: COMPLEAT_CLOUD_STORE
  store_dsn:
    description: libpq connection string of a PostgreSQL store.
    type: str
    env:
      - name: COMPLEAT_CLOUD_STORE_DSN
  states:
    description: Only instances in these store states (default all).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
# inventories/cloud.cloud.yml
plugin: compleat.cloud.cloud
store: /var/lib/compleat-cloud/cloud.db
states: [running]
keyed_groups:
  - key: cloud_template
    prefix: template
compose:
  ansible_user: "'debian'"
"""

import ipaddress  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.inventory.group import to_safe_group_name  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import CloudError  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402


def first_address(networks: list[dict[str, Any]]) -> str | None:
    """The first static address (without prefix length) of an instance's NICs."""
    for net in networks:
        if net.get("ip"):
            return str(ipaddress.ip_interface(net["ip"]).ip)
    return None


def instance_records(store: Store, states: list[str]) -> list[dict[str, Any]]:
    """Instances with host, offering and template names, sorted by name."""
    names: dict[str, dict[int, str]] = {
        table: {r["id"]: r["name"] for r in store.query(f"SELECT id, name FROM {table}")}
        for table in ("hosts", "offerings", "images")
    }
    out = []
    for row in store.select("instances", order_by="name"):
        if states and row["state"] not in states:
            continue
        out.append(
            {
                "name": row["name"],
                "uuid": row["uuid"],
                "instance_id": row["instance_id"],
                "host": names["hosts"].get(row["host_id"]),
                "tenant": row["tenant"],
                "offering": names["offerings"].get(row["offering_id"]),
                "template": names["images"].get(row["image_id"]),
                "state": row["state"],
                "vcpus": row["vcpus"],
                "ram_mb": row["ram_mb"],
                "networks": row["networks"],
                "anti_affinity_group": row["anti_affinity_group"],
            }
        )
    return out


class InventoryModule(BaseInventoryPlugin, Constructable):
    """compleat.cloud.cloud inventory plugin."""

    NAME = "compleat.cloud.cloud"

    def verify_file(self, path: str) -> bool:
        """Accept only ``*cloud.yml`` / ``*cloud.yaml`` files."""
        return super().verify_file(path) and path.endswith(("cloud.yml", "cloud.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        """Read the store and fill the inventory."""
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            with Store.open(
                path=self.get_option("store"), dsn=self.get_option("store_dsn"), create=False, migrate=False
            ) as store:
                records = instance_records(store, self.get_option("states"))
        except CloudError as exc:
            raise AnsibleParserError(f"compleat.cloud.cloud: {exc.msg} {exc.hint}".strip()) from exc
        strict = self.get_option("strict")
        for rec in records:
            self._add(rec, strict)

    def _add(self, rec: dict[str, Any], strict: bool) -> None:
        name = rec["name"]
        self.inventory.add_host(name)
        for prefix, value in (
            ("host", rec["host"]),
            ("tenant", rec["tenant"]),
            ("offering", rec["offering"]),
            ("state", rec["state"]),
        ):
            if value:
                group = self.inventory.add_group(
                    to_safe_group_name(f"{prefix}_{value}", force=True, silent=True)
                )
                self.inventory.add_child(group, name)
        hostvars = {f"cloud_{k}": v for k, v in rec.items() if k != "name"}
        address = first_address(rec["networks"])
        if address:
            hostvars["ansible_host"] = address
        for key, value in sorted(hostvars.items()):
            self.inventory.set_variable(name, key, value)
        self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
