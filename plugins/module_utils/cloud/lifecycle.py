# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make a host agree with the store for one instance: root overlay, seed, definition, power.

Shared by the ``instance``, ``volume``, ``snapshot`` (restore) and ``evacuate`` modules, so an
instance is built the same way whichever module builds it.  Every ``ensure_*`` honours check
mode: it reports what it would change and touches nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import overlay, seed, virt
from .errors import Conflict, NotFound
from .names import confined
from .store import Store


@dataclass
class Env:
    """What the ensure functions need besides the store rows."""

    store: Store
    check_mode: bool = False
    run: overlay.Runner = overlay.subprocess_runner
    which: Callable[[str], str | None] = shutil.which
    stop_timeout: float = 60.0
    actions: list[str] = field(default_factory=list)

    def did(self, action: str) -> None:
        """Record an action (reported as ``actions`` in module results)."""
        self.actions.append(action)


# ------------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------------
def need(store: Store, table: str, what: str, hint: str, **key: Any) -> dict[str, Any]:
    """A row that must exist (NotFound with ``hint`` otherwise)."""
    row = store.get(table, **key)
    if row is None:
        name = next(iter(key.values()))
        raise NotFound(f"Unknown {what} '{name}'.", hint)
    return row


def host_of(store: Store, inst: dict[str, Any]) -> dict[str, Any]:
    """The host row an instance is allocated to."""
    if inst.get("host_id") is None:
        raise Conflict(f"Instance {inst['name']} has no host.", "Run compleat.cloud.instance to place it.")
    return need(
        store,
        "hosts",
        "host id",
        "The store is inconsistent; check compleat.cloud.cloud_info.",
        id=inst["host_id"],
    )


def instance_paths(storage_dir: str, name: str, seed_format: str) -> tuple[str, str]:
    """(root overlay, seed image) paths of an instance, refused unless inside the storage directory."""
    ext = "iso" if seed_format == "iso" else "img"
    return confined(storage_dir, f"{name}.qcow2"), confined(storage_dir, f"{name}-seed.{ext}")


def offering_name(store: Store, inst: dict[str, Any]) -> str:
    """Name of an instance's offering."""
    row = store.get("offerings", id=inst["offering_id"])
    return row["name"] if row else ""


def volumes_of(store: Store, inst: dict[str, Any]) -> list[dict[str, Any]]:
    """Volumes attached to an instance, by target device (none for an instance not stored yet)."""
    if inst.get("id") is None:
        return []
    return store.select("volumes", order_by="target_dev", attached_to=inst["id"])


def snapshot_listing(store: Store, inst_uuid: str, dom: Any | None) -> dict[str, Any]:
    """Snapshots and backups of an instance in the store, and the snapshot names libvirt reports."""
    rows = store.select("snapshots", order_by="name", instance_uuid=inst_uuid)
    keep = ("name", "kind", "path", "size_bytes", "created_at")
    return {
        "snapshots": [{k: r[k] for k in keep} for r in rows],
        "libvirt_snapshots": virt.snapshot_names(dom) if dom is not None else [],
    }


# ------------------------------------------------------------------------------------------------
# Domain spec from the store
# ------------------------------------------------------------------------------------------------
def iscsi_by_path(portal: str, iqn: str, lun: int) -> str:
    """udev's by-path name of an iSCSI LUN logged in on the host."""
    host, port = split_portal(portal)
    return f"/dev/disk/by-path/ip-{host}:{port}-iscsi-{iqn}-lun-{lun}"


def split_portal(portal: str) -> tuple[str, int]:
    """``host[:port]`` of an iSCSI portal (port 3260 by default)."""
    if ":" not in portal:
        return portal, 3260
    host, port = portal.rsplit(":", 1)
    return host, int(port or 3260)


