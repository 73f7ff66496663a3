# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VTEP side of tenant networks on a hypervisor (EVPN/VXLAN data plane).

A tenant network with VXLAN id VNI exists on a hypervisor as two Linux devices:

- the bridge ``brv<VNI>`` (:func:`bridge_name`): instance NICs (libvirt
  ``<interface type='bridge'><source bridge='brv<VNI>'/>``) are its ports;
- the VXLAN device ``vxv<VNI>`` (:func:`vxlan_name`): ``id <VNI> local <VTEP address> dstport 4789
  nolearning``, a port of that bridge with bridge learning off (optionally ``neigh_suppress`` on).
  Remote MACs and the flood list come from FRR (``advertise-all-vni``: zebra sees the VNI, bgpd
  announces the local MACs as type-2 and the VTEP as type-3 routes and installs the remote ones in
  the bridge FDB), so the kernel never learns from the data plane.

Both are created on demand when the first instance of the network lands on the hypervisor
(:func:`ensure_network`) and removed once the bridge has no port left but the VXLAN device
(:func:`release_network`).  The planning functions are pure (``ip -j -d link show`` state in,
``ip`` argv lists out); the apply layer runs them through a *runner*: any callable taking an argv
list and returning ``(rc, stdout, stderr)`` -- ``AnsibleModule.run_command`` is one.  Only what
differs from the wanted state is changed, so a second call changes nothing.

On a hypervisor the devices are made by a libvirt QEMU hook (:func:`hook_main`, installed by the
role ``compleat.cloud.tenant_vtep`` as ``/etc/libvirt/hooks/qemu`` next to a copy of this file):
``prepare begin`` ensures the networks of the domain's ``brv<VNI>`` NICs, ``release end`` releases
them -- wherever the module that starts the domain runs, and for ``virsh start`` too.  This file is
copied to the hypervisors as it is, so it imports the standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

VXLAN_PORT = 4789  # IANA
# outer IPv4 header 20 + UDP 8 + VXLAN 8 + inner Ethernet header 14 (no inner 802.1Q tag)
VXLAN_OVERHEAD = 50
VNI_MIN, VNI_MAX = 1, (1 << 24) - 1
IFNAME_MAX = 15  # Linux IFNAMSIZ - 1
MTU_MIN = 68

Runner = Callable[[list[str]], tuple[int, str, str]]
Command = list[str]


class VtepError(RuntimeError):
    """A tenant network cannot be set up as asked (bad input, foreign device, failed command)."""


# ------------------------------------------------------------------------------------ names
def check_vni(vni: int) -> int:
    """``vni`` as an int when it is a valid 24-bit VXLAN id (1..16777215); VtepError otherwise."""
    if isinstance(vni, bool) or not isinstance(vni, int) or not VNI_MIN <= vni <= VNI_MAX:
        raise VtepError(f"VNI must be an integer {VNI_MIN}..{VNI_MAX} (got {vni!r})")
    return vni


def bridge_name(vni: int) -> str:
    """Linux bridge name of the tenant network with VXLAN id ``vni`` (``brv`` + VNI, at most 11 chars)."""
    return f"brv{int(vni)}"


def vxlan_name(vni: int) -> str:
    """Name of the network's VXLAN device (``vxv`` + VNI, at most 11 chars)."""
    return f"vxv{check_vni(vni)}"


def max_tenant_mtu(underlay_mtu: int) -> int:
    """Largest tenant MTU over an underlay of ``underlay_mtu`` bytes (minus the VXLAN overhead)."""
    return underlay_mtu - VXLAN_OVERHEAD


# ------------------------------------------------------------------------------------ state
@dataclass(frozen=True)
class Link:
    """What the data plane needs to know about one kernel link (from ``ip -j -d link show``)."""

    name: str
    kind: str  # "bridge", "vxlan", "veth", "tun", ... ("" when ip reports none)
    mtu: int
    up: bool  # administratively up
    master: str | None
    vni: int | None = None
    local: str | None = None
    port: int | None = None
    learning: bool | None = None  # the VXLAN device's own learning
    port_learning: bool | None = None  # bridge-port learning (bridge_slave)
    neigh_suppress: bool | None = None


