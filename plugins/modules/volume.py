#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Data volumes of the cloud stack: libvirt pool volumes or iSCSI LUNs, attached live and persistently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: volume
short_description: Create, delete, attach and detach data volumes of cloud instances
version_added: "0.1.0"
description:
  - Manages one data volume and its attachment, and records both in the metadata store, so that
    M(compleat.cloud.instance) and M(compleat.cloud.evacuate) rebuild definitions with the same volumes.
  - O(backend=pool) creates (and deletes) the volume in a libvirt storage pool of the host. For
    instances to survive an evacuation the pool must be shared storage (NFS, a SAN LUN with a
    cluster file system).
  - O(backend=iscsi) records an iSCSI LUN provisioned on the storage host (for example with
    M(compleat.cloud.iscsi_target)). Under QEMU/KVM it is attached straight to the guest as a
    network disk (QEMU's own initiator, no login on the hypervisor); under Xen, which has no
    built-in initiator, and on hosts registered with C(iscsi_attach=host) (M(compleat.cloud.hypervisor)),
    through the host's C(/dev/disk/by-path) device, after the host's own login with CHAP
    (role M(compleat.cloud.iscsi_initiator)).
  - Attach and detach change the running domain and its persistent definition together
    (C(VIR_DOMAIN_AFFECT_LIVE|VIR_DOMAIN_AFFECT_CONFIG)); a stopped domain only its definition.
    Live detach needs the guest's cooperation; a guest that ignores it keeps the disk until
    its next boot, reported as RV(live_detach_pending).
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
  - compleat.cloud.cloud_store.libvirt
options:
  name:
    description:
      - Volume name, unique in the store (a pool volume's file is C(NAME.qcow2)).
      - A new volume needs a DNS label, 1-63 letters, digits and hyphens, not starting or ending
        with a hyphen; anything else is refused before anything is written.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the volume exists (attachments unchanged); V(attached) also attaches
        it to O(instance); V(detached) detaches it; V(absent) deletes it (a pool volume's data is
        deleted; an iSCSI volume is only unregistered).
    type: str
    choices: [present, attached, detached, absent]
    default: present
  backend:
    description: Where the volume lives. Immutable.
    type: str
    choices: [pool, iscsi]
    default: pool
  size_gb:
    description:
      - Size in GiB. Required to create a pool volume.
      - A larger value grows a pool volume, online (C(virDomainBlockResize)) when it is attached to a
        running domain, otherwise through the pool (C(virStorageVolResize)). In check mode the growth is
        only reported (RV(actions), and the new size in the diff).
      - An iSCSI LUN is sized on the storage side (the block device behind its
        M(compleat.cloud.iscsi_target) backstore); grow it there first, then a larger value records the
        new size and, when the volume is attached to a running QEMU guest, grows the disk online (QEMU
        refuses a size the LUN does not have).
      - A smaller value than the stored size is refused (shrinking would lose data); an equal one
        changes nothing.
    type: int
  pool:
    description: libvirt storage pool of a pool volume.
    type: str
    default: default
  format:
    description: Format of a new pool volume.
    type: str
    choices: [qcow2, raw]
    default: qcow2
  host:
    description:
      - Host (store name) whose libvirt manages the pool. Defaults to the host of O(instance), or
        of the instance the volume is attached to.
    type: str
  instance:
    description: Instance to attach to (O(state=attached)) or detach from (O(state=detached), optional).
    type: str
  tenant:
    description: Tenant that owns the volume.
    type: str
    default: ""
  iscsi_portal:
    description: Portal C(HOST[:PORT]) of an iSCSI volume.
    type: str
  iscsi_iqn:
    description: Target IQN of an iSCSI volume.
    type: str
  iscsi_lun:
    description: LUN number of an iSCSI volume.
    type: int
    default: 0
  force:
    description: With O(state=absent), detach the volume first instead of refusing.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A 20 GiB volume on the shared pool, attached to db1 while it runs
  compleat.cloud.volume:
    name: db1-data
    size_gb: 20
    pool: shared
    instance: db1
    state: attached

- name: An iSCSI LUN from the storage host, straight to the guest
  compleat.cloud.volume:
    name: db2-data
    backend: iscsi
    iscsi_portal: 10.20.0.5:3260
    iscsi_iqn: iqn.2026-01.cloud.compleat:store01.db2-data
    instance: db2
    state: attached

- name: Detach
  compleat.cloud.volume:
    name: db1-data
    state: detached
"""

RETURN = r"""
volume:
  description: The volume as stored, with the name of the instance it is attached to.
  returned: state is not absent
  type: dict
  sample: {"name": "db1-data", "backend": "pool", "pool": "shared", "path": "/srv/shared/db1-data.qcow2",
           "size_gb": 20, "format": "qcow2", "attached_to": "db1", "target_dev": "vdb"}
attach_mode:
  description: How the last attach or detach reached the domain (V(live+config) or V(config)).
  returned: when attached or detached in this run
  type: str
live_detach_pending:
  description: The guest has not released the disk yet; it is gone from the definition and leaves at the
    next boot.
  returned: state is detached
  type: bool
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

import xml.etree.ElementTree as ET  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    errors,
    lifecycle,
    overlay,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.names import check_name  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec("present", "attached", "detached", "absent"),
    "backend": {"type": "str", "choices": ["pool", "iscsi"], "default": "pool"},
    "size_gb": {"type": "int"},
    "pool": {"type": "str", "default": "default"},
    "format": {"type": "str", "choices": ["qcow2", "raw"], "default": "qcow2"},
    "host": {"type": "str"},
    "instance": {"type": "str"},
    "tenant": {"type": "str", "default": ""},
    "iscsi_portal": {"type": "str"},
    "iscsi_iqn": {"type": "str"},
    "iscsi_lun": {"type": "int", "default": 0},
    "force": {"type": "bool", "default": False},
}
GIB = 1024**3


def volume_xml(name: str, size_gb: int, fmt: str) -> str:
    """``<volume>`` for a new pool volume."""
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "capacity", {"unit": "bytes"}).text = str(size_gb * GIB)
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", {"type": fmt})
    return ET.tostring(root, encoding="unicode")


