# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Instance DNS records by RFC 2136 + TSIG: wire format, and against a real BIND checked with dig."""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import dns_update as du
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import InvalidInput
from ansible_collections.compleat.cloud.plugins.modules import instance, network

SECRET = base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = base64.b64encode(bytes(range(1, 33))).decode()


def cfg(**kw) -> du.Config:
    base = {"server": "127.0.0.1", "zone": "cloud.test", "key_name": "ddns", "key_secret": SECRET}
    base.update(kw)
    return du.config_from(base)


# ------------------------------------------------------------------------------------------------
# Pure
# ------------------------------------------------------------------------------------------------
def test_names_on_the_wire():
    assert du.encode_name("Web1.Cloud.Test") == b"\x04web1\x05cloud\x04test\x00"
    assert du.ptr_name("10.10.0.2") == "2.0.10.10.in-addr.arpa."
    assert du.fqdn("vm1", "cloud.test") == "vm1.cloud.test."
    assert du.in_zone("2.0.10.10.in-addr.arpa.", "10.10.in-addr.arpa") and not du.in_zone(
        "x.test", "cloud.test"
    )
    with pytest.raises(InvalidInput):
        du.encode_name("a" * 64 + ".test", "dns_update.zone")


def test_update_message_layout():
    msg = du.update_message(0x1234, "cloud.test", du.forward_changes(cfg(ttl=60), "vm1", "10.10.0.2"))
    msg_id, flags, zo, pr, up, ad = struct.unpack("!HHHHHH", msg[:12])
    assert (msg_id, flags >> 11, zo, pr, up, ad) == (0x1234, 5, 1, 0, 2, 0)
    zone = du.encode_name("cloud.test")
    assert msg[12 : 12 + len(zone) + 4] == zone + struct.pack("!HH", du.TYPE_SOA, du.CLASS_IN)
    name = du.encode_name("vm1.cloud.test")
    delete = name + struct.pack("!HHIH", du.TYPE_A, du.CLASS_ANY, 0, 0)
    add = name + struct.pack("!HHIH", du.TYPE_A, du.CLASS_IN, 60, 4) + bytes([10, 10, 0, 2])
    assert msg.endswith(delete + add)


def test_reverse_changes_move_the_ptr_and_skip_foreign_addresses():
    c = cfg(reverse_zone="10.10.in-addr.arpa")
    changes = du.reverse_changes(c, "vm1", "10.10.0.2", "10.10.0.3")
    assert [(x.name, x.rdata is None) for x in changes] == [
        ("2.0.10.10.in-addr.arpa.", True),
        ("3.0.10.10.in-addr.arpa.", True),
        ("3.0.10.10.in-addr.arpa.", False),
    ]
    assert du.reverse_changes(c, "vm1", None, "192.0.2.1") == []
    assert du.reverse_changes(cfg(), "vm1", None, "10.10.0.2") == []  # no reverse zone: no PTR
    assert du.sync_actions(c, "vm1", "10.10.0.2", None) == [
        "dns: delete vm1.cloud.test. A",
        "dns: delete 2.0.10.10.in-addr.arpa. PTR",
    ]


