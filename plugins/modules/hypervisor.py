#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Register a hypervisor host in the cloud metadata store: capacity, ratios and up/down/fenced mark."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hypervisor
short_description: Register a hypervisor host in the cloud metadata store
version_added: "0.1.0"
description:
  - Creates, updates or removes the store row of one hypervisor host (its libvirt URI, hypervisor
    type, capacity (vCPU, RAM), reservations for the host itself, overcommit ratios, the primary
    storage directory where instance overlays and seeds live, and its state).
  - The state V(fenced) is the fence mark that M(compleat.cloud.evacuate) accepts (O(host_state=fenced)
    after the operator or a power controller made sure the host is off).
  - When O(vcpus) or O(ram_mb) are not given for a new host they are read from libvirt at O(uri).
  - Lowering the capacity (O(vcpus), O(ram_mb), O(reserved_vcpus), O(reserved_ram_mb), O(cpu_ratio),
    O(ram_ratio)) so that the host's vCPU or RAM limit falls below what its instances commit is
    refused unless O(force=true) (also in check mode).
  - O(maintenance=true) drains the host. It keeps its instances and its O(host_state), takes no new
    instance (placement reports it as C(in maintenance)), is left alone by the health policy of
    M(compleat.cloud.host_health), and M(compleat.cloud.rebalance) moves its instances to other hosts.
  - Heavy-workload resources (see docs/cloud-heavy-workloads.md) are O(dedicated_cpus) (pCPUs that
    pinned instances get one to one), O(hugepages) (the host's hugepage pool) and O(pci_devices)
    (devices for passthrough, by class). The dedicated set and the hugepage pool are taken out of
    the shared vCPU and RAM limits. The role M(compleat.cloud.kvm_host) discovers them as facts
    (C(kvm_host_pci_devices), C(kvm_host_hugepages)) and prepares IOMMU, VFIO and hugepages.
requirements:
  - libvirt-python, only to discover the capacity of a new host
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
options:
  name:
    description: Host name, unique in the store.
    type: str
    required: true
  state:
    description: V(present) registers or updates the host; V(absent) removes it (refused while instances are
      on it).
    type: str
    choices: [present, absent]
    default: present
  uri:
    description: libvirt URI of the host, for example C(qemu+ssh://root@hv1/system) or C(xen:///system).
      Required for a new host.
    type: str
  hypervisor:
    description:
      - Hypervisor type; V(qemu) is QEMU without KVM (TCG), V(test) is libvirt's test driver (unit tests
        only).
      - A new host defaults to V(kvm); omitted keeps the current type.
    type: str
    choices: [kvm, qemu, xen, test]
  vcpus:
    description: Physical vCPU count (threads). Discovered from libvirt when omitted for a new host.
    type: int
  ram_mb:
    description: Physical RAM in MiB. Discovered from libvirt when omitted for a new host.
    type: int
  reserved_vcpus:
    description: vCPUs kept for the host itself (taken off before overcommit).
    type: int
  reserved_ram_mb:
    description: RAM in MiB kept for the host itself (taken off before overcommit).
    type: int
  cpu_ratio:
    description: vCPU overcommit ratio (C(limit = (vcpus - reserved_vcpus) * cpu_ratio)). New hosts default
      to 4.0.
    type: float
  ram_ratio:
    description: RAM overcommit ratio. New hosts default to 1.0.
    type: float
  storage_dir:
    description: Primary storage directory on the host for instance overlays and seed images. Required for a
      new host.
    type: path
  host_state:
    description:
      - V(up) takes new instances; V(down) takes none (a failed host, also set by
        M(compleat.cloud.host_health) after repeated failed probes; for planned work use O(maintenance));
        V(fenced) marks the host as powered off for sure, which allows M(compleat.cloud.evacuate).
      - Omitted keeps the current state (V(up) for a new host).
      - Setting V(up) on a host that was not up also resets its C(failed_probes) counter (see
        M(compleat.cloud.host_health)). A host that the health policy marked V(down) stays down until
        this option brings it back; clean up after an evacuation first
        (M(compleat.cloud.evacuate) with V(state=cleaned)).
    type: str
    choices: [up, down, fenced]
  maintenance:
    description:
      - V(true) puts the host in maintenance. It takes no new instance (placement refuses it with the
        reason C(maintenance)), M(compleat.cloud.rebalance) drains it (moves its instances elsewhere),
        and M(compleat.cloud.host_health) records its probes but never marks it down or evacuates it.
      - V(false) ends the maintenance. Omitted keeps the current flag (V(false) for a new host).
    type: bool
  iscsi_attach:
    description:
      - How iSCSI volumes (M(compleat.cloud.volume) with C(backend=iscsi)) reach instances on a QEMU/KVM
        host. V(qemu) attaches the LUN straight to the guest with QEMU's own initiator (no login on
        the host). V(host) uses the host's C(/dev/disk/by-path) device, so the host's own open-iscsi
        initiator must have logged in to the target with its IQN and CHAP secret (role
        M(compleat.cloud.iscsi_initiator)); evacuations then need every candidate host logged in.
      - Xen hosts always use the host's device. Omitted keeps the current value (V(qemu) for a new host).
    type: str
    choices: [qemu, host]
  dedicated_cpus:
    description:
      - Physical CPUs reserved for instances of offerings with C(cpu_pinning), as a cpuset
        (V(4-15,20-31)); each pinned vCPU takes one of them, never shared. An empty string removes
        the set. Omitted keeps it (none for a new host).
      - They leave the shared pool (C(limit = (vcpus - reserved_vcpus - dedicated) * cpu_ratio)); keep
        them apart from O(reserved_vcpus) and isolate them from the host's own work (C(isolcpus) or
        systemd C(CPUAffinity)).
      - Every pCPU must exist on the host (below O(vcpus)) and the set plus O(reserved_vcpus) must not
        exceed O(vcpus). Removing pCPUs that instances have pinned is refused unless O(force=true).
    type: str
  hugepages:
    description:
      - The host's hugepage pool as pages per size, a dict with the keys V(2M) and V(1G), for example
        64 pages of 1 GiB; instances of offerings with C(hugepages) take their memory from it.
        The pool's RAM leaves the shared RAM limit. V({}) removes it. Omitted keeps it.
      - Reserve the pages on the host first (role M(compleat.cloud.kvm_host),
        C(kvm_host_hugepages_2m)/C(kvm_host_hugepages_1g)); fewer pages than instances use is refused
        unless O(force=true).
    type: dict
  pci_devices:
    description:
      - Every PCI device of the host that instances may get whole (passthrough), by class. Given, the
        list is complete. Devices not in it are unregistered (refused while an instance holds one),
        new ones registered, changed ones updated.
      - Omitted keeps the registered devices. The role M(compleat.cloud.kvm_host) publishes them as
        the fact C(kvm_host_pci_devices) in this form.
      - A device is handed to one instance at a time, and only while no other instance holds a
        device of the same IOMMU group.
    type: list
    elements: dict
    suboptions:
      address:
        description: PCI address, V(0000:3b:00.0) (V(3b:00.0) means domain 0000).
        type: str
        required: true
      class:
        description: Device class that offerings ask for, for example V(gpu-a100).
        type: str
        required: true
      vendor_device:
        description: PCI vendor and device ID, V(10de:20b5).
        type: str
        required: true
      iommu_group:
        description: IOMMU group number (C(/sys/bus/pci/devices/ADDRESS/iommu_group)).
        type: int
  force:
    description:
      - Accept a capacity change that puts the host's vCPU or RAM limit below what its instances
        already commit. The host then takes no new instance until its usage fits; a warning says by
        how much it is over. The same for removing pinned pCPUs from O(dedicated_cpus) or hugepages
        instances use from O(hugepages).
      - Without it such a change is refused; move instances away first with M(compleat.cloud.rebalance)
        (or M(compleat.cloud.evacuate) for a dead host).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Register a KVM host, capacity read from libvirt
  compleat.cloud.hypervisor:
    name: hv1
    uri: qemu+ssh://root@hv1.example.net/system
    storage_dir: /var/lib/compleat-cloud/primary
    reserved_ram_mb: 2048
    cpu_ratio: 4.0

