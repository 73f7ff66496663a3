# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 17 items 2, 3 and 6 (rest): GTSM, session passwords, maximum-prefix, drain, per-link MTU.

- fabrics without the new keys render byte for byte as before (FRR goldens in ``golden_frr/``,
  written by the renderer before these features existed);
- every new configuration line passes ``vtysh -C``;
- the BGP password reaches frr.conf only: every other rendered file is grepped for it (and for
  every derived per-session key);
- schema errors name the key path (and never echo the password).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from fabric_testlib import (
    GOLDEN_FRR,
    ROOT,
    TWO_TORS,
    golden_frr_docs,
    make_doc,
    needs_vtysh,
    plan_of,
    validation_errors,
    vtysh_check,
)

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.evpn import underlay_mtu
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.hardening import (
    fabric_prefix_capacity,
    fabric_prefix_count,
    password_problems,
    prefix_limit,
    session_password,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.frr import (
    FrrRenderError,
    render_frr,
)
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.topology import render_topology
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.render.tree import render_all, render_tree

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from lab.fabric_lab import config_delta

SECRET = "s3cr3t-Fabric!key"


def hardened_doc(**bgp: Any) -> dict[str, Any]:
    """Two-ToR racks with BGP hosts, every hardening option, spine 1 and rack 2 drained."""
    doc = make_doc(defaults=TWO_TORS)
    doc["bgp"] = {
        "hosts": True,
        "gtsm": True,
        "passwords": "per_session",
        "maximum_prefix": {"enabled": True, "headroom": 150, "restart": 5},
        **bgp,
    }
    doc["spines"] = [{"id": 1, "drain": True}, {"id": 2}]
    doc["racks"] = [{"id": 1, "uplinks": 3}, {"id": 2, "drain": True}, {"id": 3}]
    return doc


def _lines(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(pattern, line)]


# ------------------------------------------------------------------------------------ unchanged
@pytest.mark.parametrize("variant", sorted(golden_frr_docs()))
def test_fabrics_without_new_keys_render_as_before(variant: str) -> None:
    plan = plan_of(golden_frr_docs()[variant])
    files = sorted(p.relative_to(GOLDEN_FRR / variant) for p in (GOLDEN_FRR / variant).rglob("frr.conf"))
    assert [f"{d.name}/frr.conf" for d in plan.routers()] == sorted(str(f) for f in files) or files
    for device in plan.routers():
        golden = (GOLDEN_FRR / variant / device.name / "frr.conf").read_text()
        assert render_frr(plan, device.name) == golden, f"{variant}/{device.name} changed"


def test_explicit_defaults_render_as_omitted_keys() -> None:
    doc = golden_frr_docs()["bgp-hosts-2tors"]
    plan = plan_of(doc)
    explicit = make_doc(defaults=TWO_TORS)
    explicit["bgp"] = {
        **doc["bgp"],
        "gtsm": False,
        "passwords": "none",
        "maximum_prefix": {"enabled": False},
    }
    explicit["spines"] = [{"id": 1, "drain": False, "link_mtu": None}, {"id": 2}]
    other = plan_of(explicit)
    for device in plan.routers():
        assert render_frr(plan, device.name) == render_frr(other, device.name)


# ------------------------------------------------------------------------------------ vtysh -C
@needs_vtysh
@pytest.mark.parametrize("scheme", ["fabric", "per_session"])
def test_hardened_and_drained_configs_passvtysh_check(scheme: str, tmp_path: Path) -> None:
    plan = plan_of(hardened_doc(passwords=scheme))
    for device in plan.routers():
        path = tmp_path / f"{device.name}.conf"
        text = render_frr(plan, device.name, bgp_password=SECRET)
        assert " ttl-security hops 1" in text and " maximum-prefix " in text and " password " in text
        path.write_text(text, encoding="utf-8")
        proc = vtysh_check(path)
        assert proc.returncode == 0, f"{device.name}: {proc.stdout}{proc.stderr}"


@needs_vtysh
@pytest.mark.parametrize("routing", ["bgp", "ospf"])
def test_unnumbered_gtsm_drain_warning_only_passvtysh_check(routing: str, tmp_path: Path) -> None:
    doc = make_doc(routing=routing, pools={"loopbacks": "10.255.0.0/20", "unnumbered": True})
    if routing == "bgp":
        doc["bgp"] = {"gtsm": True, "maximum_prefix": {"enabled": True, "warning_only": True}}
    doc["spines"] = [{"id": 1, "drain": True}, {"id": 2}]
    plan = plan_of(doc)
    text = render_frr(plan, "spine01")
    assert ("bgp graceful-shutdown" if routing == "bgp" else "max-metric router-lsa administrative") in text
    for device in plan.routers():
        path = tmp_path / f"{device.name}.conf"
        path.write_text(render_frr(plan, device.name), encoding="utf-8")
        proc = vtysh_check(path)
        assert proc.returncode == 0, f"{device.name}: {proc.stdout}{proc.stderr}"


# ------------------------------------------------------------------------------------ GTSM
def test_gtsm_on_every_peer_group_and_never_multihop() -> None:
    plan = plan_of(hardened_doc())
    for device in plan.routers():
        text = render_frr(plan, device.name, bgp_password=SECRET)
        groups = [line.split()[1] for line in _lines(text, r"^ neighbor \S+ peer-group$")]
        assert groups
        assert sorted(_lines(text, "ttl-security")) == sorted(
            f" neighbor {group} ttl-security hops 1" for group in groups
        )
        assert "ebgp-multihop" not in text


# ------------------------------------------------------------------------------------ passwords
def _session_keys(text: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[3] for line in _lines(text, r"^ neighbor \S+ password ")}


def test_per_session_keys_match_at_both_ends_and_differ_between_sessions() -> None:
    plan = plan_of(hardened_doc())
    configs = {d.name: render_frr(plan, d.name, bgp_password=SECRET) for d in plan.routers()}
    keys_seen: set[str] = set()
    sessions = 0
    for device in plan.routers():
        keys = _session_keys(configs[device.name])
        assert set(keys) == {nbr.address for nbr in device.bgp_neighbors}
        for nbr in device.bgp_neighbors:
            peer = plan.devices[nbr.peer_device]
            local = device.interface(nbr.interface).address or ""
            # the peer's neighbor entry for this session points at this device's address on it
            back = next(n for n in peer.bgp_neighbors if n.address == local.split("/")[0])
            assert _session_keys(configs[peer.name])[back.address] == keys[nbr.address], (device.name, nbr)
            keys_seen.add(keys[nbr.address])
            sessions += 1
    assert sessions and len(keys_seen) == sessions // 2  # one key per session, both ends agree
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in keys_seen)
    assert SECRET not in "".join(configs.values())


