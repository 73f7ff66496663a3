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

This module is the CLI and the one import for other code (``from lab import vm``); the work is
done by :mod:`lab.vm_spec` (specs), :mod:`lab.vm_build` (``vm.json`` and command lines, pure),
:mod:`lab.vm_store` (state directories, lock, QEMU PIDs), :mod:`lab.vm_image` (base image and
disks), :mod:`lab.vm_net` (SSH port, segments, taps), :mod:`lab.vm_ops` (create, start, wait,
stop, destroy, QMP) and :mod:`lab.proc` (the process killer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .proc import kill_pids
from .vm_build import (
    GUEST_ADDRESS,
    QEMU,
    STATE_SCHEMA,
    USER_NET,
    instance_config,
    kernel_cmdline,
    qemu_argv,
    spec_summary,
    ssh_argv,
    state_dict,
)
from .vm_image import (
    BUILD_SCRIPT,
    IMAGE_DIR,
    QEMU_IMG,
    SSH_KEY,
    create_disks,
    image_format,
    read_image,
    root_disk_command,
)
from .vm_net import (
    IP,
    bridge_mtu,
    bridge_names,
    ensure_segment,
    free_port,
    idle_bridges,
    prune_segments,
)
from .vm_ops import (
    DEFAULT_BOOT_TIMEOUT,
    create,
    destroy,
    destroy_all,
    qmp,
    ssh_banner,
    start,
    status,
    stop,
    wait_ssh,
)
from .vm_spec import (
    BOOT_MODES,
    DEFAULT_MEMORY_MIB,
    DEFAULT_NETBOOT_ROOT_SIZE,
    DISK_FORMATS,
    HOSTNAME_RE,
    IFNAME_RE,
    MAC_RE,
    MEMORY_RE,
    NAME_RE,
    SIZE_RE,
    USER_RE,
    VMNET_NETNS,
    DiskSpec,
    NicSpec,
    VmError,
    VmSpec,
    check_boot,
    hostname_for,
    mac_for,
    machine_id_for,
    parse_disk,
    parse_memory,
    parse_nic,
    spec_from_mapping,
    tap_name,
    validate_name,
)
from .vm_store import (
    CACHE,
    ROOT,
    VMS_DIR,
    all_states,
    load_state,
    qemu_pid,
    save_state,
    serial_tail,
    state_path,
    stray_qemu_pids,
)

__all__ = [
    "BOOT_MODES",
    "BUILD_SCRIPT",
    "CACHE",
    "DEFAULT_BOOT_TIMEOUT",
    "DEFAULT_MEMORY_MIB",
    "DEFAULT_NETBOOT_ROOT_SIZE",
    "DISK_FORMATS",
    "GUEST_ADDRESS",
    "HOSTNAME_RE",
    "IFNAME_RE",
    "IMAGE_DIR",
    "IP",
    "MAC_RE",
    "MEMORY_RE",
    "NAME_RE",
    "QEMU",
    "QEMU_IMG",
    "ROOT",
    "SIZE_RE",
    "SSH_KEY",
    "STATE_SCHEMA",
    "USER_NET",
    "USER_RE",
    "VMNET_NETNS",
    "VMS_DIR",
    "DiskSpec",
    "NicSpec",
    "VmError",
    "VmSpec",
    "all_states",
    "bridge_mtu",
    "bridge_names",
    "build_parser",
    "check_boot",
    "create",
    "create_disks",
    "destroy",
    "destroy_all",
    "ensure_segment",
    "free_port",
    "hostname_for",
    "idle_bridges",
    "image_format",
    "instance_config",
    "kernel_cmdline",
    "kill_pids",
    "load_state",
    "mac_for",
    "machine_id_for",
    "main",
    "parse_disk",
    "parse_memory",
    "parse_nic",
    "prune_segments",
    "qemu_argv",
    "qemu_pid",
    "qmp",
    "read_image",
    "root_disk_command",
    "save_state",
    "serial_tail",
    "spec_from_mapping",
    "spec_summary",
    "ssh_argv",
    "ssh_banner",
    "start",
    "state_dict",
    "state_path",
    "status",
    "stop",
    "stray_qemu_pids",
    "tap_name",
    "validate_name",
    "wait_ssh",
]


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


Handler = Callable[[argparse.Namespace], int]


def _subcommand(sub: Any, name: str, help_text: str, func: Handler, *positionals: str) -> Any:
    """Add subcommand ``name`` run by ``func``; a positional ``names`` takes one or more values."""
    parser = sub.add_parser(name, help=help_text)
    for positional in positionals:
        parser.add_argument(positional, nargs="+" if positional == "names" else None)
    parser.set_defaults(func=func)
    return parser


def _add_create_parser(sub: Any) -> None:
    p = _subcommand(sub, "create", "create and boot a VM (idempotent)", _cmd_create)
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


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m lab.vm`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.vm", description=__doc__.split("\n\n", maxsplit=1)[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_create_parser(sub)

    p = _subcommand(sub, "wait", "wait until VMs answer SSH", _cmd_wait, "names")
    p.add_argument("--timeout", type=float, default=DEFAULT_BOOT_TIMEOUT)

    p = _subcommand(sub, "start", "boot a stopped VM", _cmd_start, "name")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=DEFAULT_BOOT_TIMEOUT)

    p = _subcommand(sub, "stop", "power a VM off (SSH poweroff, then kill)", _cmd_stop, "name")
    p.add_argument("--timeout", type=float, default=30.0)

    _subcommand(sub, "destroy", "kill VMs and remove their files (idempotent)", _cmd_destroy, "names")

    p = _subcommand(
        sub,
        "destroy-all",
        "destroy every VM (or those named PREFIX*) and stray QEMU of ours",
        _cmd_destroy_all,
    )
    p.add_argument("--prefix", default="", help="only VMs whose names start with this")

    p = _subcommand(sub, "list", "list VMs", _cmd_list)
    p.add_argument("--json", action="store_true")

    _subcommand(sub, "show", "print a VM's state JSON", _cmd_show, "name")

    p = _subcommand(sub, "ssh", "SSH into a VM as root (or run COMMAND)", _cmd_ssh, "name")
    p.add_argument("command", nargs=argparse.REMAINDER)

    _subcommand(
        sub, "instance-config", "molecule instance_config entries (JSON list)", _cmd_instance_config, "names"
    )

    p = _subcommand(
        sub,
        "qmp",
        'run a QMP command, e.g. set_link \'{"name":"net1","up":false}\'',
        _cmd_qmp,
        "name",
        "qmp_command",
    )
    p.add_argument("arguments", nargs="?")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; errors (and a process that outlives SIGKILL) print one message and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (VmError, TimeoutError) as exc:
        print(f"lab.vm: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
