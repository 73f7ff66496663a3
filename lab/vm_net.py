"""The host side of a VM's networking: its SSH port, VM-to-VM segment bridges in the namespace
``compleat-vmnet``, and the tap devices QEMU creates, moved onto their bridges.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .vm_spec import VMNET_NETNS, VmError
from .vm_store import all_states, run

IP = shutil.which("ip") or "/usr/sbin/ip"


def free_port(taken: set[int]) -> int:
    """A free TCP port on 127.0.0.1 that no other VM of ours has recorded."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise VmError("no free TCP port on 127.0.0.1")


def netns_exists(ns: str) -> bool:
    """Whether the named network namespace ``ns`` exists."""
    return Path("/run/netns", ns).exists()


def link_exists(ns: str, ifname: str) -> bool:
    """Whether interface ``ifname`` exists in namespace ``ns``."""
    return run([IP, "-n", ns, "link", "show", "dev", ifname], check=False).returncode == 0


def ensure_segment(segment: str) -> None:
    """Bridge ``segment`` in the namespace ``compleat-vmnet`` (both created when missing)."""
    if not netns_exists(VMNET_NETNS):
        run([IP, "netns", "add", VMNET_NETNS])
        run([IP, "-n", VMNET_NETNS, "link", "set", "lo", "up"])
    if not link_exists(VMNET_NETNS, segment):
        run([IP, "-n", VMNET_NETNS, "link", "add", segment, "type", "bridge", "stp_state", "0"])
        run([IP, "-n", VMNET_NETNS, "link", "set", segment, "type", "bridge", "forward_delay", "0"])
        run([IP, "-n", VMNET_NETNS, "link", "set", segment, "up"])


def prune_segments() -> None:
    """Remove segment bridges no VM uses any more, and the namespace once it has none. A bridge
    is in use when a VM of this checkout names it or when any port is attached to it: the
    namespace is shared by every checkout on the machine, each with its own state directory."""
    if not netns_exists(VMNET_NETNS):
        return
    wanted = {nic["bridge"] for st in all_states() for nic in st.get("nics", []) if nic.get("segment")}
    proc = run([IP, "-n", VMNET_NETNS, "-d", "-j", "link", "show"], check=False)
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError:
        return
    idle = idle_bridges(links, wanted)
    for bridge in idle:
        run([IP, "-n", VMNET_NETNS, "link", "del", bridge], check=False)
    if not set(bridge_names(links)) - set(idle):
        delete_vmnet()


def delete_vmnet() -> None:
    """Remove the segment namespace ``compleat-vmnet`` (and so every bridge in it), if it exists."""
    if netns_exists(VMNET_NETNS):
        run([IP, "netns", "del", VMNET_NETNS], check=False)


def bridge_names(links: list[Mapping[str, Any]]) -> list[str]:
    """The bridges in ``ip -d -j link show`` output, sorted."""
    return sorted(
        str(link["ifname"]) for link in links if link.get("linkinfo", {}).get("info_kind") == "bridge"
    )


def idle_bridges(links: list[Mapping[str, Any]], wanted: set[str]) -> list[str]:
    """The bridges of ``ip -d -j link show`` output that no VM state names (``wanted``) and that
    have no port attached (another checkout's VM may be using them)."""
    busy = {str(link["master"]) for link in links if link.get("master")}
    return [name for name in bridge_names(links) if name not in wanted and name not in busy]


def attach_taps(state: Mapping[str, Any]) -> None:
    """Move each NIC's tap (created by QEMU in the host namespace) to its bridge's namespace."""
    for nic in state["nics"]:
        run([IP, "link", "set", "dev", nic["tap"], "netns", nic["netns"]])
        # the tap takes the bridge's MTU (a fabric lab's storage bridge is 9000): a smaller port
        # would drop the guest's jumbo frames, or pull the bridge's own MTU down
        mtu = bridge_mtu(run([IP, "-n", nic["netns"], "-j", "link", "show", "dev", nic["bridge"]]).stdout)
        run([IP, "-n", nic["netns"], "link", "set", "dev", nic["tap"], "mtu", str(mtu)])
        run([IP, "-n", nic["netns"], "link", "set", "dev", nic["tap"], "master", nic["bridge"], "up"])


def bridge_mtu(link_json: str) -> int:
    """The MTU in ``ip -j link show dev BRIDGE`` output (1500 when it does not say)."""
    try:
        links = json.loads(link_json or "[]")
    except ValueError as exc:
        raise VmError(f"cannot read ip -j link output: {exc}") from exc
    return int(links[0].get("mtu", 1500)) if links else 1500


def check_nic_targets(state: Mapping[str, Any]) -> None:
    """Create the segments the NICs join; :class:`VmError` when a named bridge is missing."""
    for nic in state["nics"]:
        if nic["segment"]:
            ensure_segment(nic["segment"])
        elif not netns_exists(nic["netns"]) or not link_exists(nic["netns"], nic["bridge"]):
            raise VmError(f"{state['name']}: no bridge {nic['bridge']} in namespace {nic['netns']}")
