#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read the cloud metadata store (and optionally compare it with libvirt on every host)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_info
short_description: Read the cloud metadata store and check it against the hosts
version_added: "0.1.0"
description:
  - Returns what the metadata store records (hosts with their committed capacity, images,
    offerings, keys, instances, volumes, snapshots, stale definitions), optionally filtered.
  - With O(check_health=true) it also asks every host's libvirt, with a timeout, whether it
    answers and whether each instance's domain agrees with the store (defined, in the power state
    the store records, and with the disks and volumes, NICs (MACs), vCPUs, memory and metadata the
    store records, in the persistent definition and in the running guest). It lists dead hosts and
    disagreeing instances (what C(playbooks/health_check.yml) acts on); M(compleat.cloud.reconcile)
    repairs the drift.
  - Never writes; the store is not created or migrated.
requirements:
  - libvirt-python, only for O(check_health=true)
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.cloud_store.read_only
options:
  gather:
    description: Sections to return.
    type: list
    elements: str
    choices: [hosts, images, offerings, keys, instances, volumes, snapshots, stale_definitions, networks,
              addresses, load_balancers]
    default: [hosts, images, offerings, keys, instances, volumes, snapshots, stale_definitions, networks,
              addresses, load_balancers]
  tenant:
    description: Only instances, volumes, keys, addresses and load balancers of this tenant (and its
      networks and the rack networks).
    type: str
  host:
    description: Only this host and its instances.
    type: str
  check_health:
    description: Compare the store with libvirt on every host (see the description).
    type: bool
    default: false
  health_timeout:
    description: Seconds to wait for each host's libvirt in O(check_health).
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Everything the store knows
  compleat.cloud.cloud_info:
  register: cloud

- name: Instances of one tenant
  compleat.cloud.cloud_info:
    gather: [instances]
    tenant: acme

- name: Health of every host and instance
  compleat.cloud.cloud_info:
    gather: [hosts]
    check_health: true
  register: health
"""

RETURN = r"""
schema_version:
  description: Schema version of the store.
  returned: always
  type: int
hosts:
  description: Hosts with capacity limits, committed usage and free capacity.
  returned: when gathered
  type: list
  elements: dict
  sample: [{"name": "hv1", "state": "up", "hypervisor": "kvm", "vcpu_limit": 64, "used_vcpus": 12,
            "free_vcpus": 52, "ram_limit_mb": 63488, "used_ram_mb": 12288, "free_ram_mb": 51200,
            "instances": 6}]
images:
  description: Registered images and templates.
  returned: when gathered
  type: list
  elements: dict
offerings:
  description: Compute offerings.
  returned: when gathered
  type: list
  elements: dict
keys:
  description: Stored public keys.
  returned: when gathered
  type: list
  elements: dict
instances:
  description: Instances with host, offering and template names.
  returned: when gathered
  type: list
  elements: dict
volumes:
  description: Volumes with the name of the instance they are attached to.
  returned: when gathered
  type: list
  elements: dict
snapshots:
  description: Internal snapshots and backups.
  returned: when gathered
  type: list
  elements: dict
stale_definitions:
  description: Old definitions waiting on evacuated hosts for M(compleat.cloud.evacuate) V(state=cleaned).
  returned: when gathered
  type: list
  elements: dict
networks:
  description: Tenant and rack networks (M(compleat.cloud.network)) with bridge, capacity and allocated count.
  returned: when gathered
  type: list
  elements: dict
  sample: [{"name": "acme-net", "tenant": "acme", "kind": "tenant", "rack": 0, "cidr": "10.10.0.0/24",
            "gateway": "10.10.0.1", "vni": 10010, "mtu": 1450, "bridge": "brv10010", "capacity": 253,
            "allocated": 2}]
addresses:
  description: IPAM allocations, by tenant, network and address (the instance, its NIC index and MAC).
  returned: when gathered
  type: list
  elements: dict
  sample: [{"network": "acme-net", "tenant": "acme", "kind": "tenant", "rack": null, "cidr": "10.10.0.0/24",
            "address": "10.10.0.2", "instance": "web1", "instance_tenant": "acme", "nic_index": 0,
            "mac": "52:54:00:12:34:56"}]
load_balancers:
  description:
    - Load balancers (M(compleat.cloud.load_balancer)) by tenant and name, as that module returns them
      (VIP, its network, listeners, health check, algorithm) with their members at their current
      addresses (C(address) null while the instance has none).
  returned: when gathered
  type: list
  elements: dict
  sample: [{"tenant": "acme", "name": "web", "vip": "10.96.0.2", "vip_network": "vips",
            "algorithm": "roundrobin", "listeners": [{"port": 80, "protocol": "http", "backend_port": 8080}],
            "health_check": {"type": "http", "path": "/", "interval": 2000, "rise": 2, "fall": 3},
            "members": [{"instance": "web1", "weight": 100, "state": "ready", "network": null,
                         "address": "10.10.0.2"}]}]
