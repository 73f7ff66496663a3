#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshots of cloud instances: internal snapshots, backups to secondary storage, restores."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snapshot
short_description: Snapshot, revert, back up and restore cloud instances
version_added: "0.1.0"
description:
  - V(present), V(absent) and V(reverted) manage libvirt internal snapshots of an instance (qcow2
    snapshots inside the root overlay and qcow2 pool volumes; with the memory state when the
    instance runs). Raw disks, iSCSI LUNs and the seed are not part of them.
  - V(backed_up) copies the stopped instance's root overlay to O(backup_dir) on secondary (NFS)
    storage as a qcow2 file that holds only what differs from the template (C(qemu-img convert -B)),
    with a JSON manifest (template, offering, tenant, networks, cloud-init inputs). The instance must
    be stopped (an offline copy is consistent without guest cooperation).
  - V(restored) creates a new instance O(restore_to) from a backup, placed by the stack, with a new
    UUID and instance-id; it is defined but not started.
  - M(compleat.cloud.snapshot_info) lists the snapshots and backups of an instance.
requirements:
  - qemu-img (qemu-utils) for backups and restores
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
  - compleat.cloud.cloud_store.libvirt
options:
  instance:
    description: Instance the snapshot or backup belongs to (for V(restored), the instance that was backed
      up).
    type: str
    required: true
  name:
    description:
      - Snapshot or backup name. A new snapshot or backup needs a DNS label (1-63 letters, digits
        and hyphens, no hyphen first or last); anything else is refused before anything is written.
    type: str
    required: true
  state:
    description:
      - V(present) creates an internal snapshot, V(absent) deletes it, V(reverted) reverts the instance
        to it (always reports a change).
      - V(backed_up) writes a backup, V(restored) creates O(restore_to) from one.
    type: str
    choices: [present, absent, reverted, backed_up, restored]
    default: present
  description:
    description: Free text stored with a new internal snapshot.
    type: str
    default: ""
  backup_dir:
    description: Directory on secondary storage for backups (C(BACKUP_DIR/INSTANCE/NAME.qcow2) and
      C(NAME.json)).
    type: path
  restore_to:
    description: Name of the new instance created by O(state=restored).
    type: str
  host:
    description: Pin the restored instance to this host (placement chooses otherwise).
    type: str
"""

EXAMPLES = r"""
- name: Snapshot before an upgrade
  compleat.cloud.snapshot:
    instance: web1
    name: before-upgrade

- name: Go back
  compleat.cloud.snapshot:
    instance: web1
    name: before-upgrade
    state: reverted

- name: Nightly backup of a stopped instance to the NFS secondary store
  compleat.cloud.snapshot:
    instance: web1
    name: "{{ now(fmt='%Y%m%d') }}"
    state: backed_up
    backup_dir: /srv/secondary/backups

- name: Restore it as a new instance
  compleat.cloud.snapshot:
    instance: web1
    name: "20261122"
    state: restored
    backup_dir: /srv/secondary/backups
    restore_to: web1-restored
"""

RETURN = r"""
snapshots:
  description: Snapshots and backups of the instance after the run, from the store.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "before-upgrade", "kind": "internal", "path": null},
           {"name": "20261122", "kind": "backup", "path": "/srv/secondary/backups/web1/20261122.qcow2"}]
libvirt_snapshots:
  description: Internal snapshot names libvirt reports for the domain (compare with RV(snapshots)).
  returned: always
  type: list
  elements: str
restored:
  description: The instance created by O(state=restored).
  returned: state is restored
  type: dict
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import uuid as uuid_mod  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    errors,
    ipam,
    lifecycle,
    macs,
    overlay,
    placement,
    seed,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.names import check_name, confined  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    "instance": {"type": "str", "required": True},
    **_common.name_state_spec("present", "absent", "reverted", "backed_up", "restored"),
    "description": {"type": "str", "default": ""},
    "backup_dir": {"type": "path"},
    "restore_to": {"type": "str"},
    "host": {"type": "str"},
}
REQUIRED_IF = [
    ("state", "backed_up", ("backup_dir",)),
    ("state", "restored", ("backup_dir", "restore_to")),
]


