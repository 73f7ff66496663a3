#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Define a tenant network (CIDR over a VXLAN VNI) or a rack's VM network in the cloud metadata store."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: network
short_description: Define tenant networks and rack VM networks (IPAM pools) in the cloud metadata store
version_added: "0.1.0"
description:
  - A B(tenant network) is a private IPv4 network of one tenant carried over EVPN/VXLAN with its own
    VNI, so the same addresses work on every hypervisor and an instance keeps its address when it is
    recreated in another rack. Tenants may use overlapping CIDRs; the networks of one tenant may not
    overlap. Instances name it in O(compleat.cloud.instance#module:networks[].network); their NIC is
    plugged into the VNI's bridge on the host.
  - A B(rack network) (O(kind=rack)) is one rack's row of the fabric's per-rack VM network (the
    fabric file's C(networks.vm)), with the hypervisors in that rack. All racks' rows share one
    name; an instance on it gets an address of its host's rack, and a new one when it is recreated
    in another rack. With O(fabric) the CIDR, gateway, MTU and reserved slots come from the fabric
    plan by the addressing law.
  - The module records the pool; addresses are allocated by M(compleat.cloud.instance) (lowest free
    address, or a fixed one) in the transaction that places the instance, and released when it is
    deleted. Network, broadcast, gateway and O(reserved) addresses are never handed out.
  - V(absent) is refused while addresses are allocated, unless O(force=true) (the allocations are
    then released; the instances keep their configured address until they are recreated).
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
options:
  name:
    description:
      - Network name, unique per tenant (tenant networks) or per rack (rack networks).
      - 1-63 letters, digits, hyphens and underscores.
    type: str
    required: true
  state:
    description: V(absent) is refused while addresses of the network are allocated, unless O(force=true).
    type: str
    choices: [present, absent]
    default: present
  kind:
    description: V(tenant) for a tenant's VXLAN network, V(rack) for one rack's VM network of the fabric.
    type: str
    choices: [tenant, rack]
    default: tenant
  tenant:
    description: Tenant that owns a tenant network (default V(default)). Rack networks belong to no tenant.
    type: str
  cidr:
    description:
      - The network in CIDR form (C(10.10.0.0/24)), /8 to /30, host bits zero. Required to create
        (for a rack network unless O(fabric) is given).
      - Cannot change while addresses are allocated.
    type: str
  gateway:
    description:
      - Default gateway of the instances on the network (never handed out). Default the first
        usable address. Cannot change while addresses are allocated.
    type: str
  vni:
    description:
      - VXLAN network identifier of a tenant network, 1..16777215, unique in the store. Required to
        create a tenant network; cannot change while addresses are allocated.
    type: int
  mtu:
    description:
      - MTU of the instances' NICs. For a tenant network at most O(fabric_mtu) minus 50 bytes of
        VXLAN overhead (IPv4 underlay); default that maximum. For a rack network default the
        fabric network's MTU (with O(fabric)) or 1500.
    type: int
  fabric_mtu:
    description:
      - MTU of the fabric links that carry the VXLAN packets (the hypervisors' underlay interface).
        The default 1500 is safe for any fabric; set it to the fabric's C(link_mtu)/host network MTU
        (for example 9000) when every link between hypervisors carries jumbo frames.
    type: int
    default: 1500
  reserved:
    description:
      - Addresses never handed out, each C(A), C(A-B) or a CIDR inside the network (for example
        static servers or a DHCP range). A change that would cover an allocated address is refused.
    type: list
    elements: str
  dns:
    description: DNS servers written into the instances' network configuration.
    type: list
    elements: str
  rack:
    description: Rack id of a rack network (required with O(kind=rack)).
    type: int
  hosts:
    description: Hypervisors (M(compleat.cloud.hypervisor) names) in the rack of a rack network.
    type: list
    elements: str
  bridge:
    description: Host bridge of a rack network (default the network's name, which is what
      C(compleat.cloud.kvm_host) calls the bridge of a plan network). Tenant networks use the
      VNI's bridge C(brv<VNI>).
    type: str
  fabric:
    description: Fabric file (absolute path) to take a rack network's CIDR, gateway, MTU and reserved
      slots from (the rack's subnet of O(fabric_role); every infrastructure and host slot reserved).
    type: path
  fabric_role:
    description: Per-rack network role of the fabric file used with O(fabric).
    type: str
    default: vm
  force:
    description: With V(absent), delete the network even though addresses are allocated (they are released).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A private network of tenant acme on VNI 10010
  compleat.cloud.network:
    name: acme-net
    tenant: acme
    cidr: 10.10.0.0/24
    vni: 10010
    reserved: [10.10.0.2-10.10.0.9]
    dns: [10.10.0.2]

- name: Jumbo-frame fabric (links carry 9000 bytes), so the tenant MTU may reach 8950
  compleat.cloud.network:
    name: acme-big
    tenant: acme
    cidr: 10.20.0.0/22
    vni: 10020
    fabric_mtu: 9000
    mtu: 8950

- name: Rack 1's VM network from the fabric plan, with the hypervisors in rack 1
  compleat.cloud.network:
    name: vm
    kind: rack
    rack: 1
    fabric: /etc/compleat/fabric.yml
    hosts: [r001-h01, r001-h02]

- name: Remove a network (refused while addresses are allocated)
  compleat.cloud.network:
    name: acme-net
    tenant: acme
    state: absent
"""

RETURN = r"""
network:
  description: The network as stored, with its bridge, usable capacity and allocated address count.
  returned: state is present
  type: dict
  sample: {"name": "acme-net", "tenant": "acme", "kind": "tenant", "rack": 0, "cidr": "10.10.0.0/24",
           "gateway": "10.10.0.1", "vni": 10010, "mtu": 1450, "bridge": "brv10010",
           "reserved": ["10.10.0.2-10.10.0.9"], "dns": ["10.10.0.2"], "hosts": [], "capacity": 245,
           "allocated": 3}
released:
  description: Addresses released by O(state=absent) with O(force=true).
  returned: state is absent
  type: int
"""

import re  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, errors, ipam  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec(),
    "kind": {"type": "str", "choices": ["tenant", "rack"], "default": "tenant"},
    "tenant": {"type": "str"},
    "cidr": {"type": "str"},
    "gateway": {"type": "str"},
    "vni": {"type": "int"},
    "mtu": {"type": "int"},
    "fabric_mtu": {"type": "int", "default": ipam.DEFAULT_FABRIC_MTU},
    "reserved": {"type": "list", "elements": "str"},
    "dns": {"type": "list", "elements": "str"},
    "rack": {"type": "int"},
    "hosts": {"type": "list", "elements": "str"},
    "bridge": {"type": "str"},
    "fabric": {"type": "path"},
    "fabric_role": {"type": "str", "default": "vm"},
    "force": {"type": "bool", "default": False},
}
NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
BRIDGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
FABRIC_MTU_RANGE = (118, 9216)
# Changing these would strand the allocated addresses (or move their traffic to another VNI).
LOCKED_WHILE_ALLOCATED = ("cidr", "gateway", "vni")


# ------------------------------------------------------------------------------------------------
# Desired row (pure, apart from reading the fabric file)
# ------------------------------------------------------------------------------------------------
def invalid(key: str, value: Any, why: str, hint: str) -> errors.InvalidInput:
    """An InvalidInput naming the option and its value."""
    return errors.InvalidInput(f"{key}={value!r} {why}", hint, key=key, value=value)


def check_params(p: dict[str, Any]) -> None:
    """Refuse malformed names, kinds mixed up, out-of-range numbers, before the store is read."""
    if not NAME_RE.match(p["name"] or ""):
        raise invalid(
            "name",
            p["name"],
            "is not a network name.",
            "Use 1-63 letters, digits, '-' and '_', no '-' first or last.",
        )
    low, high = FABRIC_MTU_RANGE
    if not low <= p["fabric_mtu"] <= high:
        raise invalid(
            "fabric_mtu", p["fabric_mtu"], f"is out of range ({low}..{high}).", "Give the fabric's MTU."
        )
    if p["kind"] == "tenant":
        for opt in ("rack", "hosts", "bridge", "fabric"):
            if p[opt] is not None:
                raise invalid(opt, p[opt], "only applies to kind=rack.", "Drop it, or set kind=rack.")
        if p["vni"] is not None:
            ipam.check_vni("vni", p["vni"])
        if p["mtu"] is not None:
            ipam.check_mtu("mtu", p["mtu"], p["fabric_mtu"])
    else:
        if p["vni"] is not None or p["tenant"] is not None:
            key = "vni" if p["vni"] is not None else "tenant"
            raise invalid(
                key, p[key], "only applies to kind=tenant.", "Rack networks have no VNI and no tenant."
            )
        if p["rack"] is None or p["rack"] < 1:
            raise invalid(
                "rack", p["rack"], "must be a rack id (>= 1) with kind=rack.", "Give the rack's id."
            )
        if p["bridge"] is not None and not BRIDGE_RE.match(p["bridge"]):
            raise invalid("bridge", p["bridge"], "is not a Linux interface name.", "At most 15 characters.")
        if p["mtu"] is not None and not 68 <= p["mtu"] <= 9216:
            raise invalid("mtu", p["mtu"], "is out of range (68..9216).", "Give the VM network's MTU.")


def from_fabric(p: dict[str, Any]) -> dict[str, Any]:
    """CIDR, gateway, MTU and reserved slots of the rack's network in the fabric file."""
    from ansible_collections.compleat.cloud.plugins.module_utils.fabric.errors import (
        FabricValidationError,
    )
    from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import (
        load_fabric,
    )

    try:
        fabric = load_fabric(p["fabric"])
    except (FabricValidationError, OSError) as exc:
        raise invalid(
            "fabric", p["fabric"], f"cannot be used: {exc}", "Validate it: compleat-fabric validate FILE."
        ) from exc
    return ipam.rack_network(fabric, p["fabric_role"], p["rack"])


def desired_row(p: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The columns the parameters ask for (None: keep the current value)."""
    law = from_fabric(p) if p["kind"] == "rack" and p["fabric"] else {}
    cidr = p["cidr"] or law.get("cidr") or (current or {}).get("cidr")
    if not cidr:
        raise errors.NotFound(
            f"Network {p['name']} does not exist; creating it needs cidr"
            + (" (or fabric)." if p["kind"] == "rack" else "."),
            "Give cidr" + (" or fabric." if p["kind"] == "rack" else " and vni."),
        )
    net = ipam.parse_cidr("cidr", cidr)
    gateway = p["gateway"] or law.get("gateway")
    if gateway is None and current is None:
        gateway = str(net.network_address + 1)
    reserved = p["reserved"] if p["reserved"] is not None else law.get("reserved")
    row: dict[str, Any] = {
        "kind": p["kind"],
        "cidr": str(net),
        "gateway": gateway,
        "mtu": p["mtu"] or law.get("mtu"),
        "reserved": reserved,
        "dns": p["dns"],
    }
    if p["kind"] == "tenant":
        row["vni"] = p["vni"]
        if row["mtu"] is None and current is None:
            row["mtu"] = ipam.max_tenant_mtu(p["fabric_mtu"])
        if p["vni"] is None and current is None:
            raise errors.NotFound(
                f"Network {p['name']} does not exist; creating it needs vni.", "Give vni (1..16777215)."
            )
    else:
        row.update(hosts=p["hosts"], bridge=p["bridge"])
        if row["mtu"] is None and current is None:
            row["mtu"] = 1500
        if current is None and row["bridge"] is None:
            row["bridge"] = p["name"]
    for i, addr in enumerate(p["dns"] or []):
        ipam.parse_address(f"dns[{i}]", addr)
    merged = {**(current or {}), **{k: v for k, v in row.items() if v is not None}}
    pool = ipam.make_pool(p["name"], merged["cidr"], merged.get("gateway"), merged.get("reserved") or ())
    if (
        merged.get("gateway")
        and not pool.first <= int(ipam.parse_address("gateway", merged["gateway"])) <= pool.last
    ):
        raise invalid(
            "gateway", merged["gateway"], f"is not a usable address of {net}.", "Give an address inside it."
        )
    return {k: v for k, v in row.items() if v is not None}


# ------------------------------------------------------------------------------------------------
# Store checks
# ------------------------------------------------------------------------------------------------
def check_vni_free(store: Store, vni: int | None, own_id: int | None) -> None:
    """Refuse a VNI another network has."""
    if vni is None:
        return
    other = store.get("networks", vni=vni)
    if other is not None and other["id"] != own_id:
        raise errors.Conflict(
            f"vni={vni} is already used by network {other['name']} of tenant {other['tenant']}.",
            "Give each tenant network its own VNI.",
        )


def check_no_overlap(store: Store, tenant: str, name: str, cidr: str) -> None:
    """Refuse a tenant network that overlaps another network of the same tenant."""
    net = ipam.parse_cidr("cidr", cidr)
    for other in store.select("networks", tenant=tenant, kind="tenant"):
        if other["name"] != name and net.overlaps(ipam.parse_cidr("cidr", other["cidr"])):
            raise errors.Conflict(
                f"cidr={cidr} overlaps network {other['name']} ({other['cidr']}) of tenant {tenant}.",
                "Networks of one tenant must not overlap (other tenants may use the same ranges).",
            )


def check_allocated(store: Store, current: dict[str, Any], changes: dict[str, Any]) -> None:
    """Refuse changes that would strand allocated addresses."""
    allocated = ipam.used_addresses(store, current["id"])
    if not allocated:
        return
    for key in LOCKED_WHILE_ALLOCATED:
        if key in changes:
            raise errors.Conflict(
                f"Network {current['name']} has {len(allocated)} allocated address(es); {key} cannot change "
                f"from {current[key]} to {changes[key]}.",
                "Delete the instances on it first, or create a new network.",
            )
    pool = ipam.pool_of({**current, **changes})
    blocked = [a for a in allocated if pool.is_blocked(a)]
    if blocked:
        raise errors.Conflict(
            f"reserved would cover allocated address(es) {', '.join(ipam.ntoa(a) for a in blocked[:5])} "
            f"of network {current['name']}.",
            "Leave allocated addresses out of the reserved ranges.",
        )


def describe(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    """The network for the result: stored columns plus bridge, capacity and allocated count."""
    out = _common.public(row)
    out["bridge"] = ipam.bridge_of(row)
    out["capacity"] = ipam.pool_of(row).capacity()
    out["allocated"] = ipam.count_allocated(store, row["id"]) if row.get("id") else 0
    return out


# ------------------------------------------------------------------------------------------------
# Module
# ------------------------------------------------------------------------------------------------
def key_of(p: dict[str, Any]) -> dict[str, Any]:
    """The unique key of the network row."""
    if p["kind"] == "rack":
        return {"tenant": "", "name": p["name"], "rack": p["rack"]}
    return {"tenant": p["tenant"] or "default", "name": p["name"], "rack": 0}


def absent(module: AnsibleModule, store: Store, key: dict[str, Any]) -> dict[str, Any]:
    """Delete the network (refused while allocated unless force)."""
    with store.transaction(write=not module.check_mode):
        current = store.get("networks", **key)
        if current is None:
            return {"changed": False, "released": 0}
        ipam.lock_network(store, current["id"])
        allocated = ipam.count_allocated(store, current["id"])
        if allocated and not module.params["force"]:
            raise errors.Conflict(
                f"Network {current['name']} has {allocated} allocated address(es).",
                "Delete the instances on it (compleat.cloud.cloud_info lists them), or pass force=true.",
            )
        if not module.check_mode:
            store.delete("ip_allocations", network_id=current["id"])
            store.delete("networks", id=current["id"])
    return {
        "changed": True,
        "released": allocated,
        "diff": _common.make_diff({"network": _common.public(current)}, {}, current["name"]),
    }


def present(module: AnsibleModule, store: Store, key: dict[str, Any]) -> dict[str, Any]:
    """Create or update the network row."""
    p = module.params
    with store.transaction(write=not module.check_mode):
        current = store.get("networks", **key)
        if current is not None and current["kind"] != p["kind"]:
            raise errors.Conflict(
                f"Network {p['name']} is a {current['kind']} network.", "Give kind=" + current["kind"]
            )
        wanted = desired_row(p, current)
        check_vni_free(store, wanted.get("vni"), current["id"] if current else None)
        if p["kind"] == "tenant":
            check_no_overlap(store, key["tenant"], key["name"], wanted["cidr"])
        if current is None:
            after = {**key, **wanted}
            if not module.check_mode:
                after = store.insert("networks", after)
            before: dict[str, Any] = {}
        else:
            changes = {k: v for k, v in wanted.items() if current.get(k) != v}
            if changes:
                ipam.lock_network(store, current["id"])
                check_allocated(store, current, changes)
                if not module.check_mode:
                    store.update("networks", current["id"], changes)
            before, after = current, {**current, **changes}
        result = describe(store, after)
    changed = _common.public(before) != _common.public(after)
    return {
        "changed": changed,
        "network": result,
        "diff": _common.make_diff(
            {"network": _common.public(before)}, {"network": _common.public(after)}, p["name"]
        ),
    }


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Converge the network."""
    p = module.params
    key = key_of(p)
    if p["state"] == "absent":
        return absent(module, store, key)
    return present(module, store, key)


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle, precheck=check_params)


if __name__ == "__main__":
    main()
