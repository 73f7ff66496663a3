#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tenant service's load balancer in the metadata store, applied to the LB nodes' HAProxy."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: load_balancer
short_description: Load balancers of tenant services (VIP, listeners, members) on the HAProxy LB farm
version_added: "0.1.0"
description:
  - A B(load balancer) is one tenant service's front door, a VIP allocated from an IPAM network of
    the metadata store (O(vip_network), created with M(compleat.cloud.network)), one or more
    listeners (port, protocol V(tcp) or V(http)), a health check and an algorithm. Its B(members)
    are instances of the same tenant, named; each run resolves them to their B(current) address in
    the store, so a member recreated in another rack by M(compleat.cloud.evacuate) stays
    registered with its new address.
  - The balancer is recorded in the store, then applied to every LB node in O(nodes) (hosts set up
    with the C(compleat.cloud.lb_node) role, which also announces the VIPs to the fabric by BGP
    while HAProxy and the backends are healthy). Member changes go through HAProxy's runtime API
    (HAProxy 2.4 or later) without a reload - C(add server), C(set server ... addr/weight/state),
    and for a removal drain, wait until idle (at most O(drain_timeout)), maintenance, C(del server)
    - so no established connection is cut. A new balancer or listener, another algorithm or health
    check changes the configuration itself; the node's balancer file (O(nodes[].config)) is then
    rewritten, checked with C(haproxy -c) when HAProxy is installed where the module runs, and
    HAProxy reloaded (master-worker mode, the old worker finishes its connections).
  - Draining a member before maintenance is O(members[].state=drain) (weight 0 for new
    connections, established ones go on); a whole LB node is drained with the role's
    C(lb_node_drain) (its VIPs are withdrawn from BGP).
  - Run the module where both the store and the nodes' runtime API sockets and balancer files are
    reachable, typically once per LB node with C(delegate_to) and a PostgreSQL store
    (O(store_dsn)); the store part is idempotent, so the runs after the first only converge their
    node.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
options:
  name:
    description:
      - Balancer name, unique per tenant; 1-63 letters, digits, hyphens and underscores.
    type: str
    required: true
  tenant:
    description: Tenant that owns the balancer; members must be instances of this tenant.
    type: str
    default: default
  state:
    description: V(absent) deletes the balancer, its members and its VIP allocation.
    type: str
    choices: [present, absent]
    default: present
  vip_network:
    description:
      - IPAM network (M(compleat.cloud.network)) the VIP is allocated from (the lowest free
        address, or O(vip)). Required to create. Changing it allocates a new VIP.
    type: str
  vip_network_tenant:
    description:
      - Tenant of O(vip_network) (default O(tenant)); a shared VIP pool can belong to an operator tenant.
    type: str
  vip:
    description: A fixed VIP inside O(vip_network) (checked against its pool and allocations).
    type: str
  algorithm:
    description:
      - HAProxy balance algorithm. V(source) uses a consistent hash (members can change at runtime).
      - Default V(roundrobin) when the balancer is created; omitted keeps the current one.
    type: str
    choices: [roundrobin, leastconn, source]
  listeners:
    description:
      - The ports the VIP serves. Required to create; omitted keeps the current listeners.
    type: list
    elements: dict
    suboptions:
      port:
        description: Port on the VIP, 1..65535, unique.
        type: int
        required: true
      protocol:
        description:
          - V(tcp) (layer 4) or V(http) (layer 7; adds C(X-Forwarded-For) and an C(X-LB-Node)
            response header).
        type: str
        choices: [tcp, http]
        default: tcp
      backend_port:
        description: Port of the members (default O(listeners[].port)).
        type: int
  health_check:
    description:
      - How HAProxy checks members. Omitted keeps the current check (a TCP connect check when created).
    type: dict
    suboptions:
      type:
        description:
          - V(tcp) connect check, V(http) C(GET) of O(health_check.path) (2xx/3xx is healthy), or V(none).
        type: str
        choices: [tcp, http, none]
        default: tcp
      path:
        description: URL path of the V(http) check.
        type: str
        default: /
      interval:
        description: Milliseconds between checks, 100..3600000.
        type: int
        default: 2000
      rise:
        description: Successful checks before a member is up again, 1..100.
        type: int
        default: 2
      fall:
        description: Failed checks before a member is down, 1..100.
        type: int
        default: 3
  members:
    description:
      - Instances behind the balancer, by name (resolved to their current address at every run).
      - Omitted keeps the current members. With O(purge_members=false) the listed members are
        added or updated and the others kept.
    type: list
    elements: dict
    suboptions:
      instance:
        description: Instance name (M(compleat.cloud.instance)) of the balancer's tenant.
        type: str
        required: true
      weight:
        description: Relative weight, 0..256.
        type: int
        default: 100
      state:
        description: V(ready), V(drain) (no new connections, established ones go on) or V(maint) (out).
        type: str
        choices: [ready, drain, maint]
        default: ready
      network:
        description: Network of the instance NIC to use (default the instance's first allocated address).
        type: str
  purge_members:
    description: Remove the stored members that O(members) does not list.
    type: bool
    default: true
  nodes:
    description:
      - LB nodes to converge after the store is written (none, the store only).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node name; also the value of the C(X-LB-Node) header of its HTTP listeners.
        type: str
        required: true
      runtime_api:
        description: HAProxy runtime API with admin level - a unix socket path, or C(ipv4@HOST:PORT).
        type: str
        required: true
      config:
        description:
          - The node's balancer file, loaded by HAProxy from its balancer directory (the role's
            C(lb_node_balancer_dir)). Without it only runtime changes are possible.
        type: path
      master_socket:
        description: HAProxy master CLI socket (C(-S)); a reload is C(reload) on it.
        type: path
      reload_command:
        description:
          - Command that reloads HAProxy (for example V([systemctl, reload, haproxy])) when there
            is no O(nodes[].master_socket).
        type: list
        elements: str
      reload_timeout:
        description: Seconds to wait for the reloaded HAProxy to run the new configuration.
        type: int
        default: 15
  drain_timeout:
    description: Seconds a removed member may keep its connections before it is deleted anyway.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: The web front door of tenant acme, VIP from the operator's anycast pool
  compleat.cloud.load_balancer:
    name: web
    tenant: acme
    vip_network: vips
    vip_network_tenant: ops
    listeners:
      - {port: 80, protocol: http}
      - {port: 443, protocol: tcp}
    health_check: {type: http, path: /healthz, interval: 1000}
    members: [{instance: web-1}, {instance: web-2}]
    nodes:
      - name: "{{ inventory_hostname }}"
        runtime_api: /run/haproxy/admin.sock
        config: /etc/haproxy/balancers.d/balancers.cfg
        master_socket: /run/haproxy-master.sock
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb_nodes'] }}"

