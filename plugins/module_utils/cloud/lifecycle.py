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
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

from . import overlay, resources, seed, virt
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


def host_domain(store: Store, inst: dict[str, Any]) -> tuple[dict[str, Any], Any, Any | None]:
    """(host row, libvirt connection to the host, domain or None) of an allocated instance."""
    host = host_of(store, inst)
    conn = virt.connect(host["uri"])
    return host, conn, virt.lookup(conn, inst["uuid"])


def domain_of(store: Store, inst: dict[str, Any]) -> Any | None:
    """The domain of an allocated instance on its host (None when it is not defined there)."""
    return host_domain(store, inst)[2]


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


def volume_disk(vol: dict[str, Any], domain_type: str, iscsi_attach: str = "qemu") -> virt.DiskSpec:
    """The disk of a volume: a file/block disk, or for iSCSI under QEMU a network disk straight to the guest.

    Xen (libxl) has no built-in iSCSI initiator, and a host registered with ``iscsi_attach=host``
    logs in with its own (open-iscsi, CHAP from compleat.cloud.iscsi_initiator): the LUN is then
    used through the host's block device.
    """
    bus = virt.disk_bus(domain_type)
    if vol["backend"] == "iscsi":
        if domain_type in ("kvm", "qemu") and iscsi_attach != "host":
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