def snapshot_xml(name: str, description: str, spec: virt.DomainSpec) -> str:
    """``<domainsnapshot>`` naming which disks take part: qcow2 files internally, the rest not at all."""
    root = ET.fromstring(virt.snapshot_xml(name, description))
    disks = ET.SubElement(root, "disks")
    for disk in spec.disks:
        internal = disk.kind == "file" and disk.fmt == "qcow2" and not disk.readonly
        ET.SubElement(disks, "disk", {"name": disk.target, "snapshot": "internal" if internal else "no"})
    return ET.tostring(root, encoding="unicode")


def backup_paths(backup_dir: str, instance: str, name: str) -> tuple[str, str]:
    """(image, manifest) of a backup, refused unless both resolve inside ``BACKUP_DIR/INSTANCE``."""
    directory = confined(backup_dir, instance)
    return confined(directory, f"{name}.qcow2"), confined(directory, f"{name}.json")


def manifest_of(store: Store, inst: dict[str, Any], image: dict[str, Any] | None) -> dict[str, Any]:
    """What a restore needs besides the disk, independent of the store."""
    return {
        "instance": inst["name"],
        "uuid": inst["uuid"],
        "instance_id": inst["instance_id"],
        "tenant": inst["tenant"],
        "offering": lifecycle.offering_name(store, inst),
        "template": image["name"] if image else None,
        "template_path": image["path"] if image else None,
        "template_checksum": image["checksum"] if image else None,
        "networks": inst["networks"],
        "cloud_init": inst["cloud_init"],
        "seed_format": inst["seed_format"],
        "volumes": [v["name"] for v in lifecycle.volumes_of(store, inst)],
    }


def internal(module: AnsibleModule, store: Store, inst: dict[str, Any], dom: Any, actions: list[str]) -> None:
    """present / absent / reverted."""
    p = module.params
    if dom is None:
        raise errors.Conflict(
            f"Instance {inst['name']} has no domain.", "Run compleat.cloud.instance for it first."
        )
    snap = virt.find_snapshot(dom, p["name"])
    key = {"instance_uuid": inst["uuid"], "kind": "internal", "name": p["name"]}
    if p["state"] == "present" and snap is None:
        # A new snapshot's name (libvirt's and the store's): checked before anything is written;
        # snapshots made before names were checked keep working under theirs.
        check_name("name", p["name"])
        actions.append(f"create snapshot {p['name']}")
        if not module.check_mode:
            spec = lifecycle.domain_spec(store, inst, lifecycle.host_of(store, inst))
            virt.call(
                "create the snapshot",
                dom.snapshotCreateXML,
                snapshot_xml(p["name"], p["description"], spec),
                0,
                hint="Every writable disk must be qcow2 and the domain must not be paused.",
            )
    recorded = store.get("snapshots", **key) is not None
    if p["state"] == "present" and not recorded:
        actions.append(f"record snapshot {p['name']}")
        if not module.check_mode:
            store.insert("snapshots", {**key, "instance_name": inst["name"]})
    if p["state"] == "absent" and snap is not None:
        actions.append(f"delete snapshot {p['name']}")
        if not module.check_mode:
            virt.call("delete the snapshot", snap.delete, 0)
    if p["state"] == "absent" and recorded:
        actions.append(f"forget snapshot {p['name']}")
        if not module.check_mode:
            store.delete("snapshots", **key)
    if p["state"] == "reverted":
        if snap is None:
            raise errors.NotFound(
                f"Instance {inst['name']} has no snapshot {p['name']}.",
                "List them with compleat.cloud.snapshot_info.",
            )
        actions.append(f"revert to snapshot {p['name']}")
        if not module.check_mode:
            virt.call("revert to the snapshot", dom.revertToSnapshot, snap, 0)
            # libvirt brings back the devices of the snapshot's time (a volume attached then and
            # detached since, or attached to another instance now): the store's view wins.
            host = lifecycle.host_of(store, inst)
            env = lifecycle.Env(store, False, _common.runner(module))
            repaired = lifecycle.restore_store_view(env, virt.connect(host["uri"]), inst, host, dom)
            actions.extend(env.actions)
            state = "running" if virt.power_state(repaired["dom"] or dom) == "running" else "stopped"
            store.update("instances", inst["id"], {"state": state})
            lifecycle.record_power_change(store, inst, state, host["name"])


