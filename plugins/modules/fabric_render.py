#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: render a fabric file into an output directory."""

from __future__ import annotations

DOCUMENTATION = r"""
module: fabric_render
short_description: Render a fabric file into FRR configs, topology, address plan and docs
version_added: 0.1.0
author: compleat.cloud developers (@compleat-cloud)
description:
  - Validates the fabric file as a whole and, when it has no problem, derives the plan by the
    addressing law and writes every output into O(dest) atomically (each file is rendered into a
    temporary directory beside O(dest) first and moved into place only when all rendered).
  - "Outputs: C(<device>/frr.conf) for every spine and ToR (and host with BGP-to-host),
    C(topology.json), C(plan.csv), C(fabric.md), C(racks/<rack>.md) and C(fabric.svg)."
  - Idempotent - files whose content is unchanged are not touched, and the task reports
    C(changed) only when a file is created, modified or removed. Files an earlier run wrote that
    the fabric no longer has (a removed rack's pages, say) are removed.
  - When the fabric file has problems nothing is written and the task fails listing every
    problem with its key path.
  - The task also fails, writing nothing, when O(dest) is an existing file or cannot be written;
    the problem is listed under the key path C(dest), with the fabric file's problems if any.
  - "Runs where the fabric file is, normally the controller (C(hosts: localhost) or
    C(delegate_to: localhost))."
options:
  src:
    description:
      - Path of the fabric YAML file.
      - Give an absolute path (for example with the P(ansible.builtin.realpath#filter) filter on
        the controller); a relative one is resolved from the module's working directory, which is
        not the directory C(ansible-playbook) was started in.
    type: path
    required: true
  dest:
    description:
      - Output directory; created when missing. Give an absolute path, as for O(src).
    type: path
    required: true
  frr:
    description: Also render the C(<device>/frr.conf) files.
    type: bool
    default: true
  bgp_password:
    description:
      - The BGP session password when the fabric file sets C(bgp.passwords) to C(fabric) (used as
        it is on every session) or C(per_session) (each session's key is derived from it).
      - Give it from a vault or otherwise secret variable. It is written only into the
        C(<device>/frr.conf) files, never into C(topology.json), C(plan.csv) or the docs, and is
        not logged (C(no_log)).
      - 1 to 80 printable ASCII characters without spaces. Ignored when C(bgp.passwords) is
        C(none).
    type: str
    required: false
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff lists the files that are (or would be) created, modified and removed.
  platform:
    platforms: posix
notes:
  - The same engine is available without Ansible as C(bin/compleat-fabric render FILE OUT).
seealso:
  - plugin: compleat.cloud.fabric_plan
    plugin_type: filter
  - plugin: compleat.cloud.fabric_whois
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Render the lab fabric
  compleat.cloud.fabric_render:
    src: "{{ 'inventories/lab/fabric.yml' | ansible.builtin.realpath }}"
    dest: "{{ 'build/fabric/lab' | ansible.builtin.realpath }}"
  delegate_to: localhost

- name: What would change (with --check --diff)
  compleat.cloud.fabric_render:
    src: "{{ fabric_file }}"
    dest: "{{ fabric_out }}"
  check_mode: true
  register: fabric_preview
"""

RETURN = r"""
dest:
  description: The output directory (absolute).
  returned: always
  type: str
  sample: /srv/fabric/lab
files:
  description: Every file of the render, relative to O(dest), sorted.
  returned: success
  type: list
  elements: str
  sample: [fabric.md, fabric.svg, plan.csv, r001-tor1/frr.conf, racks/r001.md, topology.json]
created:
  description: Files created (or that would be created in check mode).
  returned: success
  type: list
  elements: str
modified:
  description: Files whose content changed (or would change).
  returned: success
  type: list
  elements: str
removed:
  description: Files of an earlier render the fabric no longer has, removed (or that would be).
  returned: success
  type: list
  elements: str
summary:
  description: Counts of the plan.
  returned: success
  type: dict
  sample: {name: lab, routing: bgp, spines: 2, racks: 3, tors: 3, hosts: 6, links: 7}
errors:
  description: Every problem of the fabric file, with its key path; only when the file is invalid.
  returned: failure
  type: list
  elements: dict
  sample: [{path: networks.mgmt.pool, value: 10.0.0.1/16, message: "malformed CIDR: host bits set"}]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import FabricValidationError  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_summary  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.hardening import password_problems  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import (  # noqa: E402
    RenderResult,
    output_problems,
    render_all,
)


def _diff(result: RenderResult) -> dict[str, str]:
    """A prepared diff listing the files that change."""
    lines = [f"+ {rel}" for rel in result.created]
    lines += [f"~ {rel}" for rel in result.modified]
    lines += [f"- {rel}" for rel in result.removed]
    counts = f"{len(result.created)} created, {len(result.modified)} modified, {len(result.removed)} removed"
    header = f"{result.out_dir}: {counts}"
    return {"prepared": "\n".join([header, *lines]) + "\n"}


def run_module() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "frr": {"type": "bool", "default": True},
            "bgp_password": {"type": "str", "no_log": True},
        },
        supports_check_mode=True,
    )
    src, dest = module.params["src"], module.params["dest"]
    problems = output_problems(dest, label="dest")
    fabric = None
    try:
        fabric = load_fabric(src)
    except FabricValidationError as exc:
        problems += exc.errors
    if fabric is not None and module.params["frr"]:
        problems += password_problems(fabric.bgp.passwords, module.params["bgp_password"])
    if problems or fabric is None:
        failure = FabricValidationError(problems)
        module.fail_json(msg=str(failure), errors=[error.to_dict() for error in failure.errors], dest=dest)
        return
    plan = build_plan(fabric)
    try:
        result = render_all(
            plan,
            dest,
            frr=module.params["frr"],
            check=module.check_mode,
            bgp_password=module.params["bgp_password"],
        )
    except OSError as exc:
        module.fail_json(msg=f"cannot write {dest}: {exc}", dest=dest)
    output = {
        "changed": result.changed,
        "dest": result.out_dir,
        "files": result.files,
        "created": result.created,
        "modified": result.modified,
        "removed": result.removed,
        "summary": plan_summary(plan),
    }
    if module._diff and result.changed:
        output["diff"] = _diff(result)
    module.exit_json(**output)


def main() -> None:
    """Module main."""
    run_module()


if __name__ == "__main__":
    main()
