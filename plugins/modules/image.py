#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Register ISOs and OS-only templates on secondary storage, with metadata and a verified checksum."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image
short_description: Register ISOs and OS-only templates on secondary storage
version_added: "0.1.0"
description:
  - Registers an ISO or an OS-only disk template that lives on secondary storage (typically an NFS
    export mounted at the same path on every hypervisor) in the cloud metadata store, with its OS,
    version, checksum, size and format.
  - With O(src), copies the file to O(path) first (atomically, only when O(path) is missing or
    differs).
  - The checksum is verified against O(checksum) when given, and always recorded. It is computed
    again only when the file's size or modification time changed since registration, or with
    O(verify=always).
  - Templates must be self-contained (no backing file) because instances are qcow2 overlays on them.
requirements:
  - qemu-img (Debian package qemu-utils) to read a template's format and virtual size
extends_documentation_fragment:
  - compleat.cloud.cloud_store
  - compleat.cloud.attributes.full
options:
  name:
    description: Image name, unique in the store; instances name their template with it.
    type: str
    required: true
  state:
    description: V(absent) unregisters (refused while instances use the template).
    type: str
    choices: [present, absent]
    default: present
  kind:
    description: V(template) is a bootable OS-only disk image (qcow2 or raw); V(iso) an installation medium.
    type: str
    choices: [template, iso]
    default: template
  path:
    description: Path of the file on secondary storage. Required with O(state=present).
    type: path
  src:
    description:
      - File to copy to O(path) when O(path) is missing or has another checksum. O(src) is hashed
        (and checked against O(checksum)) on every run.
    type: path
  os:
    description: Operating system, for example C(debian). Required for a new image.
    type: str
  os_version:
    description: Operating system version, for example C(12).
    type: str
  checksum:
    description:
      - Expected checksum as C(ALGO:HEX) (C(sha256), C(sha512)) or a bare SHA-256 hex digest. The run
        fails when the file does not match.
    type: str
  verify:
    description: V(changed) hashes the file when it is new or its size/mtime changed; V(always) hashes every
      run.
    type: str
    choices: [changed, always]
    default: changed
  remove_file:
    description: With O(state=absent), also delete O(path) (or the registered path).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Register the Debian 12 template from the build host's output
  compleat.cloud.image:
    name: debian-12
    kind: template
    src: /srv/build/debian-12.qcow2
    path: /srv/secondary/templates/debian-12.qcow2
    os: debian
    os_version: "12"
    checksum: "sha256:{{ debian12_sha256 }}"

- name: Register an installer ISO already on the NFS export
  compleat.cloud.image:
    name: debian-12-netinst
    kind: iso
    path: /srv/secondary/iso/debian-12.8.0-amd64-netinst.iso
    os: debian
    os_version: "12.8"
"""

RETURN = r"""
image:
  description: The image as stored.
  returned: state is present
  type: dict
  sample: {"name": "debian-12", "kind": "template", "os": "debian", "os_version": "12",
           "format": "qcow2", "path": "/srv/secondary/templates/debian-12.qcow2",
           "checksum": "sha256:5f1e...", "size_bytes": 402653184, "virtual_size": 2147483648,
           "mtime": 1795312000}
copied:
  description: Whether O(src) was copied to O(path).
  returned: always
  type: bool
