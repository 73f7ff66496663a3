# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.load_balancer and cloud.lb: parameters, HAProxy config, runtime-API diff, the module,
the lb_node role's announcer and templates.  The node tests run a real HAProxy on loopback."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import lb
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import CommandError, InvalidInput
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import cloud_info, load_balancer, network

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from lab import lb_lab  # noqa: E402  (the lab's renderer of the role's haproxy.cfg template)

ROLE = ROOT / "roles" / "lb_node"
HAPROXY = shutil.which("haproxy")
HEALTH = dict(lb.DEFAULT_HEALTH)
LISTENERS = [{"port": 80, "protocol": "http", "backend_port": 8080}]
# ``show servers state`` of HAProxy 2.6 (s1 draining, s2 ready at weight 20)
SERVERS_STATE = (
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
    "srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 be_a 1 s1 127.0.0.1 2 8 100 100 1 15 3 4 6 0 0 0 - 18081 - 0 0 - - 0\n"
    "3 be_a 2 s2 127.0.0.2 2 0 20 50 1 1 0 2 6 0 0 0 - 18083 - 0 0 - - 0\n"
    "4 be_b 1 s3 10.0.0.3 0 1 1 1 1 1 0 2 6 0 0 0 - 80 - 0 0 - - 0\n\n"
)