def test_fabric_password_on_every_peer_group() -> None:
    plan = plan_of(hardened_doc(passwords="fabric"))
    for device in plan.routers():
        text = render_frr(plan, device.name, bgp_password=SECRET)
        groups = [line.split()[1] for line in _lines(text, r"^ neighbor \S+ peer-group$")]
        assert sorted(_lines(text, " password ")) == sorted(
            f" neighbor {g} password {SECRET}" for g in groups
        )


def test_session_key_is_symmetric_and_bound_to_secret_and_fabric() -> None:
    one, other = ("spine01", "r1t1u1"), ("r001-tor1", "up1")
    key = session_password(SECRET, "f", one, other)
    assert key == session_password(SECRET, "f", other, one)
    assert key != session_password(SECRET + "x", "f", one, other)
    assert key != session_password(SECRET, "g", one, other)
    assert key != session_password(SECRET, "f", one, ("r001-tor1", "up3"))


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (None, "give the password at render time"),
        ("", "give the password at render time"),
        ("has space", "without spaces"),
        ("x" * 81, "1..80 printable ASCII"),
        ("tab\there", "printable ASCII"),
    ],
)
def test_missing_or_unusable_password_is_refused_without_echo(secret: str | None, fragment: str) -> None:
    plan = plan_of(hardened_doc())
    with pytest.raises(FrrRenderError) as info:
        render_frr(plan, "spine01", bgp_password=secret)
    assert fragment in str(info.value) and "bgp_password" in str(info.value)
    if secret:
        assert secret not in str(info.value)
    problems = password_problems("per_session", secret)
    assert [p.path for p in problems] == ["bgp_password"]
    assert all(secret is None or secret == "" or secret not in str(p) for p in problems)


