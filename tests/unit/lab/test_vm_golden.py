"""What lab.vm builds for every VM the project boots, compared with a recorded golden file.

``golden/vm_builds.json`` was recorded from lab/vm.py before it was split into modules: for each
VM of ``inventories/lab/hosts.yml`` (group ``lab_vms``), of the molecule scenarios on the VM
platform and of molecule/pxe's network-booted node, the platform mapping and what was built from
it (state JSON, QEMU and ssh command lines, kernel command line, root disk command, molecule's
instance config, the spec summary), plus the shape of the ``python -m lab.vm`` argument parser.
The recorded states of kernel-boot VMs name the base image ``image`` of the file. Nothing is
booted and nothing on the host is touched.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab import vm  # noqa: E402

GOLDEN_FILE = Path(__file__).resolve().parent / "golden" / "vm_builds.json"
GOLDEN = json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))
IMAGE = GOLDEN["image"]  # the base image the recorded kernel-boot VMs were built on
VMS = {entry["platform"]["name"]: entry for entry in GOLDEN["vms"]}


def build(platform: dict[str, Any], port: int) -> dict[str, Any]:
    """Everything lab.vm builds from ``platform`` without touching the host."""
    spec = vm.spec_from_mapping(platform)
    state = vm.state_dict(
        spec,
        state_dir=Path("/cache/vms") / spec.name,
        image=IMAGE if spec.boot == "kernel" else {},
        ssh_port=port,
        ssh_key=Path("/cache/images/lab_ssh_key"),
    )
    state.pop("created_at")
    built = {
        "platform": platform,
        "port": port,
        "state": state,
        "qemu_argv": vm.qemu_argv(state),
        "ssh_argv": vm.ssh_argv(state, ["uname", "-r"], connect_timeout=10),
        "instance_config": vm.instance_config(state),
        "spec_summary": vm.spec_summary(state),
    }
    if spec.boot == "kernel":
        built["kernel_cmdline"] = vm.kernel_cmdline(state)
    if spec.boot != "disk":  # a disk boot asks qemu-img for the image's format
        built["root_disk_command"] = vm.root_disk_command(state)
    return built


def parser_shape(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Every subcommand's arguments (option strings, dest, nargs, default, type, choices, help)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = {
        name: [
            {
                "options": list(action.option_strings),
                "dest": action.dest,
                "nargs": action.nargs,
                "default": action.default,
                "type": getattr(action.type, "__name__", None),
                "choices": list(action.choices) if action.choices else None,
                "help": action.help,
                "func": command.get_default("func").__name__,
            }
            for action in command._actions
        ]
        for name, command in sub.choices.items()
    }
    helps = {action.dest: action.help for action in sub._choices_actions}
    return {"prog": parser.prog, "description": parser.description, "commands": commands, "help": helps}


def test_golden_covers_the_lab_the_scenarios_and_every_boot_mode() -> None:
    assert {"lab-r001-h02", "lab-r002-h02", "lab-r003-h02", "vm-smoke", "tmpl-vm", "pxe-node"} <= set(VMS)
    assert {entry["state"]["boot"] for entry in GOLDEN["vms"]} == set(vm.BOOT_MODES)


@pytest.mark.parametrize("name", sorted(VMS))
def test_builds_match_the_golden_file(name: str) -> None:
    expected = VMS[name]
    assert build(expected["platform"], expected["port"]) == expected


@pytest.mark.parametrize("name", ["lab-r002-h02", "vm-smoke", "pxe-node"])
def test_golden_argv_has_the_nics_and_disks_of_the_platform(name: str) -> None:
    # The golden file itself is checked against the platform, so a wrong recording fails too.
    entry = VMS[name]
    argv = entry["qemu_argv"]
    netdevs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-netdev"]
    drives = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-drive"]
    taps = [n for n in netdevs if n.startswith("tap,")]
    assert len(taps) == len(entry["platform"].get("nics", []))
    assert all(f"ifname={vm.tap_name(name, i)}," in tap for i, tap in enumerate(taps, start=1))
    assert len(drives) == 1 + len(entry["platform"].get("disks", []))
    assert drives[0].startswith(f"file=/cache/vms/{name}/root.qcow2,")
    assert any(n.startswith("user,") for n in netdevs) == (entry["state"]["boot"] != "network")


def test_cli_parser_matches_the_golden_file() -> None:
    shape = json.loads(json.dumps(parser_shape(vm.build_parser())))
    assert shape == GOLDEN["cli"]
