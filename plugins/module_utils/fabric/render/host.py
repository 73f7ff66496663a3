# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Network settings of one host of the plan, for first boot and hypervisor bridges.

A host has one address on every rack network of its rack (the law's host offset in the rack's
subnet) and its loopback. Seen from the host:

- every network: ``name`` (the network role, also the bridge/interface name roles use), ``vlan``,
  ``mtu``, ``address`` (CIDR), ``prefix`` (the rack subnet), ``gateway`` (ToR 1's address);
- exactly one network (``default_route``, ``mgmt`` unless told otherwise) carries the default
  route; ``None`` means no default route at all;
- every other network routes its role's whole *pool* (the same network of every rack) via its own
  gateway, so storage traffic to another rack's storage network leaves on the storage network and
  not on the default route. The rack subnet itself is on-link (the connected route is longer).

Under BGP-to-host (``bgp.hosts``) the sessions with the ToRs, over ``bgp.host_network``, carry the
loopbacks (VTEPs, anycast addresses) and the host network's subnets: that network routes no pool
statically, every other one still does, so storage traffic keeps to the storage network there too.
"""

from __future__ import annotations

import re
from typing import Any

from .. import ipv6
from ..model import KIND_NETWORK, ROLE_HOST, Plan


def _pool_of(plan: Plan, role: str) -> str:
    return plan.fabric.network(role).pool


def host_networks(plan: Plan, device: str, *, default_route: str | None = "mgmt") -> dict[str, Any]:
    """The host's loopback and its rack networks with addresses, MTU, gateway and routes.

    Raises ``ValueError`` when ``device`` is not a host of the plan or ``default_route`` is not one
    of the fabric's network roles.
    """
    dev = plan.devices.get(device)
    if dev is None or dev.role != ROLE_HOST:
        hosts = [d.name for d in plan.hosts()[:3]]
        raise ValueError(f"device: {device!r} is not a host of the plan (hosts look like {', '.join(hosts)})")
    roles = [net.role for net in plan.fabric.networks]
    if default_route is not None and default_route not in roles:
        raise ValueError(
            f"default_route: {default_route!r} is not a network of the fabric ({', '.join(roles)})"
        )
    gateways = {net.role: net.gateway for net in plan.networks if net.rack == dev.rack}
    bgp = plan.fabric.routing == "bgp" and plan.fabric.bgp.hosts
    networks = []
    for iface in dev.interfaces:
        if iface.kind != KIND_NETWORK or iface.network_role is None:
            continue
        role = iface.network_role
        spec = plan.fabric.network(role)
        address = str(iface.address)
        base = next(net.prefix for net in plan.networks if net.rack == dev.rack and net.role == role)
        routes = []
        static = role != default_route and not (bgp and role == plan.fabric.bgp.host_network)
        if static:
            routes.append({"to": _pool_of(plan, role), "via": gateways[role]})
        networks.append(
            {
                "name": role,
                "vlan": spec.vlan,
                "mtu": spec.mtu,
                "address": address,
                "prefix": base,
                "gateway": gateways[role],
                "default_route": role == default_route,
                "routes": routes,
                **_ipv6_network(plan, dev.rack, role, iface.address6, with_route=static),
            }
        )
    return {
        "device": dev.name,
        "rack": dev.rack,
        "loopback": dev.loopback,
        **({"loopback6": dev.loopback6} if dev.loopback6 else {}),
        "bgp": bool(bgp),
        "networks": networks,
    }


def _ipv6_network(
    plan: Plan, rack: int | None, role: str, address6: str | None, *, with_route: bool
) -> dict[str, Any]:
    """Dual stack keys of a host network: ``address6``, ``gateway6`` and ``routes6`` (the role's
    block of rack /64s via the IPv6 gateway, like the IPv4 pool route); empty without IPv6."""
    if not address6:
        return {}
    net = next(item for item in plan.networks if item.rack == rack and item.role == role)
    base = ipv6.parse_cidr6(plan.fabric.ipv6_prefix)[0]
    block = ipv6.vlan_block(base, plan.fabric.limits, plan.fabric.network(role).vlan)
    routes6 = [{"to": block, "via": net.gateway6}] if with_route else []
    return {"address6": address6, "gateway6": net.gateway6, "routes6": routes6}


# --------------------------------------------------------------------------------------------------
# systemd-networkd files for a host (compleat.cloud.first_boot)
# --------------------------------------------------------------------------------------------------
LINK_MODES = ("vlan", "nic", "none")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$")


def _section(name: str, pairs: list[tuple[str, Any]]) -> list[str]:
    return [f"[{name}]", *(f"{key}={value}" for key, value in pairs), ""]


def _match(target: str) -> list[tuple[str, Any]]:
    key = "MACAddress" if _MAC_RE.match(target.lower()) else "Name"
    return [(key, target.lower() if key == "MACAddress" else target)]


def _network_file(header: str, match: list[tuple[str, Any]], net: dict[str, Any]) -> str:
    lines = [header, ""]
    lines += _section("Match", match)
    lines += _section("Link", [("MTUBytes", net["mtu"])])
    lines += _section(
        "Network",
        [("Description", f"rack network {net['name']} (VLAN {net['vlan']})"), ("Address", net["address"])]
        + ([("Address", net["address6"])] if net.get("address6") else []),
    )
    if net["default_route"]:
        lines += _section("Route", [("Gateway", net["gateway"])])
        if net.get("gateway6"):
            lines += _section("Route", [("Gateway", net["gateway6"])])
    for route in [*net["routes"], *net.get("routes6", ())]:
        lines += _section("Route", [("Destination", route["to"]), ("Gateway", route["via"])])
    return "\n".join(lines).rstrip("\n") + "\n"


def networkd_files(
    view: dict[str, Any],
    *,
    link_mode: str = "vlan",
    uplink: str = "",
    nics: dict[str, str] | None = None,
    roles: list[str] | None = None,
    loopback: bool = True,
    prefix: str = "20-compleat-",
    header: str = "# Generated by compleat.cloud.first_boot from the fabric plan.",
) -> dict[str, str]:
    """``{file name: content}`` of the systemd-networkd files that give a host its plan networks.

    ``view`` is :func:`host_networks`' result. ``link_mode`` ``vlan``: ``uplink`` is a trunk (no
    address, the largest MTU) with one VLAN subinterface ``<uplink>.<vlan>`` per network; ``nic``:
    ``nics`` maps each network role to an interface name or a MAC; ``none``: no network files.
    ``roles`` limits the networks (default: all). ``loopback`` adds the plan's /32 to ``lo``.
    Raises ``ValueError`` naming the input and value that do not fit.
    """
    if link_mode not in LINK_MODES:
        raise ValueError(f"link_mode: {link_mode!r} is not one of {', '.join(LINK_MODES)}")
    known = [net["name"] for net in view["networks"]]
    wanted = list(roles) if roles else known
    unknown = [role for role in wanted if role not in known]
    if unknown:
        raise ValueError(
            f"roles: {', '.join(map(repr, unknown))} not networks of the plan ({', '.join(known)})"
        )
    nets = [net for net in view["networks"] if net["name"] in wanted]
    files: dict[str, str] = {}
    if loopback:
        lo = [header, ""]
        lo += _section("Match", [("Name", "lo")])
        lo += _section(
            "Network",
            [("Address", "127.0.0.1/8"), ("Address", "::1/128"), ("Address", view["loopback"])]
            + ([("Address", view["loopback6"])] if view.get("loopback6") else []),
        )
        files[f"{prefix}lo.network"] = "\n".join(lo).rstrip("\n") + "\n"
    if link_mode == "nic":
        nics = dict(nics or {})
        missing = [net["name"] for net in nets if not nics.get(net["name"])]
        if missing:
            raise ValueError(
                f"nics: no interface for network(s) {', '.join(missing)} (give a name or MAC per role)"
            )
        for net in nets:
            target = str(nics[net["name"]])
            if not (_MAC_RE.match(target.lower()) or _IFNAME_RE.match(target)):
                raise ValueError(f"nics.{net['name']}: {target!r} is neither an interface name nor a MAC")
            files[f"{prefix}{net['name']}.network"] = _network_file(header, _match(target), net)
    elif link_mode == "vlan" and nets:
        if not _IFNAME_RE.match(uplink or "") or len(f"{uplink}.{max(n['vlan'] for n in nets)}") > 15:
            raise ValueError(
                f"uplink: {uplink!r} is not a usable interface name (VLAN names <uplink>.<vlan> <= 15 chars)"
            )
        trunk = [header, ""]
        trunk += _section("Match", [("Name", uplink)])
        trunk += _section("Link", [("MTUBytes", max(net["mtu"] for net in nets))])
        trunk += _section(
            "Network",
            [("Description", "trunk of the rack networks"), ("LinkLocalAddressing", "no")]
            + [("VLAN", f"{uplink}.{net['vlan']}") for net in nets],
        )
        files[f"{prefix}uplink.network"] = "\n".join(trunk).rstrip("\n") + "\n"
        for net in nets:
            name = f"{uplink}.{net['vlan']}"
            dev = [header, ""]
            dev += _section("NetDev", [("Name", name), ("Kind", "vlan"), ("MTUBytes", net["mtu"])])
            dev += _section("VLAN", [("Id", net["vlan"])])
            files[f"{prefix}{name}.netdev"] = "\n".join(dev).rstrip("\n") + "\n"
            files[f"{prefix}{net['name']}.network"] = _network_file(header, [("Name", name)], net)
    return dict(sorted(files.items()))
