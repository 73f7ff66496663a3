# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DHCPv4 data of a plan: Kea subnets, PXE client classes and the ToR relay settings.

Kea ``subnet4`` entries, one per rack network whose DHCP traffic the ToRs relay
(``dhcp_relay.networks`` of the fabric file, ``mgmt`` by default):

- ``id``: the subnet's network address as an integer.  Rack subnets never overlap, so the id is
  unique, and it depends only on the law (adding a rack never renumbers another subnet's leases);
- ``relay.ip-addresses``: the rack's ToR addresses on that network (the gateway of ToR 1, and the
  address of every further ToR: each relays with its own address as ``giaddr``);
- ``pools``: the addresses after the law's reserved offsets: network + 0 (network), + 1..9
  (gateways, infrastructure), + 10 .. + 10 + hosts_per_rack - 1 (every planned host slot, also of
  hosts not declared yet) and the broadcast address are never handed out dynamically;
- ``option-data``: ``routers`` (the gateway), ``domain-name-servers``, ``domain-name``,
  ``domain-search`` and ``ntp-servers`` when given;
- ``reservations``: a host of the plan whose MAC is known gets its planned address (and its name
  as ``hostname``).  Reservations sit outside the pools (``reservations-out-of-pool``).

PXE (``kea_pxe_client_classes``): iPXE identifies itself with user class (option 77) ``iPXE`` and
gets the HTTP script URL as boot file; firmware PXE clients get ``next-server`` and the iPXE build
for their architecture (option 93): 0 (x86 BIOS) -> ``undionly.kpxe``, 7/9 (x86-64 UEFI) ->
``ipxe.efi``.  The classes are mutually exclusive (``not member('ipxe')``), so fixed fields never
conflict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import law
from ..model import KIND_NETWORK, ROLE_HOST, ROLE_TOR, Device, Network, Plan

MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
#: option 93 client system architecture types (RFC 4578 / IANA) of the two iPXE builds
ARCH_BIOS = (0,)
ARCH_UEFI = (7, 9)
DEFAULT_BIOS_FILE = "undionly.kpxe"
DEFAULT_UEFI_FILE = "ipxe.efi"