def parse_links(data: Iterable[dict[str, Any]]) -> dict[str, Link]:
    """``{name: Link}`` from the parsed JSON of ``ip -j -d link show``."""
    links: dict[str, Link] = {}
    for item in data:
        info = item.get("linkinfo") or {}
        vx = info.get("info_data") or {} if info.get("info_kind") == "vxlan" else {}
        port = info.get("info_slave_data") or {} if info.get("info_slave_kind") == "bridge" else {}
        links[item["ifname"]] = Link(
            name=item["ifname"],
            kind=str(info.get("info_kind") or ""),
            mtu=int(item.get("mtu", 0)),
            up="UP" in (item.get("flags") or ()),
            master=item.get("master"),
            vni=vx.get("id"),
            local=vx.get("local"),
            port=vx.get("port"),
            learning=vx.get("learning"),
            port_learning=port.get("learning"),
            neigh_suppress=port.get("neigh_suppress"),
        )
    return links


def bridge_ports(links: dict[str, Link], vni: int) -> list[str]:
    """Ports of the network's bridge other than its VXLAN device (instance NICs), sorted."""
    bridge, vxlan = bridge_name(vni), vxlan_name(vni)
    return sorted(name for name, link in links.items() if link.master == bridge and name != vxlan)


# ------------------------------------------------------------------------------------ planning
def _check_inputs(vni: int, vtep_ip: str, mtu: int) -> None:
    check_vni(vni)
    try:
        address = ipaddress.ip_address(vtep_ip)
    except ValueError as exc:
        raise VtepError(f"VTEP address {vtep_ip!r} is not an IP address") from exc
    if address.version != 4 or address.is_unspecified or address.is_multicast:
        raise VtepError(f"VTEP address {vtep_ip} must be a unicast IPv4 address")
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not MTU_MIN <= mtu <= 65535 - VXLAN_OVERHEAD:
        raise VtepError(f"MTU must be an integer {MTU_MIN}..{65535 - VXLAN_OVERHEAD} (got {mtu!r})")


def _vxlan_matches(link: Link, vni: int, vtep_ip: str) -> bool:
    return (
        link.kind == "vxlan"
        and link.vni == vni
        and link.local == vtep_ip
        and link.port == VXLAN_PORT
        and link.learning is False
    )


def ensure_commands(
    links: dict[str, Link], vni: int, vtep_ip: str, mtu: int, *, neigh_suppress: bool = False
) -> list[Command]:
    """``ip`` commands that turn ``links`` into the tenant network's bridge + VXLAN device.

    Empty when everything is already as wanted.  A VXLAN device with other parameters (id, local
    address, port, learning) is recreated -- the kernel cannot change them in place.  A device of
    another kind under one of the two names is refused (VtepError), never replaced.
    """
    _check_inputs(vni, vtep_ip, mtu)
    bridge, vxlan = bridge_name(vni), vxlan_name(vni)
    cmds: list[Command] = []
    br = links.get(bridge)
    if br is not None and br.kind != "bridge":
        raise VtepError(f"{bridge} exists and is a {br.kind or 'non-bridge'} device, not a bridge")
    vx = links.get(vxlan)
    if vx is not None and vx.kind != "vxlan":
        raise VtepError(f"{vxlan} exists and is a {vx.kind or 'non-vxlan'} device, not a vxlan")
    if br is None:
        br_opts = ["stp_state", "0", "forward_delay", "0"]
        cmds.append(["ip", "link", "add", "name", bridge, "mtu", str(mtu), "type", "bridge", *br_opts])
    if vx is not None and not _vxlan_matches(vx, vni, vtep_ip):
        cmds.append(["ip", "link", "del", "dev", vxlan])
        vx = None
    if vx is None:
        vx_opts = ["id", str(vni), "local", vtep_ip, "dstport", str(VXLAN_PORT), "nolearning"]
        cmds.append(["ip", "link", "add", "name", vxlan, "mtu", str(mtu), "type", "vxlan", *vx_opts])
    elif vx.mtu != mtu:
        cmds.append(["ip", "link", "set", "dev", vxlan, "mtu", str(mtu)])
    if br is not None and br.mtu != mtu:
        cmds.append(["ip", "link", "set", "dev", bridge, "mtu", str(mtu)])
    if vx is None or vx.master != bridge:
        cmds.append(["ip", "link", "set", "dev", vxlan, "master", bridge])
    port_ok = vx is not None and vx.port_learning is False and vx.neigh_suppress == neigh_suppress
    if vx is None or vx.master != bridge or not port_ok:
        port_opts = ["learning", "off", "neigh_suppress", "on" if neigh_suppress else "off"]
        cmds.append(["ip", "link", "set", "dev", vxlan, "type", "bridge_slave", *port_opts])
    if br is None or not br.up:
        cmds.append(["ip", "link", "set", "dev", bridge, "up"])
    if vx is None or not vx.up:
        cmds.append(["ip", "link", "set", "dev", vxlan, "up"])
    return cmds