- name: Drain web-2 before its host's maintenance (new connections go elsewhere)
  compleat.cloud.load_balancer:
    name: web
    tenant: acme
    members:
      - {instance: web-2, state: drain}
    purge_members: false
    nodes: "{{ lb_nodes }}"

- name: Remove the balancer (members and VIP released)
  compleat.cloud.load_balancer:
    name: web
    tenant: acme
    state: absent
    nodes: "{{ lb_nodes }}"
"""

RETURN = r"""
load_balancer:
  description: The balancer as stored, members with their current address (null when the instance has none).
  returned: state is present
  type: dict
  sample: {"tenant": "acme", "name": "web", "vip": "10.96.0.10", "vip_network": "vips",
           "algorithm": "roundrobin",
           "listeners": [{"port": 80, "protocol": "http", "backend_port": 80}],
           "health_check": {"type": "http", "path": "/healthz", "interval": 1000, "rise": 2, "fall": 3},
           "members": [{"instance": "web-1", "weight": 100, "state": "ready", "network": null,
                        "address": "10.10.0.11"}]}
nodes:
  description: Per LB node what was (or in check mode would be) done.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "lb1", "changed": true, "wrote": false, "reloaded": false,
            "commands": ["add server lbb.acme.web.80/web-3 10.10.0.13:80 weight 100 check inter 1000 rise 2
                          fall 3", "enable health lbb.acme.web.80/web-3",
                         "set server lbb.acme.web.80/web-3 state ready"]}]
warnings:
  description: Members left out of HAProxy because their instance has no address now.
  returned: when there are any
  type: list
  elements: str
