# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan carries its addresses typed; plan.csv and the DNS zones read them (issue 19 item 2).

- the engine fills the typed companions once (``Fabric.loopback_block``, ``NetworkSpec.pool_block``,
  ``BorderOptions.links_block``, ``Interface.address_int`` / ``address6_int``) and they agree with
  the text the plan keeps for the other faces;
- ``render/csv.py`` and ``render/dns.py`` parse no address text while they render: every parser
  they can reach (``law.parse_cidr``, ``ipaddress.IPv6Network``, ...) refuses text for the length
  of the render, and the outputs are still produced (and equal the unguarded ones);
- the plain-data views (topology.json, the filters' plan view) carry no typed field.
"""

from __future__ import annotations

import ipaddress
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fabric_testlib import LAB_FILE, TWO_TORS, make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import adapter, ipv6, law
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Block, Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render import csv, dns

BORDER = {"racks": [1], "upstream_asn": 65000, "links": "10.253.0.0/24", "public": ["198.51.100.0/24"]}
SMALL_LIMITS = {"max_racks": 4, "tors_per_rack": 2, "uplinks_per_tor": 2, "hosts_per_rack": 8, "spines": 2}
#: fabrics covering every pool kind: border links, IPv6 (numbered and unnumbered), anycast
#: gateways, BGP hosts, RFC 2317 pools (longer than /24)
DOCS: dict[str, dict[str, Any]] = {
    "dual-stack-border": make_doc(ipv6={"prefix": "fd00:1::/46"}, border=BORDER),
    "dual-stack-unnumbered": make_doc(
        ipv6={"prefix": "fd00:1::/48"}, pools={"loopbacks": "10.255.0.0/20", "unnumbered": True}
    ),
    "dual-stack-bgp-hosts": make_doc(ipv6={"prefix": "fd00:1::/48"}, defaults=TWO_TORS, bgp={"hosts": True}),
    "anycast": make_doc(defaults=TWO_TORS, gateway={"redundancy": "anycast"}),
    "rfc2317": make_doc(
        limits=SMALL_LIMITS,
        pools={"loopbacks": "192.0.2.0/26", "links": "10.254.0.0/24"},
        racks=[{"id": 1}, {"id": 2}],
        networks={
            "mgmt": {"pool": "10.0.0.0/22", "prefix_len": 24, "vlan": 10},
            "vm": {"pool": "198.51.100.0/25", "prefix_len": 27, "vlan": 40},
        },
    ),
}
#: names of every parser of address text the renderers could reach
PARSERS = frozenset(
    {
        "parse_cidr",
        "ip_to_int",
        "parse_cidr6",
        "offset_in_subnet",
        "inet_aton",
        "inet_pton",
        "ip_address",
        "ip_network",
        "ip_interface",
        "IPv4Address",
        "IPv4Network",
        "IPv4Interface",
        "IPv6Address",
        "IPv6Network",
        "IPv6Interface",
    }
)


def plans() -> Iterator[tuple[str, Plan]]:
    yield "lab", build_plan(load_fabric(LAB_FILE))
    for name, doc in DOCS.items():
        yield name, plan_of(doc)


# ------------------------------------------------------------------------------------ the guard
def _refusing(name: str, parser: Callable[..., Any]) -> Callable[..., Any]:
    """``parser`` that fails the test when given text (formatting an int stays allowed)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(arg, str) for arg in (*args, *kwargs.values())):
            raise AssertionError(f"a renderer parsed address text: {name}{args!r}")
        return parser(*args, **kwargs)

    return call


