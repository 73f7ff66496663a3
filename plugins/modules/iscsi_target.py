#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manage one LIO (Linux kernel) iSCSI target with a single block LUN through rtslib-fb."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iscsi_target
short_description: Manage one LIO iSCSI target with one block LUN, portals and CHAP ACLs
version_added: "0.1.0"
description:
  - Converges one iSCSI target of the Linux kernel target (LIO) to a declared state, incrementally -
    a C(block) backstore over a block device (for example an LVM thin volume), target portal group 1
    with LUN 0 on that backstore, exactly the listed network portals and exactly the listed
    initiator ACLs, each with its own CHAP credentials and LUN 0 mapped.
  - Works through the C(rtslib_fb) Python library (Debian package C(python3-rtslib-fb), also used by
    C(targetcli)), so other targets, sessions of unchanged ACLs and the I/O of other volumes are
    never disturbed (unlike C(targetcli restoreconfig clear_existing)).
  - After a change, and whenever the saved file differs from the running configuration, the whole
    running configuration is written to O(save_file), the file C(rtslib-fb-targetctl.service) (or
    C(target.service)) restores at boot.
  - Portal groups other than tag 1 and LUNs other than 0 are left alone.
author:
  - compleat.cloud developers (@compleat-cloud)
requirements:
  - python3-rtslib-fb (rtslib-fb >= 2.1) on the target host
  - the kernel modules C(target_core_mod) and C(iscsi_target_mod)
attributes:
  check_mode:
    support: full
    description: Computes the difference without touching configfs or O(save_file).
  diff_mode:
    support: full
    description: Shows the target before and after; CHAP secrets are replaced by C(********).
  platform:
    platforms: posix
    support: full
    description: Linux with the LIO kernel target.
options:
  name:
    description: IQN of the target, for example C(iqn.2026-01.cloud.compleat:store01.vol1).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the target; V(absent) deletes the target (its portal group,
        LUN, portals and ACLs) and, with O(remove_backstore=true), its backstore. Removing a
        backstore never touches the data on the block device.
    type: str
    choices: [present, absent]
    default: present
  device:
    description: Block device exported as LUN 0. Required with O(state=present).
    type: path
  backstore_name:
    description:
      - Name of the C(block) backstore. Defaults to the part of O(name) after the last C(:), with
        characters other than letters, digits, C(_) and C(-) replaced by C(_).
    type: str
  backstore_attributes:
    description:
      - Backstore attributes to enforce, as in C(/sys/kernel/config/target/core/iblock_N/NAME/attrib),
        for example C(emulate_tpu=1) so that initiators can discard (UNMAP) blocks of a thin volume.
    type: dict
    default: {}
  portals:
    description:
      - Exactly the network portals of portal group 1; portals not listed are removed.
      - Use the storage network address only; V(0.0.0.0) would listen on every address.
    type: list
    elements: dict
    default: []
    suboptions:
      ip:
        description: IPv4 or IPv6 address to listen on.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 3260
  acls:
    description:
      - Exactly the initiators allowed to log in; ACLs not listed are removed (their sessions end).
      - Each ACL gets LUN 0 mapped read-write and its own CHAP credentials.
    type: list
    elements: dict
    default: []
    suboptions:
      initiator:
        description: IQN of the initiator.
        type: str
        required: true
        aliases: [iqn]
      userid:
        description: CHAP user name the initiator presents. Required when O(authentication=true).
        type: str
        aliases: [chap_user]
      password:
        description: CHAP secret the initiator presents. Required when O(authentication=true).
        type: str
        aliases: [chap_password]
      mutual_userid:
        description: User name the target presents back to the initiator (mutual CHAP).
        type: str
        aliases: [mutual_chap_user]
      mutual_password:
        description: Secret the target presents back to the initiator (mutual CHAP).
        type: str
        aliases: [mutual_chap_password]
  authentication:
    description:
      - Require CHAP on every login (portal group attribute C(authentication=1)).
      - Dynamic ACLs (C(generate_node_acls)) and demo mode are always off; only listed initiators log in.
    type: bool
    default: true
  remove_backstore:
    description: With O(state=absent), also delete the backstore named O(backstore_name).
    type: bool
    default: true
  save:
    description: Write the running configuration to O(save_file) when it differs from it.
    type: bool
    default: true
  save_file:
    description: File the LIO configuration is saved to and restored from at boot.
    type: path
    default: /etc/rtslib-fb-target/saveconfig.json
