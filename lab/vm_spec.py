"""What a lab VM is: its spec (name, memory, disks, NICs, boot mode) parsed and validated (pure).

Specs come from ``python -m lab.vm create`` options or a molecule platform mapping
(:func:`spec_from_mapping`); the names derived from a VM name (hostname, MACs, tap devices,
machine-id) are stable, so a VM re-created under the same name looks the same to its peers.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VMNET_NETNS = "compleat-vmnet"
DEFAULT_MEMORY_MIB = 768
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
SIZE_RE = re.compile(r"^[1-9][0-9]*[KMGT]?$")
MEMORY_RE = re.compile(r"^([1-9][0-9]*)\s*([MG]i?B?|[MG])?$", re.IGNORECASE)
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
DISK_FORMATS = ("qcow2", "raw")
BOOT_MODES = ("kernel", "disk", "network")
DEFAULT_NETBOOT_ROOT_SIZE = "8G"
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class VmError(RuntimeError):
    """A VM operation failed; the message names the VM and what to look at."""


@dataclass(frozen=True)
class DiskSpec:
    """An extra virtio disk: a blank qcow2 of ``size`` in the VM's state dir, or ``path``.

    ``path`` attaches an existing image instead (``shared`` lets several VMs open it at once,
    for shared-storage tests). The guest sees it as ``/dev/disk/by-id/virtio-<name>``.
    """

    name: str
    size: str = "1G"
    path: str | None = None
    format: str = "qcow2"
    shared: bool = False


@dataclass(frozen=True)
class NicSpec:
    """An extra NIC (``eth1``, ``eth2``... in order) on a tap device attached to a bridge.

    Either ``segment`` (a VM-to-VM L2 segment: bridge ``segment`` in namespace
    ``compleat-vmnet``, created on demand) or ``netns`` + ``bridge`` (an existing bridge in an
    existing namespace, e.g. a fabric lab's). ``addresses`` (CIDRs, or ``"up"``) are configured
    by systemd-networkd in the guest; without them the NIC is left to the scenario's roles.
    """

    segment: str | None = None
    netns: str | None = None
    bridge: str | None = None
    addresses: tuple[str, ...] = ()
    mac: str | None = None


@dataclass(frozen=True)
class VmSpec:
    """Everything that defines a VM; built from CLI options or a molecule platform."""

    name: str
    memory_mib: int = DEFAULT_MEMORY_MIB
    cpus: int = 1
    hostname: str | None = None
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    kernel_args: tuple[str, ...] = field(default_factory=tuple)
    boot: str = "kernel"
    base_image: str | None = None
    root_size: str = DEFAULT_NETBOOT_ROOT_SIZE
    ssh_user: str = "root"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a usable VM name (it is also a directory name), else raise."""
    if not NAME_RE.match(name or ""):
        raise VmError(f"invalid VM name {name!r}: use letters, digits, '_', '.', '-' (max 63)")
    return name


def hostname_for(name: str) -> str:
    """The guest hostname derived from a VM name: lowercase, ``_``/``.`` become ``-``."""
    host = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:63].strip("-")
    if not HOSTNAME_RE.match(host):
        raise VmError(f"cannot derive a hostname from VM name {name!r}; set one explicitly")
    return host


def parse_memory(value: int | str) -> int:
    """Memory in MiB from ``768``, ``"768"``, ``"768M"``, ``"1G"`` or ``"1GiB"``."""
    if isinstance(value, bool):
        raise VmError(f"invalid memory {value!r}")
    if isinstance(value, int):
        mib = value
    else:
        match = MEMORY_RE.match(str(value).strip())
        if not match:
            raise VmError(f"invalid memory {value!r}: use MiB or a size like 768M or 1G")
        mib = int(match.group(1)) * (1024 if (match.group(2) or "M")[0].upper() == "G" else 1)
    if not 128 <= mib <= 16384:
        raise VmError(f"memory {mib} MiB out of range (128-16384)")
    return mib


def _hexdigest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def mac_for(name: str, index: int) -> str:
    """A stable, locally administered MAC (QEMU's 52:54:00 prefix) for NIC ``index`` of ``name``."""
    digest = _hexdigest("mac", name, str(index))
    return "52:54:00:" + ":".join(digest[i : i + 2] for i in range(0, 6, 2))