def test_password_is_ignored_when_the_fabric_has_none(base_plan: Plan) -> None:
    assert password_problems("none", None) == []
    name = base_plan.routers()[0].name
    assert render_frr(base_plan, name, bgp_password=SECRET) == render_frr(base_plan, name)


@pytest.mark.parametrize("scheme", ["fabric", "per_session"])
def test_secret_reaches_frr_conf_only(scheme: str, tmp_path: Path) -> None:
    plan = plan_of(hardened_doc(passwords=scheme))
    files = render_tree(plan, tmp_path, bgp_password=SECRET)
    frr = [rel for rel in files if rel.endswith("/frr.conf")]
    others = [rel for rel in files if rel not in frr]
    assert {"topology.json", "plan.csv", "fabric.md", "fabric.svg"} <= set(others)
    texts = {rel: (tmp_path / rel).read_text() for rel in files}
    keys = {key for rel in frr for key in _session_keys(texts[rel]).values()}
    assert keys and all(any(key in texts[rel] for rel in frr) for key in keys)
    needles = {SECRET, *keys}
    for rel in [*others, ".compleat-fabric-files"]:
        text = (tmp_path / rel).read_text()
        leaked = [needle for needle in needles if needle in text]
        assert not leaked, f"{rel} contains a password"
    # the plan as data (what the fabric_plan filter and topology.json dump) never had it
    assert SECRET not in json.dumps(render_topology(plan))


def test_render_all_refuses_without_password_and_writes_nothing(tmp_path: Path) -> None:
    plan = plan_of(hardened_doc())
    with pytest.raises(FrrRenderError):
        render_all(plan, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = render_all(plan, tmp_path / "nofrr", frr=False)  # no frr.conf: no password needed
    assert "topology.json" in result.files


def test_cli_takes_password_from_file_or_environment(tmp_path: Path) -> None:
    from ansible_collections.compleat.cloud.plugins.module_utils import fabric_cli as cli

    fabric_file = tmp_path / "f.json"
    fabric_file.write_text(json.dumps(hardened_doc()))
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    out, err = _Capture(), _Capture()
    assert cli.main(["render", str(fabric_file), str(tmp_path / "o1")], out, err) == 1
    assert "bgp_password" in err.text and not (tmp_path / "o1").exists()
    out, err = _Capture(), _Capture()
    args = ["render", str(fabric_file), str(tmp_path / "o2"), "--bgp-password-file", str(secret_file)]
    assert cli.main(args, out, err) == 0, err.text
    assert SECRET not in out.text + err.text
    conf = (tmp_path / "o2" / "spine01" / "frr.conf").read_text()
    assert " password " in conf
    os.environ[cli.PASSWORD_ENV] = SECRET
    try:
        assert cli.main(["render", str(fabric_file), str(tmp_path / "o3")], _Capture(), _Capture()) == 0
    finally:
        del os.environ[cli.PASSWORD_ENV]
    assert (tmp_path / "o3" / "spine01" / "frr.conf").read_text() == conf


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)


# ------------------------------------------------------------------------------------ maximum-prefix
def _limits(text: str) -> dict[str, str]:
    return {
        line.split()[1]: " ".join(line.split()[3:])
        for line in _lines(text, r"^  neighbor \S+ maximum-prefix ")
    }