health:
  description: Result of O(check_health).
  returned: when check_health is true
  type: dict
  contains:
    hosts:
      description: Per host, whether libvirt answered and the error if not.
      type: dict
    instances:
      description: Per instance, the store's state, libvirt's state, whether the domain agrees with the
        store, and the drift (C(missing); C(config) and C(live), the differing fields of the
        definition and of the running guest; C(disks) and C(live_disks), the extra, missing and
        re-pointed disk targets).
      type: dict
      sample: {"web1": {"host": "hv1", "store": "running", "libvirt": "running", "agrees": false,
               "drift": {"missing": false, "config": ["disks"], "live": ["disks"],
                         "disks": {"extra": ["vdb"], "missing": [], "other_source": []},
                         "live_disks": {"extra": ["vdb"], "missing": [], "other_source": []}}}}
    dead_hosts:
      description: Hosts marked V(up) whose libvirt did not answer.
      type: list
      elements: str
    mismatched:
      description: Instances whose domain is missing, in another power state, or drifted from the store.
      type: list
      elements: str
"""

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    ipam,
    lb,
    lifecycle,
    placement,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

HIDDEN = frozenset({"id", "created_at", "updated_at"})
Section = Callable[[Store], list[dict[str, Any]]]


def names(store: Store, table: str) -> dict[int, str]:
    """id -> name of a table."""
    return {r["id"]: r["name"] for r in store.query(f"SELECT id, name FROM {table}")}


def hosts_section(store: Store) -> list[dict[str, Any]]:
    """Host rows with limits and committed usage."""
    usage = {h.name: h for h in placement.load_hosts(store)}
    out = []
    for row in store.select("hosts", order_by="name"):
        h = usage[row["name"]]
        out.append(
            {
                **_common.public(row, HIDDEN),
                "vcpu_limit": h.vcpu_limit,
                "used_vcpus": h.used_vcpus,
                "free_vcpus": h.free_vcpus,
                "ram_limit_mb": h.ram_limit_mb,
                "used_ram_mb": h.used_ram_mb,
                "free_ram_mb": h.free_ram_mb,
                "instances": h.instances,
            }
        )
    return out


def instances_section(store: Store) -> list[dict[str, Any]]:
    """Instance rows with names instead of ids."""
    hosts, offerings, images = names(store, "hosts"), names(store, "offerings"), names(store, "images")
    out = []
    for row in store.select("instances", order_by="name"):
        item = _common.public(row, HIDDEN | {"host_id", "offering_id", "image_id"})
        item.update(
            host=hosts.get(row["host_id"]),
            offering=offerings.get(row["offering_id"]),
            template=images.get(row["image_id"]),
        )
        out.append(item)
    return out


def volumes_section(store: Store) -> list[dict[str, Any]]:
    """Volume rows with instance and host names."""
    insts, hosts = names(store, "instances"), names(store, "hosts")
    out = []
    for row in store.select("volumes", order_by="name"):
        item = _common.public(row, HIDDEN | {"host_id"})
        item.update(attached_to=insts.get(row["attached_to"]), host=hosts.get(row["host_id"]))
        out.append(item)
    return out


def load_balancers_section(store: Store) -> list[dict[str, Any]]:
    """Every balancer as compleat.cloud.load_balancer returns it, by tenant and name."""
    networks = names(store, "networks")
    rows = sorted(store.select("load_balancers"), key=lambda r: (r["tenant"], r["name"]))
    return [lb.view(r, lb.members_of(store, int(r["id"])), networks.get(r["network_id"])) for r in rows]


def networks_section(store: Store) -> list[dict[str, Any]]:
    """Network rows with their bridge, usable capacity and allocated address count."""
    return [
        {
            **_common.public(r, HIDDEN),
            "bridge": ipam.bridge_of(r),
            "capacity": ipam.pool_of(r).capacity(),
            "allocated": ipam.count_allocated(store, r["id"]),
        }
        for r in store.select("networks", order_by="name")
    ]


def stale_definitions_section(store: Store) -> list[dict[str, Any]]:
    """Old definitions waiting on their host, with the host name."""
    hosts = names(store, "hosts")
    return [
        {**_common.public(r, HIDDEN | {"host_id"}), "host": hosts.get(r["host_id"])}
        for r in store.select("stale_definitions", order_by="instance_name")
    ]


def rows_section(table: str, order_by: str = "name") -> Section:
    """A section that is the table's rows as they are (less the hidden columns)."""

    def read(store: Store) -> list[dict[str, Any]]:
        return [_common.public(r, HIDDEN) for r in store.select(table, order_by=order_by)]

    return read