def tap_name(name: str, index: int) -> str:
    """Host tap device of NIC ``index`` (1-based) of VM ``name``; fits IFNAMSIZ (15 chars)."""
    return f"cvm{_hexdigest('tap', name)[:8]}n{index}"


def machine_id_for(name: str) -> str:
    """The guest's systemd machine-id (32 hex digits), stable per VM name."""
    return _hexdigest("machine-id", name)[:32]


def parse_disk(value: str | Mapping[str, Any], index: int) -> DiskSpec:
    """A disk from ``"2G"``, ``"name:2G"`` or a mapping (keys: name, size, path, format, shared)."""
    if isinstance(value, str):
        name, _sep, size = value.rpartition(":")
        data: dict[str, Any] = {"name": name or f"disk{index}", "size": size}
    elif isinstance(value, Mapping):
        data = dict(value)
        data.setdefault("name", f"disk{index}")
    else:
        raise VmError(f"disk {index}: expected a size string or a mapping, got {value!r}")
    unknown = set(data) - {"name", "size", "path", "format", "shared"}
    if unknown:
        raise VmError(f"disk {index}: unknown keys {sorted(unknown)}")
    disk = DiskSpec(
        name=str(data["name"]),
        size=str(data.get("size", "1G")).upper(),
        path=str(data["path"]) if data.get("path") else None,
        format=str(data.get("format", "qcow2")),
        shared=bool(data.get("shared", False)),
    )
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$", disk.name):
        raise VmError(f"disk {index}: invalid name {disk.name!r} (max 20 chars, also the serial)")
    if disk.path is None and not SIZE_RE.match(disk.size):
        raise VmError(f"disk {disk.name}: invalid size {disk.size!r} (e.g. 512M, 2G)")
    if disk.format not in DISK_FORMATS:
        raise VmError(f"disk {disk.name}: format must be one of {DISK_FORMATS}")
    return disk


def _split_addresses(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(a for a in re.split(r"[+\s]+", value) if a)
    return tuple(str(a) for a in value)


def _nic_data(value: str | Mapping[str, Any], index: int) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str):
        raise VmError(f"nic {index}: expected a string or a mapping, got {value!r}")
    data: dict[str, Any] = {}
    for position, item in enumerate(value.split(",")):
        key, sep, val = item.partition("=")
        if not sep and position == 0:
            data["segment"] = item.strip()  # "SEGMENT[,key=value...]"
        elif not sep:
            raise VmError(f"nic {index}: expected key=value, got {item!r}")
        else:
            data[key.strip()] = val.strip()
    return data


def _check_nic(nic: NicSpec, index: int) -> NicSpec:
    if bool(nic.segment) == bool(nic.netns or nic.bridge):
        raise VmError(f"nic {index}: give either segment=NAME or netns=NS,bridge=BR")
    if nic.segment is not None and not IFNAME_RE.match(nic.segment):
        raise VmError(f"nic {index}: segment {nic.segment!r} must be a valid interface name")
    if nic.netns is not None and not nic.bridge:
        raise VmError(f"nic {index}: netns={nic.netns} needs bridge=")
    if nic.bridge is not None and not IFNAME_RE.match(nic.bridge):
        raise VmError(f"nic {index}: bridge {nic.bridge!r} must be a valid interface name")
    if nic.mac is not None and not MAC_RE.match(nic.mac):
        raise VmError(f"nic {index}: invalid mac {nic.mac!r}")
    for addr in nic.addresses:
        if addr != "up" and not re.match(r"^[0-9A-Fa-f.:]+/[0-9]{1,3}$", addr):
            raise VmError(f"nic {index}: address {addr!r} is not a CIDR (or 'up')")
    return nic


