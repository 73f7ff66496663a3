# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``fabric.svg``: a hand-written SVG picture of the fabric.

Spines form the top row, ToRs the bottom row (grouped by rack), one line per link coloured by
spine.  A few racks get full labels (name, loopback, hosts); large fabrics switch to a dense
layout with rotated ToR names so the picture stays valid and navigable at 500+ racks.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..model import Device, Plan

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
DENSE_THRESHOLD = 40  # ToRs; above this the compact layout is used
MARGIN = 40
SPINE_W, SPINE_H = 110, 44
SPINE_Y = 70
TITLE_CHAR_W = 9  # approximate width of a title character at 16 px bold


@dataclass(frozen=True, slots=True)
class Layout:
    """Geometry of the ToR row."""

    pitch: int  # horizontal distance between ToRs
    width: int
    height: int
    y: int
    dense: bool


def layout_for(n_tors: int) -> Layout:
    """Roomy layout with full labels for a few racks, a compact one with rotated names beyond."""
    if n_tors <= DENSE_THRESHOLD:
        return Layout(130, 110, 52, 330, dense=False)
    return Layout(18, 14, 14, 420, dense=True)


def render_svg(plan: Plan) -> str:
    """The text of fabric.svg."""
    spines, tors = plan.spines(), plan.tors()
    row = layout_for(len(tors))
    fabric = plan.fabric
    title = (
        f"fabric {fabric.name}: {fabric.routing.upper()}, {len(spines)} spines, {len(fabric.racks)} racks, "
        f"{len(tors)} ToRs, {len(plan.links)} links"
    )
    width = max(
        2 * MARGIN + len(tors) * row.pitch,
        2 * MARGIN + len(spines) * (SPINE_W + 30),
        2 * MARGIN + len(title) * TITLE_CHAR_W,
    )
    height = row.y + row.height + (160 if row.dense else 60)
    spine_x = _spread(len(spines), width, SPINE_W)
    tor_x = {tor.name: MARGIN + i * row.pitch + (row.pitch - row.width) // 2 for i, tor in enumerate(tors)}
    colour = {spine.name: PALETTE[i % len(PALETTE)] for i, spine in enumerate(spines)}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="28" font-size="16" font-weight="bold">{escape(title)}</text>',
        '<g id="links" stroke-width="1" opacity="0.7">',
    ]
    spine_pos = {spine.name: spine_x[i] for i, spine in enumerate(spines)}
    spine_port = _port_offsets(spines, SPINE_W)
    tor_port = _port_offsets(tors, row.width)
    for link in plan.links:
        x1 = spine_pos[link.a.device] + spine_port[(link.a.device, link.a.interface)]
        x2 = tor_x[link.b.device] + tor_port[(link.b.device, link.b.interface)]
        label = f"{link.a.device} {link.a.interface} - {link.b.device} {link.b.interface}"
        if link.prefix:
            label += f" {link.prefix}"
        out.append(
            f'<line x1="{x1}" y1="{SPINE_Y + SPINE_H}" x2="{x2}" y2="{row.y}" '
            f'stroke="{colour[link.a.device]}"><title>{escape(label)}</title></line>'
        )
    out.append("</g>")
    out.append('<g id="spines">')
    for spine in spines:
        out.extend(_spine_box(spine, spine_pos[spine.name], colour[spine.name]))
    out.append("</g>")
    out.append('<g id="tors">')
    hosts = _host_counts(plan)
    for tor in tors:
        out.extend(_tor_box(tor, tor_x[tor.name], row, hosts.get(tor.rack or 0, 0)))
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _port_offsets(devices: tuple[Device, ...], box: int) -> dict[tuple[str, str], int]:
    """x offset inside its box of every fabric port, so parallel links stay apart."""
    offsets: dict[tuple[str, str], int] = {}
    for device in devices:
        ports = [iface.name for iface in device.interfaces if iface.kind in ("uplink", "downlink")]
        for i, port in enumerate(ports):
            offsets[(device.name, port)] = int(box * (i + 0.5) / len(ports))
    return offsets


def _spread(count: int, width: int, box: int) -> list[int]:
    """Left x of ``count`` boxes spread evenly across ``width``."""
    if count == 0:
        return []
    step = (width - 2 * MARGIN) / count
    return [int(MARGIN + step * i + (step - box) / 2) for i in range(count)]


def _host_counts(plan: Plan) -> dict[int, int]:
    return {rack.id: rack.hosts for rack in plan.fabric.racks}


def _spine_box(spine: Device, x: int, colour: str) -> list[str]:
    tip = f"{spine.name} {spine.loopback}" + (f" AS{spine.asn}" if spine.asn else "")
    cx = x + SPINE_W // 2
    return [
        f'<g><title>{escape(tip)}</title><rect x="{x}" y="{SPINE_Y}" width="{SPINE_W}" height="{SPINE_H}" '
        f'rx="6" fill="#f4f4f4" stroke="{colour}" stroke-width="2"/>',
        f'<text x="{cx}" y="{SPINE_Y + 19}" font-size="13" text-anchor="middle">{escape(spine.name)}</text>',
        f'<text x="{cx}" y="{SPINE_Y + 35}" font-size="10" text-anchor="middle" fill="#555">'
        f"{escape(spine.loopback)}</text></g>",
    ]


def _tor_box(tor: Device, x: int, row: Layout, hosts: int) -> list[str]:
    tip = f"{tor.name} {tor.loopback}" + (f" AS{tor.asn}" if tor.asn else "") + f", {hosts} hosts"
    y, cx = row.y, x + row.width // 2
    shape = (
        f'<rect x="{x}" y="{y}" width="{row.width}" height="{row.height}" rx="3" '
        'fill="#e8f0fb" stroke="#335"/>'
    )
    if row.dense:
        ty = y + row.height + 6
        return [
            f"<g><title>{escape(tip)}</title>{shape}",
            f'<text x="{cx}" y="{ty}" font-size="9" text-anchor="end" '
            f'transform="rotate(-90 {cx} {ty})" dy="3">{escape(tor.name)}</text></g>',
        ]
    small = 'font-size="9" text-anchor="middle" fill="#555"'
    return [
        f"<g><title>{escape(tip)}</title>{shape}",
        f'<text x="{cx}" y="{y + 17}" font-size="12" text-anchor="middle">{escape(tor.name)}</text>',
        f'<text x="{cx}" y="{y + 31}" {small}>{escape(tor.loopback)}</text>',
        f'<text x="{cx}" y="{y + 44}" {small}>{hosts} hosts</text></g>',
    ]