@pytest.mark.parametrize("basis", ["plan", "capacity"])
def test_maximum_prefix_follows_what_each_peer_may_announce(basis: str) -> None:
    plan = plan_of(
        hardened_doc(maximum_prefix={"enabled": True, "headroom": 150, "restart": 5, "basis": basis})
    )
    assert fabric_prefix_count(plan) == 3 * (4 + 2 + 2) + 2  # racks x (networks + ToRs + hosts) + spines
    assert fabric_prefix_capacity(plan) == 4 + 63 * (4 + 2 + 16)  # the same within the limits
    total = fabric_prefix_count(plan) if basis == "plan" else fabric_prefix_capacity(plan)
    spine = plan.devices["spine01"]
    limits = _limits(render_frr(plan, "spine01", bgp_password=SECRET))
    # a ToR sends its loopback, its rack's 4 networks and the 2 hosts' loopbacks: 7 x 150 %
    assert set(limits) == {nbr.address for nbr in spine.bgp_neighbors}
    assert set(limits.values()) == {f"{prefix_limit(7, 150)} restart 5"} == {"11 restart 5"}
    tor = plan.devices["r001-tor1"]
    limits = _limits(render_frr(plan, "r001-tor1", bgp_password=SECRET))
    for nbr in tor.bgp_neighbors:
        role = plan.devices[nbr.peer_device].role
        expected = prefix_limit(total if role == "spine" else 1, 150)
        assert limits[nbr.address] == f"{expected} restart 5", (nbr, limits)
    host = plan.devices["r001-h01"]
    limits = _limits(render_frr(plan, "r001-h01", bgp_password=SECRET))
    assert set(limits.values()) == {f"{prefix_limit(total, 150)} restart 5"}
    assert len(limits) == len(host.bgp_neighbors) == 2


def test_maximum_prefix_warning_only_and_no_restart() -> None:
    plan = plan_of(hardened_doc(maximum_prefix={"enabled": True, "warning_only": True, "basis": "plan"}))
    assert set(_limits(render_frr(plan, "spine01", bgp_password=SECRET)).values()) == {"14 warning-only"}
    plan = plan_of(hardened_doc(maximum_prefix={"enabled": True, "headroom": 100}))
    assert set(_limits(render_frr(plan, "spine01", bgp_password=SECRET)).values()) == {"7"}


@pytest.mark.parametrize("basis", ["capacity", "plan"])
def test_adding_a_rack_changes_existing_configs_only_with_basis_plan(basis: str) -> None:
    doc = hardened_doc(maximum_prefix={"enabled": True, "basis": basis})
    before = plan_of(doc)
    doc["racks"].append({"id": 4})
    after = plan_of(doc)
    changed = {}
    for device in before.tors():
        old = render_frr(before, device.name, bgp_password=SECRET).splitlines()
        new = render_frr(after, device.name, bgp_password=SECRET).splitlines()
        if old != new:
            changed[device.name] = [line for line in new if line not in old]
    if basis == "capacity":
        assert changed == {}
    else:  # only the limits towards the spines and the hosts grow
        assert changed and all(
            all("maximum-prefix" in line for line in lines) for lines in changed.values()
        ), changed


def test_prefix_limit_rounds_up() -> None:
    assert prefix_limit(7, 150) == 11
    assert prefix_limit(10, 100) == 10
    assert prefix_limit(0, 200) == 1


# ------------------------------------------------------------------------------------ drain
def test_drain_touches_only_the_drained_devices() -> None:
    doc = hardened_doc()
    drained = plan_of(doc)
    doc["spines"] = [{"id": 1}, {"id": 2}]
    doc["racks"] = [{"id": 1, "uplinks": 3}, {"id": 2}, {"id": 3}]
    normal = plan_of(doc)
    changed = set()
    for device in normal.routers():
        before = render_frr(normal, device.name, bgp_password=SECRET)
        after = render_frr(drained, device.name, bgp_password=SECRET)
        if before != after:
            changed.add(device.name)
            extra = [line for line in after.splitlines() if line not in before.splitlines()]
            assert extra == [" bgp graceful-shutdown"], (device.name, extra)
    assert changed == {"spine01", "r002-tor1", "r002-tor2"}
    assert [d.name for d in drained.devices.values() if d.drain] == ["spine01", "r002-tor1", "r002-tor2"]


