# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Service views of the fabric plan for the ``dns``, ``dhcp`` and ``dhcp_relay`` roles.

- ``fabric_dns_zones(fabric, ...)``: the forward zone and every reverse zone (records + file text);
- ``fabric_dns_acl(fabric)``: the fabric's prefixes (who may use the recursive resolver);
- ``fabric_kea_subnets(fabric, ...)``: Kea ``subnet4`` entries for every relayed rack network;
- ``kea_pxe_client_classes(options)``: Kea ``client-classes`` for PXE / iPXE;
- ``dhcp_inventory_reservations(hostvars, hosts)``: ``{plan name: MAC}`` from inventory variables;
- ``fabric_dhcp_relay(fabric, device)``: what one ToR relays, and to which servers;
- ``fabric_host_networks(fabric, device)``: a host's addresses, MTUs, gateways and routes;
- ``fabric_host_networkd(view, ...)``: the systemd-networkd files that configure them.

The computation lives in the fabric engine (``module_utils/fabric/render/dns.py`` and
``dhcp.py``); these functions only resolve the *fabric* argument (a mapping, the path of a fabric
YAML file, or an engine ``Plan``) to its cached plan (``module_utils/fabric/adapter.py``) and turn
``ValueError`` into filter errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

from ansible.errors import AnsibleFilterError

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import adapter
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import dhcp, dns
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import host as host_view

_plain = adapter.plain
_Filter = TypeVar("_Filter", bound=Callable[..., Any])


def _engine_errors(func: _Filter) -> _Filter:
    """``func`` with the engine's ``ValueError`` raised as ``AnsibleFilterError`` prefixed by its name."""

    @wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from None

    return cast(_Filter, call)


def plan_of(fabric: Any, filter_name: str) -> Plan:
    """The (cached) plan of a fabric mapping, fabric file path or Plan (see ``fabric/adapter.py``)."""
    try:
        return adapter.plan_of(fabric, filter_name)
    except adapter.FabricSourceError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return list(_plain(value))


def _strings(value: Any) -> list[str]:
    """``_list`` with every item as a string."""
    return [str(item) for item in _list(value)]


@_engine_errors
def fabric_dns_zones(
    fabric: Any,
    *,
    domain: str = dns.DEFAULT_DOMAIN,
    nameservers: Any = None,
    hostmaster: str = "hostmaster",
    ttl: int = dns.DEFAULT_TTL,
    soa: Any = None,
    primary_network: str = dns.DEFAULT_PRIMARY_NETWORK,
    extra_records: Any = None,
    rfc2317_parents: bool = True,
) -> list[dict[str, Any]]:
    """Forward and reverse zones of the fabric (see ``render/dns.py``)."""
    plan = plan_of(fabric, "fabric_dns_zones")
    return dns.render_dns_dicts(
        plan,
        domain=str(domain),
        nameservers=_list(nameservers),
        hostmaster=str(hostmaster),
        ttl=int(ttl),
        soa=_plain(soa) or None,
        primary_network=str(primary_network),
        extra_records=_list(extra_records),
        rfc2317_parents=bool(rfc2317_parents),
    )


def fabric_dns_acl(fabric: Any) -> list[str]:
    """Every prefix of the fabric: loopback pool, link pool (when numbered), network pools."""
    return dns.fabric_acl(plan_of(fabric, "fabric_dns_acl"))


@_engine_errors
def fabric_kea_subnets(
    fabric: Any,
    *,
    reservations: Any = None,
    dns_servers: Any = None,
    domain_name: str = "",
    domain_search: Any = None,
    ntp_servers: Any = None,
    networks: Any = None,
) -> list[dict[str, Any]]:
    """Kea ``subnet4`` entries of every relayed rack network (see ``render/dhcp.py``)."""
    plan = plan_of(fabric, "fabric_kea_subnets")
    return dhcp.kea_subnets(
        plan,
        reservations=_plain(reservations) or {},
        dns_servers=_strings(dns_servers),
        domain_name=str(domain_name or ""),
        domain_search=_strings(domain_search),
        ntp_servers=_strings(ntp_servers),
        networks=None if networks is None else _strings(networks),
    )