- name: Mark a dead host as fenced after its BMC confirmed power off
  compleat.cloud.hypervisor:
    name: hv1
    host_state: fenced

- name: Back in service after repair and cleanup
  compleat.cloud.hypervisor:
    name: hv1
    host_state: up

- name: Drain hv2 for a kernel update (no new instances; compleat.cloud.rebalance moves the others)
  compleat.cloud.hypervisor:
    name: hv2
    maintenance: true

- name: A GPU host, its devices as the kvm_host role found them
  compleat.cloud.hypervisor:
    name: gpu1
    uri: qemu+ssh://root@gpu1.example.net/system
    storage_dir: /var/lib/compleat-cloud/primary
    dedicated_cpus: 8-63
    hugepages:
      1G: 384
    pci_devices: "{{ hostvars['gpu1'].kvm_host_pci_devices }}"

- name: Give hv2 half its RAM back to a local service although instances still commit it
  compleat.cloud.hypervisor:
    name: hv2
    reserved_ram_mb: 32768
    force: true
"""

RETURN = r"""
host:
  description: The host row as stored (after the change; in check mode, as it would be).
  returned: state is present
  type: dict
  sample: {"name": "hv1", "uri": "qemu:///system", "hypervisor": "kvm", "vcpus": 16, "ram_mb": 65536,
           "reserved_vcpus": 0, "reserved_ram_mb": 2048, "cpu_ratio": 4.0, "ram_ratio": 1.0,
           "state": "up", "storage_dir": "/var/lib/compleat-cloud/primary", "fenced_at": null,
           "maintenance": false, "failed_probes": 0, "last_probe_at": 1767225600, "iscsi_attach": "qemu",
           "dedicated_cpus": "8-15", "hugepages": {"1G": 16},
           "pci_devices": [{"address": "0000:3b:00.0", "class": "gpu-a100", "vendor_device": "10de:20b5",
                            "iommu_group": 27, "instance": "train-1"}]}
  contains:
    dedicated_cpus:
      description: The dedicated pCPU set (cpuset text, empty for none).
      type: str
    hugepages:
      description: The hugepage pool, pages per size.
      type: dict
    pinned_cpus:
      description: Dedicated pCPUs pinned by instances, as a cpuset.
      type: str
    pci_devices:
      description: Registered PCI devices with the instance that holds each (null when free).
      type: list
      elements: dict
    maintenance:
      description: Whether the host is in maintenance (takes no new instance, drained by rebalance).
      type: bool
    failed_probes:
      description: Consecutive failed health probes recorded by M(compleat.cloud.host_health) (0 after a
        successful probe).
      type: int
    last_probe_at:
      description: Time of the last health probe (seconds since the epoch), null before the first.
      type: int
