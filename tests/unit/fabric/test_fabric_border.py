# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``border``: border ToRs peer eBGP with an upstream, the default route comes in (issue 17 item 4).

- the law of the upstream links (``border.links``, index ``r*tors_per_rack + (t-1)``);
- fabrics without the key render byte for byte as before (the FRR goldens);
- with it: the default route enters only from the upstream and only through border racks, every
  router passes it on, only public prefixes and service subnets go out; every file passes
  ``vtysh -C``; maximum-prefix allows the default route;
- topology.json carries ``border`` (links, ``announced``) only when declared; the live intent check
  takes the default route as legitimate only then;
- validation: every inconsistent key reported with its path.
The routing itself runs in tests/lab/test_fabric_border.py.
"""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import (
    GOLDEN_FRR,
    assert_vtysh_accepts,
    make_doc,
    needs_vtysh,
    plan_of,
    prefix_list,
    route_map_lines,
    validation_errors,
)

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import border
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.export import plan_to_dict
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.intent import (
    KIND_LEAK,
    compare,
    fib_nexthops,
    intent_from_topology,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import load_fabric
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.csv import render_csv
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.docs import render_rack_md
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import render_frr
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.topology import render_topology
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.whois import whois

BORDER = {
    "racks": [1],
    "upstream_asn": 65000,
    "links": "10.253.0.0/24",
    "public": ["198.51.100.0/24"],
}


def border_doc(**changes: Any) -> dict[str, Any]:
    """Rack 1 (3 uplinks) is the border rack; racks 2 and 3 are not."""
    return make_doc(border={**BORDER, **changes})


# ------------------------------------------------------------------------------------ the law
def test_upstream_links_follow_the_law() -> None:
    plan = plan_of(border_doc(racks=[1, 3]))
    links = border.upstream_links(plan)
    assert [(link.device, link.address, link.upstream_address) for link in links] == [
        ("r001-tor1", "10.253.0.5/31", "10.253.0.4"),  # index 1*2 + 0 = 2: offset 4
        ("r003-tor1", "10.253.0.13/31", "10.253.0.12"),  # index 3*2 + 0 = 6: offset 12
    ]
    assert links[0].interface == "ext1" and links[0].upstream_interface == "r1t1x"
    assert border.link_index(plan, 3, 2) == 7


def test_only_border_racks_tors_are_border_tors() -> None:
    plan = plan_of(border_doc())
    assert [dev.name for dev in plan.devices.values() if border.is_border_tor(plan, dev)] == ["r001-tor1"]
    assert not border.border_enabled(plan_of(make_doc()))


def test_clauses_and_announced_prefixes() -> None:
    plan = plan_of(border_doc())
    assert border.default_clauses(plan) == ["0.0.0.0/0"]
    assert border.rack_clauses(plan, 1) == ["0.0.0.0/0"] and border.rack_clauses(plan, 2) == []
    assert border.out_clauses(plan) == ["198.51.100.0/24", "10.8.0.0/18 ge 24 le 24"]
    assert border.announced_prefixes(plan) == ["198.51.100.0/24", "10.8.1.0/24", "10.8.2.0/24", "10.8.3.0/24"]
    plain = plan_of(make_doc())
    assert border.default_clauses(plain) == [] and border.rack_clauses(plain, 1) == []


# ------------------------------------------------------------------------------------ FRR
@pytest.mark.parametrize("variant", ["bgp-hosts-2tors", "bgp-unnumbered"])
def test_fabrics_without_border_render_as_before(variant: str) -> None:
    unnumbered = {"loopbacks": "10.255.0.0/20", "unnumbered": True}
    docs = {
        "bgp-hosts-2tors": make_doc(
            defaults={"tors": 2, "uplinks": 2, "hosts": 2}, bgp={"hosts": True, "bfd_interval": 150}
        ),
        "bgp-unnumbered": make_doc(pools=unnumbered, bgp={"bfd": False}),
    }
    doc = docs[variant]
    doc["border"] = {"racks": [], "public": [], "announce": ["mgmt"]}  # no border racks: no border
    plan = plan_of(doc)
    for device in plan.routers():
        golden = (GOLDEN_FRR / variant / device.name / "frr.conf").read_text()
        assert render_frr(plan, device.name) == golden, f"{variant}/{device.name} changed"


def test_border_tor_takes_only_the_default_and_sends_only_public_and_service() -> None:
    text = render_frr(plan_of(border_doc()), "r001-tor1")
    assert prefix_list(text, "DEFAULT") == ["0.0.0.0/0"]
    assert prefix_list(text, "UPSTREAM-OUT") == ["198.51.100.0/24", "10.8.0.0/18 ge 24 le 24"]
    assert route_map_lines(text, "FROM-UPSTREAM", 10) == ["match ip address prefix-list DEFAULT"]
    assert route_map_lines(text, "TO-UPSTREAM", 10) == ["match ip address prefix-list UPSTREAM-OUT"]
    assert route_map_lines(text, "TO-SPINE", 30) == ["match ip address prefix-list DEFAULT"]
    lines = text.splitlines()
    for line in (
        "interface ext1",
        " ip address 10.253.0.5/31",
        "ip route 198.51.100.0/24 blackhole",
        " neighbor UPSTREAM remote-as 65000",
        " neighbor 10.253.0.4 peer-group UPSTREAM",
        "  network 198.51.100.0/24",
        "  neighbor UPSTREAM route-map FROM-UPSTREAM in",
        "  neighbor UPSTREAM route-map TO-UPSTREAM out",
    ):
        assert line in lines, line


def test_default_route_passes_through_spines_and_reaches_every_router() -> None:
    plan = plan_of(border_doc())
    spine = render_frr(plan, "spine01")
    assert "0.0.0.0/0" in prefix_list(spine, "RACK001")
    assert "0.0.0.0/0" not in prefix_list(spine, "RACK002")  # only border racks may send it
    assert prefix_list(spine, "FABRIC")[-1] == "0.0.0.0/0"  # TO-TOR
    other = render_frr(plan, "r002-tor1")
    assert prefix_list(other, "FABRIC")[-1] == "0.0.0.0/0"  # FROM-SPINE
    assert "UPSTREAM" not in other and "ext1" not in other


def test_border_only_adds_lines() -> None:
    before, after = plan_of(make_doc()), plan_of(border_doc())
    for device in before.routers():
        old_lines, new_lines = (
            render_frr(before, device.name).splitlines(),
            render_frr(after, device.name).splitlines(),
        )
        rest = iter(new_lines)
        assert all(line in rest for line in old_lines), f"{device.name}: lines lost or reordered"


@needs_vtysh
@pytest.mark.parametrize(
    "bgp",
    [
        {},
        {"gtsm": True, "passwords": "per_session", "maximum_prefix": {"enabled": True}},
        {"hosts": True, "anycast": ["10.96.0.0/24"]},
    ],
    ids=["plain", "hardened", "hosts-anycast"],
)
def test_every_border_config_passesvtysh_check(bgp: dict[str, Any], tmp_path: Path) -> None:
    doc = border_doc(racks=[1, 2])
    doc["bgp"] = bgp
    if not bgp.get("hosts"):  # the anycast gateway is for hosts without BGP
        doc["gateway"] = {"redundancy": "anycast"}
    doc["defaults"] = {"tors": 2, "uplinks": 2, "hosts": 2}
    plan = plan_of(doc)
    secret = "s3cr3t" if plan.fabric.bgp.passwords != "none" else None
    assert_vtysh_accepts(plan, tmp_path, bgp_password=secret)


def test_maximum_prefix_allows_the_default_route() -> None:
    def limits(doc: dict[str, Any]) -> list[str]:
        text = render_frr(plan_of(doc), "r002-tor1")
        return [line for line in text.splitlines() if "maximum-prefix" in line]

    hardening = {"maximum_prefix": {"enabled": True, "headroom": 100}}
    plain, with_border = limits(make_doc(bgp=hardening)), limits(border_doc() | {"bgp": hardening})
    assert [int(a.split()[-1]) + 1 for a in plain] == [int(b.split()[-1]) for b in with_border]


# ------------------------------------------------------------------------------------ views, intent
def test_topology_carries_border_only_when_declared() -> None:
    data = plan_to_dict(plan_of(border_doc()))
    assert data["border"]["upstream_asn"] == 65000
    assert data["border"]["links"][0]["upstream_address"] == "10.253.0.4"
    assert '"border": {' in render_topology(plan_of(border_doc()))
    assert "border" not in plan_to_dict(plan_of(make_doc()))
    assert '"border"' not in render_topology(plan_of(make_doc()))


def test_intent_takes_the_default_route_as_legitimate_only_with_border() -> None:
    routes = {"0.0.0.0/0": [{"protocol": "bgp", "selected": True, "nexthops": [{"ip": "10.254.0.1"}]}]}
    for doc, leaks in ((border_doc(), 0), (make_doc(), 1)):
        intent = intent_from_topology(plan_to_dict(plan_of(doc)))["r002-tor1"]
        diffs = [d for d in compare(intent, {"routes": routes}) if d.kind == KIND_LEAK]
        assert len(diffs) == leaks


def test_kernel_default_route_is_found_by_its_prefix() -> None:
    kernel = [
        {
            "dst": "default",
            "nexthops": [{"gateway": "10.0.0.1", "dev": "up1"}, {"gateway": "10.0.0.3", "dev": "up2"}],
        }
    ]
    assert fib_nexthops(kernel, "0.0.0.0/0") == ["10.0.0.1%up1", "10.0.0.3%up2"]


# ------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"upstream_asn": None}, "border.upstream_asn", "required with border.racks"),
        ({"links": None}, "border.links", "required with border.racks"),
        ({"racks": [1, 9]}, "border.racks[1]", "names no declared rack"),
        ({"racks": [1, 1]}, "border.racks[1]", "duplicate border rack"),
        ({"upstream_asn": 4200001002}, "border.upstream_asn", "is one of the fabric's own ASNs"),
        ({"links": "10.253.0.0/26"}, "border.links", "pool too small"),
        ({"announce": ["dmz"]}, "border.announce[0]", "names no declared network"),
        ({"public": ["10.0.0.0/24"]}, "networks.mgmt.pool", "overlaps border.public[0]"),
        ({"links": "10.254.0.0/24"}, "pools.links", "overlaps border.links"),
    ],
)
def test_bad_border_keys_are_refused_with_their_path(
    changes: dict[str, Any], path: str, message: str
) -> None:
    errors = validation_errors(border_doc(**changes))
    assert any(p == path and message in m for p, m in errors), errors


def test_border_needs_bgp() -> None:
    assert ("border.racks", "needs routing: bgp (the upstream is an eBGP peer)") in validation_errors(
        border_doc() | {"routing": "ospf"}
    )


def test_plan_csv_lists_both_ends_of_every_upstream_link_in_address_order() -> None:
    rows = [row.split(",") for row in render_csv(plan_of(border_doc())).splitlines()[1:]]
    border_rows = [row for row in rows if row[2] == "border"]
    assert [(row[0], row[6], row[8]) for row in border_rows] == [
        ("10.253.0.4", "upstream", "r1t1x"),
        ("10.253.0.5", "r001-tor1", "ext1"),
    ]
    addresses = [ip_address(row[0]) for row in rows if "." in row[0]]
    assert addresses == sorted(addresses)
    assert all(
        row[2] != "border" for row in (r.split(",") for r in render_csv(plan_of(make_doc())).splitlines())
    )


def test_border_rack_page_lists_the_upstream_links() -> None:
    plan = plan_of(border_doc())
    page = render_rack_md(plan, plan.fabric.rack(1), [n for n in plan.networks if n.rack == 1], [])
    assert "## Upstream (border rack, AS 65000)" in page
    assert "| r001-tor1 | ext1 | 10.253.0.5/31 | 10.253.0.4 | 10.253.0.4/31 |" in page
    other = render_rack_md(plan, plan.fabric.rack(2), [n for n in plan.networks if n.rack == 2], [])
    assert "Upstream" not in other


def test_a_network_role_may_not_shadow_the_upstream_interface() -> None:
    doc = border_doc()
    doc["networks"]["ext1"] = {"pool": "10.12.0.0/18", "prefix_len": 24, "vlan": 50}
    assert ("networks.ext1", "shadows the border ToRs' upstream interface") in validation_errors(doc)


def test_whois_inverts_the_border_link_law() -> None:
    fabric = load_fabric(border_doc())
    tor_side, upstream_side = whois(fabric, "10.253.0.5"), whois(fabric, "10.253.0.4")
    assert (tor_side.status, tor_side.device, tor_side.interface, tor_side.peer_device) == (
        "assigned",
        "r001-tor1",
        "ext1",
        "upstream",
    )
    assert (upstream_side.device, upstream_side.interface, upstream_side.peer_device) == (
        "upstream",
        "r1t1x",
        "r001-tor1",
    )
    assert whois(fabric, "10.253.0.9").status == "unassigned"  # rack 2 is not a border rack
    assert whois(fabric, "10.253.0.1").status == "reserved"  # rack 0
    assert whois(load_fabric(make_doc()), "10.253.0.5").status == "outside"
