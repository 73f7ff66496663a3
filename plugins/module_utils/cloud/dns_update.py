# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Instance DNS records by RFC 2136 dynamic update, signed with TSIG (RFC 8945), in pure Python.

No ``nsupdate`` and no DNS library on the controller: an UPDATE message is a few fixed fields and
resource records, and TSIG is an HMAC over the message plus a few variables.  The update goes to
the zone's primary over TCP; the answer's TSIG is verified too, so a forged "NOERROR" is refused.

Records of an instance: ``A`` ``NAME.ZONE`` -> its first IPAM address, and ``PTR`` of that address
in the reverse zone -> ``NAME.ZONE``.  Each update replaces whole RRsets (delete, then add), so
running it twice gives the same records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CloudError, InvalidInput

OPTION_SPEC: dict[str, Any] = {
    "server": {"type": "str", "required": True},
    "port": {"type": "int", "default": 53},
    "zone": {"type": "str", "required": True},
    "reverse_zone": {"type": "str"},
    "key_name": {"type": "str", "required": True, "no_log": False},
    "key_secret": {"type": "str", "required": True, "no_log": True},
    "key_algorithm": {
        "type": "str",
        "no_log": False,
        "choices": ["hmac-sha256", "hmac-sha512", "hmac-sha1", "hmac-md5"],
        "default": "hmac-sha256",
    },
    "ttl": {"type": "int", "default": 300},
    "timeout": {"type": "int", "default": 10},
}
ALGORITHMS: dict[str, tuple[str, Callable[..., Any]]] = {
    "hmac-sha256": ("hmac-sha256.", hashlib.sha256),
    "hmac-sha512": ("hmac-sha512.", hashlib.sha512),
    "hmac-sha1": ("hmac-sha1.", hashlib.sha1),
    "hmac-md5": ("hmac-md5.sig-alg.reg.int.", hashlib.md5),
}
TYPE_A, TYPE_PTR, TYPE_SOA, TYPE_TSIG = 1, 12, 6, 250
CLASS_IN, CLASS_NONE, CLASS_ANY = 1, 254, 255
OPCODE_UPDATE = 5
FUDGE = 300
RCODES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
    16: "BADSIG",
    17: "BADKEY",
    18: "BADTIME",
}


class DnsUpdateError(CloudError):
    """A dynamic update was refused or could not be sent."""


@dataclass(frozen=True, slots=True)
class Config:
    """Where and how to send the updates (the ``dns_update`` option)."""

    server: str
    zone: str
    key_name: str
    key_secret: str
    port: int = 53
    reverse_zone: str | None = None
    key_algorithm: str = "hmac-sha256"
    ttl: int = 300
    timeout: float = 10.0

    def __repr__(self) -> str:  # never show the secret
        return f"Config(server={self.server!r}, port={self.port}, zone={self.zone!r})"

    @property
    def where(self) -> str:
        """``server:port`` for messages."""
        return f"{self.server}:{self.port}"


def config_from(params: Mapping[str, Any] | None) -> Config | None:
    """A Config from the module option (None when the option is not given); refuses bad values."""
    if not params:
        return None
    cfg = Config(
        server=str(params["server"]),
        zone=absolute(str(params["zone"])),
        key_name=absolute(str(params["key_name"])),
        key_secret=str(params["key_secret"]),
        port=int(params.get("port") or 53),
        reverse_zone=absolute(str(params["reverse_zone"])) if params.get("reverse_zone") else None,
        key_algorithm=str(params.get("key_algorithm") or "hmac-sha256"),
        ttl=int(params.get("ttl") if params.get("ttl") is not None else 300),
        timeout=float(params.get("timeout") or 10),
    )
    if not 1 <= cfg.port <= 65535:
        raise InvalidInput(f"dns_update.port={cfg.port} is out of range.", "Give 1..65535.")
    if not 0 <= cfg.ttl <= 2**31 - 1:
        raise InvalidInput(f"dns_update.ttl={cfg.ttl} is out of range.", "Give seconds, 0..2147483647.")
    if cfg.key_algorithm not in ALGORITHMS:
        raise InvalidInput(
            f"dns_update.key_algorithm={cfg.key_algorithm!r} is not supported.",
            f"Use one of {sorted(ALGORITHMS)}.",
        )
    secret(cfg)
    for key in ("zone", "key_name"):
        encode_name(getattr(cfg, key), f"dns_update.{key}")
    return cfg