"""

import re  # noqa: E402
import shutil  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, lb  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

LISTENER_SPEC: dict[str, Any] = {
    "port": {"type": "int", "required": True},
    "protocol": {"type": "str", "choices": list(lb.PROTOCOLS), "default": "tcp"},
    "backend_port": {"type": "int"},
}
HEALTH_SPEC: dict[str, Any] = {
    "type": {"type": "str", "choices": list(lb.CHECK_TYPES), "default": "tcp"},
    "path": {"type": "str", "default": "/"},
    "interval": {"type": "int", "default": 2000},
    "rise": {"type": "int", "default": 2},
    "fall": {"type": "int", "default": 3},
}
MEMBER_SPEC: dict[str, Any] = {
    "instance": {"type": "str", "required": True},
    "weight": {"type": "int", "default": lb.DEFAULT_WEIGHT},
    "state": {"type": "str", "choices": list(lb.MEMBER_STATES), "default": "ready"},
    "network": {"type": "str"},
}
NODE_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "runtime_api": {"type": "str", "required": True},
    "config": {"type": "path"},
    "master_socket": {"type": "path"},
    "reload_command": {"type": "list", "elements": "str"},
    "reload_timeout": {"type": "int", "default": 15},
}
ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec(),
    "tenant": {"type": "str", "default": "default"},
    "vip_network": {"type": "str"},
    "vip_network_tenant": {"type": "str"},
    "vip": {"type": "str"},
    "algorithm": {"type": "str", "choices": list(lb.ALGORITHMS)},
    "listeners": {"type": "list", "elements": "dict", "options": LISTENER_SPEC},
    "health_check": {"type": "dict", "options": HEALTH_SPEC},
    "members": {"type": "list", "elements": "dict", "options": MEMBER_SPEC},
    "purge_members": {"type": "bool", "default": True},
    "nodes": {"type": "list", "elements": "dict", "options": NODE_SPEC, "default": []},
    "drain_timeout": {"type": "int", "default": 30},
}
DRAIN_TIMEOUT_RANGE = (0, 86400)
RUNTIME_API_RE = re.compile(r"^(ipv4@)?[A-Za-z0-9.-]+:\d{1,5}$")
RELOAD_TIMEOUT_RANGE = (1, 3600)


def check_nodes(nodes: list[dict[str, Any]]) -> None:
    """Node names are HTTP header values and unique; socket addresses are paths or ipv4@host:port."""
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if not lb.NODE_RE.match(node["name"] or "") or node["name"] in seen:
            raise lb.invalid(
                f"nodes[{i}].name", node["name"], "is not a unique node name.", "Use a host name."
            )
        seen.add(node["name"])
        api = node["runtime_api"]
        if not (api.startswith("/") or RUNTIME_API_RE.match(api)):
            raise lb.invalid(
                f"nodes[{i}].runtime_api",
                api,
                "is not a socket path or ipv4@host:port.",
                "See the role's docs.",
            )
        low, high = RELOAD_TIMEOUT_RANGE
        if not low <= node["reload_timeout"] <= high:
            raise lb.invalid(
                f"nodes[{i}].reload_timeout", node["reload_timeout"], f"is out of range ({low}..{high}).", ""
            )


def desired(p: dict[str, Any]) -> lb.Desired:
    """Checked parameters (InvalidInput names the key and value)."""
    lb.check_lb_name("name", p["name"])
    lb.check_lb_name("tenant", p["tenant"])
    if p["vip_network_tenant"] is not None:
        lb.check_lb_name("vip_network_tenant", p["vip_network_tenant"])
    if p["vip"] is not None:
        lb.ipam.parse_address("vip", p["vip"])
    low, high = DRAIN_TIMEOUT_RANGE
    if not low <= p["drain_timeout"] <= high:
        raise lb.invalid(
            "drain_timeout", p["drain_timeout"], f"is out of range ({low}..{high}).", "Give seconds."
        )
    check_nodes(p["nodes"])
    return lb.Desired(
        tenant=p["tenant"],
        name=p["name"],
        vip_network=p["vip_network"],
        vip_network_tenant=p["vip_network_tenant"],
        vip=p["vip"],
        algorithm=p["algorithm"],
        listeners=lb.parse_listeners(p["listeners"]) if p["listeners"] is not None else None,
        health=lb.parse_health(p["health_check"]) if p["health_check"] is not None else None,
        members=lb.parse_members(p["members"]) if p["members"] is not None else None,
        purge_members=p["purge_members"],
    )


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the store, then every node."""
    p = module.params
    want = desired(p)
    write = not module.check_mode
    with store.transaction(write=write):
        if p["state"] == "absent":
            before, after = lb.delete_balancer(store, want.tenant, want.name, write), {}
        else:
            before, after = lb.ensure_balancer(store, want, write)
        balancers = lb.all_balancers(store)
    if module.check_mode:  # the store is unchanged: put the predicted balancer in its place
        balancers = [b for b in balancers if (b.tenant, b.name) != (want.tenant, want.name)]
        if after:
            balancers.append(predicted(after))
    haproxy = shutil.which("haproxy")
    nodes = [
        lb.apply_node(
            node,
            balancers,
            check_mode=module.check_mode,
            drain_timeout=p["drain_timeout"],
            run=_common.runner(module),
            haproxy=haproxy,
        )
        for node in p["nodes"]
    ]
    result: dict[str, Any] = {
        "changed": before != after or any(n["changed"] for n in nodes),
        "nodes": nodes,
        "diff": _common.make_diff(
            {"load_balancer": before}, {"load_balancer": after}, f"{want.tenant}/{want.name}"
        ),
    }
    if after:
        result["load_balancer"] = after
        missing = [m["instance"] for m in after["members"] if not m["address"]]
        if missing:
            result["warnings"] = [
                f"member {name} has no address now: left out of HAProxy" for name in missing
            ]
    return result


def predicted(view: dict[str, Any]) -> lb.Balancer:
    """The rendering input of a balancer view (check mode)."""
    row = {**view, "health": view["health_check"]}
    return lb.balancer_of(row, view["members"])


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, precheck=desired)


if __name__ == "__main__":
    main()