def backup(module: AnsibleModule, store: Store, inst: dict[str, Any], dom: Any, actions: list[str]) -> None:
    """Offline copy of the root overlay (only what differs from the template) plus a manifest."""
    p = module.params
    key = {"instance_uuid": inst["uuid"], "kind": "backup", "name": p["name"]}
    recorded = store.get("snapshots", **key) is not None
    if not recorded:
        # A new backup's name becomes its file names: checked before anything is written.
        check_name("name", p["name"])
    image_path, manifest_path = backup_paths(p["backup_dir"], inst["name"], p["name"])
    if recorded and os.path.exists(image_path):
        return
    if virt.power_state(dom) in ("running", "paused"):
        raise errors.Conflict(
            f"Instance {inst['name']} is running; backups are offline copies.",
            "Stop it first (compleat.cloud.instance state=stopped), or take an internal snapshot.",
        )
    image = store.get("images", id=inst["image_id"]) if inst["image_id"] else None
    actions.append(f"back up {inst['root_disk']} to {image_path}")
    if module.check_mode:
        return
    os.makedirs(os.path.dirname(image_path), exist_ok=True)
    partial = image_path + ".partial"
    argv = overlay.convert_command(
        inst["root_disk"],
        partial,
        backing=image["path"] if image else None,
        backing_format=image["format"] if image else "qcow2",
    )
    overlay.run_checked(_common.runner(module), argv, "Check free space on secondary storage.")
    os.replace(partial, image_path)
    with open(manifest_path, "w", encoding="utf-8") as handle:
        json.dump(manifest_of(store, inst, image), handle, indent=2, sort_keys=True)
        handle.write("\n")
    with store.transaction(write=True):
        store.delete("snapshots", **key)
        store.insert(
            "snapshots",
            {
                **key,
                "instance_name": inst["name"],
                "path": image_path,
                "size_bytes": os.path.getsize(image_path),
                "manifest": manifest_of(store, inst, image),
            },
        )


