# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""IP address management in the metadata store: pools, allocation, release.

Two kinds of pools (rows of ``networks``):

* **tenant** networks (``compleat.cloud.network``): a tenant's private CIDR carried over
  EVPN/VXLAN (VNI), the same wherever the instance runs, so its address follows it;
* **rack** networks: the fabric plan's per-rack VM network of one rack (rack ``r`` gets the
  ``r``-th subnet of the role's pool), listing the hypervisors in that rack.  All racks' rows
  share one name; an instance on such a network gets an address of its host's rack, and a new
  one when it is recreated in another rack.

Allocation is deterministic: the lowest free address of the pool, or a requested fixed one that
is checked against it.  Never handed out: the network and broadcast addresses, the gateway, the
reserved ranges (for a rack network: every infrastructure and host slot of the addressing law).
Addresses are stored as integers in ``ip_allocations`` (unique per network: the last guard),
and allocated inside the caller's write transaction after locking the network row (``BEGIN
IMMEDIATE`` on SQLite; ``SELECT ... FOR UPDATE`` on PostgreSQL), so two runs never hand out the
same address.  An allocation row references its instance with ``ON DELETE CASCADE``: deleting
the instance row (delete, rollback of a failed create, the reaper) releases its addresses.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import vtep
from .errors import Conflict, InvalidInput, NoCapacity, NotFound
from .store import Store

MIN_PREFIX, MAX_PREFIX = 8, 30  # a pool needs room for network, gateway, broadcast and guests
VNI_RANGE = (1, 16_777_215)
VXLAN_OVERHEAD_IPV4 = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
DEFAULT_FABRIC_MTU = 1500
Interval = tuple[int, int]


# ------------------------------------------------------------------------------------------------
# Parsing (pure; every refusal names the option and its value)
# ------------------------------------------------------------------------------------------------
def parse_cidr(key: str, value: str) -> ipaddress.IPv4Network:
    """An IPv4 network given in CIDR form, between /8 and /30, without host bits."""
    try:
        net = ipaddress.IPv4Network(str(value), strict=False)
    except ValueError as exc:
        raise InvalidInput(
            f"{key}={value!r} is not an IPv4 network in CIDR form ({exc}).",
            "Give a network such as 10.10.0.0/24.",
            key=key,
            value=value,
        ) from exc
    if "/" not in str(value) or str(net) != str(value).strip():
        raise InvalidInput(
            f"{key}={value!r} is not a network address in CIDR form (did you mean {net}?).",
            "Give the network address with its prefix length, host bits zero.",
            key=key,
            value=value,
        )
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise InvalidInput(
            f"{key}={value!r}: the prefix length must be between /{MIN_PREFIX} and /{MAX_PREFIX}.",
            "A pool needs a network, a gateway, a broadcast address and room for instances.",
            key=key,
            value=value,
        )
    return net


def parse_address(key: str, value: str) -> ipaddress.IPv4Address:
    """An IPv4 address (a CIDR suffix is accepted and dropped: ``10.0.0.5/24`` is ``10.0.0.5``)."""
    text = str(value).strip().split("/", 1)[0]
    try:
        return ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise InvalidInput(
            f"{key}={value!r} is not an IPv4 address.",
            "Give an address such as 10.10.0.5.",
            key=key,
            value=value,
        ) from exc


def parse_range(key: str, net: ipaddress.IPv4Network, value: str) -> Interval:
    """``A``, ``A-B`` or ``A/len`` inside ``net`` as an inclusive interval of integers."""
    text = str(value).strip()
    if "/" in text:
        sub = parse_cidr_any(key, text)
        lo, hi = int(sub.network_address), int(sub.broadcast_address)
    elif "-" in text:
        first, last = text.split("-", 1)
        lo, hi = int(parse_address(key, first)), int(parse_address(key, last))
    else:
        lo = hi = int(parse_address(key, text))
    if lo > hi or lo < int(net.network_address) or hi > int(net.broadcast_address):
        raise InvalidInput(
            f"{key}={value!r} is not a range inside {net}.",
            "Give A, A-B (A <= B) or a CIDR inside the network.",
            key=key,
            value=value,
        )
    return lo, hi


