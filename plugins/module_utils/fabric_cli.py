# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line of the fabric engine (``bin/compleat-fabric``), usable without Ansible.

Outside the engine package: the engine plans, its renderers write; this module only parses the
arguments, calls them and prints.

    compleat-fabric validate FILE [--json]
    compleat-fabric render FILE OUT [--check] [--no-frr] [--bgp-password-file FILE]
    compleat-fabric whois FILE ADDR... [--json]
    compleat-fabric schema [--update DOC | --check DOC]

Exit status: 0 success, 1 the fabric file (or an address, or a stale doc) has problems -- every
problem is listed with its key path --, 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .fabric import schema
from .fabric.errors import FabricError, FabricValidationError
from .fabric.export import plan_summary
from .fabric.hardening import password_problems
from .fabric.model import Fabric
from .fabric.plan import build_plan, load_fabric
from .fabric.render.tree import output_problems, render_all
from .fabric.whois import WhoisIndex

EXIT_OK = 0
PASSWORD_ENV = "COMPLEAT_FABRIC_BGP_PASSWORD"
EXIT_INVALID = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compleat-fabric", description="Validate, render and query a compleat.cloud fabric file."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check a fabric file and list every problem with its key path")
    validate.add_argument("file")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    render = sub.add_parser("render", help="render every output file into a directory (atomically)")
    render.add_argument("file")
    render.add_argument("out")
    render.add_argument("--check", action="store_true", help="only report which files would change")
    render.add_argument("--no-frr", action="store_true", help="skip the <device>/frr.conf files")
    render.add_argument(
        "--bgp-password-file",
        metavar="FILE",
        help="file holding the BGP session password of bgp.passwords (default: "
        f"${PASSWORD_ENV}); written only into frr.conf",
    )
    whois = sub.add_parser("whois", help="who owns an address: rack, device, interface, network")
    whois.add_argument("file")
    whois.add_argument("address", nargs="+")
    whois.add_argument("--json", action="store_true", help="machine-readable output")
    doc = sub.add_parser("schema", help="print the key table generated from the schema")
    group = doc.add_mutually_exclusive_group()
    group.add_argument("--update", metavar="DOC", help="rewrite the table between the markers of DOC")
    group.add_argument("--check", metavar="DOC", help="exit 1 when DOC's table is stale")
    return parser


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if args.command == "schema":
        return _schema(args, out, err)
    problems = _output_problems(args.out) if args.command == "render" else []
    try:
        fabric = load_fabric(args.file)
    except FabricValidationError as exc:
        return _report_invalid(args, FabricValidationError(problems + exc.errors), out, err)
    if args.command == "render" and not args.no_frr:
        problems += password_problems(fabric.bgp.passwords, _bgp_password(args, problems))
    if problems:
        return _report_invalid(args, FabricValidationError(problems), out, err)
    if args.command == "validate":
        return _validate(args, fabric, out)
    if args.command == "render":
        return _render(args, fabric, out, err)
    return _whois(args, fabric, out, err)


def _bgp_password(args: argparse.Namespace, problems: list[FabricError]) -> str | None:
    """The secret of ``bgp.passwords``: ``--bgp-password-file`` (first line) or the environment."""
    if args.bgp_password_file:
        try:
            with open(args.bgp_password_file, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(FabricError("--bgp-password-file", args.bgp_password_file, f"cannot read: {exc}"))
            return None
    return os.environ.get(PASSWORD_ENV) or None


def _output_problems(out_dir: str) -> list[FabricError]:
    return output_problems(out_dir, label="OUT")


def _report_invalid(args: argparse.Namespace, exc: FabricValidationError, out: TextIO, err: TextIO) -> int:
    if getattr(args, "json", False) and args.command == "validate":
        json.dump({"valid": False, "errors": [error.to_dict() for error in exc.errors]}, out, indent=1)
        out.write("\n")
    else:
        count = len(exc.errors)
        suffix = "; nothing was written" if args.command == "render" else ""
        err.write(f"{args.file}: {count} error{'s' if count != 1 else ''}{suffix}\n")
        for error in exc.errors:
            err.write(f"  {error}\n")
    return EXIT_INVALID


def _validate(args: argparse.Namespace, fabric: Fabric, out: TextIO) -> int:
    plan = build_plan(fabric)
    summary = {"valid": True, **plan_summary(plan)}
    if args.json:
        json.dump(summary, out, indent=1)
        out.write("\n")
    else:
        out.write(
            f"{args.file}: valid fabric {fabric.name} ({fabric.routing}): {summary['spines']} spines, "
            f"{summary['racks']} racks, {summary['tors']} ToRs, {summary['hosts']} hosts, "
            f"{summary['links']} links\n"
        )
    return EXIT_OK


def _render(args: argparse.Namespace, fabric: Fabric, out: TextIO, err: TextIO) -> int:
    try:
        result = render_all(
            build_plan(fabric),
            args.out,
            frr=not args.no_frr,
            check=args.check,
            bgp_password=None if args.no_frr else _bgp_password(args, []),
        )
    except OSError as exc:  # raced with the checks, or refused despite them (root on a read-only tree)
        err.write(f"{args.out}: cannot write the output: {exc}; nothing was written\n")
        return EXIT_INVALID
    verb = "would change" if args.check else "changed"
    out.write(
        f"{args.out}: {len(result.files)} files; {verb}: {len(result.created)} created, "
        f"{len(result.modified)} modified, {len(result.removed)} removed\n"
    )
    for rel in result.changed_files if args.check else ():
        out.write(f"  {rel}\n")
    return EXIT_OK


def _whois(args: argparse.Namespace, fabric: Fabric, out: TextIO, err: TextIO) -> int:
    index = WhoisIndex(fabric)
    answers = []
    status = EXIT_OK
    for address in args.address:
        try:
            answers.append(index.lookup(address))
        except ValueError as exc:
            err.write(f"{address}: {exc}\n")
            status = EXIT_INVALID
    if args.json:
        json.dump([owner.to_dict() for owner in answers], out, indent=1)
        out.write("\n")
    else:
        for owner in answers:
            out.write(owner.describe() + "\n")
    return status


def _schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.update:
        path = Path(args.update)
        path.write_text(schema.update_doc_text(path.read_text(encoding="utf-8")), encoding="utf-8")
        out.write(f"{path}: key table updated\n")
        return EXIT_OK
    if args.check:
        path = Path(args.check)
        text = path.read_text(encoding="utf-8")
        if schema.update_doc_text(text) != text:
            err.write(f"{path}: the key table is stale; run compleat-fabric schema --update {path}\n")
            return EXIT_INVALID
        return EXIT_OK
    out.write(schema.markdown_table())
    return EXIT_OK