def test_ospf_drain_is_max_metric() -> None:
    doc = make_doc(routing="ospf", spines=[{"id": 1}, {"id": 2, "drain": True}])
    plan = plan_of(doc)
    assert " max-metric router-lsa administrative" in render_frr(plan, "spine02").splitlines()
    assert "max-metric" not in render_frr(plan, "spine01")


def test_config_delta_drain_and_undrain() -> None:
    doc = hardened_doc()
    doc["spines"] = [{"id": 1}, {"id": 2}]
    normal = plan_of(doc)
    doc["spines"] = [{"id": 1, "drain": True}, {"id": 2}]
    drained = plan_of(doc)
    before = render_frr(normal, "spine01", bgp_password=SECRET)
    after = render_frr(drained, "spine01", bgp_password=SECRET)
    asn = drained.devices["spine01"].asn
    assert config_delta(before, after) == [f"router bgp {asn}", "bgp graceful-shutdown", "exit"]
    assert config_delta(after, before) == [f"router bgp {asn}", "no bgp graceful-shutdown", "exit"]
    assert config_delta(before, before) == []


def test_config_delta_nested_stanzas() -> None:
    old = "router bgp 1\n address-family ipv4 unicast\n  maximum-paths 4\n exit-address-family\nexit\n!\n"
    new = "router bgp 1\n address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\nexit\n!\n"
    assert config_delta(old, new) == [
        "router bgp 1",
        "address-family ipv4 unicast",
        "no maximum-paths 4",
        "maximum-paths 8",
        "exit",
        "exit",
    ]


# ------------------------------------------------------------------------------------ schema errors
@pytest.mark.parametrize(
    ("changes", "path", "fragment"),
    [
        ({"bgp": {"passwords": "yes"}}, "bgp.passwords", "must be one of: none, fabric, per_session"),
        ({"bgp": {"gtsm": "on"}}, "bgp.gtsm", "must be true or false"),
        ({"bgp": {"maximum_prefix": {"headroom": 50}}}, "bgp.maximum_prefix.headroom", "must be >= 100"),
        ({"bgp": {"maximum_prefix": {"limit": 5}}}, "bgp.maximum_prefix.limit", "unknown key"),
        ({"bgp": {"maximum_prefix": {"basis": "x"}}}, "bgp.maximum_prefix.basis", "must be one of"),
        (
            {"bgp": {"maximum_prefix": {"enabled": True, "restart": 5, "warning_only": True}}},
            "bgp.maximum_prefix.restart",
            "not both",
        ),
        (
            {"bgp": {"passwords": "fabric"}, "pools": {"loopbacks": "10.255.0.0/20", "unnumbered": True}},
            "bgp.passwords",
            "needs numbered links",
        ),
        ({"routing": "ospf", "bgp": {"gtsm": True}}, "bgp.gtsm", "routing is ospf"),
        ({"routing": "ospf", "bgp": {"passwords": "fabric"}}, "bgp.passwords", "routing is ospf"),
        ({"spines": [{"id": 1, "drain": "yes"}, {"id": 2}]}, "spines[0].drain", "must be true or false"),
        ({"spines": [{"id": 1, "link_mtu": 10000}, {"id": 2}]}, "spines[0].link_mtu", "must be <= 9216"),
        ({"racks": [{"id": 1, "link_mtu": 50}]}, "racks[0].link_mtu", "must be >= 68"),
        ({"racks": [{"id": 1, "drain": 1}]}, "racks[0].drain", "must be true or false"),
    ],
)
def test_schema_errors_name_the_key(changes: dict[str, Any], path: str, fragment: str) -> None:
    errors = validation_errors(make_doc(**changes))
    assert any(p == path and fragment in m for p, m in errors), errors