def test_tsig_signature_round_trip_and_a_forged_answer():
    c = cfg()
    msg = du.update_message(7, "cloud.test", du.forward_changes(c, "vm1", "10.10.0.2"))
    signed, request_mac = du.sign(c, msg, int(time.time()))
    body, rdata = du.split_tsig(signed)
    assert body == msg and rdata is not None  # the TSIG RR is the last additional record
    # an answer signed like a server would: MAC over request MAC + answer + variables
    answer = bytearray(msg)
    answer[2:4] = struct.pack("!H", 0x8000 | (5 << 11))
    now = int(time.time())
    digest = du.mac(
        c, struct.pack("!H", len(request_mac)) + request_mac + bytes(answer) + du.tsig_variables(c, now)
    )
    rdata = (
        du.encode_name("hmac-sha256.")
        + struct.pack("!HIHH", 0, now, du.FUDGE, len(digest))
        + digest
        + struct.pack("!HHH", 7, 0, 0)
    )
    rr = du.encode_name("ddns") + struct.pack("!HHIH", du.TYPE_TSIG, du.CLASS_ANY, 0, len(rdata)) + rdata
    good = bytes(answer[:10]) + struct.pack("!H", 1) + bytes(answer[12:]) + rr
    assert du.verify_response(c, good, request_mac) == (0, 0)
    with pytest.raises(du.DnsUpdateError) as info:
        du.verify_response(cfg(key_secret=OTHER_SECRET), good, request_mac)
    assert "wrong TSIG signature" in info.value.msg
    with pytest.raises(du.DnsUpdateError):
        du.verify_response(c, bytes(answer), request_mac)  # unsigned success is not trusted


def test_config_refuses_bad_values_without_showing_the_secret():
    with pytest.raises(InvalidInput) as info:
        cfg(key_secret="not base64!")
    assert "key_secret" in info.value.msg and "not base64!" not in info.value.msg
    with pytest.raises(InvalidInput):
        cfg(port=70000)
    assert SECRET not in repr(cfg())
    assert du.config_from(None) is None


