#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Create, start, stop and delete cloud instances: qcow2 overlay, NoCloud seed, placement, libvirt domain."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: instance
short_description: Manage cloud instances (libvirt domains on template overlays with a NoCloud seed)
version_added: "0.1.0"
description:
  - Converges one instance of the cloud stack. The metadata store is the source of truth; the
    module makes the instance's host agree with it.
  - A new instance gets a host from placement (filter then weigh, written in the same transaction
    as the allocation) unless O(host) pins it, a root disk that is a qcow2 overlay on the
    O(template) (never a full copy), a cloud-init NoCloud seed (ISO labelled C(cidata), or vfat) with
    a stable instance-id, SSH keys, network config and an optional first-boot script, and a libvirt
    domain built from the fields the stack owns (name, uuid, memory, vCPUs, disks, NICs, console).
  - Idempotent. A second run with the same options changes nothing; owned fields that drifted in
    libvirt are put back. Fields the stack does not own (CPU model, controllers, hand-added
    devices) are kept.
  - Changing O(offering) resizes the instance on its host when the host has room (the new vCPUs and
    memory apply at the next boot of a running instance, see RV(restart_required)). A larger disk
    grows the root overlay at once, online through libvirt while the domain runs, else with
    C(qemu-img resize); the guest still has to grow its partition and file system (cloud-init's
    C(growpart) does so at boot). A disk is never shrunk.
  - V(stopped) asks the guest to shut down (ACPI) and forces it off after O(stop_timeout) seconds.
  - V(absent) removes the domain, its overlay and seed; attached volumes are detached and kept.
  - A create that fails after placement (libvirt refuses the definition, the overlay or seed cannot
    be written, the start fails) is rolled back before the task fails, so that no row, usage event,
    file or domain of it is left behind (the failure says C(rolled_back)). A run killed outright
    leaves a C(building) row that the next run completes or M(compleat.cloud.reconcile) releases.
requirements:
  - qemu-img (qemu-utils), and genisoimage or xorriso (or dosfstools and mtools for O(seed_format=vfat))
    on the machine that runs the module, which must see the host's primary storage directory
    (run it on the hypervisor, or keep primary storage shared)
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
  - compleat.cloud.cloud_store.libvirt
  - compleat.cloud.dns_update
attributes:
  check_mode:
    details: Placement is computed but not written; nothing is created, started or stopped.
  diff_mode:
    details: Shows the store row and the owned domain fields before and after.