notes:
  - Replacing the block device of an existing backstore deletes and recreates the backstore and its
    LUN; initiators logged in to that target see the LUN disappear.
  - Discovery (SendTargets) authentication is a fabric-wide setting and is not managed here.
seealso:
  - name: targetcli-fb / rtslib-fb
    description: The library and shell this module builds on.
    link: https://github.com/open-iscsi/rtslib-fb
"""

EXAMPLES = r"""
- name: Export a thin volume to one hypervisor with CHAP
  compleat.cloud.iscsi_target:
    name: iqn.2026-01.cloud.compleat:store01.vol1
    device: /dev/vg_storage/vol1
    backstore_attributes:
      emulate_tpu: 1
    portals:
      - ip: 10.4.1.10
    acls:
      - initiator: iqn.2026-01.cloud.compleat:r001-h01
        userid: r001-h01
        password: "{{ vault_vol1_chap_secret }}"
  no_log: true

- name: Remove the target (the volume's data stays on the LV)
  compleat.cloud.iscsi_target:
    name: iqn.2026-01.cloud.compleat:store01.vol1
    state: absent
"""

RETURN = r"""
target:
  description: The target as configured after the run (secrets masked); empty when absent.
  returned: always
  type: dict
  sample:
    name: iqn.2026-01.cloud.compleat:store01.vol1
    backstore: {name: vol1, device: /dev/vg_storage/vol1, attributes: {emulate_tpu: "1"}}
    portals: ["10.4.1.10:3260"]
    acls:
      iqn.2026-01.cloud.compleat:r001-h01: {userid: r001-h01, password: "********", mapped_luns: [0]}
saved:
  description: Whether O(save_file) was (or, in check mode, would be) written.
  returned: always
  type: bool
"""

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

RTSLIB_IMPORT_ERROR: str | None
try:
    from rtslib_fb import (
        LUN,
        TPG,
        BlockStorageObject,
        FabricModule,
        MappedLUN,
        NetworkPortal,
        NodeACL,
        RTSRoot,
        Target,
    )
    from rtslib_fb.utils import RTSLibError, RTSLibNotInCFS

    HAS_RTSLIB = True
    RTSLIB_IMPORT_ERROR = None
except ImportError:
    HAS_RTSLIB = False
    RTSLIB_IMPORT_ERROR = traceback.format_exc()

CONFIGFS_TARGET = "/sys/kernel/config/target"
MASK = "********"
TPG_TAG = 1
LUN_ID = 0
# Portal group attributes enforced on every target: only listed ACLs, never demo mode.
FIXED_TPG_ATTRIBUTES = {
    "generate_node_acls": "0",
    "demo_mode_write_protect": "1",
    "cache_dynamic_acls": "0",
}
CHAP_FIELDS = ("userid", "password", "mutual_userid", "mutual_password")
SECRET_FIELDS = ("password", "mutual_password")


def default_backstore_name(iqn: str) -> str:
    """Backstore name derived from the target IQN: the part after the last ':' made configfs safe."""
    tail = iqn.rsplit(":", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_-]", "_", tail)[:64] or "lun0"


def portal_key(ip: str, port: int) -> str:
    """Canonical 'ip:port' string of a portal (IPv6 addresses in brackets)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def desired_state(params: dict) -> dict:
    """The target the module parameters describe, in the same shape as read_state()."""
    acls = {}
    for acl in params["acls"]:
        entry = {field: acl.get(field) or "" for field in CHAP_FIELDS}
        entry["mapped_luns"] = [LUN_ID]
        acls[acl["initiator"]] = entry
    attributes = dict(FIXED_TPG_ATTRIBUTES)
    attributes["authentication"] = "1" if params["authentication"] else "0"
    return {
        "name": params["name"],
        "enabled": True,
        "backstore": {
            "name": params["backstore_name"],
            "device": params["device"],
            "attributes": {str(k): str(v) for k, v in params["backstore_attributes"].items()},
        },
        "lun": LUN_ID,
        "portals": sorted(portal_key(p["ip"], p["port"]) for p in params["portals"]),
        "attributes": attributes,
        "acls": acls,
    }


def masked(state: dict) -> dict:
    """Copy of a state with CHAP secrets replaced by a mask (for diff and return values)."""
    if not state:
        return {}
    out = json.loads(json.dumps(state))
    for acl in out.get("acls", {}).values():
        for field in SECRET_FIELDS:
            if acl.get(field):
                acl[field] = MASK
    return out


def same_device(a: str | None, b: str | None) -> bool:
    """True when two block device paths name the same device (symlinks resolved)."""
    if not a or not b:
        return a == b
    return os.path.realpath(a) == os.path.realpath(b)


def comparable(state: dict, desired: dict) -> dict:
    """Project a read state onto the keys the desired state manages (for an exact comparison)."""
    if not state:
        return {}
    out = json.loads(json.dumps(state))
    backstore = out.get("backstore") or {}
    wanted_attrs = desired["backstore"]["attributes"]
    backstore["attributes"] = {
        k: v for k, v in (backstore.get("attributes") or {}).items() if k in wanted_attrs
    }
    if same_device(backstore.get("device"), desired["backstore"]["device"]):
        backstore["device"] = desired["backstore"]["device"]
    out["backstore"] = backstore
    out["attributes"] = {k: v for k, v in out.get("attributes", {}).items() if k in desired["attributes"]}
    return out


# ---------------------------------------------------------------------------------------------
# configfs access (rtslib-fb)


def find_backstore(root: Any, name: str) -> Any:
    """The block storage object called name, or None."""
    for so in root.storage_objects:
        if so.plugin == "block" and so.name == name:
            return so
    return None


def lookup_target(wwn: str) -> Any:
    """The iSCSI Target object for wwn, or None when it does not exist."""
    try:
        return Target(FabricModule("iscsi"), wwn, mode="lookup")
    except RTSLibNotInCFS:
        return None


def lookup_tpg(target: Any) -> Any:
    """Portal group TPG_TAG of a target, or None."""
    for tpg in target.tpgs:
        if tpg.tag == TPG_TAG:
            return tpg
    return None


def read_state(root: Any, name: str, backstore_name: str) -> dict:
    """Current configuration of the target (and its backstore) from configfs; {} when absent."""
    target = lookup_target(name)
    so = find_backstore(root, backstore_name)
    if target is None:
        return {}
    state: dict = {
        "name": name,
        "enabled": False,
        "backstore": {},
        "lun": None,
        "portals": [],
        "attributes": {},
        "acls": {},
    }
    tpg = lookup_tpg(target)
    if so is not None:
        state["backstore"] = {
            "name": so.name,
            "device": so.udev_path,
            "attributes": {a: so.get_attribute(a) for a in so.list_attributes(readable=True)},
        }
    if tpg is None:
        return state
    state["enabled"] = bool(tpg.enable)
    state["attributes"] = {a: tpg.get_attribute(a) for a in tpg.list_attributes(readable=True)}
    state["portals"] = sorted(portal_key(p.ip_address, p.port) for p in tpg.network_portals)
    for lun in tpg.luns:
        if lun.lun == LUN_ID:
            lun_so = lun.storage_object
            if so is not None and lun_so.name == so.name and lun_so.plugin == so.plugin:
                state["lun"] = LUN_ID
    for acl in tpg.node_acls:
        entry = {field: getattr(acl, "chap_" + field, "") or "" for field in CHAP_FIELDS}
        entry["mapped_luns"] = sorted(m.mapped_lun for m in acl.mapped_luns if m.tpg_lun.lun == LUN_ID)
        state["acls"][acl.node_wwn] = entry
    return state


def _ensure_backstore(root: Any, bs: dict) -> Any:
    """The block backstore bs describes, created (or recreated on another device) when needed."""
    so = find_backstore(root, bs["name"])
    if so is not None and not same_device(so.udev_path, bs["device"]):
        so.delete()
        so = None
    if so is None:
        so = BlockStorageObject(bs["name"], dev=bs["device"])
    for attr, value in bs["attributes"].items():
        if so.get_attribute(attr) != value:
            so.set_attribute(attr, value)
    return so


def _ensure_lun(tpg: Any, so: Any) -> Any:
    """LUN_ID of the portal group, on backstore so (a LUN on another backstore is replaced)."""
    for lun in tpg.luns:
        if lun.lun != LUN_ID:
            continue
        if lun.storage_object.name == so.name and lun.storage_object.plugin == so.plugin:
            return lun
        lun.delete()
    return LUN(tpg, LUN_ID, so)


def _ensure_portals(tpg: Any, wanted: list[str]) -> None:
    """Exactly the wanted portals ("ip:port") on the portal group."""
    for portal in list(tpg.network_portals):
        if portal_key(portal.ip_address, portal.port) not in wanted:
            portal.delete()
    have = {portal_key(p.ip_address, p.port) for p in tpg.network_portals}
    for key in wanted:
        if key not in have:
            ip, port = key.rsplit(":", 1)
            NetworkPortal(tpg, ip.strip("[]"), int(port), mode="create")


def _ensure_acl(tpg: Any, tpg_lun: Any, initiator: str, entry: dict) -> None:
    """One initiator ACL with its CHAP credentials and LUN_ID mapped read-write."""
    acl = NodeACL(tpg, initiator, mode="any")
    for field in CHAP_FIELDS:
        if (getattr(acl, "chap_" + field, "") or "") != entry[field]:
            setattr(acl, "chap_" + field, entry[field])
    current = {m.mapped_lun: m for m in acl.mapped_luns}.get(LUN_ID)
    if current is not None and current.tpg_lun.lun != LUN_ID:
        current.delete()
        current = None
    if current is None:
        MappedLUN(acl, LUN_ID, tpg_lun=tpg_lun, write_protect=False)


def apply_present(root: Any, want: dict) -> None:
    """Create or update configfs objects until the target matches want."""
    so = _ensure_backstore(root, want["backstore"])
    target = Target(FabricModule("iscsi"), want["name"], mode="any")
    tpg = lookup_tpg(target) or TPG(target, TPG_TAG, mode="create")
    for attr, value in want["attributes"].items():
        if tpg.get_attribute(attr) != value:
            tpg.set_attribute(attr, value)
    tpg_lun = _ensure_lun(tpg, so)
    _ensure_portals(tpg, want["portals"])
    for acl in list(tpg.node_acls):
        if acl.node_wwn not in want["acls"]:
            acl.delete()
    for initiator, entry in want["acls"].items():
        _ensure_acl(tpg, tpg_lun, initiator, entry)
    if not tpg.enable:
        tpg.enable = True


def apply_absent(root: Any, name: str, backstore_name: str, remove_backstore: bool) -> None:
    """Delete the target and, optionally, its backstore."""
    target = lookup_target(name)
    if target is not None:
        target.delete()
    if remove_backstore:
        so = find_backstore(root, backstore_name)
        if so is not None:
            so.delete()


def saved_differs(root: Any, save_file: str) -> bool:
    """True when save_file is missing or does not hold the running configuration."""
    try:
        with open(save_file, encoding="utf-8") as fh:
            saved = json.load(fh)
    except (OSError, ValueError):
        return True
    return saved != root.dump()


def save(root: Any, save_file: str) -> None:
    """Write the whole running configuration to save_file (0600, atomically through rtslib)."""
    directory = os.path.dirname(save_file)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    root.save_to_file(save_file)


# ---------------------------------------------------------------------------------------------


def validate(module: AnsibleModule) -> None:
    """Checks the argument spec cannot express."""
    params = module.params
    if params["state"] == "present" and not params["device"]:
        module.fail_json(msg="device is required when state=present")
    seen = set()
    for acl in params["acls"]:
        if acl["initiator"] in seen:
            module.fail_json(msg=f"initiator {acl['initiator']} is listed twice")
        seen.add(acl["initiator"])
        if params["authentication"] and not (acl.get("userid") and acl.get("password")):
            module.fail_json(
                msg=f"initiator {acl['initiator']}: userid and password are required when authentication=true"
            )
        if bool(acl.get("mutual_userid")) != bool(acl.get("mutual_password")):
            module.fail_json(
                msg=f"initiator {acl['initiator']}: set both mutual_userid and mutual_password, or neither"
            )


def read_current(module: AnsibleModule) -> tuple[Any, dict]:
    """The rtslib root (None in check mode before LIO is loaded) and the target's current state."""
    params = module.params
    if module.check_mode and not os.path.isdir(CONFIGFS_TARGET):
        # Nothing is loaded yet: reading would load kernel modules and mount configfs.
        return None, {}
    try:
        root = RTSRoot()
        return root, read_state(root, params["name"], params["backstore_name"])
    except RTSLibError as exc:
        module.fail_json(msg=f"cannot read the LIO configuration: {exc}")
    return None, {}  # not reached: fail_json exits


def converge(module: AnsibleModule, root: Any, want: dict, changed: bool) -> bool:
    """Apply the change (if any) and save the configuration; True when the save file was written."""
    params = module.params
    try:
        if changed and params["state"] == "present":
            apply_present(root, want)
        elif changed:
            apply_absent(root, params["name"], params["backstore_name"], params["remove_backstore"])
        if params["save"] and saved_differs(root, params["save_file"]):
            save(root, params["save_file"])
            return True
    except (RTSLibError, OSError) as exc:
        module.fail_json(msg=f"LIO configuration failed: {exc}", exception=traceback.format_exc())
    return False


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "device": {"type": "path"},
            "backstore_name": {"type": "str"},
            "backstore_attributes": {"type": "dict", "default": {}},
            "portals": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "ip": {"type": "str", "required": True},
                    "port": {"type": "int", "default": 3260},
                },
            },
            "acls": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "initiator": {"type": "str", "required": True, "aliases": ["iqn"]},
                    "userid": {"type": "str", "aliases": ["chap_user"]},
                    "password": {"type": "str", "no_log": True, "aliases": ["chap_password"]},
                    "mutual_userid": {"type": "str", "aliases": ["mutual_chap_user"]},
                    "mutual_password": {"type": "str", "no_log": True, "aliases": ["mutual_chap_password"]},
                },
            },
            "authentication": {"type": "bool", "default": True},
            "remove_backstore": {"type": "bool", "default": True},
            "save": {"type": "bool", "default": True},
            "save_file": {"type": "path", "default": "/etc/rtslib-fb-target/saveconfig.json"},
        },
        supports_check_mode=True,
    )
    params = module.params
    params["backstore_name"] = params["backstore_name"] or default_backstore_name(params["name"])
    validate(module)

    if not HAS_RTSLIB:
        if module.check_mode:
            module.exit_json(
                changed=True,
                target={},
                saved=False,
                msg="rtslib-fb is not installed yet; the target would be configured",
            )
        module.fail_json(
            msg=missing_required_lib("rtslib-fb (Debian: python3-rtslib-fb)"), exception=RTSLIB_IMPORT_ERROR
        )

    root, before = read_current(module)
    if params["state"] == "present":
        want = desired_state(params)
        before_cmp = comparable(before, want)
        changed = before_cmp != want
    else:
        want = {}
        before_cmp = before
        changed = bool(before) or (
            params["remove_backstore"]
            and root is not None
            and find_backstore(root, params["backstore_name"]) is not None
        )

    saved = converge(module, root, want, changed) if not module.check_mode else False
    if module.check_mode and params["save"]:
        saved = changed or (root is not None and saved_differs(root, params["save_file"]))

    result = {"changed": changed or saved, "target": masked(want), "saved": saved}
    if module._diff:
        result["diff"] = {"before": masked(before_cmp), "after": masked(want)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