# ------------------------------------------------------------------------------------------------
# A real BIND
# ------------------------------------------------------------------------------------------------
NAMED = shutil.which("named") or "/usr/sbin/named"
DIG = shutil.which("dig")
ZONE = """$TTL 300
@ IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 300
@ IN NS ns.cloud.test.
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bind:
    """named on 127.0.0.1:PORT from a temp dir; zones cloud.test and 10.10.in-addr.arpa; TSIG key ddns."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="compleat-named-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        d = self.dir
        (d / "cloud.test.zone").write_text(ZONE.format(origin="cloud.test.") + "ns IN A 127.0.0.1\n")
        (d / "rev.zone").write_text(ZONE.format(origin="10.10.in-addr.arpa."))
        zones = "".join(
            f'zone "{name}" {{ type primary; file "{d}/{file}"; allow-update {{ key ddns; }}; }};\n'
            for name, file in (("cloud.test", "cloud.test.zone"), ("10.10.in-addr.arpa", "rev.zone"))
        )
        (d / "named.conf").write_text(
            f'key "ddns" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n'
            f'options {{ directory "{d}"; listen-on port {self.port} {{ 127.0.0.1; }};\n'
            "  listen-on-v6 { none; };\n"
            f'  pid-file "{d}/named.pid"; session-keyfile "{d}/session.key"; recursion no;\n'
            f'  managed-keys-directory "{d}"; dnssec-validation no; }};\n'
            "controls { };\n" + zones
        )
        self.log = open(d / "named.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [NAMED, "-g", "-4", "-c", str(d / "named.conf")], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"named exited: {(d / 'named.log').read_text()[-2000:]}")
            if self.dig("cloud.test", "SOA"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"named did not answer: {(d / 'named.log').read_text()[-2000:]}")

    def dig(self, name: str, rtype: str) -> list[str]:
        out = subprocess.run(
            [DIG, "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1", name, rtype],
            capture_output=True,
            text=True,
            check=False,
        )
        return sorted(out.stdout.split()) if out.returncode == 0 else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(AttributeError):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def bind():
    if not (Path(NAMED).exists() and DIG):
        pytest.skip("named and dig are needed (Debian packages bind9 and bind9-dnsutils)")
    server = Bind()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def live(bind, **kw) -> du.Config:
    return cfg(port=bind.port, reverse_zone="10.10.in-addr.arpa", timeout=5, **kw)


def test_records_follow_the_address_against_bind(bind):
    c = live(bind)
    actions = du.sync(c, "vm1", None, "10.10.0.2")
    assert actions == ["dns: vm1.cloud.test. A 10.10.0.2", "dns: 2.0.10.10.in-addr.arpa. PTR vm1.cloud.test."]
    assert bind.dig("vm1.cloud.test", "A") == ["10.10.0.2"]
    assert bind.dig("2.0.10.10.in-addr.arpa", "PTR") == ["vm1.cloud.test."]
    du.sync(c, "vm1", "10.10.0.2", "10.10.0.9")  # moved to another rack's network
    assert bind.dig("vm1.cloud.test", "A") == ["10.10.0.9"]
    assert bind.dig("2.0.10.10.in-addr.arpa", "PTR") == []
    assert bind.dig("9.0.10.10.in-addr.arpa", "PTR") == ["vm1.cloud.test."]
    du.sync(c, "vm1", "10.10.0.9", "10.10.0.9")  # nothing to do: nothing sent
    du.sync(c, "vm1", "10.10.0.9", None)
    assert bind.dig("vm1.cloud.test", "A") == [] and bind.dig("9.0.10.10.in-addr.arpa", "PTR") == []


def test_refused_update_names_server_and_zone(bind):
    with pytest.raises(du.DnsUpdateError) as info:
        du.sync(live(bind, key_secret=OTHER_SECRET), "vm2", None, "10.10.0.5")
    assert f"127.0.0.1:{bind.port}" in info.value.msg and "cloud.test." in info.value.msg
    assert "was refused: BADSIG" in info.value.msg
    with pytest.raises(du.DnsUpdateError) as info:
        du.sync(live(bind, key_name="unknown"), "vm2", None, "10.10.0.5")
    assert "zone cloud.test." in info.value.msg and "was refused: BADKEY" in info.value.msg
    with pytest.raises(du.DnsUpdateError) as info:
        du.sync(live(bind, zone="other.test"), "vm2", None, "10.10.0.5")
    assert "zone other.test." in info.value.msg and "was refused: NOTAUTH" in info.value.msg
    assert bind.dig("vm2.cloud.test", "A") == []


def test_unreachable_server_is_a_clean_error():
    c = cfg(port=free_port(), timeout=2)
    with pytest.raises(du.DnsUpdateError) as info:
        du.sync(c, "vm1", None, "10.10.0.2")
    assert f"server 127.0.0.1:{c.port}" in info.value.msg and "zone cloud.test." in info.value.msg


def test_instance_module_adds_and_removes_its_records(bind, cloud, libvirt_test):
    dns = {
        "server": "127.0.0.1",
        "port": bind.port,
        "zone": "cloud.test",
        "reverse_zone": "10.10.in-addr.arpa",
        "key_name": "ddns",
        "key_secret": SECRET,
    }
    cloud.ok(network, name="acme-net", tenant="acme", cidr="10.10.0.0/24", vni=10010)
    vm = {"name": "web1", "template": "tpl", "offering": "small", "tenant": "acme"}
    nets = [{"network": "acme-net", "ip": "10.10.0.40"}]
    plan = cloud.ok(instance, check=True, **vm, networks=nets, dns_update=dns)
    assert "dns: web1.cloud.test. A 10.10.0.40" in plan["actions"] and bind.dig("web1.cloud.test", "A") == []
    res = cloud.ok(instance, **vm, networks=nets, dns_update=dns)
    assert "dns: web1.cloud.test. A 10.10.0.40" in res["actions"]
    assert bind.dig("web1.cloud.test", "A") == ["10.10.0.40"]
    assert bind.dig("40.0.10.10.in-addr.arpa", "PTR") == ["web1.cloud.test."]
    assert not cloud.ok(instance, **vm, networks=nets, dns_update=dns)["changed"]
    res = cloud.fails(instance, name="web1", state="absent", dns_update={**dns, "key_secret": "%%%"})
    assert "key_secret" in res["msg"] and "%%%" not in str(res)  # refused before anything changed
    cloud.ok(instance, name="web1", state="absent", dns_update=dns)
    assert bind.dig("web1.cloud.test", "A") == [] and bind.dig("40.0.10.10.in-addr.arpa", "PTR") == []