def nic_specs(networks: list[dict[str, Any]], queues: int = 1) -> tuple[virt.NicSpec, ...]:
    """NICs of the stored networks (MACs were assigned when the instance was created); ``queues``
    virtio queue pairs each (the instance's ``nic_queues``)."""
    return tuple(
        virt.NicSpec(
            mac=n["mac"],
            kind=n.get("type", "network"),
            source=n.get("source", ""),
            model=n.get("model") or None,
            queues=queues,
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
    attach = str(host.get("iscsi_attach") or "qemu")
    disks.extend(volume_disk(v, dtype, attach) for v in volumes_of(store, inst))
    return virt.DomainSpec(
        name=inst["name"],
        uuid=inst["uuid"],
        domain_type=dtype,
        memory_mib=int(inst["ram_mb"]),
        vcpus=int(inst["vcpus"]),
        disks=tuple(disks),
        nics=nic_specs(inst["networks"], int(inst.get("nic_queues") or 1)),
        **resources.domain_extras(store, inst),
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


# ------------------------------------------------------------------------------------------------
# Growing disks (never shrinking them)
# ------------------------------------------------------------------------------------------------
BLOCK_RESIZE_BYTES = 1  # VIR_DOMAIN_BLOCK_RESIZE_BYTES (stable libvirt ABI): the size is in bytes
ONLINE_HINT = (
    "The host's libvirt driver cannot grow a running guest's disk: stop the instance (state=stopped) "
    "and run again; the disk then grows offline."
)


def is_active(dom: Any | None) -> bool:
    """Whether a domain has a running (or paused) process that holds its disks open."""
    return virt.power_state(dom) in ("running", "paused")


def grow_online(dom: Any, target: str, size: int, hint: str = ONLINE_HINT) -> None:
    """Grow disk ``target`` of a running domain to ``size`` bytes; the guest sees the new capacity."""
    virt.call(f"grow disk {target} online", dom.blockResize, target, size, BLOCK_RESIZE_BYTES, hint=hint)


def root_wanted_size(store: Store, inst: dict[str, Any]) -> int:
    """Virtual size the store asks of an instance's root overlay (the template's when that is larger)."""
    image = store.get("images", id=inst["image_id"]) if inst.get("image_id") else None
    return overlay.wanted_size(int(image["virtual_size"]) if image else 0, int(inst.get("disk_gb") or 0))


def root_virtual_size(run: overlay.Runner, inst: dict[str, Any]) -> int | None:
    """Current virtual size of an instance's root overlay (None while it has no file)."""
    path = inst.get("root_disk")
    if not path or not os.path.exists(path):
        return None
    return int(overlay.image_info(path, run)["virtual_size"])


def refuse_root_shrink(
    store: Store, run: overlay.Runner, inst: dict[str, Any], offering: dict[str, Any]
) -> None:
    """Refuse ``offering`` when it asks a smaller root disk than the instance's overlay already is.

    Called before the store changes, so a refused resize leaves the row as it was.
    """
    current = root_virtual_size(run, inst)
    if current is None:
        return
    wanted = root_wanted_size(store, {**inst, "disk_gb": int(offering["disk_gb"] or 0)})
    overlay.refuse_shrink(
        f"The root disk of instance {inst['name']} (offering {offering['name']} asks disk_gb "
        f"{int(offering['disk_gb'] or 0)})",
        current,
        wanted,
        f"Choose an offering with disk_gb >= {(current + overlay.GIB - 1) // overlay.GIB}, or create a new "
        "instance with the smaller disk and copy the data.",
    )


def ensure_root_size(env: Env, inst: dict[str, Any], dom: Any | None) -> bool:
    """Grow the root overlay to the size the store asks: online (libvirt blockResize) while the domain
    runs, else ``qemu-img resize``.  A disk already larger is left alone (see ``refuse_root_shrink``).
    """
    current = root_virtual_size(env.run, inst)
    size = None if current is None else overlay.needed_growth(current, root_wanted_size(env.store, inst))
    if current is None or size is None:
        return False
    online = is_active(dom)
    env.did(
        f"grow root disk {inst['root_disk']} from {overlay.human_size(current)} to "
        f"{overlay.human_size(size)} ({'online' if online else 'offline'})"
    )
    if env.check_mode:
        return True
    if online:
        grow_online(dom, virt.disk_target(inst["domain_type"], 0), size)
    else:
        overlay.run_checked(
            env.run,
            overlay.resize_command(inst["root_disk"], size),
            "Is the overlay in use by a process other than the domain, or the storage full?",
        )
    return True


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
    disk_changed = ensure_root_size(env, inst, dom) or disk_changed
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


# ------------------------------------------------------------------------------------------------
# Drift: the domain against the store, and the repair in the store's direction
# ------------------------------------------------------------------------------------------------
LIVE_FIELDS = ("disks", "nics", "vcpus", "memory_kib")


def _targets(disks: list[dict[str, Any]]) -> dict[str, str]:
    return {d["target"]: d["source"] for d in disks}


def disk_drift(desired: list[dict[str, Any]], actual: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Disk targets the domain has but the store does not (``extra``), lacks (``missing``) or
    has with another source (``other_source``)."""
    want, have = _targets(desired), _targets(actual)
    return {
        "extra": sorted(set(have) - set(want)),
        "missing": sorted(set(want) - set(have)),
        "other_source": sorted(t for t in set(want) & set(have) if want[t] != have[t]),
    }


def drift(
    store: Store,
    inst: dict[str, Any],
    host: dict[str, Any],
    dom: Any | None,
    spec: virt.DomainSpec | None = None,
) -> dict[str, Any]:
    """How an instance's domain differs from what the store records.

    ``config``: owned fields of the persistent definition that differ (disks, volumes, NICs,
    vCPUs, memory, metadata...); ``live``: the same for the running guest (disks, NICs, vCPUs,
    memory); ``disks``/``live_disks``: which targets are extra, missing or elsewhere; ``power``:
    the store's state and libvirt's.  ``agrees`` is true only when all of them match.
    """
    desired = virt.spec_fields(spec or domain_spec(store, inst, host))
    power = {"store": inst["state"], "libvirt": virt.power_state(dom)}
    out: dict[str, Any] = {
        "missing": dom is None,
        "config": [],
        "live": [],
        "disks": {},
        "live_disks": {},
        "power": power,
    }
    if dom is not None:
        config = virt.owned_fields(virt.inactive_xml(dom))
        out["config"] = virt.changed_fields(desired, config)
        out["disks"] = disk_drift(desired["disks"], config["disks"])
        if power["libvirt"] in ("running", "paused"):
            live = virt.owned_fields(virt.live_xml(dom))
            out["live"] = [k for k in LIVE_FIELDS if desired[k] != live.get(k)]
            out["live_disks"] = disk_drift(desired["disks"], live["disks"])
    out["agrees"] = not (out["missing"] or out["config"] or out["live"] or power["store"] != power["libvirt"])
    return out


def repair_live_disks(env: Env, dom: Any, spec: virt.DomainSpec, found: dict[str, list[str]]) -> list[str]:
    """Detach the guest's extra disks and hot-plug the missing ones; returns what still needs a restart."""
    by_target = {d.target: d for d in spec.disks}
    for target in found.get("extra", []):
        env.did(f"detach {target} from the running guest")
        xml = virt.live_disk_xml(dom, target)
        if not env.check_mode and xml:
            virt.change_live_device(dom, xml, attach=False)
    for target in found.get("missing", []):
        env.did(f"attach {target} to the running guest")
        if not env.check_mode:
            virt.change_live_device(dom, virt.disk_xml(by_target[target]), attach=True)
    return list(found.get("other_source", []))


def restore_store_view(
    env: Env,
    conn: Any,
    inst: dict[str, Any],
    host: dict[str, Any],
    dom: Any,
    *,
    found: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the definition and the running guest's disks agree with the store.

    Used after a snapshot revert (libvirt brings back the devices of the snapshot's time) and by
    compleat.cloud.reconcile.  NIC, vCPU and memory differences of a running guest take effect at
    the next start; they are returned as ``restart_required``.
    """
    spec = domain_spec(env.store, inst, host)
    found = found or drift(env.store, inst, host, dom, spec)
    changed, _before, _after, dom = ensure_definition(env, conn, spec)
    pending: list[str] = []
    live_changes = bool(found["live_disks"].get("extra") or found["live_disks"].get("missing"))
    if dom is not None and found["live"]:
        pending = repair_live_disks(env, dom, spec, found["live_disks"])
        pending += [f for f in found["live"] if f != "disks"]
    return {
        "drift": found,
        "changed": changed or live_changes,
        "restart_required": sorted(pending),
        "dom": dom,
    }


# ------------------------------------------------------------------------------------------------
# Undoing a create
# ------------------------------------------------------------------------------------------------
def existing_files(*paths: str | None) -> set[str]:
    """The paths among ``paths`` that exist now (taken before a create, to know what it added)."""
    return {p for p in paths if p and os.path.exists(p)}


def discard_instance(env: Env, conn: Any | None, inst: dict[str, Any], keep: Set[str] = frozenset()) -> None:
    """Remove an instance that never finished building: domain, files (except ``keep``), row.

    The row's usage events go too: an instance that never finished creating was never a
    billable instance.  Used to roll back a failed create and by the reaper of ``building`` rows.
    """
    dom = virt.lookup(conn, inst["uuid"]) if conn is not None else None
    if dom is not None:
        env.did(f"undefine domain {inst['name']}")
        if not env.check_mode:
            virt.undefine(dom)
    remove_files(env, *(p for p in (inst.get("root_disk"), inst.get("seed_path")) if p not in keep))
    env.did(f"release {inst['name']} from the store")
    if not env.check_mode and inst.get("id") is not None:
        with env.store.transaction(write=True):
            for vol in env.store.select("volumes", attached_to=inst["id"]):
                env.store.update("volumes", vol["id"], {"attached_to": None, "target_dev": None})
            env.store.delete("usage_events", instance_uuid=inst["uuid"])
            env.store.delete("instances", id=inst["id"])