def parse_nic(value: str | Mapping[str, Any], index: int) -> NicSpec:
    """A NIC from ``"segment=NAME,address=CIDR+CIDR"``, ``"NAME[,address=...]"`` (a segment),
    ``"netns=NS,bridge=BR"`` or a mapping with the same keys (``address`` may be a list)."""
    data = _nic_data(value, index)
    unknown = set(data) - {"segment", "netns", "bridge", "address", "addresses", "mac"}
    if unknown:
        raise VmError(f"nic {index}: unknown keys {sorted(unknown)}")
    nic = NicSpec(
        segment=data.get("segment") or None,
        netns=data.get("netns") or None,
        bridge=data.get("bridge") or None,
        addresses=_split_addresses(data.get("addresses", data.get("address"))),
        mac=str(data["mac"]).lower() if data.get("mac") else None,
    )
    return _check_nic(nic, index)


def spec_from_mapping(data: Mapping[str, Any]) -> VmSpec:
    """A :class:`VmSpec` from a molecule platform (or any mapping with the same keys).

    Keys: ``name`` (required), ``memory`` (MiB or ``"1G"``), ``cpus``, ``hostname``, ``disks``,
    ``nics``, ``kernel_args`` (string or list), ``boot`` (``kernel``/``disk``/``network``),
    ``image`` (``boot: disk``: the image to boot), ``root_size`` (``boot: network``: the blank
    root disk), ``ssh_user`` (who molecule logs in as). Other keys (``groups``, ``children``...)
    are molecule's and ignored.
    """
    name = validate_name(str(data.get("name", "")))
    kernel_args = data.get("kernel_args") or ()
    if isinstance(kernel_args, str):
        kernel_args = shlex.split(kernel_args)
    hostname = str(data["hostname"]) if data.get("hostname") else hostname_for(name)
    if not HOSTNAME_RE.match(hostname):
        raise VmError(f"{name}: invalid hostname {hostname!r}")
    cpus = int(data.get("cpus", 1))
    if not 1 <= cpus <= 4:
        raise VmError(f"{name}: cpus must be 1-4 (TCG on a shared 2-core machine)")
    disks = tuple(parse_disk(d, i) for i, d in enumerate(data.get("disks") or (), start=1))
    if len({d.name for d in disks}) != len(disks):
        raise VmError(f"{name}: disk names must be unique")
    spec = VmSpec(
        name=name,
        memory_mib=parse_memory(data.get("memory", DEFAULT_MEMORY_MIB)),
        cpus=cpus,
        hostname=hostname,
        disks=disks,
        nics=tuple(parse_nic(n, i) for i, n in enumerate(data.get("nics") or (), start=1)),
        kernel_args=tuple(str(a) for a in kernel_args),
        boot=str(data.get("boot") or "kernel"),
        base_image=str(data["image"]) if data.get("image") else None,
        root_size=str(data.get("root_size") or DEFAULT_NETBOOT_ROOT_SIZE).upper(),
        ssh_user=str(data.get("ssh_user") or "root"),
    )
    return check_boot(spec)


def check_boot(spec: VmSpec) -> VmSpec:
    """Reject boot settings that do not fit together (firmware boots get no kernel command
    line, so no ``kernel_args`` and no NIC addresses; ``disk`` needs an image, ``network`` a NIC)."""
    name = spec.name
    if spec.boot not in BOOT_MODES:
        raise VmError(f"{name}: boot must be one of {BOOT_MODES}, got {spec.boot!r}")
    if not USER_RE.match(spec.ssh_user):
        raise VmError(f"{name}: invalid ssh_user {spec.ssh_user!r}")
    if spec.boot == "disk" and not spec.base_image:
        raise VmError(f"{name}: boot: disk needs image: PATH (the disk image to boot)")
    if spec.boot != "disk" and spec.base_image:
        raise VmError(f"{name}: image: is only used with boot: disk")
    if spec.boot == "network" and not spec.nics:
        raise VmError(f"{name}: boot: network needs a NIC to boot from (nics:)")
    if not SIZE_RE.match(spec.root_size):
        raise VmError(f"{name}: invalid root_size {spec.root_size!r} (e.g. 8G)")
    if spec.boot != "kernel":
        if spec.kernel_args:
            raise VmError(f"{name}: kernel_args need boot: kernel (boot: {spec.boot} runs the firmware)")
        if any(nic.addresses for nic in spec.nics):
            raise VmError(
                f"{name}: NIC addresses need boot: kernel (with boot: {spec.boot} the guest sets them)"
            )
    return spec