def volume_disk(vol: dict[str, Any], domain_type: str) -> virt.DiskSpec:
    """The disk of a volume: a file/block disk, or for iSCSI under QEMU a network disk straight to the guest.

    Xen (libxl) has no built-in iSCSI initiator: the LUN is used through the host's block device.
    """
    bus = virt.disk_bus(domain_type)
    if vol["backend"] == "iscsi":
        if domain_type in ("kvm", "qemu"):
            return virt.DiskSpec(
                target=vol["target_dev"],
                source=f"{vol['iscsi_iqn']}/{vol['iscsi_lun']}",
                kind="network",
                fmt="raw",
                bus=bus,
                protocol="iscsi",
                hosts=(split_portal(vol["iscsi_portal"]),),
            )
        return virt.DiskSpec(
            target=vol["target_dev"],
            kind="block",
            fmt="raw",
            bus=bus,
            source=iscsi_by_path(vol["iscsi_portal"], vol["iscsi_iqn"], vol["iscsi_lun"]),
        )
    kind = "block" if str(vol["path"]).startswith("/dev/") else "file"
    return virt.DiskSpec(target=vol["target_dev"], source=vol["path"], kind=kind, fmt=vol["format"], bus=bus)


def nic_specs(networks: list[dict[str, Any]]) -> tuple[virt.NicSpec, ...]:
    """NICs of the stored networks (MACs were assigned when the instance was created)."""
    return tuple(
        virt.NicSpec(
            mac=n["mac"],
            kind=n.get("type", "network"),
            source=n.get("source", ""),
            model=n.get("model") or None,
        )
        for n in networks
    )


def domain_spec(store: Store, inst: dict[str, Any], host: dict[str, Any]) -> virt.DomainSpec:
    """The definition the store asks for on ``host``."""
    dtype = inst["domain_type"]
    disks = [
        virt.DiskSpec(
            target=virt.disk_target(dtype, 0), source=inst["root_disk"], fmt="qcow2", bus=virt.disk_bus(dtype)
        )
    ]
    disks.append(virt.seed_disk(dtype, inst["seed_path"], inst["seed_format"]))
    disks.extend(volume_disk(v, dtype) for v in volumes_of(store, inst))
    return virt.DomainSpec(
        name=inst["name"],
        uuid=inst["uuid"],
        domain_type=dtype,
        memory_mib=int(inst["ram_mb"]),
        vcpus=int(inst["vcpus"]),
        disks=tuple(disks),
        nics=nic_specs(inst["networks"]),
        metadata={
            "instance-id": inst["instance_id"],
            "tenant": inst["tenant"],
            "offering": offering_name(store, inst),
            "host": host["name"],
        },
        vnc=bool(inst["cloud_init"].get("vnc", False)),
    )


def seed_content(inst: dict[str, Any]) -> dict[str, str]:
    """The NoCloud files of an instance (same instance-id wherever it is rebuilt)."""
    ci = inst["cloud_init"]
    return seed.seed_files(
        inst["instance_id"],
        ci.get("hostname") or inst["name"],
        ci.get("ssh_keys", []),
        inst["networks"],
        first_boot_script=ci.get("first_boot_script"),
        packages=ci.get("packages", []),
    )


# ------------------------------------------------------------------------------------------------
# Ensure
# ------------------------------------------------------------------------------------------------
def ensure_root_disk(env: Env, inst: dict[str, Any], image: dict[str, Any] | None) -> bool:
    """Create the root overlay on the template when missing; refuse one on another backing file."""
    path = inst["root_disk"]
    if os.path.exists(path):
        if image is not None:
            info = overlay.image_info(path, env.run)
            if info["backing_file"] and os.path.realpath(info["backing_file"]) != os.path.realpath(
                image["path"]
            ):
                raise Conflict(
                    f"{path} is backed by {info['backing_file']}, not template {image['name']} "
                    f"({image['path']}).",
                    "Remove the stale file or use another instance name.",
                )
        return False
    if image is None:
        raise NotFound(
            f"Root disk {path} is missing and the instance has no template to rebuild it from.",
            "Restore it from a backup (compleat.cloud.snapshot state=restored).",
        )
    env.did(f"create overlay {path} on {image['path']}")
    if not env.check_mode:
        overlay.create_overlay(
            image["path"],
            path,
            env.run,
            image["format"],
            overlay.overlay_size(int(image["virtual_size"]), int(inst["disk_gb"] or 0)),
        )
    return True


def ensure_seed(env: Env, inst: dict[str, Any]) -> tuple[bool, str]:
    """Write the seed image when missing or when its content changed; returns (changed, content hash)."""
    files = seed_content(inst)
    digest = seed.seed_hash(files)
    if os.path.exists(inst["seed_path"]) and inst.get("seed_hash") == digest:
        return False, digest
    env.did(f"write seed {inst['seed_path']}")
    if not env.check_mode:
        seed.write_seed(inst["seed_path"], files, inst["seed_format"], env.run, env.which)
    return True, digest