def kea_pxe_client_classes(options: Any) -> list[dict[str, Any]]:
    """Kea ``client-classes`` for PXE from ``{next_server, bios_file, uefi_file, ipxe_script_url, ...}``."""
    opts = _plain(options) or {}
    if not isinstance(opts, dict):
        raise AnsibleFilterError("kea_pxe_client_classes: expected a mapping of PXE options")
    known = {"next_server", "bios_file", "uefi_file", "ipxe_script_url", "bios_arches", "uefi_arches"}
    unknown = sorted(set(opts) - known - {"enabled"})
    if unknown:
        raise AnsibleFilterError(f"kea_pxe_client_classes: unknown options {', '.join(unknown)}")
    if not opts.get("enabled", True):
        return []
    kwargs = {key: value for key, value in opts.items() if key in known and value not in (None, "")}
    for key in ("bios_arches", "uefi_arches"):
        if key in kwargs:
            kwargs[key] = [int(item) for item in _list(kwargs[key])]
    return dhcp.kea_pxe_client_classes(**kwargs)


def dhcp_inventory_reservations(
    hostvars: Any, hosts: Any, *, mac_var: str = "mgmt_mac", name_var: str = "fabric_device"
) -> dict[str, str]:
    """``{plan name: MAC}`` of every host in ``hosts`` whose hostvars define ``mac_var``.

    The plan name is the host's ``name_var`` when set, else its inventory name.
    """
    out: dict[str, str] = {}
    for host in _list(hosts):
        try:
            variables = hostvars[host]
        except KeyError:
            continue
        mac = variables.get(mac_var) if hasattr(variables, "get") else None
        if not mac:
            continue
        name = variables.get(name_var) or host
        if str(name) in out:
            raise AnsibleFilterError(f"dhcp_inventory_reservations: two hosts are named {name} in the plan")
        out[str(name)] = str(mac)
    return out


@_engine_errors
def fabric_dhcp_relay(fabric: Any, device: str, *, networks: Any = None) -> dict[str, Any]:
    """What ToR ``device`` relays: its addresses on the relayed networks and the DHCP servers."""
    plan = plan_of(fabric, "fabric_dhcp_relay")
    return dhcp.relay_config(plan, str(device), networks=None if networks is None else _strings(networks))


@_engine_errors
def fabric_host_networks(fabric: Any, device: str, *, default_route: Any = "mgmt") -> dict[str, Any]:
    """Loopback and rack networks of host ``device``: address, VLAN, MTU, gateway, routes."""
    plan = plan_of(fabric, "fabric_host_networks")
    route = None if default_route in (None, "", False) else str(default_route)
    return host_view.host_networks(plan, str(device), default_route=route)


@_engine_errors
def fabric_host_networkd(
    view: Any,
    *,
    link_mode: str = "vlan",
    uplink: str = "",
    nics: Any = None,
    roles: Any = None,
    loopback: bool = True,
) -> dict[str, str]:
    """systemd-networkd files (``{name: content}``) for a ``fabric_host_networks`` result."""
    data = _plain(view)
    if not isinstance(data, Mapping) or "networks" not in data or "loopback" not in data:
        raise AnsibleFilterError("fabric_host_networkd: expected the result of fabric_host_networks")
    return host_view.networkd_files(
        data,
        link_mode=str(link_mode),
        uplink=str(uplink or ""),
        nics={str(k): str(v) for k, v in (_plain(nics) or {}).items()},
        roles=_strings(roles),
        loopback=bool(loopback),
    )


_FILTERS = (
    fabric_dns_zones,
    fabric_dns_acl,
    fabric_kea_subnets,
    kea_pxe_client_classes,
    dhcp_inventory_reservations,
    fabric_dhcp_relay,
    fabric_host_networks,
    fabric_host_networkd,
)


class FilterModule:
    """compleat.cloud service filters (DNS, DHCP, DHCP relay)."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function (each filter is named after its function)."""
        return {func.__name__: func for func in _FILTERS}
