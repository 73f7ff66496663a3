# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""EVPN/VXLAN facts of a plan: which hosts are VTEPs, their tunnel addresses, the tenant MTU.

With ``bgp.evpn`` every BGP host is a VTEP whose VXLAN source address is its loopback (the /32
it already announces in IPv4 unicast), so a VTEP's tunnel end follows from the addressing law
like every other address.  A tenant frame gains ``VXLAN_OVERHEAD`` bytes on the underlay; the
largest tenant MTU is the smallest MTU on the tunnel's path (the host network a hypervisor peers
over and the spine-ToR links) minus that overhead.  See ``docs/tenant-networks.md``.
"""

from __future__ import annotations

from .model import ROLE_HOST, Plan

# outer IPv4 header 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14 (no inner 802.1Q tag)
VXLAN_OVERHEAD = 20 + 8 + 8 + 14
VXLAN_PORT = 4789  # IANA
VNI_MIN, VNI_MAX = 1, (1 << 24) - 1


def evpn_enabled(plan: Plan) -> bool:
    """True when the fabric runs EVPN (routing BGP, BGP-to-host and ``bgp.evpn``)."""
    fabric = plan.fabric
    return fabric.routing == "bgp" and fabric.bgp.hosts and fabric.bgp.evpn


def vtep_address(plan: Plan, host: str) -> str:
    """The VXLAN source (``local``) address of ``host``: its loopback without the prefix length.

    Raises KeyError for an unknown device, ValueError for a device that is not a VTEP.
    """
    device = plan.devices[host]
    if device.role != ROLE_HOST or not evpn_enabled(plan):
        raise ValueError(f"{host} is not a VTEP (EVPN off, or not a host)")
    return device.router_id


def vteps(plan: Plan) -> dict[str, str]:
    """{host name: VTEP address} of every host, in plan order (empty when EVPN is off)."""
    if not evpn_enabled(plan):
        return {}
    return {host.name: host.router_id for host in plan.hosts()}


def underlay_mtu(plan: Plan) -> int:
    """Smallest MTU a VXLAN packet crosses: the hosts' peering network and the fabric links."""
    fabric = plan.fabric
    return min(fabric.min_link_mtu(), fabric.network(fabric.bgp.host_network).mtu)


def max_tenant_mtu(plan: Plan) -> int:
    """Largest MTU of a tenant network: the underlay MTU minus the VXLAN encapsulation."""
    return underlay_mtu(plan) - VXLAN_OVERHEAD
