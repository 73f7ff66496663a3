#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Store an SSH public key that instances can name for cloud-init."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keypair
short_description: Store an SSH public key for cloud-init in the cloud metadata store
version_added: "0.1.0"
description:
  - Stores (or removes) a named SSH public key. M(compleat.cloud.instance) puts the keys it names
    into the instance's NoCloud seed (C(ssh_authorized_keys)).
  - Only public keys are stored; private keys never reach the store.
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
options:
  name:
    description: Key name, unique in the store.
    type: str
    required: true
  state:
    description: Whether the key is stored.
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description: The OpenSSH public key line (C(TYPE BASE64 [COMMENT])). Required with O(state=present).
    type: str
  tenant:
    description: Tenant that owns the key (informational).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Store the operator key
  compleat.cloud.keypair:
    name: ops
    public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
    tenant: ops
"""

RETURN = r"""
keypair:
  description: The stored key with its SHA256 fingerprint (as C(ssh-keygen -l) prints it).
  returned: state is present
  type: dict
  sample: {"name": "ops", "tenant": "ops", "public_key": "ssh-ed25519 AAAA... ops@example",
           "fingerprint": "SHA256:3q2+7w..."}
"""

import base64  # noqa: E402
import binascii  # noqa: E402
import hashlib  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, errors  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec(),
    "public_key": {"type": "str", "no_log": False},
    "tenant": {"type": "str", "default": ""},
}


def fingerprint(public_key: str) -> tuple[str, str]:
    """(normalised key line, ``SHA256:...`` fingerprint); Conflict when it is not an OpenSSH public key."""
    parts = public_key.strip().split(None, 2)
    try:
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
            raise ValueError("no key type")
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise errors.Conflict(
            f"public_key is not an OpenSSH public key ({exc}).",
            "Give the single line of the .pub file: TYPE BASE64 [COMMENT].",
        ) from exc
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return " ".join(parts), f"SHA256:{digest}"


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the key row."""
    p = module.params
    key = {"name": p["name"]}
    if p["state"] == "absent":
        changed, before = _common.delete_row(store, "keys", key, module.check_mode)
        return {"changed": changed, "diff": _common.make_diff(_common.public(before), {}, p["name"])}
    if not p["public_key"]:
        raise errors.Conflict("public_key is required with state=present.", "Give the key line.")
    line, fp = fingerprint(p["public_key"])
    changed, before, after = _common.ensure_row(
        store,
        "keys",
        key,
        {"public_key": line, "fingerprint": fp, "tenant": p["tenant"]},
        module.check_mode,
    )
    return {
        "changed": changed,
        "keypair": _common.public(after),
        "diff": _common.make_diff(_common.public(before), _common.public(after), p["name"]),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle)


if __name__ == "__main__":
    main()
