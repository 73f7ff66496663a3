"""QEMU (TCG) virtual machines for the compleat.cloud lab and the molecule VM scenarios.

Each VM boots the cached Debian 12 base image (``scripts/images/build-vm-image.sh``) through a
qcow2 overlay, with the image's kernel and initrd passed directly (``-kernel/-initrd``), one vCPU
under TCG, user-mode networking on ``eth0`` with SSH forwarded to ``127.0.0.1:<port>``, and is
reached as root with the lab key (``.cache/images/lab_ssh_key``).

Everything a VM owns lives in ``.cache/vms/<name>/``: ``vm.json`` (what it is, see
:func:`state_dict`), the overlay, extra disks, the serial console log, the QEMU pidfile and its
QMP socket.  Destroying a VM kills its QEMU (only a process whose command line names that state
directory is ever signalled) and removes the directory; ``destroy-all`` also finds QEMU processes
of lost state directories.

Boot modes (``boot``): ``kernel`` (the default, above); ``disk`` boots a given image (e.g. a
template made by ``playbooks/template_build.yml``) through the firmware (SeaBIOS, its own boot
loader) from a qcow2 overlay, with the same user-mode ``eth0`` and SSH forward; ``network`` gives
the VM a blank root disk and only its tap NICs, and the firmware PXE-boots from the first one
(QEMU's iPXE option ROM): there is no SSH, the serial log is what there is to watch.

Extra NICs are tap devices that :func:`start` puts on a Linux bridge: either a VM-to-VM *segment*
(a bridge of that name in the namespace ``compleat-vmnet``, created on demand and removed with
its last VM) or an existing bridge in an existing namespace (e.g. the fabric lab's).  Guest
addresses for them are passed on the kernel command line (``compleat.net=``) and configured by
systemd-networkd in the guest.  Extra disks are blank qcow2 files (``/dev/vdb``...,
``/dev/disk/by-id/virtio-<name>``) or an existing image shared by several VMs.

CLI (run from the repository root)::

    python -m lab.vm create NAME [--memory 768] [--disk data:2G] [--nic segment=san,address=192.0.2.1/24]
    python -m lab.vm create --spec - < platform.json      # a molecule platform as JSON
    python -m lab.vm wait NAME... | start NAME | stop NAME | destroy NAME... | destroy-all [--prefix P]
    python -m lab.vm list [--json] | show NAME | ssh NAME [COMMAND...] | qmp NAME CMD [JSON-ARGS]
    python -m lab.vm instance-config NAME...               # molecule's instance_config entries
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("COMPLEAT_CACHE_DIR", str(ROOT / ".cache")))
IMAGE_DIR = Path(os.environ.get("COMPLEAT_VM_IMAGE_DIR", str(CACHE / "images" / "debian12-vm")))
SSH_KEY = Path(os.environ.get("COMPLEAT_VM_SSH_KEY", str(CACHE / "images" / "lab_ssh_key")))
VMS_DIR = Path(os.environ.get("COMPLEAT_VMS_DIR", str(CACHE / "vms")))
BUILD_SCRIPT = ROOT / "scripts" / "images" / "build-vm-image.sh"

QEMU = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"
IP = shutil.which("ip") or "/usr/sbin/ip"
VMNET_NETNS = "compleat-vmnet"
STATE_SCHEMA = 1
DEFAULT_MEMORY_MIB = 768
DEFAULT_BOOT_TIMEOUT = 600.0
# eth0's user-mode network (slirp). Not QEMU's default 10.0.2.0/24, which is rack 2's mgmt network
# of the lab fabric: a VM playing a rack-2 host would have both on one subnet. The VM image bakes
# the same addresses (scripts/images/build-vm-image.sh).
USER_NET = "192.168.253.0/24"
GUEST_ADDRESS = "192.168.253.15"

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


# --------------------------------------------------------------------------------------------
# Specs: what a VM should be (pure, validated)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# State: what a created VM is (vm.json) and the QEMU command line built from it (pure)
# --------------------------------------------------------------------------------------------


def read_image(image_dir: Path) -> dict[str, str]:
    """Resolve the base image directory (the ``debian12-vm`` symlink) to absolute file paths."""
    real = image_dir.resolve()
    files = {"disk": real / "disk.qcow2", "kernel": real / "vmlinuz", "initrd": real / "initrd.img"}
    manifest = real / "manifest.json"
    missing = [str(p) for p in (*files.values(), manifest) if not p.is_file()]
    if missing:
        raise VmError(f"VM base image incomplete ({', '.join(missing)}): run {BUILD_SCRIPT}")
    recipe = json.loads(manifest.read_text(encoding="utf-8")).get("recipe_hash", "")
    return {"dir": str(real), "recipe_hash": str(recipe), **{k: str(v) for k, v in files.items()}}


def state_dict(
    spec: VmSpec, *, state_dir: Path, image: Mapping[str, str], ssh_port: int, ssh_key: Path
) -> dict[str, Any]:
    """The JSON document describing a VM (``vm.json``); everything later steps need is in it."""
    disks = []
    for disk in spec.disks:
        own = disk.path is None
        disks.append(
            {
                "name": disk.name,
                "path": str(state_dir / f"disk-{disk.name}.{disk.format}") if own else disk.path,
                "size": disk.size if own else None,
                "format": disk.format,
                "shared": disk.shared,
                "owned": own,
            }
        )
    nics = []
    for index, nic in enumerate(spec.nics, start=1):
        nics.append(
            {
                "index": index,
                "guest_ifname": f"eth{index}",
                "tap": tap_name(spec.name, index),
                "mac": nic.mac or mac_for(spec.name, index),
                "segment": nic.segment,
                "netns": nic.netns or VMNET_NETNS,
                "bridge": nic.bridge or nic.segment,
                "addresses": list(nic.addresses),
            }
        )
    return {
        "schema": STATE_SCHEMA,
        "name": spec.name,
        "hostname": spec.hostname or hostname_for(spec.name),
        "memory_mib": spec.memory_mib,
        "cpus": spec.cpus,
        "address": "127.0.0.1",
        "ssh_port": ssh_port,
        "ssh_user": spec.ssh_user,
        "ssh_key": str(ssh_key),
        "guest_address": GUEST_ADDRESS,
        "image": dict(image),
        "state_dir": str(state_dir),
        "overlay": str(state_dir / "root.qcow2"),
        "serial_log": str(state_dir / "serial.log"),
        "pidfile": str(state_dir / "qemu.pid"),
        "qmp_socket": str(state_dir / "qmp.sock"),
        "disks": disks,
        "nics": nics,
        "kernel_args": list(spec.kernel_args),
        "boot": spec.boot,
        "base_image": str(Path(spec.base_image).resolve()) if spec.base_image else None,
        "root_size": spec.root_size if spec.boot == "network" else None,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def kernel_cmdline(state: Mapping[str, Any]) -> str:
    """The guest kernel command line: root on the overlay, serial console, classic NIC names,
    per-VM machine-id and hostname, extra NIC addresses (read by the image's compleat-boot)."""
    args = [
        "root=/dev/vda",
        "rw",
        "console=ttyS0",
        "net.ifnames=0",
        "panic=10",
        f"systemd.machine_id={machine_id_for(state['name'])}",
        f"compleat.hostname={state['hostname']}",
    ]
    nets = [
        f"{nic['guest_ifname']}={'+'.join(nic['addresses'])}" for nic in state["nics"] if nic["addresses"]
    ]
    if nets:
        args.append("compleat.net=" + ",".join(nets))
    args.extend(state.get("kernel_args", []))
    return " ".join(args)


def _boot_argv(state: Mapping[str, Any]) -> list[str]:
    """How the VM boots: the base image's kernel and initrd with our command line, or nothing
    (the firmware boots the ``bootindex`` devices: the root disk, or the first tap NIC)."""
    if state.get("boot", "kernel") != "kernel":
        return []
    image = state["image"]
    return ["-kernel", image["kernel"], "-initrd", image["initrd"], "-append", kernel_cmdline(state)]


def qemu_argv(state: Mapping[str, Any], *, qemu: str = QEMU) -> list[str]:
    """The full QEMU command line of a VM (daemonized, TCG; see the module doc for boot modes)."""
    boot = state.get("boot", "kernel")
    root_device = "virtio-blk-pci,drive=root,serial=root"
    if boot == "disk":
        root_device += ",bootindex=1"
    elif boot == "network":
        root_device += ",bootindex=2"
    argv = [
        qemu,
        "-name",
        f"{state['name']},process=cvm-{state['name']}",
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-m",
        str(state["memory_mib"]),
        "-smp",
        str(state["cpus"]),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        *_boot_argv(state),
        "-drive",
        f"file={state['overlay']},if=none,id=root,format=qcow2,cache=unsafe,discard=unmap",
        "-device",
        root_device,
    ]
    if boot != "network":
        # eth0: user-mode networking with the SSH forward; no option ROM (never a boot device).
        argv += [
            "-netdev",
            f"user,id=net0,net={USER_NET},hostfwd=tcp:127.0.0.1:{state['ssh_port']}-:22",
            "-device",
            f"virtio-net-pci,netdev=net0,mac={mac_for(state['name'], 0)},romfile=",
        ]
    for disk in state["disks"]:
        drive = f"file={disk['path']},if=none,id=disk-{disk['name']},format={disk['format']},cache=unsafe"
        device = f"virtio-blk-pci,drive=disk-{disk['name']},serial={disk['name']}"
        if disk["shared"]:
            drive += ",file.locking=off"
            device += ",share-rw=on"
        argv += ["-drive", drive, "-device", device]
    for nic in state["nics"]:
        device = f"virtio-net-pci,netdev=net{nic['index']},mac={nic['mac']}"
        if boot == "network" and nic["index"] == 1:
            device += ",bootindex=1"
        argv += [
            "-netdev",
            f"tap,id=net{nic['index']},ifname={nic['tap']},script=no,downscript=no",
            "-device",
            device,
        ]
    argv += [
        "-device",
        "virtio-rng-pci",
        "-chardev",
        f"file,id=serial0,path={state['serial_log']},append=on",
        "-serial",
        "chardev:serial0",
        "-qmp",
        f"unix:{state['qmp_socket']},server=on,wait=off",
        "-pidfile",
        state["pidfile"],
        "-daemonize",
    ]
    return argv


def ssh_argv(
    state: Mapping[str, Any], command: Sequence[str] = (), *, connect_timeout: int = 60
) -> list[str]:
    """``ssh`` to the VM as root with the lab key (host keys are not checked: throw-away VMs).

    ``connect_timeout`` also bounds the banner exchange, which a TCG guest on a loaded 2-core
    machine has been seen to take close to a minute for.
    """
    return [
        "ssh",
        "-i",
        state["ssh_key"],
        "-p",
        str(state["ssh_port"]),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        f"{state['ssh_user']}@{state['address']}",
        *command,
    ]


def instance_config(state: Mapping[str, Any]) -> dict[str, Any]:
    """Molecule's instance_config.yml entry (delegated driver) for a VM."""
    return {
        "instance": state["name"],
        "address": state["address"],
        "port": state["ssh_port"],
        "user": state["ssh_user"],
        "identity_file": state["ssh_key"],
    }


# --------------------------------------------------------------------------------------------
# Host side: processes, ports, locks, taps (impure)
# --------------------------------------------------------------------------------------------


def _run(
    cmd: Sequence[str], *, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VmError(f"timeout after {timeout:.0f}s: {shlex.join(cmd)}") from exc
    if check and proc.returncode != 0:
        raise VmError(f"rc={proc.returncode}: {shlex.join(cmd)}\n{(proc.stderr or proc.stdout).strip()}")
    return proc


@contextlib.contextmanager
def _locked(timeout: float = 120.0) -> Iterator[None]:
    """Serialise create/start/destroy (ports, bridges) across processes with flock."""
    VMS_DIR.mkdir(parents=True, exist_ok=True)
    with open(VMS_DIR / ".lock", "w", encoding="utf-8") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VmError(f"timed out waiting for {VMS_DIR / '.lock'}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def state_path(name: str) -> Path:
    """``.cache/vms/<name>/vm.json``."""
    return VMS_DIR / validate_name(name) / "vm.json"


def load_state(name: str) -> dict[str, Any]:
    """The ``vm.json`` of VM ``name``; :class:`VmError` if there is no such VM."""
    path = state_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VmError(f"no VM named {name!r} (no {path})") from None


def save_state(state: Mapping[str, Any]) -> None:
    """Write ``vm.json`` atomically."""
    path = Path(state["state_dir"]) / "vm.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def all_states() -> list[dict[str, Any]]:
    """Every VM with a readable ``vm.json``, sorted by name."""
    states = []
    for path in sorted(VMS_DIR.glob("*/vm.json")):
        with contextlib.suppress(OSError, ValueError):
            states.append(json.loads(path.read_text(encoding="utf-8")))
    return states


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def qemu_pid(state: Mapping[str, Any]) -> int | None:
    """The PID of the VM's running QEMU, or None. The pidfile is trusted only if that process's
    command line names this VM's pidfile (so a recycled PID is never signalled)."""
    try:
        pid = int(Path(state["pidfile"]).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if state["pidfile"] in _cmdline(pid) else None


def stray_qemu_pids(vms_dir: Path = VMS_DIR) -> list[int]:
    """QEMU processes whose command line points into ``vms_dir`` (lost or leftover VMs)."""
    marker = f"{vms_dir}/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if argv and "qemu-system" in Path(argv[0]).name and any(marker in a for a in argv):
            pids.append(int(entry.name))
    return sorted(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is dead for our purposes.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_pid(pid: int, *, term_timeout: float = 5.0) -> None:
    """SIGTERM (QEMU exits cleanly on it), then SIGKILL after ``term_timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, term_timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 5.0)


def free_port(taken: set[int]) -> int:
    """A free TCP port on 127.0.0.1 that no other VM of ours has recorded."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise VmError("no free TCP port on 127.0.0.1")


def _netns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def _link_exists(ns: str, ifname: str) -> bool:
    return _run([IP, "-n", ns, "link", "show", "dev", ifname], check=False).returncode == 0


def ensure_segment(segment: str) -> None:
    """Bridge ``segment`` in the namespace ``compleat-vmnet`` (both created when missing)."""
    if not _netns_exists(VMNET_NETNS):
        _run([IP, "netns", "add", VMNET_NETNS])
        _run([IP, "-n", VMNET_NETNS, "link", "set", "lo", "up"])
    if not _link_exists(VMNET_NETNS, segment):
        _run([IP, "-n", VMNET_NETNS, "link", "add", segment, "type", "bridge", "stp_state", "0"])
        _run([IP, "-n", VMNET_NETNS, "link", "set", segment, "type", "bridge", "forward_delay", "0"])
        _run([IP, "-n", VMNET_NETNS, "link", "set", segment, "up"])


def prune_segments() -> None:
    """Remove segment bridges no VM uses any more, and the namespace once it has none. A bridge
    is in use when a VM of this checkout names it or when any port is attached to it: the
    namespace is shared by every checkout on the machine, each with its own state directory."""
    if not _netns_exists(VMNET_NETNS):
        return
    wanted = {nic["bridge"] for st in all_states() for nic in st.get("nics", []) if nic.get("segment")}
    proc = _run([IP, "-n", VMNET_NETNS, "-d", "-j", "link", "show"], check=False)
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError:
        return
    idle = idle_bridges(links, wanted)
    for bridge in idle:
        _run([IP, "-n", VMNET_NETNS, "link", "del", bridge], check=False)
    if not set(bridge_names(links)) - set(idle):
        _run([IP, "netns", "del", VMNET_NETNS], check=False)


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


def _attach_taps(state: Mapping[str, Any]) -> None:
    """Move each NIC's tap (created by QEMU in the host namespace) to its bridge's namespace."""
    for nic in state["nics"]:
        _run([IP, "link", "set", "dev", nic["tap"], "netns", nic["netns"]])
        # the tap takes the bridge's MTU (a fabric lab's storage bridge is 9000): a smaller port
        # would drop the guest's jumbo frames, or pull the bridge's own MTU down
        mtu = bridge_mtu(_run([IP, "-n", nic["netns"], "-j", "link", "show", "dev", nic["bridge"]]).stdout)
        _run([IP, "-n", nic["netns"], "link", "set", "dev", nic["tap"], "mtu", str(mtu)])
        _run([IP, "-n", nic["netns"], "link", "set", "dev", nic["tap"], "master", nic["bridge"], "up"])


def bridge_mtu(link_json: str) -> int:
    """The MTU in ``ip -j link show dev BRIDGE`` output (1500 when it does not say)."""
    try:
        links = json.loads(link_json or "[]")
    except ValueError as exc:
        raise VmError(f"cannot read ip -j link output: {exc}") from exc
    return int(links[0].get("mtu", 1500)) if links else 1500


def _check_nic_targets(state: Mapping[str, Any]) -> None:
    for nic in state["nics"]:
        if nic["segment"]:
            ensure_segment(nic["segment"])
        elif not _netns_exists(nic["netns"]) or not _link_exists(nic["netns"], nic["bridge"]):
            raise VmError(f"{state['name']}: no bridge {nic['bridge']} in namespace {nic['netns']}")


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


def serial_tail(state: Mapping[str, Any], lines: int = 30) -> str:
    """The last lines of the VM's serial console log (for error messages)."""
    try:
        text = Path(state["serial_log"]).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no serial log)"
    return "\n".join(text.splitlines()[-lines:])


def _spec_summary(state: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("hostname", "memory_mib", "cpus", "kernel_args")
    summary = {k: state[k] for k in keys}
    for key, default in (("boot", "kernel"), ("base_image", None), ("root_size", None), ("ssh_user", "root")):
        summary[key] = state.get(key, default)
    summary["disks"] = [
        {k: d[k] for k in ("name", "path", "size", "format", "shared")} for d in state["disks"]
    ]
    summary["nics"] = [
        {k: n[k] for k in ("segment", "netns", "bridge", "addresses", "mac")} for n in state["nics"]
    ]
    return summary


def create(spec: VmSpec, *, wait: bool = True, timeout: float = DEFAULT_BOOT_TIMEOUT) -> dict[str, Any]:
    """Create and start VM ``spec.name`` and return its state plus ``action`` (``created``,
    ``started`` or ``existing``). Idempotent: an existing VM with the same spec is started if
    stopped; one with a different spec is an error."""
    with _locked():
        existing = None
        action = "existing"
        with contextlib.suppress(VmError):
            existing = load_state(spec.name)
        if existing is None:
            action = "created"
            state_dir = VMS_DIR / spec.name
            if state_dir.exists():
                shutil.rmtree(state_dir)
            image = read_image(IMAGE_DIR) if spec.boot == "kernel" else {}
            if not SSH_KEY.is_file():
                raise VmError(f"no lab SSH key {SSH_KEY}: run {BUILD_SCRIPT}")
            taken = {int(st.get("ssh_port", 0)) for st in all_states()}
            state = state_dict(
                spec, state_dir=state_dir, image=image, ssh_port=free_port(taken), ssh_key=SSH_KEY
            )
            state_dir.mkdir(parents=True)
            try:
                _run(root_disk_command(state))
                for disk in state["disks"]:
                    if disk["owned"]:
                        _run([QEMU_IMG, "create", "-q", "-f", disk["format"], disk["path"], disk["size"]])
                    elif not Path(disk["path"]).exists():
                        raise VmError(f"{spec.name}: disk {disk['name']}: no such file {disk['path']}")
                save_state(state)
                _start_locked(state)
            except BaseException:
                _destroy_locked(spec.name)
                raise
        else:
            wanted = _spec_summary(
                state_dict(spec, state_dir=VMS_DIR / spec.name, image={}, ssh_port=0, ssh_key=SSH_KEY)
            )
            if _spec_summary(existing) != wanted:
                raise VmError(f"VM {spec.name} exists with a different spec: destroy it first")
            state = existing
            if qemu_pid(state) is None:
                action = "started"
                _start_locked(state)
    if wait and state.get("boot", "kernel") != "network":
        wait_ssh(state, timeout=timeout)
    return {**state, "action": action}


def image_format(path: str) -> str:
    """The format of a disk image as ``qemu-img info`` reads it (``qcow2``, ``raw``...)."""
    if not Path(path).is_file():
        raise VmError(f"no such disk image {path}")
    info = json.loads(_run([QEMU_IMG, "info", "--output=json", path]).stdout)
    return str(info["format"])


def root_disk_command(state: Mapping[str, Any]) -> list[str]:
    """``qemu-img create`` of the root disk: an overlay on the lab image (``kernel``) or on the
    image to boot (``disk``), or a blank disk for the installer (``network``)."""
    boot = state.get("boot", "kernel")
    base = [QEMU_IMG, "create", "-q", "-f", "qcow2"]
    if boot == "network":
        return [*base, state["overlay"], str(state["root_size"])]
    backing = state["image"]["disk"] if boot == "kernel" else state["base_image"]
    fmt = "qcow2" if boot == "kernel" else image_format(backing)
    return [*base, "-b", backing, "-F", fmt, state["overlay"]]


def _start_locked(state: dict[str, Any]) -> None:
    _check_nic_targets(state)
    Path(state["pidfile"]).unlink(missing_ok=True)
    argv = qemu_argv(state)
    state["qemu_argv"] = argv
    state["started_at"] = time.time()
    save_state(state)
    proc = _run(argv, check=False, timeout=60)
    if proc.returncode != 0:
        raise VmError(f"{state['name']}: QEMU failed to start (rc={proc.returncode}): {proc.stderr.strip()}")
    pid = qemu_pid(state)
    if pid is None:
        raise VmError(f"{state['name']}: QEMU exited right after starting\n{serial_tail(state)}")
    try:
        _attach_taps(state)
    except VmError:
        kill_pid(pid)
        raise
    state["pid"] = pid
    save_state(state)


def start(name: str, *, wait: bool = True, timeout: float = DEFAULT_BOOT_TIMEOUT) -> dict[str, Any]:
    """Boot an existing, stopped VM again (its overlay keeps what the guest wrote)."""
    with _locked():
        state = load_state(name)
        if qemu_pid(state) is None:
            _start_locked(state)
    if wait and state.get("boot", "kernel") != "network":
        wait_ssh(state, timeout=timeout)
    return state


def ssh_banner(port: int, timeout: float = 2.0) -> bool:
    """True if something on 127.0.0.1:``port`` greets like an SSH server. (QEMU's user-mode
    forward accepts TCP connections before the guest listens, so a connect proves nothing.)"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(state: Mapping[str, Any], *, timeout: float = DEFAULT_BOOT_TIMEOUT) -> float:
    """Wait until root can run a command over SSH; return the seconds waited. Fails early with
    the serial log tail if QEMU dies, and after ``timeout`` seconds otherwise."""
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.5
    while True:
        if qemu_pid(state) is None:
            raise VmError(f"{state['name']}: QEMU is not running\n{serial_tail(state)}")
        if ssh_banner(int(state["ssh_port"])):
            proc = _run(ssh_argv(state, ["true"], connect_timeout=10), check=False, timeout=30)
            if proc.returncode == 0:
                return time.monotonic() - started
        if time.monotonic() > deadline:
            raise VmError(
                f"{state['name']}: no SSH on 127.0.0.1:{state['ssh_port']} after {timeout:.0f}s "
                f"(serial log {state['serial_log']}):\n{serial_tail(state)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 3.0)


def stop(name: str, *, timeout: float = 30.0) -> None:
    """Power the guest off over SSH; kill QEMU if it has not exited after ``timeout`` seconds."""
    state = load_state(name)
    pid = qemu_pid(state)
    if pid is None:
        return
    # The connection may drop while the guest goes down: the exit code says nothing.
    _run(ssh_argv(state, ["systemctl", "poweroff", "--no-block"], connect_timeout=5), check=False, timeout=20)
    if not _wait_exit(pid, timeout):
        kill_pid(pid)
    state.pop("pid", None)
    save_state(state)


def _destroy_locked(name: str) -> bool:
    state_dir = VMS_DIR / validate_name(name)
    if not state_dir.exists():
        return False
    # A damaged vm.json must not stop the cleanup: stray QEMUs are found by path below.
    with contextlib.suppress(VmError, ValueError, KeyError, OSError):
        pid = qemu_pid(load_state(name))
        if pid is not None:
            kill_pid(pid)
    for pid in stray_qemu_pids(state_dir):
        kill_pid(pid)
    shutil.rmtree(state_dir, ignore_errors=True)
    prune_segments()
    return True


def destroy(name: str) -> bool:
    """Kill the VM (no graceful shutdown: its overlay is thrown away) and remove its state
    directory. Idempotent; returns whether there was anything to destroy."""
    with _locked():
        return _destroy_locked(name)


def destroy_all(prefix: str = "") -> list[str]:
    """Destroy every VM whose name starts with ``prefix`` (all of them by default), kill QEMU
    processes of lost state directories, and remove the segment namespace once no VM is left.
    The safety net after crashed test runs; with a prefix it spares other runs' VMs."""
    with _locked():
        names = [p.name for p in sorted(VMS_DIR.glob(f"{prefix}*")) if p.is_dir() and NAME_RE.match(p.name)]
        for name in names:
            _destroy_locked(name)
        strays = stray_qemu_pids(VMS_DIR) if not prefix else []
        for name in names:
            strays += stray_qemu_pids(VMS_DIR / name)
        for pid in sorted(set(strays)):
            kill_pid(pid)
        prune_segments()
        if not prefix and _netns_exists(VMNET_NETNS):
            _run([IP, "netns", "del", VMNET_NETNS], check=False)
    return names


def qmp(state: Mapping[str, Any], command: str, arguments: Mapping[str, Any] | None = None) -> Any:
    """Run one QMP command on the VM's monitor socket (e.g. ``set_link`` to cut a NIC) and
    return its ``return`` value."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(state["qmp_socket"])
        reader = sock.makefile("r", encoding="utf-8")

        def call(cmd: str, args: Mapping[str, Any] | None = None) -> Any:
            message: dict[str, Any] = {"execute": cmd}
            if args:
                message["arguments"] = dict(args)
            sock.sendall(json.dumps(message).encode() + b"\n")
            while True:
                reply = json.loads(reader.readline())
                if "return" in reply:
                    return reply["return"]
                if "error" in reply:
                    raise VmError(f"{state['name']}: QMP {cmd}: {reply['error'].get('desc')}")

        json.loads(reader.readline())  # greeting
        call("qmp_capabilities")
        return call(command, arguments)


def status(state: Mapping[str, Any]) -> str:
    """``running`` or ``stopped``."""
    return "running" if qemu_pid(state) is not None else "stopped"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _spec_from_args(args: argparse.Namespace) -> VmSpec:
    if args.spec:
        text = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text(encoding="utf-8")
        data = dict(json.loads(text))
        if args.name:
            data["name"] = args.name
        return spec_from_mapping(data)
    if not args.name:
        raise VmError("create needs NAME or --spec")
    data = {
        "name": args.name,
        "memory": args.memory,
        "cpus": args.cpus,
        "hostname": args.hostname,
        "disks": args.disk,
        "nics": args.nic,
        "kernel_args": args.kernel_args,
        "boot": args.boot,
        "image": args.image,
        "root_size": args.root_size,
        "ssh_user": args.ssh_user,
    }
    return spec_from_mapping(data)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _cmd_create(args: argparse.Namespace) -> int:
    started = time.monotonic()
    state = create(_spec_from_args(args), wait=not args.no_wait, timeout=args.timeout)
    if args.json:
        _print_json(state)
    else:
        waited = ""
        if not args.no_wait and state.get("boot") != "network":
            waited = f", SSH after {time.monotonic() - started:.1f}s"
        print(f"{state['name']}: ssh -p {state['ssh_port']} root@127.0.0.1{waited}")
    return 0


def _cmd_wait(args: argparse.Namespace) -> int:
    for name in args.names:
        waited = wait_ssh(load_state(name), timeout=args.timeout)
        print(f"{name}: SSH up ({waited:.1f}s waited)")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    state = start(args.name, wait=not args.no_wait, timeout=args.timeout)
    print(f"{state['name']}: started (ssh port {state['ssh_port']})")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    stop(args.name, timeout=args.timeout)
    print(f"{args.name}: stopped")
    return 0


def _cmd_destroy(args: argparse.Namespace) -> int:
    for name in args.names:
        print(f"{name}: {'destroyed' if destroy(name) else 'absent'}")
    return 0


def _cmd_destroy_all(args: argparse.Namespace) -> int:
    names = destroy_all(args.prefix)
    print(f"destroyed {len(names)} VM(s){': ' + ', '.join(names) if names else ''}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    states = all_states()
    if args.json:
        _print_json([{**st, "status": status(st)} for st in states])
        return 0
    print(f"{'NAME':<24} {'STATUS':<8} {'PORT':>6} {'MEM':>6} {'NICS':>4} {'DISKS':>5}")
    for st in states:
        print(
            f"{st['name']:<24} {status(st):<8} {st['ssh_port']:>6} {st['memory_mib']:>6} "
            f"{len(st['nics']):>4} {len(st['disks']):>5}"
        )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    state = load_state(args.name)
    _print_json({**state, "status": status(state)})
    return 0


def _cmd_ssh(args: argparse.Namespace) -> int:
    argv = ssh_argv(load_state(args.name), args.command)
    os.execvp(argv[0], argv)
    return 127  # pragma: no cover - execvp does not return


def _cmd_instance_config(args: argparse.Namespace) -> int:
    _print_json([instance_config(load_state(name)) for name in args.names])
    return 0


def _cmd_qmp(args: argparse.Namespace) -> int:
    arguments = json.loads(args.arguments) if args.arguments else None
    _print_json(qmp(load_state(args.name), args.qmp_command, arguments))
    return 0


def _add_create_parser(sub: Any) -> None:
    p = sub.add_parser("create", help="create and boot a VM (idempotent)")
    p.add_argument("name", nargs="?")
    p.add_argument("--spec", help="JSON spec file (a molecule platform), '-' for stdin")
    p.add_argument("--memory", default=DEFAULT_MEMORY_MIB, help="MiB or e.g. 1G (default 768)")
    p.add_argument("--cpus", type=int, default=1)
    p.add_argument("--hostname")
    p.add_argument("--disk", action="append", default=[], help="[NAME:]SIZE, repeatable")
    p.add_argument(
        "--nic",
        action="append",
        default=[],
        help="segment=S[,address=CIDR] or netns=NS,bridge=BR; repeatable",
    )
    p.add_argument("--kernel-args", default="", help="extra guest kernel arguments")
    p.add_argument("--boot", choices=BOOT_MODES, default="kernel", help="kernel (default), disk or network")
    p.add_argument("--image", help="with --boot disk: the disk image to boot (overlaid, never written)")
    p.add_argument(
        "--root-size", default=DEFAULT_NETBOOT_ROOT_SIZE, help="with --boot network: blank root size"
    )
    p.add_argument("--ssh-user", default="root", help="user in molecule's instance config")
    p.add_argument("--no-wait", action="store_true", help="do not wait for SSH")
    p.add_argument("--timeout", type=float, default=DEFAULT_BOOT_TIMEOUT, help="SSH wait, seconds")
    p.add_argument("--json", action="store_true", help="print the VM's state JSON")
    p.set_defaults(func=_cmd_create)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m lab.vm`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.vm", description=__doc__.split("\n\n", maxsplit=1)[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_create_parser(sub)

    p = sub.add_parser("wait", help="wait until VMs answer SSH")
    p.add_argument("names", nargs="+")
    p.add_argument("--timeout", type=float, default=DEFAULT_BOOT_TIMEOUT)
    p.set_defaults(func=_cmd_wait)

    p = sub.add_parser("start", help="boot a stopped VM")
    p.add_argument("name")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=DEFAULT_BOOT_TIMEOUT)
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("stop", help="power a VM off (SSH poweroff, then kill)")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_cmd_stop)

    p = sub.add_parser("destroy", help="kill VMs and remove their files (idempotent)")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=_cmd_destroy)

    p = sub.add_parser("destroy-all", help="destroy every VM (or those named PREFIX*) and stray QEMU of ours")
    p.add_argument("--prefix", default="", help="only VMs whose names start with this")
    p.set_defaults(func=_cmd_destroy_all)

    p = sub.add_parser("list", help="list VMs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="print a VM's state JSON")
    p.add_argument("name")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("ssh", help="SSH into a VM as root (or run COMMAND)")
    p.add_argument("name")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_ssh)

    p = sub.add_parser("instance-config", help="molecule instance_config entries (JSON list)")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=_cmd_instance_config)

    p = sub.add_parser("qmp", help='run a QMP command, e.g. set_link \'{"name":"net1","up":false}\'')
    p.add_argument("name")
    p.add_argument("qmp_command")
    p.add_argument("arguments", nargs="?")
    p.set_defaults(func=_cmd_qmp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; errors print one message and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VmError as exc:
        print(f"lab.vm: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