# ------------------------------------------------------------------------------------ per-link MTU
def test_every_link_carries_its_mtu_in_plan_and_topology(base_plan: Plan) -> None:
    assert {link.mtu for link in base_plan.links} == {base_plan.fabric.link_mtu}
    data = json.loads(render_topology(base_plan))
    assert [link["mtu"] for link in data["links"]] == [link.mtu for link in base_plan.links]


def test_rack_and_spine_link_mtu_overrides() -> None:
    doc = make_doc(link_mtu=9000)
    doc["spines"] = [{"id": 1}, {"id": 2, "link_mtu": 1500}]
    doc["racks"] = [{"id": 1, "uplinks": 3, "link_mtu": 4000}, {"id": 2}, {"id": 3, "link_mtu": 9216}]
    plan = plan_of(doc)
    mtus = {(link.rack, link.a.device): link.mtu for link in plan.links}
    assert mtus == {
        (1, "spine01"): 4000,  # rack override
        (1, "spine02"): 1500,  # both: the smaller
        (2, "spine01"): 9000,  # none: the fabric's
        (2, "spine02"): 1500,  # spine override
        (3, "spine01"): 9216,
        (3, "spine02"): 1500,
    }
    for link in plan.links:  # both interfaces of the link agree with it
        for end in (link.a, link.b):
            assert plan.devices[end.device].interface(end.interface).mtu == link.mtu
    data = json.loads(render_topology(plan))
    assert [link["mtu"] for link in data["links"]] == [link.mtu for link in plan.links]
    assert "mtu 1500" in render_frr(plan, "spine02")
    assert plan.fabric.min_link_mtu() == 1500


def test_evpn_underlay_mtu_is_the_smallest_link() -> None:
    doc = make_doc(bgp={"hosts": True, "evpn": True}, link_mtu=9000)
    doc["networks"]["mgmt"]["mtu"] = 9000
    doc["racks"] = [{"id": 1, "uplinks": 3, "link_mtu": 4000}, {"id": 2}, {"id": 3}]
    assert underlay_mtu(plan_of(doc)) == 4000


# ------------------------------------------------------------------------------------ Ansible module
def _run_module(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    """Run fabric_render with ``args``; return its JSON result and the raw output."""
    from modargs import patch_module_args

    from ansible_collections.compleat.cloud.plugins.modules import fabric_render

    with patch_module_args(args), pytest.raises(SystemExit):
        fabric_render.main()
    raw = capsys.readouterr().out
    return json.loads(raw), raw


def test_module_bgp_password_is_no_log_and_reaches_frr_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "fabric.json"
    src.write_text(json.dumps(hardened_doc(passwords="fabric")))
    dest = tmp_path / "out"
    result, raw = _run_module({"src": str(src), "dest": str(dest)}, capsys)
    assert result["failed"] is True and [e["path"] for e in result["errors"]] == ["bgp_password"]
    assert not dest.exists()
    args = {"src": str(src), "dest": str(dest), "bgp_password": SECRET, "_ansible_diff": True}
    result, raw = _run_module(args, capsys)
    assert result["changed"] is True and SECRET not in raw
    assert f"password {SECRET}" in (dest / "spine01" / "frr.conf").read_text()
    assert all(SECRET not in (dest / rel).read_text() for rel in result["files"] if "frr.conf" not in rel)
    from ansible_collections.compleat.cloud.plugins.modules import fabric_render

    assert "bgp_password:" in fabric_render.DOCUMENTATION
    result, raw = _run_module({"src": str(src), "dest": str(dest), "bgp_password": "two words"}, capsys)
    assert result["failed"] is True and "two words" not in raw