def _announcer() -> Any:
    spec = importlib.util.spec_from_file_location("lb_vip_announcer", ROLE / "files" / "lb_vip_announcer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _balancer(**kw: Any) -> lb.Balancer:
    args: dict[str, Any] = {
        "tenant": "acme",
        "name": "web",
        "vip": "10.96.0.10",
        "algorithm": "roundrobin",
        "listeners": tuple(LISTENERS),
        "health": HEALTH,
        "members": (lb.Member("b1", "10.0.1.12"), lb.Member("b2", "10.0.2.12", 50)),
    }
    args.update(kw)
    return lb.Balancer(**args)


# ------------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------------
def test_listeners_defaults_sorted_and_refusals():
    got = lb.parse_listeners([{"port": 443}, {"port": 80, "protocol": "http", "backend_port": 8080}])
    assert got == [
        {"port": 80, "protocol": "http", "backend_port": 8080},
        {"port": 443, "protocol": "tcp", "backend_port": 443},
    ]
    cases = [
        ([], "listeners"),
        ([{"port": 0}], "listeners[0].port"),
        ([{"port": 80}, {"port": 80}], "listeners[1].port"),
        ([{"port": 80, "protocol": "udp"}], "listeners[0].protocol"),
        ([{"port": 80, "backend_port": 70000}], "listeners[0].backend_port"),
        ([{"port": 80, "tls": True}], "listeners[0].tls"),
        (["80"], "listeners[0]"),
    ]
    for value, key in cases:
        with pytest.raises(InvalidInput) as info:
            lb.parse_listeners(value)
        assert info.value.details["key"] == key and key in info.value.msg


def test_health_defaults_and_refusals():
    assert lb.parse_health(None) == HEALTH
    assert lb.parse_health({"type": "http", "path": "/healthz", "rise": None})["rise"] == 2
    for value, key in [
        ({"type": "icmp"}, "health_check.type"),
        ({"path": "/a b"}, "health_check.path"),
        ({"path": "healthz"}, "health_check.path"),
        ({"interval": 10}, "health_check.interval"),
        ({"fall": 0}, "health_check.fall"),
        ({"rise": True}, "health_check.rise"),
        ({"timeout": 3}, "health_check.timeout"),
    ]:
        with pytest.raises(InvalidInput) as info:
            lb.parse_health(value)
        assert info.value.details["key"] == key


def test_members_shorthand_defaults_and_refusals():
    got = lb.parse_members(["web-2", {"instance": "web-1", "weight": 0, "state": "drain"}])
    assert got == [
        {"instance": "web-1", "weight": 0, "state": "drain", "network": None},
        {"instance": "web-2", "weight": 100, "state": "ready", "network": None},
    ]
    assert lb.parse_members(None) == []
    for value, key in [
        ([{"instance": "a"}, {"instance": "a"}], "members[1].instance"),
        ([{"instance": "bad name"}], "members[0].instance"),
        ([{"instance": "a", "weight": 257}], "members[0].weight"),
        ([{"instance": "a", "state": "off"}], "members[0].state"),
        ([{"instance": "a", "port": 1}], "members[0].port"),
    ]:
        with pytest.raises(InvalidInput) as info:
            lb.parse_members(value)
        assert info.value.details["key"] == key


def test_names():
    assert lb.check_lb_name("name", "web_1-a") == "web_1-a"
    for bad in ("", "a.b", "-a", "x" * 64, None):
        with pytest.raises(InvalidInput):
            lb.check_lb_name("name", bad)
    assert lb.frontend_name("acme", "web", 80) == "lbf.acme.web.80"
    assert lb.backend_name("acme", "web", 80) == "lbb.acme.web.80"


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def test_render_http_listener():
    text = lb.render_config([_balancer()], node="lb1")
    assert text.startswith(lb.HEADER)
    assert "frontend lbf.acme.web.80\n    bind 10.96.0.10:80\n    mode http\n" in text
    assert "    http-response set-header X-LB-Node lb1\n" in text
    assert "    default_backend lbb.acme.web.80\n" in text
    assert "    balance roundrobin\n" in text and "hash-type" not in text
    assert "    server b1 10.0.1.12:8080 weight 100 check inter 2000 rise 2 fall 3\n" in text
    assert "    server b2 10.0.2.12:8080 weight 50 check inter 2000 rise 2 fall 3\n" in text
    assert lb.render_config([_balancer()], node="lb1") == text  # deterministic


def test_render_tcp_source_states_and_no_check():
    members = (lb.Member("b1", "10.0.1.12", 100, "drain"), lb.Member("b2", "10.0.2.12", 100, "maint"))
    gone = lb.Member("b3", None)
    health = {**HEALTH, "type": "none"}
    text = lb.render_config(
        [
            _balancer(
                algorithm="source",
                listeners=({"port": 5432, "protocol": "tcp", "backend_port": 5432},),
                health=health,
                members=(*members, gone),
            )
        ],
        node="lb1",
    )
    assert "    mode tcp\n" in text and "X-LB-Node" not in text and "forwardfor" not in text
    assert "    balance source\n    hash-type consistent\n" in text
    assert "    server b1 10.0.1.12:5432 weight 0\n" in text  # drain: no new connections after a reload
    assert "    server b2 10.0.2.12:5432 weight 100 disabled\n" in text
    assert "b3" not in text  # no address now: left out


def test_render_http_check_and_sorting():
    other = _balancer(
        tenant="aaa", name="api", vip="10.96.0.11", health={**HEALTH, "type": "http", "path": "/hz"}
    )
    text = lb.render_config([_balancer(), other])
    assert text.index("lbf.aaa.api.80") < text.index("lbf.acme.web.80")
    assert "    option httpchk GET /hz\n" in text
    assert lb.render_config([]) == lb.HEADER


@pytest.mark.skipif(HAPROXY is None, reason="HAProxy is not installed")
def test_rendered_config_passes_haproxy_check(tmp_path):
    (tmp_path / "base.cfg").write_text(
        lb_lab.render_haproxy_base(
            tmp_path,
            ansible_managed="test",
            lb_node_balancer_dir=str(tmp_path),
            lb_node_maxconn=100,
            lb_node_runtime_api_tcp="127.0.0.1:9999",
            lb_node_timeout_connect="1s",
            lb_node_timeout_client="1s",
            lb_node_timeout_server="1s",
        )
    )
    members = (lb.Member("b1", "10.0.1.12", 100, "drain"), lb.Member("b2", "10.0.2.12", 7, "maint"))
    (tmp_path / "lb.cfg").write_text(
        lb.render_config(
            [
                _balancer(),
                _balancer(
                    name="db",
                    algorithm="source",
                    members=members,
                    listeners=({"port": 5432, "protocol": "tcp", "backend_port": 5432},),
                ),
            ],
            "lb1",
        )
    )
    proc = subprocess.run(
        [HAPROXY, "-c", "-f", str(tmp_path / "base.cfg"), "-f", str(tmp_path / "lb.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_structure_and_reload_decision():
    old = lb.render_config([_balancer()])
    more = lb.render_config([_balancer(members=(lb.Member("b1", "10.0.1.99", 3),))])
    assert lb.config_structure(old) == lb.config_structure(more)
    assert not lb.needs_reload(old, more)  # servers only: the runtime API does it
    assert lb.needs_reload(None, old)
    assert lb.needs_reload(old, lb.render_config([_balancer(algorithm="leastconn")]))
    two = (
        {"port": 80, "protocol": "http", "backend_port": 8080},
        {"port": 81, "protocol": "tcp", "backend_port": 81},
    )
    assert lb.needs_reload(old, lb.render_config([_balancer(listeners=two)]))


def test_servers_from_config_round_trip():
    members = (lb.Member("b1", "10.0.1.12", 30), lb.Member("b2", "10.0.2.12", 5, "maint"))
    text = lb.render_config([_balancer(members=members)])
    assert lb.servers_from_config(text) == {
        "lbb.acme.web.80": {
            "b1": lb.Server("b1", "10.0.1.12", 8080, 30, "ready"),
            "b2": lb.Server("b2", "10.0.2.12", 8080, 5, "maint"),
        }
    }
    assert lb.servers_from_config(lb.render_config([_balancer(members=())])) == {"lbb.acme.web.80": {}}


def test_frontends_by_vip_and_the_announcer_agree():
    text = lb.render_config(
        [
            _balancer(),
            _balancer(name="db", listeners=({"port": 5432, "protocol": "tcp", "backend_port": 5432},)),
        ]
    )
    expected = {"10.96.0.10": {"lbb.acme.web.80", "lbb.acme.db.5432"}}
    assert lb.frontends_by_vip(text) == expected
    assert _announcer().vip_backends([text]) == expected


# ------------------------------------------------------------------------------------------------
# Runtime API
# ------------------------------------------------------------------------------------------------
def test_parse_servers_state_and_admin_bits():
    state = lb.parse_servers_state(SERVERS_STATE)
    assert state["be_a"]["s1"] == lb.Server("s1", "127.0.0.1", 18081, 100, "drain")
    assert state["be_a"]["s2"] == lb.Server("s2", "127.0.0.2", 18083, 20, "ready")
    assert state["be_b"]["s3"].state == "maint"
    assert [lb.admin_state(b) for b in (0, 1, 2, 4, 8, 0x10, 0x20, 0x09)] == [
        "ready",
        "maint",
        "maint",
        "maint",
        "drain",
        "drain",
        "maint",
        "maint",
    ]
    with pytest.raises(CommandError):
        lb.parse_servers_state("Unknown command\n")


def test_parse_backends_and_stat():
    assert lb.parse_backends("# name\nbe_a\nlbb.acme.web.80\n\n") == {"be_a", "lbb.acme.web.80"}
    rows = lb.parse_stat("# pxname,svname,qcur,scur,status\nbe_a,s1,0,3,UP\nbe_a,BACKEND,0,3,UP\n\n")
    assert rows[0] == {"pxname": "be_a", "svname": "s1", "qcur": "0", "scur": "3", "status": "UP"}


def test_server_commands_add_change_remove():
    be = "lbb.acme.web.80"
    current = {
        "b1": lb.Server("b1", "10.0.1.12", 8080, 100, "ready"),
        "old": lb.Server("old", "10.0.9.9", 8080, 100, "ready"),
        "off": lb.Server("off", "10.0.9.8", 8080, 100, "maint"),
    }
    desired = {
        "b1": lb.Server("b1", "10.0.3.12", 8080, 40, "drain"),  # evacuated, lighter, draining
        "new": lb.Server("new", "10.0.2.12", 8080, 100, "ready"),
    }
    assert lb.server_commands(be, current, desired, HEALTH) == [
        f"set server {be}/b1 addr 10.0.3.12 port 8080",
        f"set server {be}/b1 weight 40",
        f"set server {be}/b1 state drain",
        f"add server {be}/new 10.0.2.12:8080 weight 100 check inter 2000 rise 2 fall 3",
        f"enable health {be}/new",
        f"set server {be}/new state ready",
        f"shutdown sessions server {be}/off",
        f"del server {be}/off",
        f"set server {be}/old state drain",
        f"{lb.WAIT_IDLE}{be}/old",
        f"set server {be}/old state maint",
        f"shutdown sessions server {be}/old",
        f"del server {be}/old",
    ]
    assert lb.server_commands(be, desired, desired, HEALTH) == []
    no_check = lb.server_commands(be, {}, {"n": desired["new"]}, {**HEALTH, "type": "none"})
    assert no_check == [f"add server {be}/n 10.0.2.12:8080 weight 100", f"set server {be}/n state ready"]


def test_plan_node_reload_or_runtime():
    balancer = _balancer()
    config = lb.render_config([balancer], "lb1")
    running = lb.servers_from_config(config)
    same = lb.plan_node(running, config, config, [balancer])
    assert same == lb.NodePlan(write=False, reload=False, commands=())
    grown = _balancer(members=(*balancer.members, lb.Member("b3", "10.0.3.12")))
    new = lb.render_config([grown], "lb1")
    plan = lb.plan_node(running, config, new, [grown])
    assert plan.write and not plan.reload and plan.commands[0].startswith("add server lbb.acme.web.80/b3 ")
    fresh = lb.plan_node({"other": {}}, "", config, [balancer])
    assert fresh.reload and fresh.missing == ("lbb.acme.web.80",) and fresh.commands == ()
    stale = lb.plan_node({**running, "lbb.acme.gone.80": {}}, config, config, [balancer])
    assert stale.reload and stale.stale == ("lbb.acme.gone.80",) and not stale.write
    runtime_only = lb.plan_node(running, None, new, [grown])
    assert not runtime_only.write and not runtime_only.reload and len(runtime_only.commands) == 3


def test_command_answers():
    assert (
        lb.command_ok("") and lb.command_ok("New server registered.\n") and lb.command_ok("Server deleted.")
    )
    assert lb.command_ok("IP changed from '1.1.1.1' to '2.2.2.2' by 'stats socket command'")
    assert not lb.command_ok("No such server.") and not lb.command_ok(
        "Only servers in maintenance mode can be deleted."
    )


# ------------------------------------------------------------------------------------------------
# The lb_node role: FRR config, announcer decisions
# ------------------------------------------------------------------------------------------------
HOST_CONF = (
    "frr version 8.4\nhostname r001-h01\n!\nip prefix-list LOCAL seq 10 permit 10.255.0.20/32\n"
    "ip prefix-list ANYCAST seq 10 permit 10.96.0.0/24 ge 32\n"
    "ip prefix-list ANYCAST seq 20 permit 10.97.0.5/32\n!\n"
    "router bgp 4200100001\n address-family ipv4 unicast\n  network 10.255.0.20/32\n exit-address-family\n"
    "exit\n!\nend\n"
)
VIP_CASES = [
    ["10.96.0.10", "10.96.0.255", "10.96.0.0"],
    ["10.96.1.0", "10.95.255.255", "10.97.0.5", "10.97.0.6", "10.96.1.0"],
    [],
]


def test_anycast_pools_of_the_rendered_config():
    assert lb.anycast_pools(HOST_CONF) == ["10.96.0.0/24", "10.97.0.5/32"]
    assert lb.anycast_pools(HOST_CONF.replace("ANYCAST", "OTHER")) == []
    with pytest.raises(InvalidInput):
        lb.anycast_pools("hostname spine01\nip prefix-list ANYCAST seq 10 permit 10.96.0.0/24 ge 32\nend\n")


def test_vips_outside_anycast():
    assert lb.vips_outside_anycast(HOST_CONF, VIP_CASES[0]) == []
    assert lb.vips_outside_anycast(HOST_CONF, VIP_CASES[1]) == ["10.95.255.255", "10.96.1.0", "10.97.0.6"]
    with pytest.raises(InvalidInput) as info:
        lb.vips_outside_anycast(HOST_CONF, ["10.96.0"])
    assert info.value.details["key"] == "vip"


def _role_vips_outside(vips: list[str]) -> list[str]:
    """The role's ``lb_node_vips_outside`` (vars/main.yml) rendered as Ansible renders it."""
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["regex_findall"] = lambda value, pattern: re.findall(pattern, value)
    env.filters["unique"] = lambda items: list(dict.fromkeys(items))
    text = env.from_string(role_vars["lb_node_vips_outside"]).render(
        __lb_node_host_conf=HOST_CONF.rstrip("\n"),  # Ansible's file lookup strips the final newline
        lb_node_vips=vips,
        lb_node_anycast_prefix_list=role_vars["lb_node_anycast_prefix_list"],
    )
    return [vip for vip in text.split(",") if vip]


@pytest.mark.parametrize("vips", VIP_CASES)
def test_role_vip_check_matches_the_library(vips: list[str]):
    assert sorted(_role_vips_outside(vips)) == lb.vips_outside_anycast(HOST_CONF, vips)


def test_announcer_decisions():
    ann = _announcer()
    stat = (
        "# pxname,svname,scur,status\nlbb.a.w.80,b1,0,UP\nlbb.a.w.80,BACKEND,0,UP\nlbb.a.d.5,BACKEND,0,DOWN\n"
    )
    status = ann.backend_status(stat)
    assert status == {"lbb.a.w.80": "UP", "lbb.a.d.5": "DOWN"}
    backends = {"10.96.0.10": {"lbb.a.w.80", "lbb.a.d.5"}, "10.96.0.11": {"lbb.a.d.5"}}
    vips = ["10.96.0.10", "10.96.0.11", "10.96.0.12"]
    assert ann.healthy_vips(vips, backends, status, drained=False) == {"10.96.0.10"}
    assert ann.healthy_vips(vips, backends, status, drained=True) == set()
    assert ann.healthy_vips(vips, backends, None, drained=False) == set()  # HAProxy does not answer
    running = HOST_CONF.replace(
        "  network 10.255.0.20/32\n", "  network 10.255.0.20/32\n  network 10.96.0.11/32\n"
    )
    assert ann.bgp_asn(running) == 4200100001 and ann.bgp_asn("hostname x\n") is None
    assert ann.announced(running, vips) == {"10.96.0.11"}
    assert ann.vtysh_commands(7, {"10.96.0.10"}, {"10.96.0.11"}) == [
        "configure terminal",
        "router bgp 7",
        "address-family ipv4 unicast",
        "network 10.96.0.10/32",
        "no network 10.96.0.11/32",
        "end",
    ]
    assert ann.vtysh_commands(7, set(), set()) == []
    args = ann.parse_args(["--socket", "/s", "--vip", "10.96.0.10", "--vty-socket", "/d"])
    assert args.vip == ["10.96.0.10"] and args.interval == 1.0


# ------------------------------------------------------------------------------------------------
# The module
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def cloud(tmp_path, run_module):
    from cloud_testlib import Cloud

    c = Cloud(tmp_path, str(tmp_path / "cloud.db"), run_module)
    c.ok(network, name="vips", tenant="ops", cidr="10.96.0.0/24", vni=4000)
    with Store.open(c.store) as store, store.transaction(write=True):
        off = store.insert("offerings", {"name": "small", "vcpus": 1, "ram_mb": 512})
        for name, tenant, ip in (
            ("b1", "acme", "10.10.0.11"),
            ("b2", "acme", "10.10.0.12"),
            ("x1", "other", "1.1.1.1"),
        ):
            store.insert(
                "instances",
                {
                    "uuid": f"u-{name}",
                    "name": name,
                    "instance_id": f"i-{name}",
                    "tenant": tenant,
                    "offering_id": off["id"],
                    "vcpus": 1,
                    "ram_mb": 512,
                    "state": "running",
                    "domain_type": "qemu",
                    "networks": [
                        {"network": "acme-net", "ip": f"{ip}/24"},
                        {"network": "back", "ip": "10.20.0.5/24"},
                    ],
                },
            )
    return c


LB = {
    "name": "web",
    "tenant": "acme",
    "vip_network": "vips",
    "vip_network_tenant": "ops",
    "listeners": LISTENERS,
}


def _vip_rows(store_path: str) -> list[dict[str, Any]]:
    with Store.open(store_path) as store:
        return store.query("SELECT address, lb_id, instance_id FROM ip_allocations WHERE lb_id IS NOT NULL")


def test_store_keeps_json_and_timestamps_of_balancers(cloud):
    cloud.ok(load_balancer, **LB, members=[{"instance": "b1"}])
    with Store.open(cloud.store) as store:
        row = store.get("load_balancers", tenant="acme", name="web")
        raw = store.query_one("SELECT listeners, health FROM load_balancers WHERE id = ?", (row["id"],))
        member = store.select("lb_members", lb_id=row["id"])[0]
    assert row["listeners"] == LISTENERS and row["health"] == HEALTH  # decoded by the store
    assert raw["listeners"] == json.dumps(LISTENERS, sort_keys=True)  # stored as sorted-key JSON
    assert row["created_at"] > 0 and row["updated_at"] >= row["created_at"]
    assert member["created_at"] > 0 and member["updated_at"] >= member["created_at"]
    with Store.open(cloud.store) as store, store.transaction(write=True):
        store.execute("UPDATE load_balancers SET updated_at = 1 WHERE id = ?", (row["id"],))
    cloud.ok(load_balancer, name="web", tenant="acme", algorithm="leastconn")
    with Store.open(cloud.store) as store:
        assert store.get("load_balancers", id=row["id"])["updated_at"] > 1  # refreshed on update


def test_cloud_info_load_balancers_section(cloud):
    assert cloud.ok(cloud_info, gather=["load_balancers"])["load_balancers"] == []
    made = cloud.ok(load_balancer, **LB, members=[{"instance": "b1"}, {"instance": "b2", "weight": 7}])
    cloud.ok(
        load_balancer,
        name="db",
        tenant="other",
        vip_network="vips",
        vip_network_tenant="ops",
        listeners=[{"port": 5432, "protocol": "tcp"}],
        members=[{"instance": "x1"}],
    )
    info = cloud.ok(cloud_info, gather=["load_balancers"])
    assert not info["changed"] and set(info) >= {"load_balancers"} and "instances" not in info
    web, db = sorted(info["load_balancers"], key=lambda b: b["tenant"])
    assert web == made["load_balancer"]  # what the module returns, members at their current address
    assert [m["address"] for m in web["members"]] == ["10.10.0.11", "10.10.0.12"] and web[
        "vip_network"
    ] == "vips"
    assert db["tenant"] == "other" and db["members"][0]["address"] == "1.1.1.1"
    only = cloud.ok(cloud_info, gather=["load_balancers"], tenant="acme")["load_balancers"]
    assert [(b["tenant"], b["name"]) for b in only] == [("acme", "web")]
    assert "load_balancers" in cloud.ok(cloud_info)  # gathered by default


def test_create_check_diff_idempotence(cloud):
    res = cloud.ok(load_balancer, check=True, diff=True, **LB, members=[{"instance": "b1"}])
    assert res["changed"] and res["diff"]["before"] == {"load_balancer": {}}
    assert res["load_balancer"]["vip"] == "10.96.0.2"  # lowest free (gateway .1 excluded)
    assert res["load_balancer"]["members"] == [
        {"instance": "b1", "weight": 100, "state": "ready", "network": None, "address": "10.10.0.11"}
    ]
    assert _vip_rows(cloud.store) == []  # check mode wrote nothing
    res = cloud.ok(load_balancer, diff=True, **LB, members=[{"instance": "b1"}])
    assert res["changed"] and res["load_balancer"]["vip"] == "10.96.0.2" and res["nodes"] == []
    assert res["diff"]["after"]["load_balancer"]["health_check"] == HEALTH
    assert _vip_rows(cloud.store) == [{"address": 0x0A600002, "lb_id": 1, "instance_id": None}]
    assert not cloud.ok(load_balancer, **LB, members=[{"instance": "b1"}])["changed"]
    assert not cloud.ok(load_balancer, name="web", tenant="acme")["changed"]  # omitted options keep
    res = cloud.ok(load_balancer, check=True, diff=True, name="web", tenant="acme", algorithm="leastconn")
    assert res["changed"] and res["diff"]["before"]["load_balancer"]["algorithm"] == "roundrobin"
    assert res["diff"]["after"]["load_balancer"]["algorithm"] == "leastconn"
    assert cloud.ok(load_balancer, name="web", tenant="acme")["load_balancer"]["algorithm"] == "roundrobin"


def test_members_follow_the_instance_and_purge(cloud):
    cloud.ok(
        load_balancer, **LB, members=[{"instance": "b1"}, {"instance": "b2", "network": "back", "weight": 5}]
    )
    with Store.open(cloud.store) as store, store.transaction(write=True):  # b1 evacuated: new address
        inst = store.get("instances", name="b1")
        store.update("instances", inst["id"], {"networks": [{"network": "acme-net", "ip": "10.10.0.77/24"}]})
    res = cloud.ok(load_balancer, name="web", tenant="acme", diff=True)
    assert not res["changed"]  # the store did not change; the address is looked up at each run
    members = {m["instance"]: m for m in res["load_balancer"]["members"]}
    assert members["b1"]["address"] == "10.10.0.77" and members["b2"]["address"] == "10.20.0.5"
    res = cloud.ok(
        load_balancer,
        name="web",
        tenant="acme",
        members=[{"instance": "b2", "state": "drain"}],
        purge_members=False,
    )
    assert res["changed"] and {m["instance"]: m["state"] for m in res["load_balancer"]["members"]} == {
        "b1": "ready",
        "b2": "drain",
    }
    res = cloud.ok(load_balancer, name="web", tenant="acme", members=[{"instance": "b2"}])
    assert [m["instance"] for m in res["load_balancer"]["members"]] == ["b2"]
    assert res["load_balancer"]["members"][0]["weight"] == 100


@pytest.mark.parametrize(
    ("args", "key", "needle"),
    [
        ({"members": [{"instance": "x1"}]}, "members[0].instance", "tenant other"),
        ({"members": [{"instance": "nope"}]}, "members[0].instance", "no such instance"),
        ({"members": [{"instance": "b1", "network": "nonet"}]}, "members[0].network", "nonet"),
        ({"members": [{"instance": "b1", "weight": 999}]}, "members[0].weight", "999"),
        ({"vip_network": "nope"}, "vip_network", "nope"),
        ({"vip": "10.97.0.1"}, "vip", "10.97.0.1"),
        ({"vip": "10.96.0.1"}, "vip", "reserved"),
        ({"listeners": [{"port": 99999}]}, "listeners[0].port", "99999"),
        ({"name": "a.b"}, "name", "a.b"),
        ({"health_check": {"path": "no-slash"}}, "health_check.path", "no-slash"),
        ({"drain_timeout": -1}, "drain_timeout", "-1"),
        ({"nodes": [{"name": "n1", "runtime_api": "nowhere"}]}, "nodes[0].runtime_api", "nowhere"),
    ],
)
def test_bad_input_names_key_and_value(cloud, args, key, needle):
    res = cloud.fails(load_balancer, **{**LB, **args})
    assert res.get("key") == key, res
    assert needle in res["msg"] and "exception" not in res


def test_create_needs_listeners_and_vip_network(cloud):
    res = cloud.fails(load_balancer, name="web", tenant="acme", vip_network="vips", vip_network_tenant="ops")
    assert res["key"] == "listeners"
    res = cloud.fails(load_balancer, name="web", tenant="acme", listeners=LISTENERS)
    assert res["key"] == "vip_network"


def test_fixed_vip_conflicts_and_absent_releases(cloud):
    cloud.ok(load_balancer, **LB, vip="10.96.0.50")
    res = cloud.fails(load_balancer, **{**LB, "name": "api"}, vip="10.96.0.50")
    assert "load balancer acme/web" in res["msg"]
    assert cloud.ok(load_balancer, **{**LB, "name": "api"})["load_balancer"]["vip"] == "10.96.0.2"
    res = cloud.ok(load_balancer, **LB, vip="10.96.0.51")  # moved: the old VIP is released
    assert res["changed"] and {r["address"] & 0xFF for r in _vip_rows(cloud.store)} == {2, 51}
    res = cloud.ok(load_balancer, name="web", tenant="acme", state="absent", check=True, diff=True)
    assert (
        res["changed"] and res["diff"]["after"] == {"load_balancer": {}} and len(_vip_rows(cloud.store)) == 2
    )
    assert cloud.ok(load_balancer, name="web", tenant="acme", state="absent")["changed"]
    assert {r["address"] & 0xFF for r in _vip_rows(cloud.store)} == {2}
    assert not cloud.ok(load_balancer, name="web", tenant="acme", state="absent")["changed"]


def test_runtime_only_node_cannot_get_new_frontends(cloud, tmp_path):
    sock = tmp_path / "fake.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.listen(8)

    def answer() -> None:
        for _request in range(2):
            conn, _addr = server.accept()
            data = conn.recv(1024)
            conn.sendall(SERVERS_STATE.encode() if b"servers" in data else b"# name\nbe_a\n")
            conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    res = cloud.fails(load_balancer, **LB, check=True, nodes=[{"name": "n1", "runtime_api": str(sock)}])
    assert res["key"] == "nodes" and "lbb.acme.web.80" in res["msg"]
    server.close()


# ------------------------------------------------------------------------------------------------
# A real HAProxy on loopback
# ------------------------------------------------------------------------------------------------
class _Backend:
    """A TCP server answering 'HTTP/1.0 200' on 127.0.0.1 (the health checks' target)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]


@pytest.fixture
def haproxy(tmp_path):
    if HAPROXY is None:
        pytest.skip("HAProxy is not installed")
    d = tmp_path / "hx"
    (d / "balancers.d").mkdir(parents=True)
    (d / "base.cfg").write_text(
        f"global\n    stats socket {d}/admin.sock mode 600 level admin expose-fd listeners\n"
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
    )
    (d / "balancers.d" / "balancers.cfg").write_text(lb.HEADER)
    proc = subprocess.Popen(
        [
            HAPROXY,
            "-W",
            "-S",
            str(d / "master.sock"),
            "-f",
            str(d / "base.cfg"),
            "-f",
            str(d / "balancers.d"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (d / "admin.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    node = {
        "name": "lb1",
        "runtime_api": str(d / "admin.sock"),
        "config": str(d / "balancers.d" / "balancers.cfg"),
        "master_socket": str(d / "master.sock"),
    }
    yield node
    proc.kill()
    proc.wait(timeout=10)


def test_real_haproxy_reload_then_runtime_changes(cloud, haproxy):
    cloud.ok(network, name="loop", tenant="ops", cidr="127.0.0.0/24", vni=4001)
    backend = _Backend()
    args = {
        **LB,
        "vip_network": "loop",
        "vip": "127.0.0.10",
        "nodes": [haproxy],
        "drain_timeout": 2,
        "listeners": [{"port": 18480, "protocol": "tcp", "backend_port": backend.port}],
    }
    with Store.open(cloud.store) as store, store.transaction(write=True):
        for name in ("b1", "b2"):
            inst = store.get("instances", name=name)
            last = 21 if name == "b1" else 22
            store.update("instances", inst["id"], {"networks": [{"network": "n", "ip": f"127.0.0.{last}/8"}]})
    check = cloud.ok(load_balancer, check=True, **args, members=[{"instance": "b1"}])
    assert check["nodes"][0]["reloaded"] and "add server" not in " ".join(check["nodes"][0]["commands"])
    api = lb.RuntimeApi(haproxy["runtime_api"])
    assert "lbb.acme.web.18480" not in lb.parse_backends(api.send("show backend"))  # check mode: untouched
    res = cloud.ok(load_balancer, **args, members=[{"instance": "b1"}])
    assert res["nodes"][0]["reloaded"] and res["nodes"][0]["wrote"]
    servers = api.servers()["lbb.acme.web.18480"]
    assert servers == {"b1": lb.Server("b1", "127.0.0.21", backend.port, 100, "ready")}
    res = cloud.ok(load_balancer, **args, members=[{"instance": "b1"}, {"instance": "b2", "weight": 7}])
    node = res["nodes"][0]
    assert not node["reloaded"] and node["wrote"]
    assert node["commands"][0].startswith("add server lbb.acme.web.18480/b2 127.0.0.22:")
    assert api.servers()["lbb.acme.web.18480"]["b2"] == lb.Server(
        "b2", "127.0.0.22", backend.port, 7, "ready"
    )
    again = cloud.ok(load_balancer, **args, members=[{"instance": "b1"}, {"instance": "b2", "weight": 7}])
    assert not again["changed"] and again["nodes"][0]["commands"] == []
    res = cloud.ok(load_balancer, **args, members=[{"instance": "b1", "state": "drain"}])
    assert "del server lbb.acme.web.18480/b2" in res["nodes"][0]["commands"]
    assert api.servers()["lbb.acme.web.18480"] == {
        "b1": lb.Server("b1", "127.0.0.21", backend.port, 100, "drain")
    }
    gone = cloud.ok(load_balancer, name="web", tenant="acme", state="absent", nodes=[haproxy])
    assert gone["nodes"][0]["reloaded"]
    assert "lbb.acme.web.18480" not in lb.parse_backends(api.send("show backend"))
    with pytest.raises(CommandError):
        lb.RuntimeApi(haproxy["runtime_api"]).run("set server nope/nope state ready")
    backend.sock.close()


def test_unreachable_runtime_api_fails_with_a_hint(cloud, tmp_path):
    res = cloud.fails(load_balancer, **LB, nodes=[{"name": "n1", "runtime_api": str(tmp_path / "none.sock")}])
    assert "none.sock" in res["msg"] and res.get("hint")


# ------------------------------------------------------------------------------------------------
# Smaller pieces
# ------------------------------------------------------------------------------------------------
def test_desired_servers_skip_members_without_address():
    got = lb.desired_servers(
        _balancer(members=(lb.Member("b1", "10.0.1.12", 9, "drain"), lb.Member("b2", None)))
    )
    assert got == {"lbb.acme.web.80": {"b1": lb.Server("b1", "10.0.1.12", 8080, 9, "drain")}}
    assert lb.check_words({**HEALTH, "type": "none"}) == ""
    assert lb.server_line(lb.Server("b", "1.2.3.4", 80, 5, "ready"), HEALTH).endswith(
        "weight 5 check inter 2000 rise 2 fall 3"
    )


def test_runtime_commands_only_for_running_backends():
    running = {"lbb.acme.web.80": {}, "other": {"x": lb.Server("x", "1.1.1.1", 1, 1, "ready")}}
    cmds = lb.runtime_commands(running, [_balancer(), _balancer(name="api")])
    assert cmds[0] == "add server lbb.acme.web.80/b1 10.0.1.12:8080 weight 100 check inter 2000 rise 2 fall 3"
    assert not any("lbb.acme.api" in c or "other/" in c for c in cmds)


def test_member_address_by_network_or_first():
    inst = {
        "name": "b1",
        "networks": [
            {"type": "bridge"},
            {"network": "a", "ip": "10.0.0.5/24"},
            {"network": "b", "ip": "10.1.0.5/24"},
        ],
    }
    assert lb.member_address(inst, None, "k") == "10.0.0.5"
    assert lb.member_address(inst, "b", "k") == "10.1.0.5"
    assert lb.member_address({"name": "x", "networks": []}, None, "k") is None
    with pytest.raises(lb.NotFound) as info:
        lb.member_address(inst, "c", "members[0].network")
    assert info.value.details == {"key": "members[0].network", "value": "c"}


def test_view_and_balancer_of():
    row = {
        "tenant": "acme",
        "name": "web",
        "vip": "10.96.0.10",
        "algorithm": "source",
        "listeners": LISTENERS,
        "health": HEALTH,
        "id": 3,
    }
    members = [
        {"instance": "b1", "weight": 4, "state": "maint", "network": None, "address": "10.0.0.9", "id": 8}
    ]
    shown = lb.view(row, members, "vips")
    assert shown["members"] == [
        {"instance": "b1", "weight": 4, "state": "maint", "network": None, "address": "10.0.0.9"}
    ]
    assert shown["health_check"] == HEALTH and "id" not in shown and lb.view(None, [], None) == {}
    assert lb.balancer_of(row, members).members == (lb.Member("b1", "10.0.0.9", 4, "maint"),)


def test_config_file_io(tmp_path):
    path = tmp_path / "balancers.cfg"
    assert lb.read_config(None) is None and lb.read_config(str(path)) == ""
    lb.write_atomic(str(path), "x\n")
    assert lb.read_config(str(path)) == "x\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["balancers.cfg"]


class _FakeApi:
    """Sessions drop to zero after two polls; commands are recorded."""

    def __init__(self) -> None:
        self.polls = 0
        self.sent: list[str] = []

    def sessions(self, backend: str, server: str) -> int:
        self.polls += 1
        return 0 if self.polls > 2 else 5

    def run(self, command: str) -> str:
        self.sent.append(command)
        return ""


def test_execute_waits_for_idle_then_deletes():
    api = _FakeApi()
    lb.execute(
        api,
        ["set server b/s state drain", f"{lb.WAIT_IDLE}b/s", "del server b/s"],  # type: ignore[arg-type]
        drain_timeout=5,
        interval=0.01,
    )
    assert api.sent == ["set server b/s state drain", "del server b/s"] and api.polls == 3
    slow = _FakeApi()
    slow.polls = -(10**6)  # never idle: the timeout ends the wait
    lb.execute(slow, [f"{lb.WAIT_IDLE}b/s", "del server b/s"], drain_timeout=0.05, interval=0.01)  # type: ignore[arg-type]
    assert slow.sent == ["del server b/s"]