class _Guarded:
    """A module as a renderer sees it through the guard: its parsers refuse text."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        return _refusing(f"{self._module.__name__}.{name}", value) if name in PARSERS else value


def guard(monkeypatch: pytest.MonkeyPatch, *modules: types.ModuleType) -> None:
    """Within ``modules``, every module they imported and every parser they imported by name
    refuses address text (``import ipaddress``, ``from .. import law``, ``from ..law import
    parse_cidr`` alike)."""
    for module in modules:
        for name, value in list(vars(module).items()):
            if isinstance(value, types.ModuleType):
                monkeypatch.setattr(module, name, _Guarded(value))
            elif name in PARSERS and callable(value):
                monkeypatch.setattr(module, name, _refusing(name, value))


def render(plan: Plan) -> tuple[str, list[dict[str, object]], list[dict[str, object]], list[str]]:
    """plan.csv, the zones (with and without RFC 2317 parents) and the ACL of a plan.

    The nameservers are names, not addresses: a nameserver's ``address`` is the caller's text,
    which the renderer rightly parses.
    """
    zones = dns.render_dns_dicts(plan, nameservers=["ns1.example.org."])
    children = dns.render_dns_dicts(plan, nameservers=["ns1.example.org."], rfc2317_parents=False)
    return csv.render_csv(plan), zones, children, dns.fabric_acl(plan)


def test_the_guard_catches_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text entry points still parse (their argument is the caller's text): the guard sees it,
    so a renderer going back to parsing plan text fails the test below."""
    guard(monkeypatch, csv, dns)
    with pytest.raises(AssertionError, match="parse_cidr"):
        dns.reverse_blocks("10.0.0.0/14")
    with pytest.raises(AssertionError, match="parse_cidr6"):
        dns.reverse_blocks6("fd00:1::/46")
    assert dns.octet_blocks(0x0A000000, 15) == [(0x0A000000, 16), (0x0A010000, 16)]


@pytest.mark.parametrize(("name", "plan"), list(plans()), ids=[name for name, _plan in plans()])
def test_csv_and_dns_parse_no_plan_text(monkeypatch: pytest.MonkeyPatch, name: str, plan: Plan) -> None:
    expected = render(plan)
    guard(monkeypatch, csv, dns)
    assert render(plan) == expected
    text, zones, _children, _acl = expected
    assert len(text.splitlines()) > 10 and len(zones) > 2, name


# ------------------------------------------------------------------------------------ the companions
def _block(prefix: str) -> Block:
    net = ipaddress.ip_network(prefix)
    return Block(int(net.network_address), net.prefixlen)


@pytest.mark.parametrize(("name", "plan"), list(plans()), ids=[name for name, _plan in plans()])
def test_typed_companions_agree_with_the_text(name: str, plan: Plan) -> None:
    fabric = plan.fabric
    assert fabric.loopback_block == _block(fabric.loopback_pool)
    assert fabric.link_block == (_block(fabric.link_pool) if fabric.link_pool else None)
    assert fabric.ipv6_block == (_block(fabric.ipv6_prefix) if fabric.ipv6_prefix else None)
    assert fabric.border.links_block == (_block(fabric.border.links) if fabric.border.links else None)
    for spec in fabric.networks:
        assert spec.pool_block == _block(spec.pool)
    for device in plan.devices.values():
        for iface in device.interfaces:
            label = f"{name}: {device.name} {iface.name}"
            if iface.address is None:
                assert iface.address_int is None, label
            else:
                assert iface.address_int == law.ip_to_int(iface.address.partition("/")[0]), label
            if iface.address6 is None:
                assert iface.address6_int is None, label
            else:
                typed6 = ipaddress.IPv6Interface(iface.address6)
                assert iface.address6_int == int(typed6.ip), label
                assert ipv6.PREFIX_LEN[iface.kind] == typed6.network.prefixlen, label


def _keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def test_plain_data_views_carry_only_the_text() -> None:
    for doc in (*DOCS.values(), LAB_FILE):
        plan = build_plan(load_fabric(doc))
        views = (plan_to_dict(plan), adapter.plan_view(doc if isinstance(doc, dict) else str(doc), "test"))
        for view in views:
            typed = sorted({key for key in _keys(view) if key.endswith(("_int", "_block"))})
            assert typed == [], typed
