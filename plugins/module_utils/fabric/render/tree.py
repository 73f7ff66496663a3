# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a plan into an output directory, atomically.

``render_all(plan, out_dir)`` writes every file into a fresh temporary directory beside
``out_dir`` first; only when all of them rendered does it move them into place (``os.replace``,
atomic per file), skipping files whose content is unchanged and removing files an earlier render
produced that the plan no longer has (tracked in ``MANIFEST``).  A failure while rendering leaves
``out_dir`` untouched.  Validation happens before a plan exists, so invalid input never writes.

Outputs: ``topology.json``, ``plan.csv``, ``fabric.md``, ``racks/<rack>.md``, ``fabric.svg`` and
``<device>/frr.conf`` for every spine, ToR and (with BGP-to-host) host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FabricError
from ..model import Plan
from .csv import render_csv
from .docs import rack_page_name, render_docs
from .frr import render_frr
from .svg import render_svg
from .topology import render_topology

MANIFEST = ".compleat-fabric-files"


@dataclass(slots=True)
class RenderResult:
    """What a render did (or, in check mode, would do) to the output directory."""

    out_dir: str
    files: list[str] = field(default_factory=list)  # every file of the render, relative, sorted
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when any file was (or would be) created, modified or removed."""
        return bool(self.created or self.modified or self.removed)

    @property
    def changed_files(self) -> list[str]:
        """Created, modified and removed files, sorted."""
        return sorted(self.created + self.modified + self.removed)


def iter_outputs(
    plan: Plan, *, frr: bool = True, bgp_password: str | None = None
) -> Iterator[tuple[str, Callable[[], str]]]:
    """(relative path, renderer) for every output file, in a fixed order.

    ``bgp_password`` (the secret of ``bgp.passwords``) reaches the FRR renderer only.
    """
    yield "topology.json", lambda: render_topology(plan)
    yield "plan.csv", lambda: render_csv(plan)
    yield "fabric.svg", lambda: render_svg(plan)
    docs = None

    def _docs() -> dict[str, str]:
        nonlocal docs
        if docs is None:
            docs = render_docs(plan)
        return docs

    yield "fabric.md", lambda: _docs()["fabric.md"]
    for rack in plan.fabric.racks:
        path = rack_page_name(rack.id)
        yield path, lambda path=path: _docs()[path]
    if frr:
        for device in plan.routers():
            yield (
                f"{device.name}/frr.conf",
                lambda name=device.name: render_frr(plan, name, bgp_password=bgp_password),
            )


def render_tree(
    plan: Plan, root: str | os.PathLike[str], *, frr: bool = True, bgp_password: str | None = None
) -> list[str]:
    """Write every output under the (existing, empty) directory ``root``; return relative paths."""
    base = Path(root)
    written = []
    made: set[Path] = set()
    for rel, produce in iter_outputs(plan, frr=frr, bgp_password=bgp_password):
        target = base / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_text(produce(), encoding="utf-8")
        written.append(rel)
    (base / MANIFEST).write_text("".join(f"{rel}\n" for rel in sorted(written)), encoding="utf-8")
    return sorted(written)


def output_problems(out_dir: str | os.PathLike[str], *, label: str = "dest") -> list[FabricError]:
    """Why ``out_dir`` cannot receive a render (checked before any work; empty when it can).

    The output must be a directory or not exist yet, and the directory the render creates its
    temporary directory in (``out_dir``'s parent, or its nearest existing ancestor) must be a
    writable directory.  ``label`` is the key path of the output in the caller (``dest``, ``OUT``).
    """
    text = str(out_dir)
    try:
        out = Path(out_dir).absolute().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python < 3.13
        return [FabricError(label, text, f"cannot resolve the output path: {exc}")]
    if out.exists() and not out.is_dir():
        return [FabricError(label, text, "the output path exists and is not a directory")]
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        return [FabricError(label, text, "the output directory is not writable")]
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [FabricError(label, text, f"{ancestor} is not a directory, so the output cannot be created")]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [FabricError(label, text, f"{ancestor} is not writable, so the output cannot be written")]
    return []


def render_all(
    plan: Plan,
    out_dir: str | os.PathLike[str],
    *,
    frr: bool = True,
    check: bool = False,
    bgp_password: str | None = None,
) -> RenderResult:
    """Render ``plan`` into ``out_dir`` atomically; with ``check`` only report what would change.

    ``bgp_password`` is the secret of ``bgp.passwords`` (no_log / vault); only frr.conf gets it.
    """
    shown = Path(out_dir).absolute()
    out = shown.resolve()  # the temporary directory must be on the real target's filesystem
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{shown} exists and is not a directory")
    if check:  # touch nothing near out_dir, not even its parents
        tmp = Path(tempfile.mkdtemp(prefix="compleat-fabric-check-"))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.render-", dir=out.parent))
    try:
        files = render_tree(plan, tmp, frr=frr, bgp_password=bgp_password)
        result = _compare(tmp, out, files)
        result.out_dir = str(shown)
        if not check:
            _install(tmp, out, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _read_manifest(out: Path) -> list[str]:
    try:
        return [line for line in (out / MANIFEST).read_text(encoding="utf-8").splitlines() if line]
    except OSError:
        return []


def _compare(tmp: Path, out: Path, files: list[str]) -> RenderResult:
    """Sort every rendered file into created / modified / unchanged; list stale files."""
    result = RenderResult(str(out), files=files)
    for rel in files:
        target = out / rel
        if not target.exists():
            result.created.append(rel)
        elif target.read_bytes() != (tmp / rel).read_bytes():
            result.modified.append(rel)
    keep = set(files)
    result.removed = sorted(rel for rel in _read_manifest(out) if rel not in keep and (out / rel).exists())
    return result


def _install(tmp: Path, out: Path, result: RenderResult) -> None:
    """Move changed files into place and delete stale ones (a fresh out_dir is one rename)."""
    if not out.exists():
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, out)
        return
    for rel in result.created + result.modified:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, target)
    for rel in result.removed:
        stale = out / rel
        stale.unlink(missing_ok=True)
        _prune_empty(stale.parent, out)
    if result.changed or not (out / MANIFEST).exists():
        os.replace(tmp / MANIFEST, out / MANIFEST)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _prune_empty(directory: Path, stop: Path) -> None:
    """Remove empty directories from ``directory`` up to (not including) ``stop``."""
    while directory != stop and directory.is_relative_to(stop):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
