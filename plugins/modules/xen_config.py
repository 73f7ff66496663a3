#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: write an xl configuration file checked with xl's own parser library."""

from __future__ import annotations

DOCUMENTATION = r"""
module: xen_config
short_description: Write an xl configuration file checked with xl's own parser library (libxlutil)
version_added: 0.1.0
author: compleat.cloud developers (@compleat-cloud)
description:
  - Checks O(content) with C(libxlutil), the library C(xl) parses its configuration files with
    (loaded through ctypes), and writes it to O(path) only when it passes. C(xl -N create), xl's
    dry run, cannot do this on a host that is not running Xen yet - it needs the hypervisor.
  - "O(kind=domain): a domain configuration. It must parse; C(name) (a string), C(memory) and
    C(vcpus) (numbers) are required, C(type) must be C(pv), C(pvh) or C(hvm) when set, every
    C(disk) entry must pass xl's disk specification parser (C(xlu_disk_parse)) and every C(vif)
    entry must be a comma-separated list of C(key=value)."
  - "O(kind=xl_conf): xl's global configuration (C(/etc/xen/xl.conf), same syntax and parser). It
    must parse; C(autoballoon), C(vif.default.bridge) and C(lockfile) must be strings when set,
    C(autoballoon) one of C(on), C(off), C(auto), C(0), C(1)."
  - When the check fails, nothing is written and the task fails listing every problem,
    libxlutil's own messages first.
  - The file is replaced atomically (temporary file beside it, then rename) and only when its
    content differs. What it cannot check is what xl decides with the hypervisor (whether the
    kernel, the bridge, the memory exist).
  - To only check a file, run the module in check mode with the file's content (the parsed values
    are returned).
options:
  path:
    description: The file to write. Its directory must exist.
    type: path
    required: true
  content:
    description:
      - The file's content, for example C("{{ lookup('ansible.builtin.template', 'probe.cfg.j2') }}").
    type: str
    required: true
  kind:
    description: What the file is (see the description).
    type: str
    choices: [domain, xl_conf]
    default: domain
  mode:
    description: Permissions of the file when written, in octal.
    type: raw
    default: "0644"
requirements:
  - libxlutil and libxenlight of Xen 4.17 on the host (Debian package C(libxenmisc4.17), a dependency
    of C(xen-utils-4.17)).
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.full
  - compleat.cloud.attributes.platform
notes:
  - In check mode the content is checked too; when libxlutil is not installed yet (the package
    install was only predicted), the check is skipped with a warning.
"""

EXAMPLES = r"""
- name: Configure xl, checked with xl's parser library
  compleat.cloud.xen_config:
    path: /etc/xen/xl.conf
    content: "{{ lookup('ansible.builtin.template', 'xl.conf.j2') }}"
    kind: xl_conf

- name: Check an existing domain configuration without changing it
  compleat.cloud.xen_config:
    path: /etc/compleat/xen/probe.cfg
    content: "{{ lookup('ansible.builtin.file', 'probe.cfg') }}"
  check_mode: true
  register: probe
"""

RETURN = r"""
values:
  description:
    - The parsed values; for O(kind=domain) C(name), C(type), C(memory), C(vcpus), C(kernel),
      C(cmdline), C(disk), C(vif); for O(kind=xl_conf) C(autoballoon), C(vif.default.bridge),
      C(lockfile). C(null) when not set.
    - Empty when the check was skipped in check mode.
  returned: success
  type: dict
  sample: {name: compleat-probe, type: pvh, memory: 128, vcpus: 1, disk: ["vdev=xvda, target=/dev/x"]}
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.atomic_file import (  # noqa: E402
    parse_mode,
    read_text,
    write_atomic,
)
from ansible_collections.compleat.cloud.plugins.module_utils.xen_config import (  # noqa: E402
    XlCfgError,
    check_text,
    library_missing,
)


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "content": {"type": "str", "required": True},
            "kind": {"type": "str", "choices": ["domain", "xl_conf"], "default": "domain"},
            "mode": {"type": "raw", "default": "0644"},
        },
        supports_check_mode=True,
    )
    path, content, kind = module.params["path"], module.params["content"], module.params["kind"]
    try:
        mode = parse_mode(module.params["mode"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
        return
    values: dict[str, object] = {}
    missing = library_missing()
    if missing and not module.check_mode:
        module.fail_json(msg=f"cannot check {path} with xl's parser library: {missing}")
        return
    if missing:
        module.warn(f"{path} was not checked: {missing}")
    else:
        try:
            values = check_text(content, kind, path)
        except XlCfgError as exc:
            module.fail_json(msg=f"content: invalid xl configuration for {path}, nothing written:\n{exc}")
            return
    before = read_text(path)
    changed = before != content
    if changed and not module.check_mode:
        if not os.path.isdir(os.path.dirname(path) or "."):
            module.fail_json(msg=f"path: the directory of {path} does not exist (create it first)")
            return
        try:
            write_atomic(path, content, mode)
        except OSError as exc:
            module.fail_json(msg=f"path: cannot write {path}: {exc}")
            return
    result: dict[str, object] = {"changed": changed, "values": values}
    if module._diff and changed:
        result["diff"] = dict(before_header=path, before=before or "", after_header=path, after=content)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