def release_commands(links: dict[str, Link], vni: int) -> list[Command]:
    """``ip`` commands removing the network's devices -- none while an instance port remains."""
    check_vni(vni)
    if bridge_ports(links, vni):
        return []
    cmds: list[Command] = []
    vxlan, bridge = vxlan_name(vni), bridge_name(vni)
    if links.get(vxlan) is not None and links[vxlan].kind == "vxlan":
        cmds.append(["ip", "link", "del", "dev", vxlan])
    if links.get(bridge) is not None and links[bridge].kind == "bridge":
        cmds.append(["ip", "link", "del", "dev", bridge])
    return cmds


# ------------------------------------------------------------------------------------ apply
def read_links(runner: Runner) -> dict[str, Link]:
    """Current links of the host (``ip -j -d link show`` through ``runner``)."""
    rc, out, err = runner(["ip", "-j", "-d", "link", "show"])
    if rc != 0:
        raise VtepError(f"ip -j -d link show failed (rc={rc}): {err.strip()}")
    try:
        return parse_links(json.loads(out) if out.strip() else [])
    except (ValueError, KeyError, TypeError) as exc:
        raise VtepError(f"cannot parse ip -j -d link show: {exc}") from exc


def apply_commands(runner: Runner, commands: list[Command]) -> None:
    """Run ``commands`` in order; the first failure raises VtepError with its stderr."""
    for argv in commands:
        rc, _out, err = runner(list(argv))
        if rc != 0:
            raise VtepError(f"{' '.join(argv)} failed (rc={rc}): {err.strip()}")


def ensure_network(runner: Runner, vni: int, vtep_ip: str, mtu: int, *, neigh_suppress: bool = False) -> bool:
    """Create (or repair) the tenant network's bridge and VXLAN device; True when anything changed."""
    commands = ensure_commands(read_links(runner), vni, vtep_ip, mtu, neigh_suppress=neigh_suppress)
    apply_commands(runner, commands)
    return bool(commands)


def release_network(runner: Runner, vni: int) -> bool:
    """Remove the network's devices when no instance port is left; True when anything was removed."""
    commands = release_commands(read_links(runner), vni)
    apply_commands(runner, commands)
    return bool(commands)


# ------------------------------------------------------------------------------------ libvirt hook
BRIDGE_RE = re.compile(r"brv([1-9][0-9]{0,7})")
HOOK_TIMEOUT = 20.0  # seconds per ip command: libvirt waits for the hook
HOOK_OPERATIONS = (("prepare", "begin"), ("release", "end"))


@dataclass(frozen=True)
class HookConfig:
    """What the hook needs to know about its host (``/etc/compleat/tenant-vtep.json``)."""

    vtep_ip: str
    mtu: int  # devices' MTU when the domain's NIC names none: the largest tenant MTU
    neigh_suppress: bool = False


def vni_of_bridge(name: str | None) -> int | None:
    """The VNI of a tenant bridge name (``brv<VNI>``, no leading zero), None for any other name."""
    match = BRIDGE_RE.fullmatch(name or "")
    if match is None or int(match.group(1)) > VNI_MAX:
        return None
    return int(match.group(1))


def tenant_nics_of_domain_xml(xml: str) -> dict[int, int | None]:
    """``{VNI: MTU}`` of a domain's ``<interface type='bridge'>`` NICs on tenant bridges.

    The MTU is the NIC's ``<mtu size=...>`` (the largest when several NICs of one network give
    one), None when none does.  Other NICs are ignored; VtepError when the XML cannot be parsed.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise VtepError(f"cannot parse the domain XML: {exc}") from exc
    nics: dict[int, int | None] = {}
    for iface in root.iter("interface"):
        source = iface.find("source")
        vni = vni_of_bridge(source.get("bridge") if source is not None else None)
        if iface.get("type") != "bridge" or vni is None:
            continue
        size = _nic_mtu(iface)
        known = nics.get(vni)
        nics[vni] = size if known is None else max(known, size or 0)
    return nics


def _nic_mtu(iface: ET.Element) -> int | None:
    element = iface.find("mtu")
    if element is None:
        return None
    try:
        return int(element.get("size", ""))
    except ValueError as exc:
        raise VtepError(f"interface <mtu size={element.get('size')!r}> is not a number") from exc


def bridges_of_domain_xml(xml: str) -> list[int]:
    """Sorted VNIs of the tenant bridges (``brv<VNI>``) a domain's NICs are plugged into."""
    return sorted(tenant_nics_of_domain_xml(xml))