def parse_cidr_any(key: str, value: str) -> ipaddress.IPv4Network:
    """An IPv4 network of any prefix length (for reserved ranges)."""
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise InvalidInput(
            f"{key}={value!r} is not an IPv4 network ({exc}).",
            "Give a CIDR such as 10.10.0.0/28.",
            key=key,
            value=value,
        ) from exc


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, non-overlapping, non-adjacent inclusive intervals covering ``intervals``."""
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def check_vni(key: str, vni: int) -> None:
    """A VXLAN network identifier is 24 bits, 0 excluded."""
    low, high = VNI_RANGE
    if not low <= vni <= high:
        raise InvalidInput(
            f"{key}={vni} is out of range.", f"Give a VNI between {low} and {high}.", key=key, value=vni
        )


def max_tenant_mtu(fabric_mtu: int) -> int:
    """The largest MTU a VXLAN (IPv4 underlay) tenant network can carry over ``fabric_mtu``."""
    return fabric_mtu - VXLAN_OVERHEAD_IPV4


def check_mtu(key: str, mtu: int, fabric_mtu: int) -> None:
    """Refuse a tenant MTU the fabric cannot carry once the VXLAN header is added (or below IPv4's 68)."""
    limit = max_tenant_mtu(fabric_mtu)
    if not 68 <= mtu <= limit:
        raise InvalidInput(
            f"{key}={mtu} does not fit: the fabric MTU {fabric_mtu} minus {VXLAN_OVERHEAD_IPV4} bytes of "
            f"VXLAN overhead leaves at most {limit} (and IPv4 needs at least 68).",
            f"Give mtu <= {limit}, or raise fabric_mtu if the fabric's links carry larger frames.",
            key=key,
            value=mtu,
        )


def ntoa(value: int) -> str:
    """Dotted quad of an integer address."""
    return str(ipaddress.IPv4Address(value))


# ------------------------------------------------------------------------------------------------
# Pools and the allocation rule (pure)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pool:
    """What can be handed out of one network: ``first..last`` minus the ``blocked`` intervals."""

    name: str
    network: ipaddress.IPv4Network
    first: int
    last: int
    blocked: tuple[Interval, ...] = ()
    network_id: int | None = None
    blocked_starts: tuple[int, ...] = ()  # lower bounds of ``blocked`` (for bisect), set by make_pool

    def is_blocked(self, address: int) -> bool:
        """Whether ``address`` is in a reserved interval (gateway included)."""
        i = bisect.bisect_right(self.blocked_starts, address) - 1
        return i >= 0 and self.blocked[i][1] >= address

    def capacity(self) -> int:
        """How many addresses may be handed out in all."""
        inside = [(max(lo, self.first), min(hi, self.last)) for lo, hi in self.blocked]
        return self.last - self.first + 1 - sum(hi - lo + 1 for lo, hi in inside if lo <= hi)


def make_pool(
    name: str,
    cidr: str,
    gateway: str | None = None,
    reserved: Sequence[str] = (),
    network_id: int | None = None,
) -> Pool:
    """The pool of a network: network and broadcast addresses out, the gateway and reserved ranges blocked."""
    net = parse_cidr("cidr", cidr)
    blocked: list[Interval] = [parse_range(f"reserved[{i}]", net, r) for i, r in enumerate(reserved)]
    if gateway:
        gw = int(parse_address("gateway", gateway))
        blocked.append((gw, gw))
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    merged = merge(blocked)
    return Pool(name, net, first, last, merged, network_id, tuple(lo for lo, _hi in merged))


def pool_of(row: Mapping[str, Any]) -> Pool:
    """The pool of a ``networks`` row."""
    return make_pool(row["name"], row["cidr"], row.get("gateway"), row.get("reserved") or (), row.get("id"))


def lowest_free(pool: Pool, used: Sequence[int], start: int | None = None) -> int | None:
    """The lowest address of ``pool`` at or above ``start``, neither blocked nor in ``used`` (sorted)."""
    c = pool.first if start is None else max(start, pool.first)
    blocked = pool.blocked
    bi = bisect.bisect_right(pool.blocked_starts, c) - 1
    ui = bisect.bisect_left(used, c)
    while c <= pool.last:
        while bi + 1 < len(blocked) and blocked[bi + 1][0] <= c:
            bi += 1
        if bi >= 0 and blocked[bi][1] >= c:
            c = blocked[bi][1] + 1
            continue
        while ui < len(used) and used[ui] < c:
            ui += 1
        if ui < len(used) and used[ui] == c:
            c += 1
            ui += 1
            continue
        return c
    return None


def check_fixed(pool: Pool, address: int, holder: str | None, key: str) -> None:
    """Refuse a requested address outside the pool, reserved, or held by someone else (``holder``)."""
    text = ntoa(address)
    if address not in range(int(pool.network.network_address), int(pool.network.broadcast_address) + 1):
        raise InvalidInput(
            f"{key}={text} is not in network {pool.name} ({pool.network}).",
            f"Give an address inside {pool.network}, or omit ip to get the lowest free one.",
            key=key,
            value=text,
        )
    if not pool.first <= address <= pool.last or pool.is_blocked(address):
        raise InvalidInput(
            f"{key}={text} is reserved in network {pool.name} ({pool.network}: network, broadcast, "
            "gateway or a reserved range).",
            "Give an address that is not reserved, or omit ip to get the lowest free one.",
            key=key,
            value=text,
        )
    if holder is not None:
        raise Conflict(
            f"{key}={text} in network {pool.name} is already allocated to {holder}.",
            "Give a free address, or omit ip to get the lowest free one.",
        )


def exhausted(pool: Pool) -> NoCapacity:
    """The error of a full pool, naming it."""
    return NoCapacity(
        f"Network {pool.name} ({pool.network}) has no free address left "
        f"({pool.capacity()} usable, all allocated).",
        "Delete instances on it, release a reserved range, or create a larger network.",
    )


@dataclass(slots=True)
class Allocator:
    """In-memory allocator of one pool: lowest free address, release, reuse (the rule of the store).

    ``floor`` is a lower bound of the lowest free address (everything below is blocked or used),
    so a run of allocations costs O(1) each instead of rescanning the used list.
    """

    pool: Pool
    used: list[int] = field(default_factory=list)
    floor: int = -1

    def allocate(self, fixed: int | None = None) -> int:
        """Hand out ``fixed`` (checked) or the lowest free address."""
        if fixed is not None:
            i = bisect.bisect_left(self.used, fixed)
            taken = i < len(self.used) and self.used[i] == fixed
            check_fixed(self.pool, fixed, "another allocation" if taken else None, "ip")
            self.used.insert(i, fixed)
            return fixed
        address = lowest_free(self.pool, self.used, self.floor if self.floor >= 0 else None)
        if address is None:
            raise exhausted(self.pool)
        bisect.insort(self.used, address)
        self.floor = address + 1
        return address

    def release(self, address: int) -> None:
        """Give ``address`` back (it is the next one handed out if it is now the lowest)."""
        i = bisect.bisect_left(self.used, address)
        if i < len(self.used) and self.used[i] == address:
            del self.used[i]
            if self.floor < 0 or address < self.floor:
                self.floor = address


# ------------------------------------------------------------------------------------------------
# The fabric's per-rack VM networks
# ------------------------------------------------------------------------------------------------
def rack_network(fabric: Any, role: str, rack: int) -> dict[str, Any]:
    """CIDR, gateway, MTU and reserved range of ``rack``'s ``role`` network by the addressing law.

    Reserved: every gateway/infrastructure offset and every host slot (offsets 1 ..
    ``HOST_OFFSET + hosts_per_rack - 1``), so instances never take an address a ToR or a
    hypervisor will own, even one not racked yet.
    """
    from ..fabric import law

    spec = next((n for n in fabric.networks if n.role == role), None)
    if spec is None:
        raise NotFound(
            f"The fabric has no network role {role!r} (it has {', '.join(n.role for n in fabric.networks)}).",
            "Give fabric_role, the per-rack network the instances use (usually vm).",
        )
    if not 1 <= rack < fabric.limits.max_racks:
        raise InvalidInput(
            f"rack={rack} is not a rack id of the fabric (1..{fabric.limits.max_racks - 1}).",
            "Give the id of the rack the hosts are in.",
            key="rack",
            value=rack,
        )
    start, _pool_len = law.parse_cidr(spec.pool)
    plen = spec.prefix_len
    net = law.rack_subnet(start, plen, rack)
    last_slot = net + law.HOST_OFFSET + fabric.limits.hosts_per_rack - 1
    return {
        "cidr": f"{ntoa(net)}/{plen}",
        "gateway": ntoa(net + law.GATEWAY_OFFSET),
        "mtu": spec.mtu,
        "reserved": [f"{ntoa(net + 1)}-{ntoa(last_slot)}"],
    }


# ------------------------------------------------------------------------------------------------
# Store
# ------------------------------------------------------------------------------------------------
def lock_network(store: Store, network_id: int) -> dict[str, Any]:
    """The network row, locked for the rest of the transaction (PostgreSQL; SQLite holds BEGIN IMMEDIATE)."""
    rows = store.select("networks", lock=True, id=network_id)
    if not rows:
        raise NotFound(f"Network id {network_id} vanished.", "Another run deleted it; run again.")
    return rows[0]


def used_addresses(store: Store, network_id: int) -> list[int]:
    """Allocated addresses of a network, ascending."""
    rows = store.query(
        "SELECT address FROM ip_allocations WHERE network_id = ? ORDER BY address", (network_id,)
    )
    return [int(r["address"]) for r in rows]


def holder_of(store: Store, network_id: int, address: int) -> str | None:
    """Who holds ``address`` in a network (``instance NAME``), or None."""
    row = store.query_one(
        "SELECT i.name AS name FROM ip_allocations a LEFT JOIN instances i ON i.id = a.instance_id"
        " WHERE a.network_id = ? AND a.address = ?",
        (network_id, address),
    )
    if row is None:
        return None
    return f"instance {row['name']}" if row["name"] else "an allocation without instance"


def allocate(
    store: Store,
    network: Mapping[str, Any],
    *,
    instance_id: int,
    nic_index: int,
    mac: str | None = None,
    fixed: int | None = None,
    key: str = "ip",
) -> int:
    """Allocate an address of ``network`` to NIC ``nic_index`` of an instance (inside a write transaction)."""
    lock_network(store, int(network["id"]))
    pool = pool_of(network)
    if fixed is not None:
        fixed = int(fixed)
        check_fixed(pool, fixed, holder_of(store, pool.network_id or 0, fixed), key)
        address = fixed
    else:
        found = lowest_free(pool, used_addresses(store, int(network["id"])))
        if found is None:
            raise exhausted(pool)
        address = found
    store.insert(
        "ip_allocations",
        {
            "network_id": network["id"],
            "address": address,
            "instance_id": instance_id,
            "nic_index": nic_index,
            "mac": mac,
        },
    )
    return address


def release(store: Store, instance_id: int, nic_indexes: Iterable[int] | None = None) -> int:
    """Release an instance's addresses (only those NICs when given); returns how many."""
    if nic_indexes is None:
        return store.delete("ip_allocations", instance_id=instance_id)
    return sum(store.delete("ip_allocations", instance_id=instance_id, nic_index=i) for i in nic_indexes)


def allocations(store: Store, instance_id: int | None = None) -> list[dict[str, Any]]:
    """Allocations with network, tenant, address, instance, NIC and MAC (``cloud_info``)."""
    extra, params = ("", []) if instance_id is None else (" WHERE a.instance_id = ?", [instance_id])
    rows = store.query(
        "SELECT n.name AS network, n.tenant AS tenant, n.kind AS kind, n.rack AS rack, n.cidr AS cidr,"
        " a.address AS address, i.name AS instance, i.tenant AS instance_tenant, a.nic_index AS nic_index,"
        " a.mac AS mac"
        " FROM ip_allocations a JOIN networks n ON n.id = a.network_id"
        " LEFT JOIN instances i ON i.id = a.instance_id"
        + extra
        + " ORDER BY n.tenant, n.name, n.rack, a.address",
        params,
    )
    return [{**r, "address": ntoa(int(r["address"])), "rack": r["rack"] or None} for r in rows]


def count_allocated(store: Store, network_id: int) -> int:
    """How many addresses of a network are allocated."""
    row = store.query_one("SELECT count(*) AS n FROM ip_allocations WHERE network_id = ?", (network_id,))
    return int(row["n"]) if row else 0


def resolve(store: Store, tenant: str, name: str, host: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    """The network an instance NIC names: the tenant's own network, else the rack network of its host."""
    own = store.get("networks", tenant=tenant, name=name, rack=0)
    if own is not None:
        return own
    racks = store.select("networks", order_by="rack", tenant="", name=name, kind="rack")
    if not racks:
        raise NotFound(
            f"{key}={name!r}: tenant {tenant} has no network {name!r} and no rack network has that name.",
            "Create it with compleat.cloud.network (tenant networks belong to one tenant).",
        )
    hname = host["name"] if host else None
    for row in racks:
        if hname in (row.get("hosts") or []):
            return row
    raise Conflict(
        f"{key}={name!r}: host {hname} is in no rack of rack network {name!r} "
        f"(racks {', '.join(str(r['rack']) for r in racks)}).",
        "List the host in the hosts of its rack's network (compleat.cloud.network rack=N hosts=[...]).",
    )


def nic_fields(network: Mapping[str, Any], address: int) -> dict[str, Any]:
    """What a NIC on ``network`` with ``address`` stores: bridge, address/prefix, gateway, MTU, DNS."""
    prefix = str(network["cidr"]).split("/", 1)[1]
    out: dict[str, Any] = {
        "type": "bridge",
        "source": bridge_of(network),
        "ip": f"{ntoa(address)}/{prefix}",
        "mtu": int(network["mtu"]),
    }
    if network.get("gateway"):
        out["gateway"] = network["gateway"]
    if network.get("dns"):
        out["nameservers"] = list(network["dns"])
    return out


def bridge_of(network: Mapping[str, Any]) -> str:
    """Host bridge of a network: the VNI's bridge for a tenant network, the rack network's own otherwise."""
    if network.get("vni"):
        return vtep.bridge_name(int(network["vni"]))
    return str(network.get("bridge") or network["name"])


def _current(store: Store, instance_id: int | None) -> dict[int, dict[str, Any]]:
    if instance_id is None:
        return {}
    rows = store.select("ip_allocations", order_by="nic_index", instance_id=instance_id)
    return {int(r["nic_index"]): r for r in rows}


def _keep(cur: Mapping[str, Any] | None, network: Mapping[str, Any], want: int | None) -> bool:
    return cur is not None and cur["network_id"] == network["id"] and want in (None, int(cur["address"]))


def assign_nics(
    store: Store,
    inst: Mapping[str, Any],
    host: Mapping[str, Any] | None,
    nics: list[dict[str, Any]],
    *,
    write: bool,
) -> list[dict[str, Any]]:
    """``nics`` with the addresses of the NICs that name a ``network``; allocations brought in line.

    A NIC keeps its allocation while it stays on the same pool (a tenant network wherever the
    instance runs; a rack network while the host stays in that rack) and its ``fixed_ip``, if
    any, is that address; otherwise the old address is released and a new one allocated (the
    fixed one, or the lowest free).  Allocations of NICs that are gone are released.  With
    ``write`` False nothing is written (check mode): the answer is what a run would allocate.
    Call inside the write transaction that stores the instance row.
    """
    current = _current(store, inst.get("id"))
    planned: dict[int, set[int]] = {}
    out: list[dict[str, Any]] = []
    for index, nic in enumerate(nics):
        name = nic.get("network")
        if not name:
            out.append(nic)
            continue
        key = f"networks[{index}].ip"
        network = resolve(store, inst["tenant"], name, host, f"networks[{index}].network")
        want = int(parse_address(key, nic["fixed_ip"])) if nic.get("fixed_ip") else None
        cur = current.pop(index, None)
        if _keep(cur, network, want):
            address = int(cur["address"])  # type: ignore[index]
            if write and cur and cur.get("mac") != nic.get("mac"):
                store.update("ip_allocations", cur["id"], {"mac": nic.get("mac")})
        else:
            if cur is not None and write:
                store.delete("ip_allocations", id=cur["id"])
            address = _take(store, network, inst, index, nic, want, planned, write, key)
        fields = nic_fields(network, address)
        if nic.get("nameservers"):  # the NIC's own DNS servers win over the network's
            fields.pop("nameservers", None)
        out.append({**nic, **fields})
    if write:
        for cur in current.values():
            store.delete("ip_allocations", id=cur["id"])
    return out


def _take(  # noqa: PLR0917 - private helper of assign_nics
    store: Store,
    network: Mapping[str, Any],
    inst: Mapping[str, Any],
    index: int,
    nic: Mapping[str, Any],
    want: int | None,
    planned: dict[int, set[int]],
    write: bool,
    key: str,
) -> int:
    """Allocate (``write``) or predict (check mode) one address, avoiding this run's other NICs."""
    if write:
        return allocate(
            store,
            network,
            instance_id=int(inst["id"]),
            nic_index=index,
            mac=nic.get("mac"),
            fixed=want,
            key=key,
        )
    pool = pool_of(network)
    mine = planned.setdefault(int(network["id"]), set())
    used = sorted(set(used_addresses(store, int(network["id"]))) | mine)
    if want is not None:
        holder = holder_of(store, int(network["id"]), want)
        check_fixed(pool, want, holder or ("another NIC of this instance" if want in mine else None), key)
        address = want
    else:
        found = lowest_free(pool, used)
        if found is None:
            raise exhausted(pool)
        address = found
    mine.add(address)
    return address


def follow(store: Store, inst: Mapping[str, Any], host: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Re-run the allocation of a moved instance for its new host; returns the new NICs when they changed.

    Tenant-network NICs keep their address (and MAC); a rack-network NIC gets an address of the
    new host's rack when the rack changed.  Call inside the write transaction of the move.
    """
    nics = list(inst.get("networks") or [])
    if not any(n.get("network") for n in nics):
        return None
    new = assign_nics(store, inst, host, nics, write=True)
    if new == nics:
        return None
    store.update("instances", int(inst["id"]), {"networks": new})
    return new


def restore(store: Store, inst: Mapping[str, Any], host: Mapping[str, Any]) -> None:
    """Put an instance's NICs and allocations back as ``inst`` has them (undoing a failed move).

    Each allocated NIC takes its old address again (Conflict if another instance took it since).
    """
    nics = list(inst.get("networks") or [])
    pinned = [
        {**n, "fixed_ip": str(n["ip"]).split("/", 1)[0]} if n.get("network") and n.get("ip") else n
        for n in nics
    ]
    assign_nics(store, inst, host, pinned, write=True)
    store.update("instances", int(inst["id"]), {"networks": nics})


def fresh_nics(nics: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """NICs of a copy (a restored backup): those on a network lose their address, to get a new one."""
    allocated = ("ip", "gateway", "mtu", "type", "source", "fixed_ip", "nameservers")
    return [{k: v for k, v in n.items() if k not in allocated} if n.get("network") else dict(n) for n in nics]


def primary_address(nics: Sequence[Mapping[str, Any]]) -> str | None:
    """The first allocated address of an instance (the one its DNS name points to), without prefix."""
    for nic in nics:
        if nic.get("network") and nic.get("ip"):
            return str(nic["ip"]).split("/", 1)[0]
    return None