# Every section gather can return, in the order of the default, with its reader.
SECTIONS: dict[str, Section] = {
    "hosts": hosts_section,
    "images": rows_section("images"),
    "offerings": rows_section("offerings"),
    "keys": rows_section("keys"),
    "instances": instances_section,
    "volumes": volumes_section,
    "snapshots": rows_section("snapshots", order_by="instance_name"),
    "stale_definitions": stale_definitions_section,
    "networks": networks_section,
    "addresses": ipam.allocations,
    "load_balancers": load_balancers_section,
}
ARGUMENT_SPEC: dict[str, Any] = {
    "gather": {"type": "list", "elements": "str", "choices": list(SECTIONS), "default": list(SECTIONS)},
    "tenant": {"type": "str"},
    "host": {"type": "str"},
    "check_health": {"type": "bool", "default": False},
    "health_timeout": {"type": "int", "default": 10},
}


def gather(store: Store, sections: list[str]) -> dict[str, Any]:
    """Every requested section, unfiltered."""
    return {section: SECTIONS[section](store) for section in sections}


def filter_addresses(data: dict[str, Any], tenant: str | None, host: str | None) -> None:
    """Networks of ``tenant`` (and the shared rack networks), addresses of its (or ``host``'s) instances."""
    if tenant:
        if "networks" in data:
            data["networks"] = [r for r in data["networks"] if r["tenant"] in (tenant, "")]
        if "addresses" in data:
            data["addresses"] = [r for r in data["addresses"] if r["instance_tenant"] == tenant]
    if host and "addresses" in data and "instances" in data:
        on_host = {i["name"] for i in data["instances"]}
        data["addresses"] = [r for r in data["addresses"] if r["instance"] in on_host]


def apply_filters(data: dict[str, Any], tenant: str | None, host: str | None) -> dict[str, Any]:
    """Keep only what belongs to ``tenant`` and/or ``host``."""
    if tenant:
        for section in ("instances", "volumes", "keys", "load_balancers"):
            if section in data:
                data[section] = [r for r in data[section] if r.get("tenant") == tenant]
    if host:
        for section in ("hosts",):
            if section in data:
                data[section] = [r for r in data[section] if r["name"] == host]
        for section in ("instances", "stale_definitions", "volumes"):
            if section in data:
                data[section] = [r for r in data[section] if r.get("host") == host]
    filter_addresses(data, tenant, host)
    if "snapshots" in data and "instances" in data and (tenant or host):
        keep = {i["uuid"] for i in data["instances"]}
        data["snapshots"] = [s for s in data["snapshots"] if s["instance_uuid"] in keep]
    return data


def instance_health(
    store: Store, conn: Any | None, inst: dict[str, Any], host: dict[str, Any]
) -> dict[str, Any]:
    """Power state and field drift of one instance (``unknown`` when its host does not answer)."""
    entry: dict[str, Any] = {"host": host["name"], "store": inst["state"]}
    if conn is None:
        return {**entry, "libvirt": "unknown", "agrees": False, "drift": {}}
    if inst["state"] == "building":  # files and definition are still being made
        dom = virt.lookup(conn, inst["uuid"])
        return {**entry, "libvirt": virt.power_state(dom), "agrees": True, "drift": {}}
    found = lifecycle.drift(store, inst, host, virt.lookup(conn, inst["uuid"]))
    detail = {k: found[k] for k in ("missing", "config", "live", "disks", "live_disks")}
    return {**entry, "libvirt": found["power"]["libvirt"], "agrees": found["agrees"], "drift": detail}


def health(store: Store, timeout: float, host_filter: str | None) -> dict[str, Any]:
    """Ask every host's libvirt about the instances the store puts there."""
    hosts: dict[str, Any] = {}
    instances: dict[str, Any] = {}
    dead, mismatched = [], []
    host_rows = [
        h for h in store.select("hosts", order_by="name") if not host_filter or h["name"] == host_filter
    ]
    for host in host_rows:
        conn, error = virt.try_connect(host["uri"], timeout)
        hosts[host["name"]] = {"state": host["state"], "reachable": conn is not None, "error": error or None}
        if conn is None and host["state"] == "up":
            dead.append(host["name"])
        for inst in store.select("instances", order_by="name", host_id=host["id"]):
            instances[inst["name"]] = instance_health(store, conn, inst, host)
            if conn is not None and not instances[inst["name"]]["agrees"]:
                mismatched.append(inst["name"])
    return {"hosts": hosts, "instances": instances, "dead_hosts": dead, "mismatched": mismatched}


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Read the store."""
    p = module.params
    data = apply_filters(gather(store, p["gather"]), p["tenant"], p["host"])
    result: dict[str, Any] = {"changed": False, "schema_version": store.schema_version(), **data}
    if p["check_health"]:
        virt.require_libvirt()
        result["health"] = health(store, p["health_timeout"], p["host"])
    return result


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, write=False)


if __name__ == "__main__":
    main()
