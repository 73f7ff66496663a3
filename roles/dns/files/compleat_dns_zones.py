# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Install the zone files of a compleat.cloud zone bundle, all or nothing.

Run as ``python3 compleat_dns_zones.py ...`` (the dns role installs it as ``dns_zones_tool``).
The dns role ships every zone of the fabric in one text file (the *bundle*): each zone starts with
a marker line ``;; compleat-zone <origin> <file name>`` followed by the zone file text.  One copy of
the bundle replaces hundreds of per-zone transfers, and its diff reads like the zone files.

    compleat-dns-zones check BUNDLE          every zone passes named-checkzone (nothing written)
    compleat-dns-zones install BUNDLE DIR    write the zone files that differ and remove other
                                             db.* files of DIR; with --dry-run only report

``install`` checks every zone that would change before it touches anything: when one fails, no
file is written.  Files are replaced atomically (temporary file + rename).  The last output line
is a JSON summary: ``{"changed": bool, "written": [...], "removed": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

MARKER = re.compile(r"^;; compleat-zone (\S+) (\S+)$")
SAFE_FILE = re.compile(r"^db\.[A-Za-z0-9._-]+$")
CHECKZONE = ("named-checkzone", "-q", "-k", "fail", "-n", "fail")


def parse_bundle(text: str) -> list[tuple[str, str, str]]:
    """[(origin, file name, zone text)] in bundle order; ValueError on a malformed bundle."""
    zones: list[tuple[str, str, str]] = []
    current: tuple[str, str] | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        match = MARKER.match(line.rstrip("\n"))
        if match:
            if current is not None:
                zones.append((current[0], current[1], "".join(lines)))
            current, lines = (match.group(1), match.group(2)), []
            if not SAFE_FILE.match(current[1]):
                raise ValueError(f"unsafe zone file name {current[1]!r}")
        elif current is None:
            if line.strip() and not line.startswith(";"):
                raise ValueError("data before the first zone marker")
        else:
            lines.append(line)
    if current is not None:
        zones.append((current[0], current[1], "".join(lines)))
    names = [file_name for _origin, file_name, _text in zones]
    if len(set(names)) != len(names):
        raise ValueError("a zone file name appears twice")
    return zones


def check_zone(origin: str, text: str, workdir: str) -> str | None:
    """None when named-checkzone accepts the zone, else its message."""
    with tempfile.NamedTemporaryFile("w", dir=workdir, prefix=".check-", delete=False) as handle:
        handle.write(text)
        path = handle.name
    try:
        proc = subprocess.run([*CHECKZONE, origin, path], capture_output=True, text=True, check=False)
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        return (proc.stdout + proc.stderr).strip() or f"named-checkzone exited {proc.returncode}"
    return None


def read(path: str) -> str | None:
    """File content, None when missing."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path: str, text: str, mode: int, gid: int | None) -> None:
    """Replace ``path`` by a new file with ``text`` (same directory, rename)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".new-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if gid is not None:
            os.chown(tmp, 0, gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def install(
    zones: list[tuple[str, str, str]], directory: str, *, dry_run: bool, mode: int, gid: int | None
) -> dict[str, object]:
    """Write differing zone files, remove stale db.* files; every change is checked first."""
    wanted = {name for _origin, name, _text in zones}
    to_write = [
        (origin, name, text) for origin, name, text in zones if read(os.path.join(directory, name)) != text
    ]
    errors = [
        f"{origin}: {msg}" for origin, _name, text in to_write if (msg := check_zone(origin, text, directory))
    ]
    if errors:
        raise RuntimeError("zones rejected by named-checkzone, nothing written:\n" + "\n".join(errors))
    stale = sorted(
        entry
        for entry in os.listdir(directory)
        if entry.startswith("db.") and entry not in wanted and os.path.isfile(os.path.join(directory, entry))
    )
    if not dry_run:
        for _origin, name, text in to_write:
            write_atomic(os.path.join(directory, name), text, mode, gid)
        for name in stale:
            os.unlink(os.path.join(directory, name))
    written = [name for _origin, name, _text in to_write]
    return {"changed": bool(to_write or stale), "written": written, "removed": stale}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="compleat-dns-zones", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="check every zone of a bundle")
    check.add_argument("bundle")
    inst = sub.add_parser("install", help="install the zone files of a bundle into a directory")
    inst.add_argument("bundle")
    inst.add_argument("directory")
    inst.add_argument("--dry-run", action="store_true")
    inst.add_argument("--mode", default="0644")
    inst.add_argument("--group", default="bind")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, encoding="utf-8") as handle:
            zones = parse_bundle(handle.read())
        if not zones:
            raise ValueError("the bundle holds no zone")
        if args.action == "check":
            workdir = tempfile.mkdtemp(prefix="compleat-dns-")
            try:
                errors = [f"{o}: {m}" for o, _name, t in zones if (m := check_zone(o, t, workdir))]
            finally:
                os.rmdir(workdir)
            if errors:
                raise RuntimeError("zones rejected by named-checkzone:\n" + "\n".join(errors))
            print(json.dumps({"changed": False, "zones": len(zones)}))
            return 0
        import grp

        gid = grp.getgrnam(args.group).gr_gid if args.group else None
        result = install(zones, args.directory, dry_run=args.dry_run, mode=int(args.mode, 8), gid=gid)
        print(json.dumps(result, sort_keys=True))
        return 0
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        print(f"compleat-dns-zones: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
