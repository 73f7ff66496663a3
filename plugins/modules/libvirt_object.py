#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: a libvirt network or storage pool, defined, started and autostarted through virsh."""

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirt_object
short_description: Define, start, autostart or remove a libvirt network or storage pool through virsh
version_added: 0.1.0
author: compleat.cloud developers (@compleat-cloud)
description:
  - Brings one libvirt network (O(kind=network)) or storage pool (O(kind=pool)) to the definition
    O(xml) and to the state O(active), O(autostart), or removes it (O(state=absent)), with the
    C(virsh) command of the host.
  - The definition is redefined only when it differs from the object's inactive definition
    (C(virsh net-dumpxml --inactive), C(pool-dumpxml --inactive)). The comparison is by inclusion -
    every element, attribute and non-blank text of O(xml) must be in the current definition with
    the same value - so what libvirt adds by itself (the UUID, a MAC address, capacity figures,
    default permissions) is not a difference. Comments of O(xml) are ignored.
  - An existing object is redefined under its own UUID (libvirt refuses a definition of the same
    name with another one), unless O(xml) has a C(<uuid>) of its own.
  - A running object whose definition changed is restarted (stopped and started) when O(restart)
    is true, so the new definition applies at once. A pool that libvirt cannot stop (a C(netfs) pool
    whose mount is in use) keeps running with a warning; its new definition applies at its next
    start.
  - O(state=absent) stops the object when it runs and undefines it; the storage of a pool (its
    directory, volume group or export) is not touched.
options:
  kind:
    description: What the object is.
    type: str
    choices: [network, pool]
    required: true
  name:
    description:
      - The name of the network or pool.
      - The C(<name>) of O(xml) must be the same (it is added when missing).
    type: str
    required: true
  xml:
    description:
      - The definition, a C(<network>) for O(kind=network), a C(<pool>) for O(kind=pool), for example
        C("{{ lookup('ansible.builtin.template', 'libvirt-pool.xml.j2') }}").
      - Required with O(state=present).
    type: str
  state:
    description: Whether the object is defined (V(present)) or not (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  active:
    description: Whether the object runs (network active, pool running). Only with O(state=present).
    type: bool
    default: true
  autostart:
    description: Whether libvirt starts the object when it starts. Only with O(state=present).
    type: bool
    default: true
  restart:
    description:
      - Whether a running object whose definition changed is stopped and started again.
      - When false, the new definition applies at the object's next start.
    type: bool
    default: true
  uri:
    description: The libvirt connection URI (C(virsh --connect)).
    type: str
    default: qemu:///system
requirements:
  - C(virsh) on the host (Debian package C(libvirt-clients)).
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.full
  - compleat.cloud.attributes.platform
notes:
  - In check mode nothing is defined, started or stopped; when C(virsh) is not installed yet (the
    package install was only predicted), the object is taken as missing, with a warning.
  - With C(--diff) the module shows the definition before and after (in check mode, the definition
    that would be defined) and the state (C(active), C(autostart)) before and after.
"""

EXAMPLES = r"""
- name: A bridge network for guests, active and autostarted
  compleat.cloud.libvirt_object:
    kind: network
    name: vm
    xml: |
      <network>
        <name>vm</name>
        <forward mode='bridge'/>
        <bridge name='vm'/>
      </network>

- name: A storage pool from a template
  compleat.cloud.libvirt_object:
    kind: pool
    name: scratch
    xml: "{{ lookup('ansible.builtin.template', 'libvirt-pool.xml.j2') }}"

- name: Remove libvirt's NAT network "default"
  compleat.cloud.libvirt_object:
    kind: network
    name: default
    state: absent
"""

RETURN = r"""
actions:
  description:
    - What was done (in check mode, what would be done), in order - V(define), V(autostart),
      V(noautostart), V(start), V(restart), V(destroy), V(undefine).
    - V(restart) is listed also when a pool could not be stopped (see the warning).
  returned: success
  type: list
  elements: str
  sample: [define, autostart, start]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.libvirt_object import (  # noqa: E402
    KINDS,
    Current,
    LibvirtError,
    Plan,
    Virsh,
    plan,
)


def state_text(current: Current) -> str:
    """The state part of the diff."""
    if not current.exists:
        return "defined: false\n"
    return f"active: {str(current.active).lower()}\nautostart: {str(current.autostart).lower()}\n"


def wanted(current: Current, todo: Plan, present: bool) -> Current:
    """The state ``current`` is in after ``todo``."""
    if not present:
        return Current(exists=False)
    steps = todo.steps
    return Current(
        exists=True,
        active=("start" in steps or "restart" in steps or current.active) and "destroy" not in steps,
        autostart=("autostart" in steps or current.autostart) and "noautostart" not in steps,
    )


def diffs(label: str, current: Current, todo: Plan, after_xml: str, present: bool) -> list[dict[str, str]]:
    """Ansible diffs of the definition (when it changes) and of the state (when it changes) of the
    object ``label`` ("network vm")."""
    result = []
    if todo.define is not None or (not present and current.exists):
        result.append(
            {
                "before_header": f"{label} (definition)",
                "before": current.xml,
                "after_header": f"{label} (definition)",
                "after": after_xml,
            }
        )
    before, after = state_text(current), state_text(wanted(current, todo, present))
    if before != after:
        result.append(
            {
                "before_header": f"{label} (state)",
                "before": before,
                "after_header": f"{label} (state)",
                "after": after,
            }
        )
    return result


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={
            "kind": {"type": "str", "choices": list(KINDS), "required": True},
            "name": {"type": "str", "required": True},
            "xml": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "active": {"type": "bool", "default": True},
            "autostart": {"type": "bool", "default": True},
            "restart": {"type": "bool", "default": True},
            "uri": {"type": "str", "default": "qemu:///system"},
        },
        required_if=[("state", "present", ["xml"])],
        supports_check_mode=True,
    )
    params = module.params
    kind, name, present = params["kind"], params["name"], params["state"] == "present"
    binary = module.get_bin_path("virsh")
    if binary is None and not module.check_mode:
        module.fail_json(msg=f"{kind} {name}: virsh not found (install libvirt-clients)")
        return
    virsh = Virsh(module.run_command, binary or "virsh", params["uri"], kind, name)
    try:
        if binary is None:
            module.warn(f"{kind} {name}: virsh not found, the {kind} is taken as missing")
            current = Current(exists=False)
        else:
            current = virsh.read()
        todo = plan(
            kind,
            name,
            current,
            xml=params["xml"],
            present=present,
            active=params["active"],
            autostart=params["autostart"],
        )
        if not params["restart"]:
            todo = Plan(define=todo.define, steps=[step for step in todo.steps if step != "restart"])
        after_xml = todo.define or ""
        if not module.check_mode:
            if todo.define is not None:
                virsh.define(todo.define, module.tmpdir)
                after_xml = virsh.call("dumpxml", "--inactive", name)
            for step in todo.steps:
                warning = virsh.step(step)
                if warning:
                    module.warn(warning)
    except LibvirtError as exc:
        module.fail_json(msg=str(exc))
        return
    actions = (["define"] if todo.define is not None else []) + todo.steps
    result: dict[str, object] = {"changed": todo.changed, "actions": actions}
    if module._diff and todo.changed:
        result["diff"] = diffs(f"{kind} {name}", current, todo, after_xml, present)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