def ensure_definition(
    env: Env, conn: Any, spec: virt.DomainSpec
) -> tuple[bool, dict[str, Any], dict[str, Any], Any]:
    """Define the domain, or redefine it when an owned field differs.

    Returns (changed, owned fields before, owned fields after, domain).
    """
    desired = virt.spec_fields(spec)
    dom = virt.lookup(conn, spec.uuid)
    if dom is None:
        other = virt.lookup_name(conn, spec.name)
        if other is not None:
            raise Conflict(
                f"Host already has a domain named {spec.name} with another UUID ({other.UUIDString()}).",
                "It is not the store's instance: remove it (virsh undefine) or use another name.",
            )
        env.did(f"define domain {spec.name}")
        if env.check_mode:
            return True, {}, desired, None
        return True, {}, desired, virt.define(conn, virt.build_xml(spec))
    current_xml = virt.inactive_xml(dom)
    before = virt.owned_fields(current_xml)
    changed = virt.changed_fields(desired, before)
    if not changed:
        return False, before, before, dom
    env.did(f"redefine domain {spec.name} ({', '.join(changed)})")
    if not env.check_mode:
        dom = virt.define(conn, virt.merge_owned(current_xml, spec))
    return True, before, desired, dom


def ensure_power(env: Env, dom: Any | None, want: str) -> tuple[bool, str]:
    """Bring a domain to ``running`` or ``stopped``; returns (changed, how)."""
    current = virt.power_state(dom)
    if want == "running" and current != "running":
        env.did("start domain")
        if not env.check_mode and dom is not None:
            if current == "paused":
                virt.call("resume the domain", dom.resume)
            else:
                virt.start(dom)
        return True, "started"
    if want == "stopped" and current in ("running", "paused"):
        env.did("stop domain")
        how = "stopped"
        if not env.check_mode and dom is not None:
            how = virt.stop(dom, env.stop_timeout)
        return True, how
    return False, "unchanged"


def record_power_change(store: Store, inst: dict[str, Any], new_state: str, host_name: str) -> None:
    """Record ``start``/``stop`` when the power state differs from what the store had.

    Whoever changed it (this run, the guest shutting itself down, a crash), metering follows.
    """
    old = inst.get("state")
    if old == new_state:
        return
    event = "start" if new_state == "running" else "stop" if old == "running" else None
    if event:
        store.record_usage(event, inst, offering_name(store, inst), host_name)


def remove_files(env: Env, *paths: str | None) -> list[str]:
    """Delete the files that exist; returns the ones (that would be) removed."""
    gone = [p for p in paths if p and os.path.exists(p)]
    for path in gone:
        env.did(f"remove {path}")
        if not env.check_mode:
            os.unlink(path)
    return gone


def converge(
    env: Env,
    conn: Any,
    inst: dict[str, Any],
    host: dict[str, Any],
    image: dict[str, Any] | None,
    *,
    power: str | None,
) -> dict[str, Any]:
    """Root disk, seed, definition and (unless ``power`` is None) power state of one instance.

    Returns a summary: changed flags, owned fields before/after, the domain (None in check mode
    when it does not exist yet) and the seed hash to store.
    """
    disk_changed = ensure_root_disk(env, inst, image)
    seed_changed, digest = ensure_seed(env, inst)
    spec = domain_spec(env.store, inst, host)
    def_changed, before, after, dom = ensure_definition(env, conn, spec)
    power_changed, how = ensure_power(env, dom, power) if power else (False, "unchanged")
    current = virt.power_state(dom)
    state = (power or current) if env.check_mode else current
    state = "running" if state == "running" else "stopped"
    restart_required = bool(def_changed and before and state == "running" and not power_changed)
    return {
        "changed": disk_changed or seed_changed or def_changed or power_changed,
        "definition_changed": def_changed,
        "power_changed": power_changed,
        "power_action": how,
        "before": before,
        "after": after,
        "dom": dom,
        "seed_hash": digest,
        "state": state,
        "restart_required": restart_required,
    }