def parse_hook_config(text: str) -> HookConfig:
    """HookConfig from the JSON the role writes; VtepError naming the problem otherwise."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise VtepError(f"configuration is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not {"vtep_ip", "mtu"} <= set(data):
        raise VtepError("configuration must be an object with vtep_ip and mtu")
    unknown = set(data) - {"vtep_ip", "mtu", "neigh_suppress"}
    if unknown:
        raise VtepError(f"configuration has unknown keys: {', '.join(sorted(unknown))}")
    suppress = data.get("neigh_suppress", False)
    if not isinstance(suppress, bool):
        raise VtepError(f"neigh_suppress must be true or false (got {suppress!r})")
    config = HookConfig(vtep_ip=str(data["vtep_ip"]), mtu=data["mtu"], neigh_suppress=suppress)
    _check_inputs(VNI_MIN, config.vtep_ip, config.mtu)
    return config


def _prepare(runner: Runner, nics: dict[int, int | None], config: HookConfig) -> None:
    """Ensure every network of the domain; on a failure release what this call made (if unused)."""
    touched: list[int] = []
    try:
        for vni, mtu in sorted(nics.items()):
            touched.append(vni)
            suppress = config.neigh_suppress
            ensure_network(runner, vni, config.vtep_ip, mtu or config.mtu, neigh_suppress=suppress)
    except VtepError:
        for vni in touched:
            with contextlib.suppress(VtepError):
                release_network(runner, vni)
        raise


def _release(runner: Runner, vnis: Iterable[int]) -> list[str]:
    """Release every network (those still in use stay); the messages of the ones that failed."""
    errors = []
    for vni in vnis:
        try:
            release_network(runner, vni)
        except VtepError as exc:
            errors.append(f"{bridge_name(vni)}: {exc}")
    return errors


def hook_main(
    argv: list[str], stdin: IO[str], runner: Runner, config: Callable[[], HookConfig], err: IO[str]
) -> int:
    """The libvirt QEMU hook: ``qemu <domain> <operation> <sub-operation> <extra>``, domain XML on stdin.

    ``prepare begin`` creates the devices of the domain's tenant networks (exit 1 with the reason on
    ``err`` when it cannot: libvirt then does not start the domain); ``release end`` removes those no
    other domain uses (exit 1 on a failure: libvirt logs it, the domain is already gone).  Every
    other operation -- ``reconnect`` above all, whose failure would kill the running QEMU -- exits
    0 without a change.  Nothing is written to stdout (``migrate``/``restore``: XML unchanged).
    ``config`` is called only when the domain has tenant NICs.  Never calls libvirt.
    """
    xml = stdin.read()  # always read: libvirt writes the whole XML
    if len(argv) < 4:
        err.write(f"usage: {argv[0] if argv else 'qemu'} DOMAIN OPERATION SUB-OPERATION EXTRA\n")
        return 2
    domain, operation = argv[1], (argv[2], argv[3])
    if operation not in HOOK_OPERATIONS:
        return 0
    try:
        nics = tenant_nics_of_domain_xml(xml)
        if not nics:
            return 0
        if operation == ("prepare", "begin"):
            _prepare(runner, nics, config())
            return 0
        errors = _release(runner, sorted(nics))
    except VtepError as exc:
        err.write(f"compleat tenant network devices for domain {domain}: {exc}\n")
        return 1
    for message in errors:
        err.write(f"compleat tenant network devices for domain {domain}: {message}\n")
    return 1 if errors else 0


def run_command(argv: list[str]) -> tuple[int, str, str]:
    """A runner for the hook: ``argv`` as a process, ``(rc, stdout, stderr)``; never raises."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=HOOK_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def read_hook_config(path: str) -> HookConfig:
    """HookConfig from the file ``path``."""
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_hook_config(handle.read())
    except OSError as exc:
        raise VtepError(f"cannot read {path}: {exc.strerror}") from exc
    except VtepError as exc:
        raise VtepError(f"{path}: {exc}") from exc


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """An exclusive flock on ``path``: two domains starting at once do not race for one bridge."""
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def hook_cli(argv: list[str], stdin: IO[str], err: IO[str], *, config_path: str, lock_path: str) -> int:
    """:func:`hook_main` with the real ``ip`` and the configuration file, serialised by a lock file.

    Operations other than ``prepare begin``/``release end`` take no lock: nothing can make them fail.
    """
    if tuple(argv[2:4]) not in HOOK_OPERATIONS:
        return hook_main(argv, stdin, run_command, lambda: read_hook_config(config_path), err)
    try:
        with locked(lock_path):
            return hook_main(argv, stdin, run_command, lambda: read_hook_config(config_path), err)
    except OSError as exc:
        stdin.read()
        err.write(f"compleat tenant network devices: cannot lock {lock_path}: {exc.strerror}\n")
        return 1
