# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain-dict views of the plan (JSON/YAML-safe) for topology.json and the Ansible filters.

Hand-written converters instead of ``dataclasses.asdict`` (which deep-copies and is several times
slower on 40 000 hosts); key order is fixed, so output is deterministic.
"""

from __future__ import annotations

from typing import Any

from .model import Device, Fabric, Interface, Link, Network, Plan, PoolUsage


def config_path(plan: Plan, device: Device) -> str | None:
    """Relative path of the device's FRR configuration, None for hosts without BGP-to-host."""
    fabric = plan.fabric
    if device.role == "host" and not (fabric.routing == "bgp" and fabric.bgp.hosts):
        return None
    return f"{device.name}/frr.conf"


def interface_dict(iface: Interface) -> dict[str, Any]:
    """An interface as a plain dict."""
    return {
        "name": iface.name,
        "address": iface.address,
        "kind": iface.kind,
        "peer_device": iface.peer_device,
        "peer_interface": iface.peer_interface,
        "mtu": iface.mtu,
        "network": iface.network_role,
    }


def device_dict(plan: Plan, device: Device, *, detail: bool = True) -> dict[str, Any]:
    """A device as a plain dict (``asn`` only when the device speaks BGP).

    ``detail`` adds ``announce``, ``interfaces`` and ``bgp_neighbors`` (topology.json has them: the
    namespace lab and the intent checks read them).
    """
    out: dict[str, Any] = {
        "name": device.name,
        "role": device.role,
        "rack": device.rack,
        "pod": device.pod,
        "index": device.index,
        "loopback": device.loopback,
        "router_id": device.router_id,
    }
    if device.asn is not None:
        out["asn"] = device.asn
    out["config"] = config_path(plan, device)
    if detail:
        out["announce"] = list(device.announce)
        out["interfaces"] = [interface_dict(iface) for iface in device.interfaces]
        out["bgp_neighbors"] = [
            {
                "peer_device": nbr.peer_device,
                "interface": nbr.interface,
                "address": nbr.address,
                "remote_asn": nbr.remote_asn,
            }
            for nbr in device.bgp_neighbors
        ]
    return out


def link_dict(link: Link) -> dict[str, Any]:
    """A link as a plain dict: ``a`` is the spine side, ``b`` the ToR side."""
    return {
        "a": {"device": link.a.device, "interface": link.a.interface, "address": link.a.address},
        "b": {"device": link.b.device, "interface": link.b.interface, "address": link.b.address},
        "prefix": link.prefix,
        "rack": link.rack,
        "tor": link.tor,
        "uplink": link.uplink,
        "mtu": link.mtu,
    }


def network_dict(net: Network) -> dict[str, Any]:
    """A rack network as a plain dict."""
    return {
        "rack": net.rack,
        "role": net.role,
        "prefix": net.prefix,
        "gateway": net.gateway,
        "vlan": net.vlan,
        "mtu": net.mtu,
        "device": net.device,
        "interface": net.interface,
    }


def pool_dict(pool: PoolUsage) -> dict[str, Any]:
    """Pool usage as a plain dict (utilisation in percent, 2 decimals)."""
    return {
        "name": pool.name,
        "prefix": pool.prefix,
        "capacity": pool.capacity,
        "used": pool.used,
        "unit": pool.unit,
        "utilisation": round(pool.utilisation, 2),
    }


def fabric_dict(fabric: Fabric) -> dict[str, Any]:
    """Summary of the validated input (name, routing, limits, pools; ``anycast`` when declared)."""
    limits = fabric.limits
    anycast = {"anycast": list(fabric.bgp.anycast)} if fabric.bgp.anycast else {}
    return {
        "name": fabric.name,
        "routing": fabric.routing,
        "unnumbered": fabric.unnumbered,
        "link_mtu": fabric.link_mtu,
        "limits": {
            "max_racks": limits.max_racks,
            "tors_per_rack": limits.tors_per_rack,
            "uplinks_per_tor": limits.uplinks_per_tor,
            "hosts_per_rack": limits.hosts_per_rack,
            "spines": limits.spines,
        },
        "loopback_pool": fabric.loopback_pool,
        "link_pool": fabric.link_pool or None,
        "spine_asn": fabric.bgp.spine_asn if fabric.routing == "bgp" else None,
        **anycast,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The whole plan as plain data: fabric summary, devices, links, networks, pools."""
    return {
        "fabric": fabric_dict(plan.fabric),
        "devices": [device_dict(plan, device) for device in plan.devices.values()],
        "links": [link_dict(link) for link in plan.links],
        "networks": [network_dict(net) for net in plan.networks],
        "pools": [pool_dict(pool) for pool in plan.pools],
    }