def secret(cfg: Config) -> bytes:
    """The TSIG secret as bytes (InvalidInput when it is not base64; the value is never shown)."""
    try:
        return base64.b64decode(cfg.key_secret, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            "dns_update.key_secret is not base64.",
            "Give the secret exactly as in the server's key statement.",
        ) from exc


# ------------------------------------------------------------------------------------------------
# Names and records (pure)
# ------------------------------------------------------------------------------------------------
def absolute(name: str) -> str:
    """A domain name with its final dot, lower case."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def encode_name(name: str, key: str = "name") -> bytes:
    """Uncompressed wire form of an absolute name (lower case: TSIG's canonical form)."""
    labels = [label for label in absolute(name).split(".") if label]
    out = bytearray()
    for label in labels:
        raw = label.encode("ascii", "strict") if label.isascii() else b""
        if not raw or len(raw) > 63:
            raise InvalidInput(
                f"{key}={name!r} is not a valid DNS name.", "Labels are 1-63 ASCII characters."
            )
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > 255:
        raise InvalidInput(f"{key}={name!r} is longer than 255 bytes.", "Give a shorter name.")
    return bytes(out) + b"\0"


def fqdn(host: str, zone: str) -> str:
    """``host.zone.``."""
    return absolute(f"{host}.{absolute(zone)}")


def ptr_name(address: str) -> str:
    """Reverse-lookup name of an IPv4 address (``5.0.10.10.in-addr.arpa.``)."""
    return ipaddress.IPv4Address(address).reverse_pointer + "."


def in_zone(name: str, zone: str) -> bool:
    """Whether ``name`` is ``zone`` or below it."""
    name, zone = absolute(name), absolute(zone)
    return name == zone or name.endswith("." + zone)


@dataclass(frozen=True, slots=True)
class Change:
    """One update-section RR: delete an RRset (``rdata`` None) or add a record."""

    name: str
    rtype: int
    rdata: bytes | None = None
    ttl: int = 0


def encode_change(change: Change) -> bytes:
    """The update RR of a change: class ANY with no rdata deletes the RRset; class IN adds."""
    name = encode_name(change.name)
    if change.rdata is None:
        return name + struct.pack("!HHIH", change.rtype, CLASS_ANY, 0, 0)
    return name + struct.pack("!HHIH", change.rtype, CLASS_IN, change.ttl, len(change.rdata)) + change.rdata


def update_message(msg_id: int, zone: str, changes: Sequence[Change]) -> bytes:
    """An unsigned RFC 2136 UPDATE for ``zone`` (no prerequisites)."""
    header = struct.pack("!HHHHHH", msg_id, OPCODE_UPDATE << 11, 1, 0, len(changes), 0)
    zone_section = encode_name(zone) + struct.pack("!HH", TYPE_SOA, CLASS_IN)
    return header + zone_section + b"".join(encode_change(c) for c in changes)


def forward_changes(cfg: Config, host: str, address: str | None) -> list[Change]:
    """Replace the A RRset of ``host`` (only delete it when ``address`` is None)."""
    name = fqdn(host, cfg.zone)
    out = [Change(name, TYPE_A)]
    if address:
        out.append(Change(name, TYPE_A, ipaddress.IPv4Address(address).packed, cfg.ttl))
    return out


def reverse_changes(cfg: Config, host: str, old: str | None, new: str | None) -> list[Change]:
    """Delete the PTR of ``old``, point ``new``'s PTR at the host (skipping addresses outside the zone)."""
    if not cfg.reverse_zone:
        return []
    out: list[Change] = []
    for address in dict.fromkeys(a for a in (old, new) if a):
        name = ptr_name(address)
        if not in_zone(name, cfg.reverse_zone):
            continue
        out.append(Change(name, TYPE_PTR))
        if address == new:
            out.append(Change(name, TYPE_PTR, encode_name(fqdn(host, cfg.zone)), cfg.ttl))
    return out


# ------------------------------------------------------------------------------------------------
# TSIG (RFC 8945)
# ------------------------------------------------------------------------------------------------
def tsig_variables(cfg: Config, signed_at: int, error: int = 0, other: bytes = b"") -> bytes:
    """The TSIG variables that go into the MAC after the message."""
    alg = encode_name(ALGORITHMS[cfg.key_algorithm][0])
    return (
        encode_name(cfg.key_name)
        + struct.pack("!HI", CLASS_ANY, 0)
        + alg
        + struct.pack("!HIH", signed_at >> 32, signed_at & 0xFFFFFFFF, FUDGE)
        + struct.pack("!HH", error, len(other))
        + other
    )


def mac(cfg: Config, data: bytes) -> bytes:
    """HMAC of ``data`` with the key's algorithm."""
    return hmac.new(secret(cfg), data, ALGORITHMS[cfg.key_algorithm][1]).digest()


def sign(cfg: Config, message: bytes, signed_at: int) -> tuple[bytes, bytes]:
    """``message`` with a TSIG RR appended (ARCOUNT + 1), and the request MAC."""
    digest = mac(cfg, message + tsig_variables(cfg, signed_at))
    msg_id = struct.unpack("!H", message[:2])[0]
    rdata = (
        encode_name(ALGORITHMS[cfg.key_algorithm][0])
        + struct.pack("!HIH", signed_at >> 32, signed_at & 0xFFFFFFFF, FUDGE)
        + struct.pack("!H", len(digest))
        + digest
        + struct.pack("!HHH", msg_id, 0, 0)
    )
    rr = encode_name(cfg.key_name) + struct.pack("!HHIH", TYPE_TSIG, CLASS_ANY, 0, len(rdata)) + rdata
    arcount = struct.unpack("!H", message[10:12])[0]
    return message[:10] + struct.pack("!H", arcount + 1) + message[12:] + rr, digest


def skip_name(data: bytes, pos: int) -> int:
    """Offset after the (possibly compressed) name at ``pos``."""
    while True:
        if pos >= len(data):
            raise ValueError("truncated name")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length


def split_tsig(data: bytes) -> tuple[bytes, bytes | None]:
    """(message without its TSIG RR, ARCOUNT - 1; the TSIG rdata) of a response; rdata None if unsigned."""
    qd, an, ns, ar = struct.unpack("!HHHH", data[4:12])
    pos, rtype, rdlen = 12, 0, 0
    for _question in range(qd):
        pos = skip_name(data, pos) + 4
    start = pos
    for _record in range(an + ns + ar):
        start = pos
        pos = skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10 + rdlen
    if ar == 0 or rtype != TYPE_TSIG:
        return data, None
    rdata = data[pos - rdlen : pos]
    return data[:10] + struct.pack("!H", ar - 1) + data[12:start], rdata


def verify_response(cfg: Config, data: bytes, request_mac: bytes) -> tuple[int, int]:
    """(rcode, TSIG error) of a response after checking its TSIG; DnsUpdateError when the MAC is wrong."""
    rcode = struct.unpack("!H", data[2:4])[0] & 0x000F
    body, rdata = split_tsig(data)
    if rdata is None:
        if rcode == 0:
            raise DnsUpdateError(
                f"The DNS server {cfg.where} answered the update of zone {cfg.zone} without TSIG signature.",
                "Check that the server knows the key; an unsigned success cannot be trusted.",
            )
        return rcode, 0
    pos = skip_name(rdata, 0)
    hi, lo, fudge, mac_len = struct.unpack("!HIHH", rdata[pos : pos + 10])
    pos += 10
    their_mac = rdata[pos : pos + mac_len]
    pos += mac_len
    _orig_id, error, other_len = struct.unpack("!HHH", rdata[pos : pos + 6])
    other = rdata[pos + 6 : pos + 6 + other_len]
    if error or not their_mac:
        return rcode, error
    signed_at = (hi << 32) | lo
    variables = (
        encode_name(cfg.key_name)
        + struct.pack("!HI", CLASS_ANY, 0)
        + encode_name(ALGORITHMS[cfg.key_algorithm][0])
        + struct.pack("!HIH", hi, lo, fudge)
        + struct.pack("!HH", error, other_len)
        + other
    )
    expected = mac(cfg, struct.pack("!H", len(request_mac)) + request_mac + body + variables)
    if not hmac.compare_digest(expected, their_mac):
        raise DnsUpdateError(
            f"The answer of DNS server {cfg.where} for zone {cfg.zone} has a wrong TSIG signature.",
            "Check key_name, key_secret and key_algorithm against the server's key statement.",
        )
    if abs(int(time.time()) - signed_at) > fudge:
        raise DnsUpdateError(
            f"The answer of DNS server {cfg.where} is signed {signed_at} (clock skew beyond {fudge} s).",
            "Synchronise the clocks (NTP) of the controller and the DNS server.",
        )
    return rcode, error


# ------------------------------------------------------------------------------------------------
# Sending
# ------------------------------------------------------------------------------------------------
def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def exchange(cfg: Config, message: bytes) -> bytes:
    """Send a DNS message over TCP and return the answer."""
    with socket.create_connection((cfg.server, cfg.port), timeout=cfg.timeout) as sock:
        sock.sendall(struct.pack("!H", len(message)) + message)
        (length,) = struct.unpack("!H", _recv_exact(sock, 2))
        return _recv_exact(sock, length)


def send_update(cfg: Config, zone: str, changes: Sequence[Change]) -> None:
    """Sign and send one UPDATE; raise DnsUpdateError naming the server and the zone when it fails."""
    if not changes:
        return
    msg_id = struct.unpack("!H", os.urandom(2))[0]
    signed, request_mac = sign(cfg, update_message(msg_id, zone, changes), int(time.time()))
    hint = (
        "The instance change itself is done. Check that the server accepts updates of the zone with this "
        "key (allow-update / update-policy), then run the task again to rewrite the records."
    )
    try:
        answer = exchange(cfg, signed)
    except (OSError, ValueError) as exc:
        raise DnsUpdateError(f"DNS update of zone {zone} on server {cfg.where} failed: {exc}.", hint) from exc
    try:
        rcode, error = verify_response(cfg, answer, request_mac)
    except (struct.error, ValueError, IndexError) as exc:
        raise DnsUpdateError(
            f"DNS server {cfg.where} sent a malformed answer for zone {zone}: {exc}.", hint
        ) from exc
    if struct.unpack("!H", answer[:2])[0] != msg_id:
        raise DnsUpdateError(f"DNS server {cfg.where} answered another message for zone {zone}.", hint)
    if rcode or error:
        what = RCODES.get(error or rcode, str(error or rcode))
        raise DnsUpdateError(f"DNS update of zone {zone} on server {cfg.where} was refused: {what}.", hint)


def sync_actions(cfg: Config, host: str, old: str | None, new: str | None) -> list[str]:
    """What ``sync`` does for the address change ``old`` -> ``new`` (also the check-mode answer)."""
    if old == new:
        return []
    name = fqdn(host, cfg.zone)
    out = [f"dns: {name} A {new}" if new else f"dns: delete {name} A"]
    for change in reverse_changes(cfg, host, old, new):
        if change.rdata is not None:
            out.append(f"dns: {change.name} PTR {name}")
        elif change.name != (ptr_name(new) if new else None):
            out.append(f"dns: delete {change.name} PTR")
    return out


def sync(cfg: Config, host: str, old: str | None, new: str | None) -> list[str]:
    """Make the A and PTR records of ``host`` follow its address ``old`` -> ``new``; returns the actions."""
    if old == new:
        return []
    send_update(cfg, cfg.zone, forward_changes(cfg, host, new))
    reverse = reverse_changes(cfg, host, old, new)
    if reverse and cfg.reverse_zone:
        send_update(cfg, cfg.reverse_zone, reverse)
    return sync_actions(cfg, host, old, new)
