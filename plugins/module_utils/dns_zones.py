# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Zone files of a compleat.cloud zone bundle: parse, compare, check, install (module dns_zones).

The dns role renders every zone of the fabric into one text (the *bundle*): each zone starts with
a marker line ``;; compleat-zone <origin> <file name>`` followed by the zone file's text; comment
lines before the first marker are the bundle's header.  The module writes the zone files that
differ from the bundle, removes other ``db.*`` files of the directory, and keeps a copy of the
bundle there.  Every zone it writes (every zone when the bundle changed) must pass
named-checkzone first: when one fails, nothing is written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .atomic_file import write_atomic

MARKER = re.compile(r"^;; compleat-zone (\S+) (\S+)$")
SAFE_FILE = re.compile(r"^db\.[A-Za-z0-9._-]+$")
CHECKZONE_ARGS = ("-q", "-k", "fail", "-n", "fail")


class Zone(NamedTuple):
    """One zone of a bundle."""

    origin: str
    file: str
    text: str


@dataclass
class Changes:
    """What installing a bundle changes in its directory."""

    write: list[Zone] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    bundle: bool = False

    @property
    def changed(self) -> bool:
        """Whether any file is written or removed."""
        return bool(self.write or self.remove or self.bundle)


def marker(origin: str, file_name: str) -> str:
    """The line that starts a zone in a bundle."""
    return f";; compleat-zone {origin} {file_name}\n"


def split_header(text: str) -> tuple[str, str]:
    """(the lines before the first marker, the rest)."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if MARKER.match(line.rstrip("\n")):
            return "".join(lines[:index]), "".join(lines[index:])
    return text, ""


def parse_bundle(text: str) -> list[Zone]:
    """The zones of a bundle, in order; ValueError naming the problem of a malformed one."""
    header, body = split_header(text)
    if any(line.strip() and not line.startswith(";") for line in header.splitlines()):
        raise ValueError("content: data before the first zone marker (';; compleat-zone ORIGIN FILE')")
    zones: list[Zone] = []
    for chunk in re.split(r"(?m)^(?=;; compleat-zone )", body):
        if not chunk:
            continue
        first, _sep, text = chunk.partition("\n")
        match = MARKER.match(first)
        if match is None:
            raise ValueError(f"content: malformed zone marker {first!r}")
        if not SAFE_FILE.match(match.group(2)):
            raise ValueError(f"content: unsafe zone file name {match.group(2)!r} (must match db.NAME)")
        zones.append(Zone(match.group(1), match.group(2), text))
    names = [zone.file for zone in zones]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"content: zone file name {', '.join(twice)} appears twice")
    if not zones:
        raise ValueError("content: the bundle holds no zone")
    return zones


def zone_files(directory: str) -> list[str]:
    """The ``db.*`` files of ``directory`` (none when it does not exist)."""
    if not os.path.isdir(directory):
        return []
    return sorted(
        entry
        for entry in os.listdir(directory)
        if entry.startswith("db.") and os.path.isfile(os.path.join(directory, entry))
    )


def plan_changes(
    zones: Sequence[Zone], current: Mapping[str, str], bundle_now: str | None, bundle_new: str
) -> Changes:
    """Pure: the changes from ``current`` (installed db.* file -> text) to ``zones``."""
    wanted = {zone.file for zone in zones}
    return Changes(
        write=[zone for zone in zones if current.get(zone.file) != zone.text],
        remove=sorted(name for name in current if name not in wanted),
        bundle=bundle_now != bundle_new,
    )


def installed_as_bundle(zones: Sequence[Zone], current: Mapping[str, str], bundle_now: str | None) -> str:
    """Pure: the installed state written like a bundle (the 'before' of the diff).

    The header is the installed bundle's, then every zone file there is: the bundle's zones in
    its order, then the ``db.*`` files it does not have (their origin taken from the file name).
    """
    header = split_header(bundle_now)[0] if bundle_now is not None else ""
    wanted = {zone.file for zone in zones}
    parts = [header]
    parts += [marker(zone.origin, zone.file) + current[zone.file] for zone in zones if zone.file in current]
    parts += [marker(name[3:], name) + current[name] for name in sorted(current) if name not in wanted]
    return "".join(parts)


def check_zone(checkzone: str, zone: Zone, workdir: str) -> str | None:
    """None when named-checkzone accepts the zone, else '<origin>: <its message>'."""
    fd, path = tempfile.mkstemp(dir=workdir, prefix=".check-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(zone.text)
        proc = subprocess.run(
            [checkzone, *CHECKZONE_ARGS, zone.origin, path], capture_output=True, text=True, check=False
        )
    finally:
        os.unlink(path)
    if proc.returncode == 0:
        return None
    message = (proc.stdout + proc.stderr).strip().replace(path, zone.file)
    return f"{zone.origin}: {message or f'named-checkzone exited {proc.returncode}'}"


def check_zones(checkzone: str, zones: Sequence[Zone]) -> list[str]:
    """named-checkzone's complaints about ``zones`` (empty when it accepts all)."""
    workdir = tempfile.mkdtemp(prefix="compleat-dns-")
    try:
        return [error for zone in zones if (error := check_zone(checkzone, zone, workdir))]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def apply(
    directory: str, bundle_name: str, bundle_new: str, changes: Changes, *, mode: int, gid: int
) -> None:
    """Write the changed zone files, remove the stale ones, then write the bundle copy."""
    for zone in changes.write:
        write_atomic(os.path.join(directory, zone.file), zone.text, mode, gid)
    for name in changes.remove:
        os.unlink(os.path.join(directory, name))
    if changes.bundle:
        write_atomic(os.path.join(directory, bundle_name), bundle_new, mode, gid)