actions:
  description: PCI device registrations done (or, in check mode, that would be done).
  returned: state is present
  type: list
  elements: str
stale_definitions:
  description: Instances evacuated away whose old definitions still wait on this host for
    M(compleat.cloud.evacuate) V(state=cleaned).
  returned: state is present
  type: list
  elements: str
"""

import dataclasses  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import (  # noqa: E402
    _common,
    errors,
    placement,
    resources,
    virt,
)
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec(),
    "uri": {"type": "str"},
    "hypervisor": {"type": "str", "choices": ["kvm", "qemu", "xen", "test"]},
    "vcpus": {"type": "int"},
    "ram_mb": {"type": "int"},
    "reserved_vcpus": {"type": "int"},
    "reserved_ram_mb": {"type": "int"},
    "cpu_ratio": {"type": "float"},
    "ram_ratio": {"type": "float"},
    "storage_dir": {"type": "path"},
    "host_state": {"type": "str", "choices": ["up", "down", "fenced"]},
    "maintenance": {"type": "bool"},
    "iscsi_attach": {"type": "str", "choices": ["qemu", "host"]},
    "dedicated_cpus": {"type": "str"},
    "hugepages": {"type": "dict"},
    "pci_devices": {
        "type": "list",
        "elements": "dict",
        "options": {
            "address": {"type": "str", "required": True},
            "class": {"type": "str", "required": True},
            "vendor_device": {"type": "str", "required": True},
            "iommu_group": {"type": "int"},
        },
    },
    "force": {"type": "bool", "default": False},
}
DEVICE_FIELDS = ("device_class", "vendor_device", "iommu_group")
FIELDS = (
    "uri",
    "hypervisor",
    "vcpus",
    "ram_mb",
    "reserved_vcpus",
    "reserved_ram_mb",
    "cpu_ratio",
    "ram_ratio",
    "storage_dir",
    "iscsi_attach",
)
CAPACITY_FIELDS = ("vcpus", "ram_mb", "reserved_vcpus", "reserved_ram_mb", "cpu_ratio", "ram_ratio")
HEALTH_DEFAULTS: dict[str, Any] = {"maintenance": False, "failed_probes": 0, "last_probe_at": None}
SHRINK_HINT = (
    "Move instances away first with compleat.cloud.rebalance (maintenance=true on this host drains "
    "it) or, for a dead host, compleat.cloud.evacuate; or pass force=true to accept a host that "
    "takes no new instance until its usage fits."
)


def discover(uri: str) -> tuple[int, int]:
    """(vCPUs, RAM MiB) of the host behind ``uri``."""
    info = virt.call("read the host's capacity", virt.connect(uri).getInfo)
    return int(info[2]), int(info[1])


def desired_row(params: dict[str, Any], current: dict[str, Any] | None, now: int) -> dict[str, Any]:
    """The columns to write: given options only, plus defaults and discovery for a new host."""
    row = {k: params[k] for k in FIELDS if params[k] is not None}
    if params["maintenance"] is not None:
        row["maintenance"] = int(params["maintenance"])
    if params["dedicated_cpus"] is not None:
        row["dedicated_cpus"] = resources.format_cpuset(resources.parse_cpuset(params["dedicated_cpus"]))
    if params["hugepages"] is not None:
        row["hugepages"] = resources.host_hugepages(params["hugepages"])
    if current is None:
        missing = [k for k in ("uri", "storage_dir") if not params[k]]
        if missing:
            raise errors.NotFound(
                f"Host {params['name']} is new and needs {' and '.join(missing)}.",
                "Give uri and storage_dir when registering a host.",
            )
        row.setdefault("hypervisor", "kvm")
        row.setdefault("cpu_ratio", 4.0)
        row.setdefault("ram_ratio", 1.0)
        if params["vcpus"] is None or params["ram_mb"] is None:
            vcpus, ram = discover(params["uri"])
            row.setdefault("vcpus", vcpus)
            row.setdefault("ram_mb", ram)
    if params["host_state"] and (current is None or current["state"] != params["host_state"]):
        row["state"] = params["host_state"]
        row["fenced_at"] = now if params["host_state"] == "fenced" else None
        if params["host_state"] == "up" and current is not None and current.get("failed_probes"):
            row["failed_probes"] = 0
    check_dedicated(row, current)
    return row


def check_dedicated(row: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Refuse a dedicated set with pCPUs the host does not have or that overlaps its reservation."""
    merged = {**(current or {}), **row}
    text = merged.get("dedicated_cpus")
    if not text or not {"dedicated_cpus", "vcpus", "reserved_vcpus"} & row.keys():
        return
    cpus = resources.parse_cpuset(text)
    vcpus, reserved = int(merged["vcpus"]), int(merged.get("reserved_vcpus") or 0)
    if max(cpus) >= vcpus or len(cpus) + reserved > vcpus:
        raise errors.InvalidInput(
            f"dedicated_cpus={text} does not fit the host: {vcpus} CPUs (0-{vcpus - 1}), "
            f"{reserved} reserved for the host itself.",
            "Give pCPUs the host has, leaving reserved_vcpus of them to the host.",
            key="dedicated_cpus",
            value=text,
        )


