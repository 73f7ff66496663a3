#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare one fabric router's FRR state with the fabric's intent."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fabric_intent
short_description: Compare a fabric router's FRR state with the rendered fabric intent
version_added: "0.1.0"
description:
  - Derives what one router of a rendered fabric must see from the render output's
    C(topology.json) (BGP sessions Established or OSPF adjacencies Full, every fabric prefix
    present with its ECMP next-hop count, the kernel FIB matching FRR, no leaked BGP prefixes)
    and compares it with FRR's JSON output collected from the router.
  - Read-only; never changes anything. Usually run with C(delegate_to=localhost) where the
    render output lives, fed with output of C(vtysh -c '... json') gathered on the router; see
    C(playbooks/fabric_validate.yml).
author:
  - compleat.cloud developers (@compleat-cloud)
attributes:
  check_mode:
    support: full
    description: Runs unchanged in check mode (it only reads).
  diff_mode:
    support: none
    description: Nothing to show a diff of.
  platform:
    platforms: posix
    support: full
    description: Runs wherever the render output is, usually the controller (C(delegate_to=localhost)).
options:
  topology:
    description:
      - Path of the render output's C(topology.json) (on the host the module runs on).
      - Mutually exclusive with O(topology_data).
    type: path
  topology_data:
    description:
      - The parsed C(topology.json) document itself.
    type: dict
  device:
    description:
      - Name of the router in the topology (for example C(r001-tor1) or C(spine01)).
    type: str
    required: true
  routes:
    description:
      - Parsed output of C(show ip route json).
      - The prefix and path checks are skipped when omitted.
    type: dict
  bgp_summary:
    description:
      - Parsed output of C(show bgp vrf default ipv4 unicast summary json) (BGP fabrics).
    type: dict
  ospf_neighbors:
    description:
      - Parsed output of C(show ip ospf neighbor json) (OSPF fabrics).
    type: dict
  kernel_routes:
    description:
      - Parsed output of C(ip -j route show) on the router; enables the FIB checks.
    type: list
    elements: dict
  fail_on_differences:
    description:
      - Fail the task when any difference is found (the differences are still returned).
    type: bool
    default: false
notes:
  - Path counts follow the two-tier Clos of the plan. A prefix that no equal-cost path can
    reach (another spine's loopback on a BGP spine) is not checked.
"""

EXAMPLES = r"""
- name: Read the routing table of a router
  ansible.builtin.command:
    argv: [vtysh, -c, show ip route json]
  register: routes
  changed_when: false

- name: Read its BGP sessions
  ansible.builtin.command:
    argv: [vtysh, -c, show bgp vrf default ipv4 unicast summary json]
  register: bgp
  changed_when: false

- name: Compare with the fabric intent
  compleat.cloud.fabric_intent:
    topology: /srv/fabric/out/topology.json
    device: "{{ inventory_hostname }}"
    routes: "{{ routes.stdout | from_json }}"
    bgp_summary: "{{ bgp.stdout | from_json }}"
  delegate_to: localhost
  register: intent

- name: Show what differs
  ansible.builtin.debug:
    var: intent.messages
"""

RETURN = r"""
ok:
  description: True when the router matches the intent.
  returned: always
  type: bool
  sample: false
differences:
  description: Every difference, sorted (device, kind, subject).
  returned: always
  type: list
  elements: dict
  contains:
    device:
      description: Router name.
      type: str
    kind:
      description: >-
        One of C(session-down), C(session-missing), C(prefix-missing), C(path-count),
        C(fib-path-count), C(unexpected-prefix).
      type: str
    subject:
      description: The BGP peer, OSPF neighbor or prefix concerned.
      type: str
    expected:
      description: What the intent says.
      type: str
    observed:
      description: What the router shows.
      type: str
    message:
      description: The whole difference as one line.
      type: str
  sample:
    - device: r001-tor1
      kind: path-count
      subject: 10.0.2.0/24
      expected: 3 paths
      observed: 2 paths (10.254.0.16%up1, 10.254.0.18%up2)
      message: "r001-tor1: path-count 10.0.2.0/24: expected 3 paths, observed 2 paths (...)"
messages:
  description: The differences as one line each.
  returned: always
  type: list
  elements: str
intent:
  description: What the router must see (sessions, OSPF neighbors, prefixes with path counts).
  returned: always
  type: dict
"""

import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent  # noqa: E402


def run(module: AnsibleModule) -> dict[str, object]:
    """Build the intent, compare, return the result dict."""
    params = module.params
    topology = params["topology_data"]
    if topology is None:
        try:
            with open(params["topology"], encoding="utf-8") as handle:
                topology = json.load(handle)
        except (OSError, ValueError) as exc:
            module.fail_json(msg=f"cannot read topology {params['topology']}: {exc}")
    device = params["device"]
    intents = fabric_intent.intent_from_topology(topology, only=[device])
    if device not in intents:
        routers = sorted(d["name"] for d in topology.get("devices", []) if d.get("config"))
        module.fail_json(msg=f"{device} is not a router of this fabric", routers=routers)
    observed = {
        key: params[key]
        for key in ("routes", "bgp_summary", "ospf_neighbors", "kernel_routes")
        if params[key] is not None
    }
    diffs = fabric_intent.compare(intents[device], observed)
    return {
        "changed": False,
        "ok": not diffs,
        "differences": [diff.as_dict() for diff in diffs],
        "messages": [str(diff) for diff in diffs],
        "intent": intents[device].as_dict(),
    }


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={
            "topology": {"type": "path"},
            "topology_data": {"type": "dict"},
            "device": {"type": "str", "required": True},
            "routes": {"type": "dict"},
            "bgp_summary": {"type": "dict"},
            "ospf_neighbors": {"type": "dict"},
            "kernel_routes": {"type": "list", "elements": "dict"},
            "fail_on_differences": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("topology", "topology_data")],
        required_one_of=[("topology", "topology_data")],
        supports_check_mode=True,
    )
    result = run(module)
    if module.params["fail_on_differences"] and not result["ok"]:
        module.fail_json(msg=f"{len(result['differences'])} differences from intent", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