"""

import hashlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import _common, errors, overlay  # noqa: E402
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store  # noqa: E402

ARGUMENT_SPEC: dict[str, Any] = {
    **_common.name_state_spec(),
    "kind": {"type": "str", "choices": ["template", "iso"], "default": "template"},
    "path": {"type": "path"},
    "src": {"type": "path"},
    "os": {"type": "str"},
    "os_version": {"type": "str"},
    "checksum": {"type": "str"},
    "verify": {"type": "str", "choices": ["changed", "always"], "default": "changed"},
    "remove_file": {"type": "bool", "default": False},
}
ALGORITHMS = ("sha256", "sha512")
CHUNK = 4 * 1024 * 1024


def parse_checksum(value: str | None) -> tuple[str, str] | None:
    """(algorithm, lower-case hex) of ``ALGO:HEX`` or a bare SHA-256 digest."""
    if not value:
        return None
    algo, digest = value.split(":", 1) if ":" in value else ("sha256", value)
    algo = algo.lower()
    if algo not in ALGORITHMS:
        raise errors.Conflict(
            f"Unsupported checksum algorithm {algo}.", f"Use one of {', '.join(ALGORITHMS)}."
        )
    return algo, digest.strip().lower()


def file_digest(path: str, algo: str) -> str:
    """Hex digest of a file, streamed."""
    digest = hashlib.new(algo)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_checksum(path: str, expected: tuple[str, str] | None) -> str:
    """``ALGO:HEX`` of ``path``; Conflict when it differs from ``expected``."""
    algo = expected[0] if expected else "sha256"
    actual = file_digest(path, algo)
    if expected and actual != expected[1]:
        raise errors.Conflict(
            f"Checksum mismatch for {path}: expected {algo}:{expected[1]}, got {algo}:{actual}.",
            "The file is corrupt or not the one you meant: download or build it again.",
        )
    return f"{algo}:{actual}"


def copy_atomic(src: str, dest: str) -> None:
    """Copy ``src`` to ``dest`` through a temp file in the destination directory."""
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".image-", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def same_content(path: str, checksum: str, current: dict[str, Any] | None) -> bool:
    """Whether ``path`` holds the content with ``checksum`` (trusting the store while size/mtime match)."""
    if not os.path.exists(path):
        return False
    stat = os.stat(path)
    if (
        current
        and current["path"] == path
        and current["size_bytes"] == stat.st_size
        and current["mtime"] == int(stat.st_mtime)
        and current["checksum"] == checksum
    ):
        return True
    algo = checksum.split(":", 1)[0]
    return f"{algo}:{file_digest(path, algo)}" == checksum


def format_of(module: AnsibleModule, kind: str, path: str) -> tuple[str, int]:
    """(format, virtual size) of an image file; templates must have no backing file."""
    if kind == "iso":
        return "iso", os.path.getsize(path)
    info = overlay.image_info(path, _common.runner(module))
    if info["format"] not in ("qcow2", "raw"):
        raise errors.Conflict(
            f"{path} is in format {info['format']}; templates must be qcow2 or raw.",
            "Convert it: qemu-img convert -O qcow2 SRC DEST.",
        )
    if info["backing_file"]:
        raise errors.Conflict(
            f"{path} has a backing file ({info['backing_file']}); a template must be self-contained.",
            "Flatten it: qemu-img convert -O qcow2 SRC DEST.",
        )
    return info["format"], info["virtual_size"]


def present(module: AnsibleModule, store: Any) -> dict[str, Any]:
    """Copy (if asked), verify and register the image."""
    p = module.params
    if not p["path"]:
        raise errors.NotFound(
            "path is required with state=present.", "Give the file's path on secondary storage."
        )
    current = store.get("images", name=p["name"])
    if current is not None and current["kind"] != p["kind"]:
        raise errors.Conflict(f"Image {p['name']} is registered as {current['kind']}.", "Use another name.")
    expected = parse_checksum(p["checksum"])
    path, copied = p["path"], False
    if p["src"]:
        if not os.path.exists(p["src"]):
            raise errors.NotFound(
                f"src {p['src']} does not exist.", "Check the source path on the managed host."
            )
        src_sum = verified_checksum(p["src"], expected)
        copied = not same_content(path, src_sum, current)
        if copied and not module.check_mode:
            copy_atomic(p["src"], path)
        expected = expected or parse_checksum(src_sum)
    if not os.path.exists(path) and not (copied and module.check_mode):
        raise errors.NotFound(f"No file at {path}.", "Copy it to secondary storage first, or give src.")
    if copied and module.check_mode and not os.path.exists(path):
        stat_src = os.stat(p["src"])
        size, mtime, probe = stat_src.st_size, int(stat_src.st_mtime), p["src"]
    else:
        stat = os.stat(path)
        size, mtime, probe = stat.st_size, int(stat.st_mtime), path
    unchanged_file = (
        current is not None
        and not copied
        and current["size_bytes"] == size
        and current["mtime"] == mtime
        and current["path"] == path
    )
    if (
        unchanged_file
        and p["verify"] == "changed"
        and (expected is None or current["checksum"] == f"{expected[0]}:{expected[1]}")
    ):
        checksum = current["checksum"]
        fmt, vsize = current["format"], current["virtual_size"]
    else:
        checksum = verified_checksum(probe, expected)
        fmt, vsize = format_of(module, p["kind"], probe)
    if current is None and not p["os"]:
        raise errors.NotFound(f"Image {p['name']} is new and needs os.", "Give os (and os_version).")
    desired = {
        "kind": p["kind"],
        "os": p["os"],
        "os_version": p["os_version"],
        "format": fmt,
        "path": path,
        "checksum": checksum,
        "size_bytes": size,
        "virtual_size": vsize,
        "mtime": mtime,
    }
    if current is None:
        desired["os_version"] = p["os_version"] or ""
    changed, before, after = _common.ensure_row(
        store, "images", {"name": p["name"]}, desired, module.check_mode
    )
    return {
        "changed": changed or copied,
        "copied": copied,
        "image": _common.public(after),
        "diff": _common.make_diff(_common.public(before), _common.public(after), p["name"]),
    }


def handle(module: AnsibleModule, store: Store) -> dict[str, Any]:
    """Register or unregister the image."""
    p = module.params
    if p["state"] == "present":
        return present(module, store)

    guard = _common.instances_guard(
        store,
        "image_id",
        "Template {name} backs {users}.",
        "Delete those instances first: their overlays read the template.",
    )
    changed, before = _common.delete_row(store, "images", {"name": p["name"]}, module.check_mode, guard)
    path = p["path"] or before.get("path")
    removed = bool(p["remove_file"] and path and os.path.exists(path))
    if removed and not module.check_mode:
        os.unlink(path)
    return {
        "changed": changed or removed,
        "copied": False,
        "diff": _common.make_diff(_common.public(before), {}, p["name"]),
    }


def main() -> None:
    """Module entry point."""
    _common.run_module(ARGUMENT_SPEC, handle)


if __name__ == "__main__":
    main()