# ------------------------------------------------------------------------------------ inputs
def normalize_mac(value: object) -> str:
    """``aa:bb:cc:dd:ee:ff`` (lower case, colons) from common spellings; ValueError otherwise."""
    text = str(value).strip().lower()
    if not MAC_RE.match(text):
        raise ValueError(f"{value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    digits = re.sub(r"[^0-9a-f]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalize_reservations(items: Mapping[str, object] | None) -> dict[str, dict[str, str]]:
    """``{name: {mac, address?, hostname?}}`` from ``{name: "aa:.."}`` or ``{name: {mac: ..}}``."""
    out: dict[str, dict[str, str]] = {}
    for name, spec in sorted((items or {}).items()):
        if isinstance(spec, Mapping):
            if not spec.get("mac"):
                raise ValueError(f"reservation {name}: 'mac' is required")
            entry = {"mac": normalize_mac(spec["mac"])}
            for key in ("address", "hostname"):
                if spec.get(key):
                    entry[key] = str(spec[key]).strip()
        else:
            entry = {"mac": normalize_mac(spec)}
        out[str(name)] = entry
    return out


# ------------------------------------------------------------------------------------ helpers
def dhcp_networks(plan: Plan, roles: Iterable[str] | None = None) -> list[Network]:
    """Rack networks served by DHCP: ``roles`` or the fabric's relayed roles, in plan order."""
    wanted = tuple(roles) if roles is not None else plan.fabric.dhcp_relay_networks
    declared = {spec.role for spec in plan.fabric.networks}
    unknown = [role for role in wanted if role not in declared]
    if unknown:
        raise ValueError(f"DHCP networks {', '.join(unknown)} are not declared in the fabric's networks")
    return [net for net in plan.networks if net.role in wanted]


def _address_on(device: Device, role: str) -> str | None:
    for iface in device.interfaces:
        if iface.kind == KIND_NETWORK and iface.network_role == role and iface.address:
            return iface.address.partition("/")[0]
    return None


def rack_devices(plan: Plan, rack: int, role: str) -> list[Device]:
    """Devices of ``role`` (tor/host) in ``rack``, in plan order."""
    return [dev for dev in plan.devices.values() if dev.role == role and dev.rack == rack]


def pool_range(plan: Plan, network: Network) -> tuple[str, str] | None:
    """First and last dynamic address of a rack network (None when the law leaves none)."""
    start, plen = network.start, network.prefix_len
    first = law.host_offset(plan.fabric.limits.hosts_per_rack + 1)
    last = law.block_size(plen) - 2
    if plen >= 31 or first > last:
        return None
    return law.int_to_ip(start + first), law.int_to_ip(start + last)


def _options(
    gateway: str,
    dns_servers: Sequence[str],
    domain_name: str,
    domain_search: Sequence[str],
    ntp: Sequence[str],
) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = [{"name": "routers", "data": gateway}]
    if dns_servers:
        options.append({"name": "domain-name-servers", "data": ", ".join(dns_servers)})
    if domain_name:
        options.append({"name": "domain-name", "data": domain_name})
    if domain_search:
        options.append({"name": "domain-search", "data": ", ".join(domain_search)})
    if ntp:
        options.append({"name": "ntp-servers", "data": ", ".join(ntp)})
    return options


# ------------------------------------------------------------------------------------ Kea
def kea_subnets(
    plan: Plan,
    *,
    reservations: Mapping[str, object] | None = None,
    dns_servers: Sequence[str] = (),
    domain_name: str = "",
    domain_search: Sequence[str] = (),
    ntp_servers: Sequence[str] = (),
    networks: Iterable[str] | None = None,
    pools: bool = True,
) -> list[dict[str, Any]]:
    """Kea ``subnet4`` list for every relayed rack network (see the module docstring).

    ``reservations`` maps a name to a MAC (or ``{mac, address?, hostname?}``).  A plan host gets
    its planned address on each served network; any other name needs an ``address`` inside a
    served subnet.  Raises ``ValueError`` for unknown names, bad MACs, addresses outside every
    subnet and a MAC or address reserved twice in one subnet.
    """
    nets = dhcp_networks(plan, networks)
    wanted = normalize_reservations(reservations)
    by_subnet: dict[str, list[dict[str, str]]] = {net.prefix: [] for net in nets}
    for name, spec in wanted.items():
        device = plan.devices.get(name)
        if "address" in spec:
            target = _subnet_of(nets, spec["address"])
            if target is None:
                raise ValueError(f"reservation {name}: {spec['address']} is in no DHCP subnet")
            entry = _reservation(spec["mac"], spec["address"], spec.get("hostname", name))
            by_subnet[target.prefix].append(entry)
            continue
        if device is None or device.role != ROLE_HOST:
            raise ValueError(f"reservation {name}: not a host of the plan; give its 'address'")
        placed = False
        for net in nets:
            if net.rack != device.rack:
                continue
            address = _address_on(device, net.role)
            if address:
                by_subnet[net.prefix].append(_reservation(spec["mac"], address, spec.get("hostname", name)))
                placed = True
        if not placed:
            raise ValueError(f"reservation {name}: the host has no address on a DHCP network")

    tors_by_rack: dict[int | None, list[Device]] = {}
    for tor in plan.tors():
        tors_by_rack.setdefault(tor.rack, []).append(tor)
    subnets = []
    for net in nets:
        tors = tors_by_rack.get(net.rack, [])
        relay = [addr for tor in tors if (addr := _address_on(tor, net.role))]
        if net.gateway_devices:  # anycast gateway: every ToR relays with the gateway as giaddr
            relay = [net.gateway]
        subnet: dict[str, Any] = {
            "id": net.start,
            "subnet": net.prefix,
            "relay": {"ip-addresses": relay or [net.gateway]},
            "user-context": {"rack": net.rack, "network": net.role, "vlan": net.vlan},
        }
        span = pool_range(plan, net) if pools else None
        subnet["pools"] = [{"pool": f"{span[0]} - {span[1]}"}] if span else []
        subnet["option-data"] = _options(net.gateway, dns_servers, domain_name, domain_search, ntp_servers)
        entries = sorted(by_subnet[net.prefix], key=lambda r: law.ip_to_int(r["ip-address"]))
        _check_unique(net.prefix, entries)
        subnet["reservations"] = entries
        subnets.append(subnet)
    return subnets


def _subnet_of(nets: Sequence[Network], address: str) -> Network | None:
    value = law.ip_to_int(address)
    for net in nets:
        if net.start < value < net.start + law.block_size(net.prefix_len) - 1:
            return net
    return None


def _reservation(mac: str, address: str, hostname: str) -> dict[str, str]:
    return {"hw-address": mac, "ip-address": address, "hostname": hostname}


def _check_unique(prefix: str, entries: Sequence[Mapping[str, str]]) -> None:
    for key in ("hw-address", "ip-address"):
        seen: set[str] = set()
        for entry in entries:
            if entry[key] in seen:
                raise ValueError(f"subnet {prefix}: {key} {entry[key]} is reserved twice")
            seen.add(entry[key])


def kea_pxe_client_classes(
    *,
    next_server: str | None = None,
    bios_file: str = DEFAULT_BIOS_FILE,
    uefi_file: str = DEFAULT_UEFI_FILE,
    ipxe_script_url: str | None = None,
    bios_arches: Sequence[int] = ARCH_BIOS,
    uefi_arches: Sequence[int] = ARCH_UEFI,
) -> list[dict[str, Any]]:
    """Kea ``client-classes`` for PXE: iPXE -> script URL; firmware -> iPXE build by architecture.

    Empty when neither a ``next_server`` nor an ``ipxe_script_url`` is given (PXE off).
    """
    classes: list[dict[str, Any]] = []
    if ipxe_script_url:
        classes.append(
            {
                "name": "ipxe",
                "test": "substring(option[77].hex,0,4) == 'iPXE'",
                "boot-file-name": ipxe_script_url,
            }
        )
    if next_server:
        guard = "not member('ipxe') and " if ipxe_script_url else ""
        builds = (("pxe-bios", bios_arches, bios_file), ("pxe-uefi", uefi_arches, uefi_file))
        for name, arches, filename in builds:
            if not arches:
                continue
            test = " or ".join(f"option[93].hex == 0x{int(arch):04x}" for arch in arches)
            classes.append(
                {
                    "name": name,
                    "test": f"{guard}({test})",
                    "next-server": next_server,
                    "boot-file-name": filename,
                }
            )
    return classes


# ------------------------------------------------------------------------------------ relay
def relay_config(plan: Plan, device: str, *, networks: Iterable[str] | None = None) -> dict[str, Any]:
    """What a ToR relays: ``{device, servers, relays: [{network, interface, address, prefix, rack}]}``.

    ``address`` is the ToR's own address on the network (the ``giaddr`` it stamps).  Raises
    ``ValueError`` when ``device`` is not a ToR of the plan.
    """
    dev = plan.devices.get(device)
    if dev is None or dev.role != ROLE_TOR:
        raise ValueError(f"{device!r} is not a ToR of fabric {plan.fabric.name}")
    relays = []
    for net in dhcp_networks(plan, networks):
        if net.rack != dev.rack:
            continue
        for iface in dev.interfaces:
            if iface.kind == KIND_NETWORK and iface.network_role == net.role and iface.address:
                relays.append(
                    {
                        "network": net.role,
                        "interface": iface.name,
                        # with an anycast gateway the giaddr is the gateway every ToR holds, so
                        # a reply reaching either ToR is delivered (its own address may not be)
                        "address": (iface.gateway or iface.address).partition("/")[0],
                        "prefix": net.prefix,
                        "rack": net.rack,
                    }
                )
    return {"device": dev.name, "servers": list(plan.fabric.dhcp_relay_servers), "relays": relays}
