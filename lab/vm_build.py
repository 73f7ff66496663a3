"""What a created VM is (the ``vm.json`` document) and the command lines built from it (pure).

:func:`state_dict` turns a :class:`~lab.vm_spec.VmSpec` into the state document; QEMU's
(:func:`qemu_argv`), the guest kernel's (:func:`kernel_cmdline`) and ssh's (:func:`ssh_argv`)
command lines and molecule's instance config are read from that document only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .vm_spec import VMNET_NETNS, VmSpec, hostname_for, mac_for, machine_id_for, tap_name

QEMU = "qemu-system-x86_64"
STATE_SCHEMA = 1
# eth0's user-mode network (slirp). Not QEMU's default 10.0.2.0/24, which is rack 2's mgmt network
# of the lab fabric: a VM playing a rack-2 host would have both on one subnet. The VM image bakes
# the same addresses (scripts/images/build-vm-image.sh).
USER_NET = "192.168.253.0/24"
GUEST_ADDRESS = "192.168.253.15"


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


def spec_summary(state: Mapping[str, Any]) -> dict[str, Any]:
    """What of a state the spec decides (not ports, image paths or times): two states of the
    same spec have the same summary."""
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
