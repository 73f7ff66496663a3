# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloud-init NoCloud seed: meta-data, user-data and network-config on an ISO (label ``cidata``) or vfat.

The files are rendered by pure functions into deterministic text (JSON, which is valid YAML),
and the seed's identity is the SHA-256 of that text, not of the image: ISO images embed
timestamps, the content hash does not.  The instance-id is stable (``iid-<uuid>``) and survives
re-creation on another host.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from .errors import CommandError
from .overlay import Runner, run_checked

SEED_FILES = ("meta-data", "user-data", "network-config")
FIRST_BOOT_PATH = "/usr/local/sbin/compleat-first-boot"
ISO_TOOLS = ("genisoimage", "xorriso", "mkisofs")


def instance_id_for(uuid: str) -> str:
    """The cloud-init instance-id of an instance: stable for its whole life, across hosts."""
    return f"iid-{uuid}"


def render(value: Any, header: str = "") -> str:
    """One seed file as JSON (which is YAML: cloud-init reads it as such); ``header`` is a first line.

    ``#cloud-config`` heads user-data.  Keys keep their insertion order and the indentation is
    fixed, so the text (and :func:`seed_hash`) is deterministic; UTF-8 is written as it is.  The lab's
    tiny tenant guest reads meta-data and network-config with scripts/images/tenant/netcfg.awk,
    a JSON flattener.
    """
    body = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    return f"{header}\n{body}" if header else body


# ------------------------------------------------------------------------------------------------
# Seed content
# ------------------------------------------------------------------------------------------------
def meta_data(instance_id: str, hostname: str) -> dict[str, Any]:
    """NoCloud meta-data."""
    return {"instance-id": instance_id, "local-hostname": hostname}


def user_data(
    hostname: str, ssh_keys: Sequence[str], first_boot_script: str | None = None, packages: Sequence[str] = ()
) -> dict[str, Any]:
    """A ``#cloud-config`` document: hostname, SSH keys, optional first-boot script (once per instance-id)."""
    doc: dict[str, Any] = {
        "hostname": hostname,
        "preserve_hostname": False,
        "ssh_pwauth": False,
        "disable_root": False,
        "ssh_authorized_keys": [k.strip() for k in ssh_keys],
    }
    if packages:
        doc["packages"] = list(packages)
    if first_boot_script:
        doc["write_files"] = [
            {
                "path": FIRST_BOOT_PATH,
                "permissions": "0700",
                "owner": "root:root",
                "content": first_boot_script,
            }
        ]
        doc["runcmd"] = [[FIRST_BOOT_PATH]]
    return doc


def network_config(networks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Network config v2: each NIC matched by MAC, DHCP unless it has a static ``ip`` (CIDR)."""
    ethernets: dict[str, Any] = {}
    for index, net in enumerate(networks):
        nic: dict[str, Any] = {"match": {"macaddress": net["mac"]}, "set-name": f"eth{index}"}
        if net.get("mtu"):
            nic["mtu"] = int(net["mtu"])
        if net.get("ip"):
            nic["addresses"] = [net["ip"]]
            if net.get("gateway"):
                nic["routes"] = [{"to": "0.0.0.0/0", "via": net["gateway"]}]
            if net.get("nameservers"):
                nic["nameservers"] = {"addresses": list(net["nameservers"])}
        else:
            nic["dhcp4"] = True
        ethernets[f"eth{index}"] = nic
    return {"version": 2, "ethernets": ethernets}


def seed_files(
    instance_id: str,
    hostname: str,
    ssh_keys: Sequence[str],
    networks: Sequence[dict[str, Any]],
    *,
    first_boot_script: str | None = None,
    packages: Sequence[str] = (),
) -> dict[str, str]:
    """The three NoCloud files as text."""
    return {
        "meta-data": render(meta_data(instance_id, hostname)),
        "user-data": render(user_data(hostname, ssh_keys, first_boot_script, packages), "#cloud-config"),
        "network-config": render(network_config(networks)),
    }


def seed_hash(files: dict[str, str]) -> str:
    """SHA-256 over the seed's file names and contents (the seed's identity)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def iso_command(tool: str, output: str, directory: str) -> list[str]:
    """Build an ISO 9660 image labelled ``cidata`` from the files in ``directory``."""
    files = [os.path.join(directory, name) for name in SEED_FILES]
    if os.path.basename(tool) == "xorriso":
        return [
            tool,
            "-as",
            "mkisofs",
            "-quiet",
            "-output",
            output,
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            *files,
        ]
    return [tool, "-quiet", "-output", output, "-volid", "cidata", "-joliet", "-rock", *files]


def vfat_commands(output: str, directory: str, size_kib: int = 2048) -> list[list[str]]:
    """Build a vfat image labelled ``CIDATA`` (dosfstools + mtools)."""
    files = [os.path.join(directory, name) for name in SEED_FILES]
    return [
        ["mkfs.vfat", "-n", "CIDATA", "-C", output, str(size_kib)],
        ["mcopy", "-o", "-i", output, *files, "::"],
    ]


def write_seed(
    path: str, files: dict[str, str], fmt: str, run: Runner, which: Callable[[str], str | None] = shutil.which
) -> None:
    """Write the seed image atomically (temp file in the same directory, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".seed-", dir=directory) as tmp:
        for name in SEED_FILES:
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as handle:
                handle.write(files[name])
        out = os.path.join(tmp, "seed.img")
        if fmt == "iso":
            tool = next((t for t in (which(name) for name in ISO_TOOLS) if t), None)
            if not tool:
                raise CommandError(
                    "No ISO builder found (genisoimage, xorriso or mkisofs).",
                    "Install the Debian package genisoimage (or xorriso), or use seed_format=vfat.",
                )
            run_checked(run, iso_command(tool, out, tmp), "Check free space in the storage directory.")
        else:
            for tool in ("mkfs.vfat", "mcopy"):
                if not which(tool):
                    raise CommandError(
                        f"{tool} not found.",
                        "Install the Debian packages dosfstools and mtools, or use seed_format=iso.",
                    )
            for argv in vfat_commands(out, tmp):
                run_checked(run, argv, "Check free space in the storage directory.")
        os.chmod(out, 0o644)
        os.replace(out, path)
