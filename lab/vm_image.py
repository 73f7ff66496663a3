"""Disk images of VMs: the cached base image, the root disk (an overlay, or blank for a network
boot) and the extra disks a VM owns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .vm_spec import VmError
from .vm_store import CACHE, ROOT, run

IMAGE_DIR = Path(os.environ.get("COMPLEAT_VM_IMAGE_DIR", str(CACHE / "images" / "debian12-vm")))
SSH_KEY = Path(os.environ.get("COMPLEAT_VM_SSH_KEY", str(CACHE / "images" / "lab_ssh_key")))
BUILD_SCRIPT = ROOT / "scripts" / "images" / "build-vm-image.sh"
QEMU_IMG = "qemu-img"


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


def image_format(path: str) -> str:
    """The format of a disk image as ``qemu-img info`` reads it (``qcow2``, ``raw``...)."""
    if not Path(path).is_file():
        raise VmError(f"no such disk image {path}")
    info = json.loads(run([QEMU_IMG, "info", "--output=json", path]).stdout)
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


def create_disks(state: Mapping[str, Any]) -> None:
    """Create the VM's root disk and the blank extra disks it owns; :class:`VmError` when a
    disk it attaches (``path``) does not exist."""
    run(root_disk_command(state))
    for disk in state["disks"]:
        if disk["owned"]:
            run([QEMU_IMG, "create", "-q", "-f", disk["format"], disk["path"], disk["size"]])
        elif not Path(disk["path"]).exists():
            raise VmError(f"{state['name']}: disk {disk['name']}: no such file {disk['path']}")
