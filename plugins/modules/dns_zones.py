#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: install the zone files of a zone bundle, all or nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
module: dns_zones
short_description: Install the zone files of a zone bundle, checked with named-checkzone, all or nothing
version_added: 0.1.0
author: compleat.cloud developers (@compleat-cloud)
description:
  - Takes every zone of a DNS server as one text, the I(bundle) the C(compleat.cloud.dns) role
    renders from the fabric plan - each zone starts with a marker line
    C(;; compleat-zone <origin> <file name>) followed by the zone file's text; comment lines before
    the first marker are the bundle's header.
  - Writes the zone files (C(db.<zone>)) of O(path) that differ from the bundle, also repairing
    hand edits, removes the other C(db.*) files of O(path) (zones the plan no longer has) and keeps
    a copy of the bundle as O(path)/O(bundle).
  - Every zone file it writes, and every zone of the bundle when the bundle changed, must pass
    C(named-checkzone -k fail -n fail) first. When one does not, nothing is written and the task
    fails with named-checkzone's messages.
  - Files are replaced atomically (temporary file in O(path), then rename). Unchanged files are not
    touched; the task reports C(changed) only when a file is written or removed.
options:
  content:
    description:
      - The bundle text, for example C("{{ lookup('ansible.builtin.template', 'zones.bundle.j2') }}").
      - Zone file names must match C(db.NAME) (letters, digits, C(.), C(_), C(-)) and appear once.
    type: str
    required: true
  path:
    description:
      - The zone directory. It must exist, except in check mode (a directory created by an earlier
        task of the same check run).
    type: path
    required: true
  bundle:
    description: File name of the bundle's copy in O(path).
    type: str
    default: zones.bundle
  group:
    description:
      - Group of the files written. When omitted, the group of new files is the user's.
      - In check mode, an unknown group (BIND not installed yet) only gives a warning.
    type: str
  mode:
    description: Permissions of the files written, in octal (for example C("0644")).
    type: raw
    default: "0644"
requirements:
  - named-checkzone (Debian package bind9-utils) on the host.
extends_documentation_fragment:
  - compleat.cloud.attributes
  - compleat.cloud.attributes.full
  - compleat.cloud.attributes.platform
notes:
  - In check mode the zones are checked with named-checkzone too; when it is not installed yet
    (the package install was only predicted), the check is skipped with a warning.
  - With C(--diff), the installed zone files, written as a bundle, are shown against the new bundle,
    so the diff reads like the zone files.
seealso:
  - plugin: compleat.cloud.fabric_dns_zones
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Zone files from the fabric plan (every changed zone checked with named-checkzone)
  compleat.cloud.dns_zones:
    content: "{{ lookup('ansible.builtin.template', 'zones.bundle.j2') }}"
    path: /etc/bind/compleat
    group: bind
    mode: "0644"
  notify: dns reload
"""

RETURN = r"""
zones:
  description: Number of zones in the bundle.
  returned: success
  type: int
  sample: 12
written:
  description: Zone files written (or that would be in check mode), in bundle order.
  returned: success
  type: list
  elements: str
  sample: [db.lab.compleat.internal]
removed:
  description: C(db.*) files of O(path) the bundle does not have, removed (or that would be).
  returned: success
  type: list
  elements: str
  sample: [db.9.10.in-addr.arpa]
bundle_changed:
  description: Whether the bundle's copy in O(path) was (or would be) written.
  returned: success
  type: bool
"""

import grp  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils import dns_zones  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.atomic_file import parse_mode, read_text  # noqa: E402


def check_bundle_name(name: str) -> None:
    """ValueError unless ``name`` is a plain file name the zone files cannot collide with."""
    if "/" in name or name.startswith("db.") or name in ("", ".", ".."):
        raise ValueError(f"bundle: {name!r} must be a plain file name not starting with 'db.'")


def group_id(module: AnsibleModule) -> int:
    """The gid of the ``group`` option, -1 when none; unknown: warning in check mode, else failure."""
    name = module.params["group"]
    if not name:
        return -1
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if module.check_mode:
            module.warn(f"group '{name}' does not exist (yet): files would get it once it does")
            return -1
        module.fail_json(msg=f"group: no group named '{name}' on the host (is BIND installed?)")
        return -1


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={
            "content": {"type": "str", "required": True},
            "path": {"type": "path", "required": True},
            "bundle": {"type": "str", "default": "zones.bundle"},
            "group": {"type": "str"},
            "mode": {"type": "raw", "default": "0644"},
        },
        supports_check_mode=True,
    )
    params = module.params
    directory, bundle_name, content = params["path"], params["bundle"], params["content"]
    try:
        zones = dns_zones.parse_bundle(content)
        mode = parse_mode(params["mode"])
        check_bundle_name(bundle_name)
        if not os.path.isdir(directory) and not module.check_mode:
            raise ValueError(f"path: {directory} is not a directory (create the zone directory first)")
    except ValueError as exc:
        module.fail_json(msg=str(exc))
        return
    gid = group_id(module)

    bundle_path = os.path.join(directory, bundle_name)
    bundle_now = read_text(bundle_path)
    current = {
        name: read_text(os.path.join(directory, name)) or "" for name in dns_zones.zone_files(directory)
    }
    changes = dns_zones.plan_changes(zones, current, bundle_now, content)

    to_check = zones if changes.bundle else changes.write
    checkzone = module.get_bin_path("named-checkzone", required=False)
    if to_check and checkzone is None:
        if not module.check_mode:
            module.fail_json(msg="named-checkzone not found on the host: install bind9-utils")
            return
        module.warn("named-checkzone is not installed yet: the zones were not checked")
    elif to_check:
        errors = dns_zones.check_zones(checkzone, to_check)
        if errors:
            module.fail_json(
                msg="zones rejected by named-checkzone, nothing written:\n" + "\n".join(errors), errors=errors
            )
            return

    if changes.changed and not module.check_mode:
        try:
            dns_zones.apply(directory, bundle_name, content, changes, mode=mode, gid=gid)
        except OSError as exc:
            module.fail_json(msg=f"path: cannot write the zone files in {directory}: {exc}")
            return
    result = {
        "changed": changes.changed,
        "zones": len(zones),
        "written": [zone.file for zone in changes.write],
        "removed": changes.remove,
        "bundle_changed": changes.bundle,
    }
    if module._diff and changes.changed:
        result["diff"] = {
            "before_header": f"{directory} (zone files)",
            "before": dns_zones.installed_as_bundle(zones, current, bundle_now),
            "after_header": f"{directory} (bundle)",
            "after": content,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