def restore(module: AnsibleModule, store: Store, actions: list[str]) -> dict[str, Any] | None:
    """A new instance from a backup; returns its row (None when it already exists)."""
    p = module.params
    if store.get("instances", name=p["restore_to"]) is not None:
        return None
    image_path, manifest_path = backup_paths(p["backup_dir"], p["instance"], p["name"])
    if not (os.path.exists(image_path) and os.path.exists(manifest_path)):
        raise errors.NotFound(
            f"No backup {p['name']} of {p['instance']} in {p['backup_dir']}.",
            "Check backup_dir and the name (compleat.cloud.snapshot_info lists the backups the store knows).",
        )
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    offering = lifecycle.need(store, "offerings", "offering", "Define it again.", name=manifest["offering"])
    image = (
        lifecycle.need(
            store, "images", "template", "Register the backup's template again.", name=manifest["template"]
        )
        if manifest.get("template")
        else None
    )
    new_uuid = str(uuid_mod.uuid4())
    row = {
        "uuid": new_uuid,
        "name": p["restore_to"],
        "instance_id": seed.instance_id_for(new_uuid),
        "tenant": manifest["tenant"],
        "offering_id": offering["id"],
        "image_id": image["id"] if image else None,
        "disk_gb": int(offering["disk_gb"]),
        "state": "building",
        "domain_type": "qemu",
        "seed_format": manifest.get("seed_format", "iso"),
        "cloud_init": manifest["cloud_init"],
        "networks": [  # new MACs, and new addresses on IPAM networks (the original may still exist)
            {**n, "mac": macs.generated_mac(new_uuid, i)}
            for i, n in enumerate(ipam.fresh_nics(manifest["networks"]))
        ],
    }
    req = placement.Request(
        vcpus=int(offering["vcpus"]),
        ram_mb=int(offering["ram_mb"]),
        only=frozenset({p["host"]}) if p["host"] else frozenset(),
        **placement.offering_needs(offering),
    )
    if module.check_mode:
        host = placement.plan(store, req)
        actions.append(f"restore {image_path} as {p['restore_to']} on {host.name}")
        return {**row, "host": host.name}
    with store.transaction(write=True):
        row["networks"] = macs.claim(store, row["networks"], new_uuid, set(), owner=p["restore_to"])
        chosen, row = placement.allocate(store, req, new_row=row)
        nics = ipam.assign_nics(
            store, row, store.get("hosts", id=chosen.host_id), row["networks"], write=True
        )
        if nics != row["networks"]:
            store.update("instances", row["id"], {"networks": nics})
            row = {**row, "networks": nics}
        store.record_usage("create", row, offering["name"], chosen.name)
    host = lifecycle.host_of(store, row)
    root, seed_path = lifecycle.instance_paths(host["storage_dir"], row["name"], row["seed_format"])
    before = lifecycle.existing_files(root, seed_path)
    try:
        store.update(
            "instances",
            row["id"],
            {"root_disk": root, "seed_path": seed_path, "domain_type": virt.DOMAIN_TYPES[host["hypervisor"]]},
        )
        row = store.get("instances", id=row["id"])
        actions.append(f"restore {image_path} as {p['restore_to']} on {host['name']}")
        if root in before:
            raise errors.Conflict(
                f"{root} already exists; restoring {p['restore_to']} would overwrite it.",
                "Remove the stale file or restore under another restore_to name.",
            )
        os.makedirs(os.path.dirname(root), exist_ok=True)
        shutil.copyfile(image_path, root)
        env = lifecycle.Env(store, False, _common.runner(module))
        summary = lifecycle.converge(env, virt.connect(host["uri"]), row, host, image, power=None)
    except Exception:
        # undo the half-made instance: its row, domain and the files this run wrote
        lifecycle.discard_instance(
            lifecycle.Env(store, False, _common.runner(module)), None, row, keep=before
        )
        raise
    store.update("instances", row["id"], {"state": summary["state"], "seed_hash": summary["seed_hash"]})
    actions.extend(env.actions)
    return {**_common.public(store.get("instances", id=row["id"])), "host": host["name"]}


def check_params(p: dict[str, Any]) -> None:
    """The name of a restored instance, checked before the store is opened (nothing placed or written)."""
    if p["state"] == "restored":
        check_name("restore_to", p["restore_to"])


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Dispatch on state."""
    p = module.params
    actions: list[str] = []
    if p["state"] == "restored":
        restored = restore(module, store, actions)
        src = store.get("instances", name=p["instance"])
        out = (
            lifecycle.snapshot_listing(store, src["uuid"], None)
            if src
            else {"snapshots": [], "libvirt_snapshots": []}
        )
        return {"changed": bool(actions), "actions": actions, "restored": restored or {}, **out}
    inst = lifecycle.need(
        store, "instances", "instance", "Create it with compleat.cloud.instance.", name=p["instance"]
    )
    dom = lifecycle.domain_of(store, inst)
    before = lifecycle.snapshot_listing(store, inst["uuid"], dom)
    if p["state"] in ("present", "absent", "reverted"):
        internal(module, store, inst, dom, actions)
    elif p["state"] == "backed_up":
        backup(module, store, inst, dom, actions)
    after = lifecycle.snapshot_listing(store, inst["uuid"], dom)
    return {
        "changed": bool(actions),
        "actions": actions,
        **after,
        "diff": _common.make_diff(before, after, p["instance"]),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True, precheck=check_params, required_if=REQUIRED_IF)


if __name__ == "__main__":
    main()