def next_target(used: set[str], domain_type: str) -> str:
    """The first free paravirtual target after the root disk (vdb, vdc, ...; never vdz, the vfat seed)."""
    for index in range(1, 25):
        target = virt.disk_target(domain_type, index)
        if target not in used:
            return target
    raise errors.Conflict("The instance has no free disk target left.", "Detach a volume first.")


def used_targets(store: Store, inst: dict[str, Any], dom: Any | None) -> set[str]:
    """Targets taken in the store and in the domain's definition."""
    used = {v["target_dev"] for v in store.select("volumes", attached_to=inst["id"]) if v["target_dev"]}
    used.add(virt.disk_target(inst["domain_type"], 0))
    if dom is not None:
        used.update(d["target"] for d in virt.owned_fields(virt.inactive_xml(dom))["disks"])
    return used


def instance_named(store: Store, name: str) -> dict[str, Any]:
    """An instance row that must exist."""
    return lifecycle.need(
        store, "instances", "instance", "Create it with compleat.cloud.instance.", name=name
    )


def pool_host(store: Store, p: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    """The host whose libvirt manages the pool."""
    if p["host"]:
        return lifecycle.need(
            store, "hosts", "host", "Register it with compleat.cloud.hypervisor.", name=p["host"]
        )
    if row is not None and row.get("host_id"):
        return lifecycle.need(store, "hosts", "host id", "The store is inconsistent.", id=row["host_id"])
    if row is not None and row.get("attached_to"):
        return lifecycle.host_of(store, store.get("instances", id=row["attached_to"]) or {})
    if p["instance"]:
        return lifecycle.host_of(store, instance_named(store, p["instance"]))
    raise errors.NotFound("No host to manage the pool volume on.", "Give host (or instance).")


def ensure_iscsi(
    module: AnsibleModule, store: Store, row: dict[str, Any] | None, actions: list[str]
) -> dict[str, Any]:
    """Register an iSCSI LUN (or update its address while detached)."""
    p = module.params
    want = {"iscsi_portal": p["iscsi_portal"], "iscsi_iqn": p["iscsi_iqn"], "iscsi_lun": p["iscsi_lun"]}
    if row is None and not (p["iscsi_portal"] and p["iscsi_iqn"]):
        raise errors.NotFound(
            f"iSCSI volume {p['name']} is new and needs iscsi_portal and iscsi_iqn.",
            "Provision the LUN (compleat.cloud.iscsi_target) and give its portal and IQN.",
        )
    if row is None:
        actions.append("register iSCSI LUN")
        new = {
            "name": p["name"],
            "tenant": p["tenant"],
            "size_gb": p["size_gb"] or 0,
            "backend": "iscsi",
            "format": "raw",
            **want,
        }
        return new if module.check_mode else store.insert("volumes", new)
    changes = {k: v for k, v in want.items() if v is not None and row[k] != v}
    if changes and row["attached_to"]:
        raise errors.Conflict(
            f"Volume {p['name']} is attached; its iSCSI address cannot change.", "Detach it first."
        )
    if changes:
        actions.append("update iSCSI address")
        if not module.check_mode:
            store.update("volumes", row["id"], changes)
    row = {**row, **changes}
    return grow_iscsi_volume(module, store, row, actions) if size_change(row, p["size_gb"]) else row


def ensure_volume(module: AnsibleModule, store: Store, actions: list[str]) -> dict[str, Any]:
    """Create or register the volume (grow a pool volume); returns the row as it is (or would be)."""
    p = module.params
    row = store.get("volumes", name=p["name"])
    if row is None:
        # A new volume's name becomes a pool volume's file name: checked before anything is
        # written. Volumes made before names were checked keep working under theirs.
        check_name("name", p["name"])
    if row is not None and row["backend"] != p["backend"]:
        raise errors.Conflict(
            f"Volume {p['name']} is a {row['backend']} volume.", "The backend cannot change."
        )
    if p["backend"] == "iscsi":
        return ensure_iscsi(module, store, row, actions)
    host = pool_host(store, p, row)
    conn = virt.connect(host["uri"])
    pool = virt.call(
        f"find storage pool {p['pool'] if row is None else row['pool']}",
        conn.storagePoolLookupByName,
        p["pool"] if row is None else row["pool"],
        hint="Define and start the pool (virsh pool-list --all).",
    )
    if row is None:
        if not p["size_gb"]:
            raise errors.NotFound(f"Volume {p['name']} is new and needs size_gb.", "Give its size in GiB.")
        file_name = f"{p['name']}.{'qcow2' if p['format'] == 'qcow2' else 'img'}"
        actions.append(f"create {file_name} ({p['size_gb']} GiB) in pool {p['pool']}")
        new = {
            "name": p["name"],
            "tenant": p["tenant"],
            "size_gb": p["size_gb"],
            "backend": "pool",
            "pool": p["pool"],
            "format": p["format"],
            "path": None,
            "host_id": host["id"],
        }
        if module.check_mode:
            return new
        vol = virt.call(
            "create the volume", pool.createXML, volume_xml(file_name, p["size_gb"], p["format"]), 0
        )
        return store.insert("volumes", {**new, "path": vol.path()})
    vol = find_pool_volume(conn, row["path"])
    if vol is None:
        raise errors.Conflict(
            f"Volume {row['name']} is recorded at {row['path']} but the pool has no such volume.",
            "Restore it from backup, or delete the record (state=absent with force=true).",
        )
    if not size_change(row, p["size_gb"]):
        return row
    return grow_pool_volume(module, store, row, vol, actions)


# ------------------------------------------------------------------------------------------------
# Growing (never shrinking)
# ------------------------------------------------------------------------------------------------
ISCSI_GROW_HINT = (
    "Grow the LUN on the storage side first (the block device behind the compleat.cloud.iscsi_target "
    "backstore, for example lvextend), then run again."
)


def size_change(row: dict[str, Any], size_gb: int | None) -> bool:
    """Whether ``size_gb`` grows the volume; a smaller size is refused, an omitted or equal one is not."""
    if not size_gb:
        return False
    overlay.refuse_shrink(
        f"Volume {row['name']}",
        int(row["size_gb"] or 0) * GIB,
        size_gb * GIB,
        f"Give size_gb >= {row['size_gb']}, or create a new, smaller volume and copy the data.",
    )
    return size_gb > int(row["size_gb"] or 0)


def attached_domain(store: Store, row: dict[str, Any]) -> Any | None:
    """The domain a volume is attached to (None when detached or not defined on its host)."""
    inst = store.get("instances", id=row["attached_to"]) if row.get("attached_to") else None
    if inst is None or inst.get("host_id") is None:
        return None
    return lifecycle.domain_of(store, inst)


def record_size(module: AnsibleModule, store: Store, row: dict[str, Any]) -> dict[str, Any]:
    """The row with the new ``size_gb`` (written unless in check mode)."""
    if not module.check_mode:
        store.update("volumes", row["id"], {"size_gb": module.params["size_gb"]})
    return {**row, "size_gb": module.params["size_gb"]}


def grow_pool_volume(
    module: AnsibleModule, store: Store, row: dict[str, Any], vol: Any, actions: list[str]
) -> dict[str, Any]:
    """Grow a pool volume: online (blockResize) when attached to a running domain, else ``vol.resize``.

    A volume whose capacity already reaches the size (a run that died before the store was
    written) is only recorded.
    """
    size = module.params["size_gb"] * GIB
    dom = attached_domain(store, row)
    online = lifecycle.is_active(dom)
    how = "online" if online else "offline"
    actions.append(f"grow from {row['size_gb']} GiB to {module.params['size_gb']} GiB ({how})")
    if module.check_mode:
        return record_size(module, store, row)
    if online:
        lifecycle.grow_online(dom, row["target_dev"], size)
    elif int(virt.call("read the volume's size", vol.info)[1]) < size:
        virt.call(
            "grow the volume",
            vol.resize,
            size,
            0,
            hint="The pool's driver cannot resize volumes: grow it on the storage side, then give size_gb.",
        )
    return record_size(module, store, row)


def grow_iscsi_volume(
    module: AnsibleModule, store: Store, row: dict[str, Any], actions: list[str]
) -> dict[str, Any]:
    """Record a larger iSCSI LUN (sized on the storage side, not here) and tell a running guest.

    QEMU re-reads the LUN's capacity on blockResize and refuses a size the LUN does not have, so
    a LUN that was not grown first fails with a hint. A driver without online resize (libxl) gets
    a warning: the guest sees the size at its next boot.
    """
    dom = attached_domain(store, row)
    online = lifecycle.is_active(dom)
    actions.append(
        f"record {module.params['size_gb']} GiB (was {row['size_gb']} GiB)"
        + (f"; grow {row['target_dev']} online" if online else "")
    )
    if online and not module.check_mode:
        try:
            lifecycle.grow_online(dom, row["target_dev"], module.params["size_gb"] * GIB, ISCSI_GROW_HINT)
        except errors.VirtError as exc:
            if exc.details.get("libvirt_code") != virt.ERR_NO_SUPPORT:
                raise
            module.warn(
                f"libvirt cannot resize {row['target_dev']} of a running guest on this host; the guest sees "
                "the new size of the LUN at its next boot."
            )
    return record_size(module, store, row)


def find_pool_volume(conn: Any, path: str | None) -> Any | None:
    """The storage volume at ``path``, or None."""
    if not path:
        return None
    try:
        return conn.storageVolLookupByPath(path)
    except Exception as exc:
        if virt.error_code(exc) in (50, 10):  # VIR_ERR_NO_STORAGE_VOL, VIR_ERR_NO_SUPPORT-ish lookups
            return None
        raise


def domain_has(dom: Any | None, target: str, live: bool = False) -> bool:
    """Whether the (live or persistent) definition has a disk at ``target``."""
    if dom is None:
        return False
    xml = virt.call("read the domain", dom.XMLDesc, 0 if live else virt.XML_INACTIVE)
    return any(d["target"] == target for d in virt.owned_fields(xml)["disks"])


def redefine(store: Store, inst: dict[str, Any], host: dict[str, Any], conn: Any, dom: Any) -> None:
    """Config-only fallback: redefine the domain from the store (which already has the change)."""
    virt.define(conn, virt.merge_owned(virt.inactive_xml(dom), lifecycle.domain_spec(store, inst, host)))


def attach(module: AnsibleModule, store: Store, vol: dict[str, Any], actions: list[str]) -> dict[str, Any]:
    """Attach ``vol`` to the instance named by ``instance``."""
    p = module.params
    if not p["instance"]:
        raise errors.NotFound("state=attached needs instance.", "Name the instance to attach to.")
    inst = instance_named(store, p["instance"])
    if vol.get("attached_to") and vol["attached_to"] != inst["id"]:
        other = store.get("instances", id=vol["attached_to"])
        raise errors.Conflict(
            f"Volume {vol['name']} is attached to {other['name'] if other else '?'}.",
            "Detach it first (state=detached).",
        )
    host, conn, dom = lifecycle.host_domain(store, inst)
    if dom is None:
        raise errors.Conflict(
            f"Instance {inst['name']} has no domain on {host['name']}.",
            "Run compleat.cloud.instance for it first.",
        )
    target = vol.get("target_dev") if vol.get("attached_to") == inst["id"] else None
    if target and domain_has(dom, target):
        return {"changed": False}
    target = target or next_target(used_targets(store, inst, dom), inst["domain_type"])
    actions.append(f"attach as {target} to {inst['name']}")
    if module.check_mode or vol.get("id") is None:
        return {
            "changed": True,
            "attach_mode": "live+config" if dom.isActive() else "config",
            "volume": {**vol, "attached_to": inst["id"], "target_dev": target},
        }
    with store.transaction(write=True):
        store.update("volumes", vol["id"], {"attached_to": inst["id"], "target_dev": target})
        row = store.get("volumes", id=vol["id"])
        disk = lifecycle.volume_disk(row, inst["domain_type"], host.get("iscsi_attach") or "qemu")
        mode = virt.change_device(
            dom, virt.disk_xml(disk), True, lambda: redefine(store, inst, host, conn, dom)
        )
    return {"changed": True, "attach_mode": mode, "volume": row}


def detach(module: AnsibleModule, store: Store, vol: dict[str, Any], actions: list[str]) -> dict[str, Any]:
    """Detach ``vol`` from its instance."""
    p = module.params
    if not vol.get("attached_to"):
        return {"changed": False, "live_detach_pending": False}
    inst = store.get("instances", id=vol["attached_to"]) or {}
    if p["instance"] and inst.get("name") != p["instance"]:
        raise errors.Conflict(
            f"Volume {vol['name']} is attached to {inst.get('name')}, not {p['instance']}.",
            "Name the right instance or omit instance.",
        )
    host, conn, dom = lifecycle.host_domain(store, inst)
    actions.append(f"detach {vol['target_dev']} from {inst['name']}")
    if module.check_mode:
        return {
            "changed": True,
            "live_detach_pending": False,
            "volume": {**vol, "attached_to": None, "target_dev": None},
        }
    mode = "none"
    with store.transaction(write=True):
        disk = lifecycle.volume_disk(vol, inst["domain_type"], host.get("iscsi_attach") or "qemu")
        store.update("volumes", vol["id"], {"attached_to": None, "target_dev": None})
        if dom is not None and (dom.isActive() or domain_has(dom, vol["target_dev"])):
            mode = virt.change_device(
                dom, virt.disk_xml(disk), False, lambda: redefine(store, inst, host, conn, dom)
            )
    pending = bool(dom is not None and dom.isActive() and domain_has(dom, vol["target_dev"], live=True))
    if pending:
        module.warn(
            f"The guest of {inst['name']} has not released {vol['target_dev']} yet; it is removed from "
            "the definition and leaves at the next boot."
        )
    return {
        "changed": True,
        "attach_mode": mode,
        "live_detach_pending": pending,
        "volume": store.get("volumes", id=vol["id"]),
    }


def absent(module: AnsibleModule, store: Store, actions: list[str]) -> dict[str, Any]:
    """Delete (pool) or unregister (iSCSI) the volume."""
    p = module.params
    row = store.get("volumes", name=p["name"])
    if row is None:
        return {"changed": False, "actions": actions}
    if row["attached_to"]:
        if not p["force"]:
            inst = store.get("instances", id=row["attached_to"]) or {}
            raise errors.Conflict(
                f"Volume {row['name']} is attached to {inst.get('name')}.",
                "Detach it first, or set force=true.",
            )
        detach(module, store, row, actions)
    if row["backend"] == "pool":
        conn = virt.connect(pool_host(store, p, row)["uri"])
        vol = find_pool_volume(conn, row["path"])
        if vol is not None:
            actions.append(f"delete {row['path']}")
            if not module.check_mode:
                virt.call("delete the volume", vol.delete, 0)
    actions.append("delete from store")
    if not module.check_mode:
        store.delete("volumes", id=row["id"])
    return {
        "changed": True,
        "actions": actions,
        "diff": _common.make_diff(_common.public(row), {}, row["name"]),
    }


def describe(store: Store, vol: dict[str, Any]) -> dict[str, Any]:
    """The volume for results: instance name instead of its id."""
    out = _common.public(vol)
    inst = store.get("instances", id=vol["attached_to"]) if vol.get("attached_to") else None
    out["attached_to"] = inst["name"] if inst else None
    return out


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the volume."""
    p = module.params
    actions: list[str] = []
    if p["state"] == "absent":
        return absent(module, store, actions)
    before = store.get("volumes", name=p["name"])
    vol = ensure_volume(module, store, actions)
    result: dict[str, Any] = {"changed": bool(actions)}
    if p["state"] == "attached":
        result.update(attach(module, store, vol, actions))
    elif p["state"] == "detached":
        result.update(detach(module, store, vol, actions))
    vol = result.pop("volume", None) or vol
    result["changed"] = bool(actions)
    result.update(
        actions=actions,
        volume=describe(store, vol),
        diff=_common.make_diff(describe(store, before) if before else {}, describe(store, vol), p["name"]),
    )
    return result


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True)


if __name__ == "__main__":
    main()