options:
  name:
    description:
      - Instance name (also the libvirt domain name, the default guest hostname and the stem of
        its files in the host's storage directory), unique in the store.
      - A new instance needs a DNS label, 1-63 letters, digits and hyphens, not starting or ending
        with a hyphen; anything else is refused before anything is placed or written.
    type: str
    required: true
  state:
    description:
      - V(present) defines the instance and leaves its power state alone (a new one stays off).
      - V(running) and V(stopped) also set the power state; V(absent) deletes the instance.
    type: str
    choices: [present, running, stopped, absent]
    default: present
  template:
    description: Name of the OS-only template (M(compleat.cloud.image)) of the root overlay. Required to
      create; immutable.
    type: str
  offering:
    description:
      - Compute offering (M(compleat.cloud.offering)). Required to create; a change resizes the instance.
      - When the new offering's C(disk_gb) is larger than the root overlay's virtual size, the overlay
        grows to it (online with C(virDomainBlockResize) while the domain runs, offline with
        C(qemu-img resize) otherwise). An offering whose C(disk_gb) is smaller than the overlay
        already is (and than the template) is refused before anything changes; choose one with a
        C(disk_gb) at least the current size, or create a new instance.
      - In check mode the growth is reported in RV(actions) and the new C(disk_gb) in the diff;
        nothing is resized.
    type: str
  tenant:
    description: Tenant that owns the instance (usage reports group by it). Immutable; new instances default
      to V(default).
    type: str
  host:
    description:
      - Pin a new instance to this host (still checked for state and capacity). Without it placement
        chooses.
      - Ignored for an existing instance, which changes host only through M(compleat.cloud.evacuate).
    type: str
  hypervisor:
    description: Hypervisor family for placement; V(kvm) means QEMU-based hosts (KVM or TCG), V(xen) libxl
      hosts.
    type: str
    choices: [kvm, xen]
  anti_affinity_group:
    description: Instances of the same group never share a host. Immutable.
    type: str
  uuid:
    description: UUID of a new instance (default random). The cloud-init instance-id is C(iid-UUID).
    type: str
  networks:
    description: NICs, in guest order (C(eth0), C(eth1)...). Omitted keeps the current NICs.
    type: list
    elements: dict
    suboptions:
      type:
        description: A libvirt network, a host bridge, or user-mode networking (no host setup, for labs).
        type: str
        choices: [network, bridge, user]
        default: network
      source:
        description: Network or bridge name.
        type: str
        default: default
      mac:
        description:
          - MAC address (default derived from the instance UUID and NIC index, so it never changes).
          - Unique in the store, checked in the transaction that stores it. A given MAC that another
            instance has is refused; a derived one that clashes is derived again and then kept.
        type: str
      model:
        description: NIC model.
        type: str
        default: virtio
      network:
        description:
          - A network of the IPAM (M(compleat.cloud.network)) - a tenant network of the instance's
            tenant, or a rack network (its host's rack). The NIC gets an address allocated in the
            transaction that places the instance (the lowest free one, or O(networks[].ip)), is
            plugged into the network's bridge (C(brv<VNI>) for a tenant network; O(networks[].type)
            and O(networks[].source) are ignored) and cloud-init configures the address, gateway,
            MTU and DNS servers statically.
          - The address and the MAC stay with the instance for its life, across evacuation and
            rebalancing (a rack network gives a new address of the new rack when the rack changes).
            They are released when the instance is deleted or its create is rolled back.
        type: str
      ip:
        description:
          - Without O(networks[].network), a static address in CIDR form for cloud-init; DHCP when
            omitted.
          - With O(networks[].network), a fixed address to allocate (bare or in CIDR form; the
            prefix is the network's). It must be inside the network, not its network, broadcast,
            gateway or a reserved address, and free.
        type: str
      gateway:
        description: Default gateway with O(networks[].ip).
        type: str
      nameservers:
        description: DNS servers with O(networks[].ip).
        type: list
        elements: str
  ssh_keys:
    description: Names of stored keys (M(compleat.cloud.keypair)) to authorise in the guest.
    type: list
    elements: str
  ssh_authorized_keys:
    description: Literal public key lines to authorise in the guest.
    type: list
    elements: str
  first_boot_script:
    description: Script (with its C(#!) line) that cloud-init runs once per instance-id. Stored in the
      metadata store; keep secrets out.
    type: str
  packages:
    description: Packages cloud-init installs at first boot.
    type: list
    elements: str
  hostname:
    description: Guest hostname (default the instance name).
    type: str
  seed_format:
    description:
      - NoCloud seed as an ISO 9660 CD-ROM or a vfat disk. Immutable.
      - C(iso) when the instance is created without it; left out later, the instance keeps its format.
    type: str
    choices: [iso, vfat]
  vnc:
    description: Add a VNC display listening on the host's loopback (the serial console is always there).
    type: bool
  stop_timeout:
    description: Seconds to wait for an ACPI shutdown before forcing the domain off.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: A running web server from the Debian template, placed by the stack
  compleat.cloud.instance:
    name: web1
    state: running
    template: debian-12
    offering: small
    tenant: acme
    anti_affinity_group: web
    networks:
      - source: tenant-acme
    ssh_keys: [ops]
    first_boot_script: |
      #!/bin/sh
      apt-get install -y nginx

- name: Stop it (ACPI first, forced after 30 s)
  compleat.cloud.instance:
    name: web1
    state: stopped
    stop_timeout: 30

- name: Delete it (volumes stay)
  compleat.cloud.instance:
    name: web1
    state: absent
"""

RETURN = r"""
instance:
  description: The instance as stored, with its host, offering and template names.
  returned: state is not absent
  type: dict
  sample: {"name": "web1", "uuid": "4f0c...", "instance_id": "iid-4f0c...", "tenant": "acme", "host": "hv1",
           "offering": "small", "template": "debian-12", "vcpus": 1, "ram_mb": 1024, "state": "running",
           "root_disk": "/var/lib/compleat-cloud/primary/web1.qcow2",
           "seed_path": "/var/lib/compleat-cloud/primary/web1-seed.iso"}
console:
  description: How to reach the console; C(pty) and C(vnc) are set while the domain runs.
  returned: state is not absent
  type: dict
  sample: {"command": "virsh -c qemu+ssh://root@hv1/system console web1", "pty": "/dev/pts/3", "vnc": null}
actions:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: str
restart_required:
  description: The definition changed while the domain runs; the change applies at its next boot.
  returned: state is not absent
  type: bool
power_action:
  description: How the power state changed (V(started), V(graceful), V(forced), V(unchanged)).
  returned: state is not absent
  type: str
"""

import uuid as uuid_mod  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    dns_update,
    errors,
    ipam,
    lifecycle,
    macs,
    placement,
    seed,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.names import check_name  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

NETWORK_SPEC: dict[str, Any] = {
    "type": {"type": "str", "choices": ["network", "bridge", "user"], "default": "network"},
    "source": {"type": "str", "default": "default"},
    "mac": {"type": "str"},
    "model": {"type": "str", "default": "virtio"},
    "network": {"type": "str"},
    "ip": {"type": "str"},
    "gateway": {"type": "str"},
    "nameservers": {"type": "list", "elements": "str"},
}
ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec("present", "running", "stopped", "absent"),
    "template": {"type": "str"},
    "offering": {"type": "str"},
    "tenant": {"type": "str"},
    "host": {"type": "str"},
    "hypervisor": {"type": "str", "choices": ["kvm", "xen"]},
    "anti_affinity_group": {"type": "str"},
    "uuid": {"type": "str"},
    "networks": {"type": "list", "elements": "dict", "options": NETWORK_SPEC},
    "ssh_keys": {"type": "list", "elements": "str", "no_log": False},
    "ssh_authorized_keys": {"type": "list", "elements": "str", "no_log": False},
    "first_boot_script": {"type": "str"},
    "packages": {"type": "list", "elements": "str"},
    "hostname": {"type": "str"},
    "seed_format": {"type": "str", "choices": ["iso", "vfat"]},
    "vnc": {"type": "bool"},
    "stop_timeout": {"type": "int", "default": 60},
    "dns_update": {"type": "dict", "options": dns_update.OPTION_SPEC},
}
POWER = {"present": None, "running": "running", "stopped": "stopped"}


# ------------------------------------------------------------------------------------------------
# Desired rows (pure)
# ------------------------------------------------------------------------------------------------
def normalise_networks(
    networks: list[dict[str, Any]], instance_uuid: str, current: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """NICs with MACs assigned and empty fields dropped (the stored form).

    A NIC without ``mac`` keeps the MAC stored for its index, else gets the generated one
    (``claim_macs`` then makes it unique in the store).
    """
    stored = [n.get("mac") for n in current or []]
    out = []
    for index, net in enumerate(networks):
        kept = stored[index] if index < len(stored) else None
        nic = {
            "type": net.get("type") or "network",
            "source": net.get("source") or "default",
            "mac": (net.get("mac") or kept or macs.generated_mac(instance_uuid, index)).lower(),
            "model": net.get("model") or "virtio",
        }
        if net.get("network"):  # address, bridge, gateway and MTU come from the IPAM (assign_addresses)
            nic["network"] = net["network"]
            if net.get("ip"):
                nic["fixed_ip"] = str(net["ip"]).split("/", 1)[0]
            if net.get("nameservers"):
                nic["nameservers"] = net["nameservers"]
            out.append(nic)
            continue
        for key in ("ip", "gateway", "nameservers"):
            if net.get(key):
                nic[key] = net[key]
        if nic["type"] == "user":
            nic["source"] = ""
        out.append(nic)
    return out


def claim_macs(
    store: Store, networks: list[dict[str, Any]], nics: list[dict[str, Any]], inst: dict[str, Any]
) -> list[dict[str, Any]]:
    """``nics`` (normalised) with MACs unique in the store; call inside the allocating transaction."""
    given = {i for i, net in enumerate(networks) if net.get("mac")}
    macs.check_format(nics)
    return macs.claim(store, nics, inst["uuid"], given, owner=inst["name"], instance_id=inst.get("id"))


def assign_addresses(
    store: Store, inst: dict[str, Any], host: dict[str, Any] | None, nics: list[dict[str, Any]], write: bool
) -> list[dict[str, Any]]:
    """``nics`` with the IPAM addresses of the NICs on a network (``write``: allocate and release)."""
    return ipam.assign_nics(store, inst, host, nics, write=write)


def address_actions(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """``allocate ADDR on NETWORK`` for every IPAM address ``after`` has and ``before`` had not."""
    had = {(n.get("network"), n.get("ip")) for n in before}
    return [
        f"allocate {n['ip']} on {n['network']}"
        for n in after
        if n.get("network") and n.get("ip") and (n["network"], n["ip"]) not in had
    ]


def resolve_keys(store: Store, names: list[str] | None, literal: list[str] | None) -> list[str]:
    """Public key lines: the named stored keys, then the literal ones, without duplicates."""
    lines: list[str] = []
    for name in names or []:
        row = store.get("keys", name=name)
        if row is None:
            raise errors.NotFound(f"Unknown key '{name}'.", "Store it first with compleat.cloud.keypair.")
        lines.append(row["public_key"])
    lines.extend(k.strip() for k in literal or [])
    return list(dict.fromkeys(lines))


def desired_cloud_init(params: dict[str, Any], store: Store, current: dict[str, Any]) -> dict[str, Any]:
    """The stored cloud-init inputs: given options replace, omitted ones keep ``current``."""
    ci = dict(current)
    if params["ssh_keys"] is not None or params["ssh_authorized_keys"] is not None:
        ci["ssh_keys"] = resolve_keys(store, params["ssh_keys"], params["ssh_authorized_keys"])
    for key in ("first_boot_script", "hostname", "packages", "vnc"):
        if params[key] is not None:
            ci[key] = params[key]
    ci.setdefault("ssh_keys", [])
    return dict(sorted(ci.items()))


def request_for(offering: dict[str, Any], params: dict[str, Any], group: str | None) -> placement.Request:
    """The placement request of an instance."""
    family = params["hypervisor"]
    return placement.Request(
        vcpus=int(offering["vcpus"]),
        ram_mb=int(offering["ram_mb"]),
        hypervisors=virt.HYPERVISOR_FAMILIES[family] if family else frozenset(),
        anti_affinity_group=group,
        only=frozenset({params["host"]}) if params["host"] else frozenset(),
        **placement.offering_needs(offering),
    )


def check_immutable(params: dict[str, Any], inst: dict[str, Any], store: Store) -> None:
    """Refuse changes of fields an existing instance cannot change."""
    image = store.get("images", id=inst["image_id"]) if inst["image_id"] else None
    checks = [
        ("template", params["template"], image["name"] if image else None),
        ("tenant", params["tenant"], inst["tenant"]),
        ("anti_affinity_group", params["anti_affinity_group"], inst["anti_affinity_group"]),
        ("seed_format", params["seed_format"], inst["seed_format"]),
        ("uuid", params["uuid"], inst["uuid"]),
    ]
    for option, wanted, current in checks:
        if wanted is not None and current is not None and wanted != current:
            raise errors.Conflict(
                f"Instance {inst['name']} has {option}={current}; it cannot change to {wanted}.",
                "Delete and recreate the instance (or use compleat.cloud.evacuate to move it).",
            )


# ------------------------------------------------------------------------------------------------
# Store changes
# ------------------------------------------------------------------------------------------------
def create(module: AnsibleModule, store: Store) -> tuple[dict[str, Any], list[str]]:
    """Place and insert a new instance row (check mode: place only, return the row it would be)."""
    p = module.params
    missing = [o for o in ("template", "offering") if not p[o]]
    if missing:
        raise errors.NotFound(
            f"Instance {p['name']} does not exist; creating it needs {' and '.join(missing)}.",
            "Give template and offering.",
        )
    image = lifecycle.need(
        store, "images", "template", "Register it with compleat.cloud.image.", name=p["template"]
    )
    if image["kind"] != "template":
        raise errors.Conflict(
            f"Image {image['name']} is an ISO, not a template.", "Give an OS-only template."
        )
    offering = lifecycle.need(
        store, "offerings", "offering", "Define it with compleat.cloud.offering.", name=p["offering"]
    )
    if p["host"]:
        lifecycle.need(store, "hosts", "host", "Register it with compleat.cloud.hypervisor.", name=p["host"])
    new_uuid = parse_uuid(p["uuid"]) if p["uuid"] else str(uuid_mod.uuid4())
    row = {
        "uuid": new_uuid,
        "name": p["name"],
        "instance_id": seed.instance_id_for(new_uuid),
        "tenant": p["tenant"] or "default",
        "offering_id": offering["id"],
        "image_id": image["id"],
        "disk_gb": int(offering["disk_gb"]),
        "state": "building",
        "domain_type": "qemu",
        "seed_format": p["seed_format"] or "iso",
        "networks": normalise_networks(p["networks"] or [], new_uuid),
        "cloud_init": desired_cloud_init(p, store, {}),
    }
    req = request_for(offering, p, p["anti_affinity_group"])
    if module.check_mode:
        host = placement.plan(store, req)
        row.update(id=None, host_id=host.host_id, **placement.allocation_columns(req))
        with store.transaction():
            host_row = store.get("hosts", id=host.host_id)
            row["networks"] = assign_addresses(store, row, host_row, row["networks"], write=False)
        return row, [f"place on {host.name}", *address_actions([], row["networks"])]
    with store.transaction(write=True):
        row["networks"] = claim_macs(store, p["networks"] or [], row["networks"], row)
        host, row = placement.allocate(store, req, new_row=row)
        # the addresses are allocated in the placement's transaction: both or neither
        nics = assign_addresses(store, row, store.get("hosts", id=host.host_id), row["networks"], write=True)
        if nics != row["networks"]:
            store.update("instances", row["id"], {"networks": nics})
            row = {**row, "networks": nics}
        store.record_usage("create", row, offering["name"], host.name)
    return row, [f"place on {host.name}", *address_actions([], row["networks"])]


def parse_uuid(value: str) -> str:
    """The canonical form of a UUID given as ``uuid`` (InvalidInput naming the value otherwise)."""
    try:
        return str(uuid_mod.UUID(value))
    except ValueError as exc:
        raise errors.InvalidInput(
            f"uuid={value!r} is not a UUID.",
            "Give a UUID such as 6f1c2a9e-0b7d-4c55-9a53-3d2e8f1b7c40, or omit uuid to get a new one.",
        ) from exc


def fill_paths(
    module: AnsibleModule, store: Store, inst: dict[str, Any], host: dict[str, Any]
) -> dict[str, Any]:
    """Paths and domain type of an instance on its host (set once, right after placement)."""
    if inst.get("root_disk"):
        return inst
    root, seed_path = lifecycle.instance_paths(host["storage_dir"], inst["name"], inst["seed_format"])
    changes = {
        "root_disk": root,
        "seed_path": seed_path,
        "domain_type": virt.DOMAIN_TYPES[host["hypervisor"]],
    }
    if not module.check_mode and inst.get("id") is not None:
        store.update("instances", inst["id"], changes)
    return {**inst, **changes}


def update(module: AnsibleModule, store: Store, inst: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Resize and mutable-field changes of an existing instance, in ONE write transaction.

    The MAC check, the capacity check of a resize and the writes cannot interleave with another
    run's (the inner transactions of ``claim_macs`` and ``placement.allocate`` join this one).
    """
    with store.transaction(write=not module.check_mode):
        return apply_changes(module, store, inst)


def apply_changes(
    module: AnsibleModule, store: Store, inst: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The body of ``update``: store the changes the parameters ask for."""
    p = module.params
    actions: list[str] = []
    changes: dict[str, Any] = {}
    if p["networks"] is not None:
        nets = normalise_networks(p["networks"], inst["uuid"], inst["networks"])
        host_row = store.get("hosts", id=inst["host_id"]) if inst.get("host_id") else None
        nets = assign_addresses(store, inst, host_row, nets, write=False)
        if nets != inst["networks"]:
            nets = claim_macs(store, p["networks"], nets, inst)
            if not module.check_mode:
                nets = assign_addresses(store, inst, host_row, nets, write=True)
            actions.extend(address_actions(inst["networks"], nets))
            changes["networks"] = nets
    ci = desired_cloud_init(p, store, inst["cloud_init"])
    if ci != inst["cloud_init"]:
        changes["cloud_init"] = ci
    if p["offering"]:
        offering = lifecycle.need(
            store, "offerings", "offering", "Define it with compleat.cloud.offering.", name=p["offering"]
        )
        if offering["id"] != inst["offering_id"]:
            # before the store changes
            lifecycle.refuse_root_shrink(store, _common.runner(module), inst, offering)
            host = lifecycle.host_of(store, inst)
            req = placement.Request(
                vcpus=int(offering["vcpus"]),
                ram_mb=int(offering["ram_mb"]),
                anti_affinity_group=inst["anti_affinity_group"],
                only=frozenset({host["name"]}),
                **placement.offering_needs(offering),
            )
            actions.append(f"resize to {offering['name']}")
            more = {"offering_id": offering["id"], "disk_gb": int(offering["disk_gb"])}
            if module.check_mode:
                placement.plan(store, req, ignore_instance=inst["id"])
                changes.update(more, **placement.allocation_columns(req))
            else:
                _host, row = placement.allocate(
                    store, req, instance_id=inst["id"], changes={**changes, **more}
                )
                store.record_usage("resize", row, offering["name"], host["name"])
                return row, actions
    if changes:
        actions.append("update " + ", ".join(sorted(changes)))
        if not module.check_mode:
            store.update("instances", inst["id"], changes)
    return {**inst, **changes}, actions


def absent(module: AnsibleModule, store: Store, inst: dict[str, Any] | None) -> dict[str, Any]:
    """Delete an instance: domain, overlay, seed, store row (volumes are detached and kept)."""
    if inst is None:
        return {"changed": False, "actions": []}
    env = lifecycle.Env(store, module.check_mode, _common.runner(module))
    host = store.get("hosts", id=inst["host_id"]) if inst["host_id"] else None
    stale = False
    if host is not None:
        try:
            dom = virt.lookup(virt.connect(host["uri"]), inst["uuid"])
        except errors.VirtError:
            if host["state"] == "up":
                raise
            dom, stale = None, True  # dead host: clean up when it returns
        if dom is not None:
            env.did(f"undefine domain {inst['name']}")
            if not module.check_mode:
                virt.undefine(dom)
        if not stale:
            lifecycle.remove_files(env, inst.get("root_disk"), inst.get("seed_path"))
    env.did("delete from store")
    if not module.check_mode:
        with store.transaction(write=True):
            for vol in store.select("volumes", attached_to=inst["id"]):
                store.update("volumes", vol["id"], {"attached_to": None, "target_dev": None})
            store.delete("snapshots", instance_uuid=inst["uuid"], kind="internal")
            if stale and host is not None:
                store.insert(
                    "stale_definitions",
                    {
                        "instance_uuid": inst["uuid"],
                        "instance_name": inst["name"],
                        "host_id": host["id"],
                        "root_disk": inst.get("root_disk"),
                        "seed_path": inst.get("seed_path"),
                    },
                )
            store.record_usage(
                "delete", inst, lifecycle.offering_name(store, inst), host["name"] if host else None
            )
            ipam.release(store, inst["id"])  # (the foreign key's ON DELETE CASCADE would too)
            store.delete("instances", id=inst["id"])
    env.actions.extend(follow_dns(module, inst["name"], ipam.primary_address(inst["networks"]), None))
    return {
        "changed": True,
        "actions": env.actions,
        "diff": _common.make_diff({"store": _common.public(inst)}, {}, inst["name"]),
    }


# ------------------------------------------------------------------------------------------------
# Module
# ------------------------------------------------------------------------------------------------
def describe(store: Store, inst: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    """The instance for the result: row plus host, offering and template names."""
    image = store.get("images", id=inst["image_id"]) if inst.get("image_id") else None
    out = _common.public(
        inst, frozenset({"created_at", "updated_at", "id", "host_id", "offering_id", "image_id"})
    )
    out.update(
        host=host["name"],
        offering=lifecycle.offering_name(store, inst),
        template=image["name"] if image else None,
    )
    return out


def build(
    module: AnsibleModule, env: lifecycle.Env, inst: dict[str, Any], host: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Files, definition and power of the instance on its host; the state recorded in the store."""
    p, store = module.params, env.store
    if p["state"] == "running" and host["state"] != "up":
        raise errors.Conflict(
            f"Host {host['name']} of instance {p['name']} is {host['state']}.",
            "Evacuate the host (compleat.cloud.evacuate) or bring it up (compleat.cloud.hypervisor).",
        )
    inst = fill_paths(module, store, inst, host)
    image = store.get("images", id=inst["image_id"]) if inst.get("image_id") else None
    conn = virt.connect(host["uri"])
    summary = lifecycle.converge(env, conn, inst, host, image, power=POWER[p["state"]])
    state_changes = {"state": summary["state"], "seed_hash": summary["seed_hash"]}
    if not module.check_mode:
        with store.transaction(write=True):
            store.update("instances", inst["id"], state_changes)
            lifecycle.record_power_change(store, inst, summary["state"], host["name"])
    return {**inst, **state_changes}, summary


def build_new(
    module: AnsibleModule, env: lifecycle.Env, inst: dict[str, Any], host: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``build`` for an instance placed by this run: when it fails, undo everything it did.

    The domain, the overlay and the seed it created and the ``building`` row (with its usage
    event) are removed, so a failed create holds no capacity and leaves no file behind; files
    that were there before the run are kept.  A run killed outright cannot do this: the
    ``building`` row is then released by compleat.cloud.reconcile after ``building_ttl``.
    """
    paths = lifecycle.instance_paths(host["storage_dir"], inst["name"], inst["seed_format"])
    before = lifecycle.existing_files(*paths)
    try:
        return build(module, env, inst, host)
    except Exception as exc:
        undo = lifecycle.Env(env.store, False, env.run)
        try:
            conn = virt.connect(host["uri"])
        except errors.VirtError:
            conn = None
        row = env.store.get("instances", id=inst["id"]) or inst
        try:
            lifecycle.discard_instance(undo, conn, row, keep=before)
        except Exception as undo_exc:  # report both; the reaper finishes what is left
            if isinstance(exc, errors.CloudError):
                exc.details["rolled_back"] = False
                exc.hint = (
                    f"{exc.hint} Rolling the create back failed too ({undo_exc}); "
                    "compleat.cloud.reconcile releases the building row after building_ttl."
                ).strip()
        else:
            if isinstance(exc, errors.CloudError):
                exc.details["rolled_back"] = True
                exc.details["rollback_actions"] = undo.actions
        raise


def follow_dns(module: AnsibleModule, name: str, old: str | None, new: str | None) -> list[str]:
    """Move the instance's A/PTR records from ``old`` to ``new`` (dns_update given; check mode: predict)."""
    cfg = dns_update.config_from(module.params["dns_update"])
    if cfg is None or old == new:
        return []
    if module.check_mode:
        return dns_update.sync_actions(cfg, name, old, new)
    return dns_update.sync(cfg, name, old, new)


def check_params(p: dict[str, Any]) -> None:
    """Refuse a bad dns_update before the store is opened, so that nothing changes."""
    dns_update.config_from(p["dns_update"])


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the instance."""
    p = module.params
    inst = store.get("instances", name=p["name"])
    if p["state"] == "absent":
        return absent(module, store, inst)
    before_row = _common.public(inst)
    if inst is None:
        # A new instance's name becomes the domain name, the hostname and the files' stem:
        # checked before placement, so a refused name leaves no row, no file and no domain.
        # Instances made before names were checked keep working under theirs.
        check_name("name", p["name"])
        inst, actions = create(module, store)
    else:
        check_immutable(p, inst, store)
        inst, actions = update(module, store, inst)
    host = lifecycle.host_of(store, inst)
    env = lifecycle.Env(store, module.check_mode, _common.runner(module), stop_timeout=p["stop_timeout"])
    env.actions.extend(actions)
    if before_row or module.check_mode:
        inst, summary = build(module, env, inst, host)
    else:
        inst, summary = build_new(module, env, inst, host)
    changed = bool(actions) or summary["changed"] or before_row.get("state") != inst["state"]
    env.actions.extend(
        follow_dns(
            module,
            inst["name"],
            ipam.primary_address(before_row.get("networks") or []),
            ipam.primary_address(inst["networks"]),
        )
    )
    return {
        "changed": changed,
        "instance": describe(store, inst, host),
        "actions": env.actions,
        "console": virt.console_info(host["uri"], summary["dom"], inst["name"]),
        "restart_required": summary["restart_required"],
        "power_action": summary["power_action"],
        "diff": _common.make_diff(
            {"store": before_row, "domain": summary["before"]},
            {"store": _common.public(inst), "domain": summary["after"]},
            p["name"],
        ),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, libvirt=True, precheck=check_params)


if __name__ == "__main__":
    main()
