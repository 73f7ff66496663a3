# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain-dict views of the plan (JSON/YAML-safe) for topology.json and the Ansible filters.

Hand-written converters instead of ``dataclasses.asdict`` (which deep-copies and is several times
slower on 40 000 hosts); key order is fixed, so output is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from . import border
from .model import Device, Fabric, Interface, Link, Network, Plan, PoolUsage


def config_path(plan: Plan, device: Device) -> str | None:
    """Relative path of the device's FRR configuration, None for hosts without BGP-to-host."""
    fabric = plan.fabric
    if device.role == "host" and not (fabric.routing == "bgp" and fabric.bgp.hosts):
        return None
    return f"{device.name}/frr.conf"


def _fields(*spec: str) -> Callable[[Any], dict[str, Any]]:
    """A converter of an object to ``{key: attribute}`` in ``spec`` order; ``"key=attribute"``
    names the key differently from the attribute (one ``attrgetter`` call per object).  The
    per-host converters stay literals: a literal dict is about twice as fast."""
    keys = tuple(item.partition("=")[0] for item in spec)
    getter = attrgetter(*(item.partition("=")[2] or item for item in spec))
    return lambda obj: dict(zip(keys, getter(obj), strict=True))


_network_fields = _fields("rack", "role", "prefix", "gateway", "vlan", "mtu", "device", "interface")
_pool_fields = _fields("name", "prefix", "capacity", "used", "unit")
_limits_fields = _fields("max_racks", "tors_per_rack", "uplinks_per_tor", "hosts_per_rack", "spines")
_border_link_fields = _fields(
    "device", "interface", "address", "upstream_address", "upstream_interface", "prefix", "rack", "tor"
)


def interface_dict(iface: Interface) -> dict[str, Any]:
    """An interface as a plain dict."""
    return {  # a literal, not ``_fields``: about twice as fast, and there is one per host and link
        "name": iface.name,
        "address": iface.address,
        "kind": iface.kind,
        "peer_device": iface.peer_device,
        "peer_interface": iface.peer_interface,
        "mtu": iface.mtu,
        "network": iface.network_role,
        **({"gateway": iface.gateway} if iface.gateway else {}),
        **({"address6": iface.address6} if iface.address6 else {}),
    }


def device_dict(plan: Plan, device: Device, *, detail: bool = True) -> dict[str, Any]:
    """A device as a plain dict (``asn`` only when the device speaks BGP).

    ``detail`` adds ``announce``, ``interfaces`` and ``bgp_neighbors`` (topology.json has them: the
    namespace lab and the intent checks read them).
    """
    out: dict[str, Any] = {  # a literal, not ``_fields``: one per device (see ``interface_dict``)
        "name": device.name,
        "role": device.role,
        "rack": device.rack,
        "pod": device.pod,
        "index": device.index,
        "loopback": device.loopback,
        "router_id": device.router_id,
    }
    if device.loopback6 is not None:
        out["loopback6"] = device.loopback6
    if device.asn is not None:
        out["asn"] = device.asn
    out["config"] = config_path(plan, device)
    if detail:
        out["announce"] = list(device.announce)
        if device.announce6:
            out["announce6"] = list(device.announce6)
        out["interfaces"] = [interface_dict(iface) for iface in device.interfaces]
        out["bgp_neighbors"] = [
            {
                "peer_device": nbr.peer_device,
                "interface": nbr.interface,
                "address": nbr.address,
                "remote_asn": nbr.remote_asn,
                **({"address6": nbr.address6} if nbr.address6 else {}),
            }
            for nbr in device.bgp_neighbors
        ]
    return out


def link_dict(link: Link) -> dict[str, Any]:
    """A link as a plain dict: ``a`` is the spine side, ``b`` the ToR side."""
    out: dict[str, Any] = {
        "a": {"device": link.a.device, "interface": link.a.interface, "address": link.a.address},
        "b": {"device": link.b.device, "interface": link.b.interface, "address": link.b.address},
        "prefix": link.prefix,
        "rack": link.rack,
        "tor": link.tor,
        "uplink": link.uplink,
        "mtu": link.mtu,
    }
    if link.prefix6:  # dual stack, numbered links
        out["a"]["address6"], out["b"]["address6"] = link.a.address6, link.b.address6
        out["prefix6"] = link.prefix6
    return out


def network_dict(net: Network) -> dict[str, Any]:
    """A rack network as a plain dict."""
    out = _network_fields(net)
    if net.gateway_devices:
        out.update(gateway_devices=list(net.gateway_devices), gateway_mac=net.gateway_mac)
    if net.prefix6:
        out.update(prefix6=net.prefix6, gateway6=net.gateway6)
    return out


def pool_dict(pool: PoolUsage) -> dict[str, Any]:
    """Pool usage as a plain dict (utilisation in percent, 2 decimals)."""
    return {
        **_pool_fields(pool),
        "utilisation": round(pool.utilisation, 2),
    }


def fabric_dict(fabric: Fabric) -> dict[str, Any]:
    """Summary of the validated input (name, routing, limits, pools; ``anycast`` when declared)."""
    anycast = {"anycast": list(fabric.bgp.anycast)} if fabric.bgp.anycast else {}
    if fabric.gateway.redundancy != "none":
        anycast["gateway"] = {"redundancy": fabric.gateway.redundancy, "mac": fabric.gateway.mac}
    return {
        "name": fabric.name,
        "routing": fabric.routing,
        "unnumbered": fabric.unnumbered,
        "link_mtu": fabric.link_mtu,
        "limits": _limits_fields(fabric.limits),
        "loopback_pool": fabric.loopback_pool,
        "link_pool": fabric.link_pool or None,
        "spine_asn": fabric.bgp.spine_asn if fabric.routing == "bgp" else None,
        **({"ipv6_prefix": fabric.ipv6_prefix} if fabric.ipv6_prefix else {}),
        **anycast,
    }


def plan_summary(plan: Plan) -> dict[str, Any]:
    """Name, routing and the device/rack/link counts of a plan (``fabric validate``, ``fabric_render``)."""
    fabric = plan.fabric
    return {
        "name": fabric.name,
        "routing": fabric.routing,
        "spines": len(plan.spines()),
        "racks": len(fabric.racks),
        "tors": len(plan.tors()),
        "hosts": len(plan.hosts()),
        "links": len(plan.links),
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The whole plan as plain data: fabric summary, devices, links, networks, pools."""
    return {
        "fabric": fabric_dict(plan.fabric),
        "devices": [device_dict(plan, device) for device in plan.devices.values()],
        "links": [link_dict(link) for link in plan.links],
        "networks": [network_dict(net) for net in plan.networks],
        "pools": [pool_dict(pool) for pool in plan.pools],
        **({"border": border_dict(plan)} if border.border_enabled(plan) else {}),
    }


def border_dict(plan: Plan) -> dict[str, Any]:
    """The way out: upstream ASN, what goes out (``announced``: exactly what an upstream receives)
    and every border ToR's upstream link (``device``/``interface``/``address`` the ToR side,
    ``upstream_address``/``upstream_interface`` the upstream side)."""
    spec = plan.fabric.border
    return {
        "upstream_asn": spec.upstream_asn,
        "public": list(spec.public),
        "announce": list(spec.announce),
        "announced": border.announced_prefixes(plan),
        "links": [_border_link_fields(link) for link in border.upstream_links(plan)],
    }
