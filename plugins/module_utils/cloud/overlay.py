# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""qcow2 overlays over OS-only templates (``qemu-img create -b BASE -F FMT``), never full copies.

Command lines are built by pure functions; a ``Runner`` (``argv -> (rc, stdout, stderr)``) runs
them, so modules pass ``module.run_command`` and tests and benchmarks pass ``subprocess_runner``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

from .errors import CommandError, Conflict, NotFound

Runner = Callable[[list[str]], tuple[int, str, str]]
GIB = 1024**3


def subprocess_runner(argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` without a shell; returns (rc, stdout, stderr)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def run_checked(run: Runner, argv: list[str], hint: str) -> str:
    """Run ``argv``; raise CommandError (with the command and its stderr) unless it exits 0."""
    rc, out, err = run(argv)
    if rc != 0:
        raise CommandError(
            f"Command failed (rc={rc}): {' '.join(argv)}: {(err or out).strip()}", hint, rc=rc, cmd=argv
        )
    return out


def create_command(
    base: str, overlay: str, base_format: str = "qcow2", size_bytes: int | None = None
) -> list[str]:
    """``qemu-img create`` of a qcow2 overlay backed by ``base`` (``-F`` is mandatory)."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", base_format, overlay]
    if size_bytes:
        argv.append(str(size_bytes))
    return argv


def info_command(path: str) -> list[str]:
    """``qemu-img info`` as JSON; ``-U`` so an image in use by a running guest can be read."""
    return ["qemu-img", "info", "--output=json", "-U", path]


def convert_command(
    src: str, dest: str, backing: str | None = None, backing_format: str = "qcow2", src_format: str = "qcow2"
) -> list[str]:
    """``qemu-img convert`` to qcow2; with ``backing`` only the clusters that differ are written."""
    argv = ["qemu-img", "convert", "-q", "-f", src_format, "-O", "qcow2"]
    if backing:
        argv += ["-B", backing, "-F", backing_format]
    return [*argv, src, dest]


def rebase_command(path: str, backing: str, backing_format: str = "qcow2") -> list[str]:
    """Point ``path`` at ``backing`` without copying data (``-u``: contents are known identical)."""
    return ["qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", backing_format, path]


def image_info(path: str, run: Runner) -> dict[str, Any]:
    """Format, virtual size, allocated size and backing file of an image."""
    if not os.path.exists(path):
        raise NotFound(f"No image file at {path}.", "Check the path, or register the image again.")
    out = run_checked(run, info_command(path), "Is qemu-utils installed and the file a disk image?")
    data = json.loads(out)
    return {
        "format": data.get("format"),
        "virtual_size": int(data.get("virtual-size") or 0),
        "actual_size": int(data.get("actual-size") or 0),
        "backing_file": data.get("full-backing-filename") or data.get("backing-filename"),
        "backing_format": data.get("backing-filename-format"),
        "snapshots": sorted(s.get("name", "") for s in data.get("snapshots", []) or []),
    }


def create_overlay(
    base: str, overlay: str, run: Runner, base_format: str = "qcow2", size_bytes: int | None = None
) -> dict[str, Any]:
    """Create ``overlay`` on ``base`` (refusing to overwrite) and return its info."""
    if not os.path.exists(base):
        raise NotFound(
            f"Template file {base} does not exist.",
            "Register the template again (compleat.cloud.image) or mount the secondary storage.",
        )
    if os.path.exists(overlay):
        raise Conflict(f"{overlay} already exists.", "Remove the stale file or choose another instance name.")
    os.makedirs(os.path.dirname(os.path.abspath(overlay)), exist_ok=True)
    run_checked(
        run,
        create_command(base, overlay, base_format, size_bytes),
        "Check free space and permissions of the storage directory.",
    )
    return image_info(overlay, run)


def overlay_size(template_virtual_size: int, disk_gb: int) -> int | None:
    """The overlay's virtual size: the offering's disk when larger than the template, else the template's."""
    wanted = disk_gb * GIB
    return wanted if wanted > template_virtual_size else None


def wanted_size(template_virtual_size: int, disk_gb: int) -> int:
    """Virtual size the store asks of a root overlay: the offering's disk, or the template's if larger."""
    return overlay_size(template_virtual_size, disk_gb) or template_virtual_size


def needed_growth(current: int, wanted: int) -> int | None:
    """The size to grow a disk to: ``wanted`` when larger than ``current``; None when it is not.

    A disk is never shrunk: a ``wanted`` below ``current`` is not growth (refusing it is the
    caller's decision, see ``refuse_shrink``).
    """
    return wanted if wanted > current else None


def human_size(size: int) -> str:
    """Bytes as GiB (or MiB below 1 GiB) for messages: ``1 GiB``, ``1.5 GiB``, ``64 MiB``."""
    if size >= GIB or size == 0:
        return f"{size / GIB:.2f}".rstrip("0").rstrip(".") + " GiB"
    return f"{size / 1024**2:.2f}".rstrip("0").rstrip(".") + " MiB"


def refuse_shrink(what: str, current: int, wanted: int, hint: str) -> None:
    """Raise Conflict (naming ``what`` and both sizes) when ``wanted`` is below ``current``."""
    if wanted < current:
        raise Conflict(
            f"{what} is {human_size(current)}; {human_size(wanted)} was asked: shrinking a disk would lose "
            "data and is refused.",
            hint,
            current_bytes=current,
            wanted_bytes=wanted,
        )


def resize_command(path: str, size_bytes: int, fmt: str = "qcow2") -> list[str]:
    """``qemu-img resize`` of an image that no running guest uses (grows the virtual size only)."""
    return ["qemu-img", "resize", "-q", "-f", fmt, path, str(size_bytes)]


def full_copy_command(src: str, dest: str) -> list[str]:
    """What overlays replace: a full, non-sparse copy of the template (benchmarks only)."""
    return ["cp", "--sparse=never", src, dest]