def shrink_violations(before: placement.HostState, after: placement.HostState) -> list[str]:
    """The limits that a change lowers below what is committed on the host, as readable phrases."""
    out = []
    if after.vcpu_limit < before.vcpu_limit and after.vcpu_limit < before.used_vcpus:
        out.append(f"vCPU limit {after.vcpu_limit} < {before.used_vcpus} committed")
    if after.ram_limit_mb < before.ram_limit_mb and after.ram_limit_mb < before.used_ram_mb:
        out.append(f"RAM limit {after.ram_limit_mb} MiB < {before.used_ram_mb} MiB committed")
    return out


def held_violations(store: Store, current: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """Pinned pCPUs left out of a new dedicated set, hugepages below what instances use."""
    out = []
    if "dedicated_cpus" in row:
        kept = resources.parse_cpuset(row["dedicated_cpus"])
        lost = sorted(set(pinned_cpus(store, current["id"])) - kept)
        if lost:
            out.append(f"pCPUs {resources.format_cpuset(lost)} are pinned by instances")
    if "hugepages" in row:
        free = dict(resources.free_by_host(store, [{**current, **row}], None)[current["id"]]["free"])
        out.extend(
            f"{-free[k]} more {k.split(':')[1]} hugepages in use than the new pool has"
            for k in sorted(free)
            if k.startswith("hugepages:") and free[k] < 0
        )
        for size in sorted(set(current.get("hugepages") or {}) - set(row["hugepages"])):
            used = used_pages(store, current["id"], size)
            if used:
                out.append(f"{used} {size} hugepages in use, none left in the new pool")
    return out


def pinned_cpus(store: Store, host_id: int) -> list[int]:
    """pCPUs of a host that instances have pinned."""
    return [int(r["cpu"]) for r in store.query("SELECT cpu FROM pinned_cpus WHERE host_id = ?", (host_id,))]


def used_pages(store: Store, host_id: int, size: str) -> int:
    """Hugepages of ``size`` the instances on a host use."""
    rows = store.query("SELECT ram_mb FROM instances WHERE host_id = ? AND hugepages = ?", (host_id, size))
    return sum(resources.pages_for(int(r["ram_mb"]), size) for r in rows)


def check_shrink(
    module: AnsibleModule, store: Store, name: str, row: dict[str, Any], current: dict[str, Any]
) -> None:
    """Refuse (or, with force, warn about) new limits below what the host's instances commit."""
    changes: dict[str, Any] = {k: row[k] for k in CAPACITY_FIELDS if k in row}
    if "dedicated_cpus" in row:
        changes["dedicated_cpus"] = len(resources.parse_cpuset(row["dedicated_cpus"]))
    if "hugepages" in row:
        changes["hugepage_mb"] = resources.pool_mb(row["hugepages"])
    if not changes:
        return
    before = next((h for h in placement.load_hosts(store) if h.name == name), None)
    if before is None or not before.instances:
        return
    violations = shrink_violations(before, dataclasses.replace(before, **changes))
    violations += held_violations(store, current, row)
    if not violations:
        return
    text = (
        f"Host {name} would commit more than its new limits allow: {'; '.join(violations)} "
        f"({before.instances} instance(s) on it)."
    )
    if not module.params["force"]:
        raise errors.Conflict(f"Refusing to shrink: {text}", SHRINK_HINT)
    module.warn(f"force=true: {text} It takes no new instance until its usage fits.")


def host_view(
    row: dict[str, Any] | None, devices: list[dict[str, Any]] | None = None, pinned: str = ""
) -> dict[str, Any]:
    """The host as returned: stable columns, the health fields always present, maintenance a bool,
    its PCI devices (with the instance holding each) and its pinned pCPUs."""
    if not row:
        return {}
    out = {**HEALTH_DEFAULTS, "dedicated_cpus": "", "hugepages": {}, **_common.public(row)}
    out["maintenance"] = bool(out["maintenance"])
    out["pci_devices"] = devices or []
    out["pinned_cpus"] = pinned
    return out


def device_views(store: Store, host_id: int | None) -> list[dict[str, Any]]:
    """Registered devices of a host, by address, with the name of the instance holding each."""
    if host_id is None:
        return []
    rows = store.query(
        "SELECT d.address, d.device_class, d.vendor_device, d.iommu_group, i.name AS instance"
        " FROM pci_devices d LEFT JOIN instances i ON i.id = d.instance_id WHERE d.host_id = ?"
        " ORDER BY d.address",
        (host_id,),
    )
    return [
        {
            "address": r["address"],
            "class": r["device_class"],
            "vendor_device": r["vendor_device"],
            "iommu_group": r["iommu_group"],
            "instance": r["instance"],
        }
        for r in rows
    ]


def predicted_devices(wanted: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check mode: the device list after ``sync_devices`` (holders kept)."""
    holders = {d["address"]: d["instance"] for d in before}
    return [{**w, "instance": holders.get(w["address"])} for w in wanted]


def sync_devices(
    store: Store, host: dict[str, Any], wanted: list[dict[str, Any]], check_mode: bool
) -> list[str]:
    """Make the host's registered devices the ``wanted`` list; returns what changed (or would).

    A device an instance holds cannot be unregistered nor change class (Conflict naming both).
    """
    current = {d["address"]: d for d in device_views(store, host.get("id"))}
    by_address = {d["address"]: d for d in wanted}
    actions = []
    for address in sorted(set(current) - set(by_address)):
        if current[address]["instance"]:
            raise errors.Conflict(
                f"PCI device {address} of {host['name']} is held by {current[address]['instance']}; it "
                "cannot be unregistered.",
                "Delete or resize that instance first (or keep the device in pci_devices).",
            )
        actions.append(f"unregister PCI device {address}")
        if not check_mode:
            store.execute("DELETE FROM pci_devices WHERE host_id = ? AND address = ?", (host["id"], address))
    for address, dev in sorted(by_address.items()):
        values = {
            "device_class": dev["class"],
            "vendor_device": dev["vendor_device"],
            "iommu_group": dev["iommu_group"],
        }
        have = current.get(address)
        if have is None:
            actions.append(f"register PCI device {address} ({dev['class']})")
            if not check_mode:
                store.insert("pci_devices", {"host_id": host["id"], "address": address, **values})
            continue
        old = {
            "device_class": have["class"],
            "vendor_device": have["vendor_device"],
            "iommu_group": have["iommu_group"],
        }
        if old == values:
            continue
        if have["instance"] and old["device_class"] != values["device_class"]:
            raise errors.Conflict(
                f"PCI device {address} of {host['name']} is held by {have['instance']}; its class cannot "
                f"change from {old['device_class']} to {values['device_class']}.",
                "Delete or resize that instance first.",
            )
        actions.append(f"update PCI device {address}")
        if not check_mode:
            sets = ", ".join(f"{k} = ?" for k in DEVICE_FIELDS)
            store.execute(
                f"UPDATE pci_devices SET {sets}, updated_at = ? WHERE host_id = ? AND address = ?",
                [values[k] for k in DEVICE_FIELDS] + [store.now(), host["id"], address],
            )
    return actions


def remove(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """state=absent: delete the host row (refused while instances are on it)."""
    params = module.params
    refuse_if_used = _common.instances_guard(
        store,
        "host_id",
        "Host {name} still has instances: {users}.",
        "Delete them (compleat.cloud.instance state=absent) or move them away first "
        "(compleat.cloud.rebalance, or compleat.cloud.evacuate for a dead host).",
    )

    def guard(row: dict[str, Any]) -> None:
        refuse_if_used(row)
        store.delete("stale_definitions", host_id=row["id"])
        if not module.check_mode:
            store.delete("pci_devices", host_id=row["id"])

    changed, before = _common.delete_row(store, "hosts", {"name": params["name"]}, module.check_mode, guard)
    return {"changed": changed, "diff": _common.make_diff(host_view(before), {}, params["name"])}


def stale_warning(
    module: AnsibleModule, store: Store, current: dict[str, Any] | None, after: dict[str, Any]
) -> list[str]:
    """Names of old definitions still waiting on the host; warn when it is (brought) up with some."""
    if current is None:
        return []
    stale = sorted(r["instance_name"] for r in store.select("stale_definitions", host_id=current["id"]))
    if stale and after.get("state") == "up":
        module.warn(
            f"Host {current['name']} still holds old definitions of {', '.join(stale)}; run "
            "compleat.cloud.evacuate with state=cleaned before it takes new instances."
        )
    return stale


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the host row."""
    params = module.params
    if params["state"] == "absent":
        return remove(module, store)
    key = {"name": params["name"]}
    wanted = None if params["pci_devices"] is None else resources.host_devices(params["pci_devices"])
    with store.transaction(write=not module.check_mode):
        current = store.get("hosts", **key)
        row = desired_row(params, current, store.now())
        if current is not None:
            check_shrink(module, store, params["name"], row, current)
        devices_before = device_views(store, current["id"] if current else None)
        pinned = resources.format_cpuset(pinned_cpus(store, current["id"])) if current else ""
        changed, before, after = _common.ensure_row(
            store, "hosts", key, row, module.check_mode, nullable=frozenset({"fenced_at"})
        )
        device_actions = [] if wanted is None else sync_devices(store, after, wanted, module.check_mode)
        devices_after = devices_before
        if device_actions:
            devices_after = (
                predicted_devices(wanted or [], devices_before)
                if module.check_mode
                else device_views(store, after["id"])
            )
    stale = stale_warning(module, store, current, after)
    return {
        "changed": changed or bool(device_actions),
        "host": host_view(after, devices_after, pinned),
        "stale_definitions": stale,
        "actions": device_actions,
        "diff": _common.make_diff(
            host_view(before, devices_before, pinned),
            host_view(after, devices_after, pinned),
            params["name"],
        ),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle)


if __name__ == "__main__":
    main()
