# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check xl configuration files with xl's own parser library, without a hypervisor (module xen_config).

``xl -N create FILE`` (xl's dry run) cannot check a file on a host that is not running Xen: Debian's
``xl`` wrapper stops at "Can't find hypervisor information in sysfs!", and the real binary at
"cannot init xl context" (libxl opens the hypervisor's privileged interface before it parses
anything).  This code loads ``libxlutil`` (the library xl parses its configuration files with)
through ctypes and:

- parses the file with ``xlu_cfg_readfile`` (syntax: assignments, strings, numbers, lists);
- for a domain configuration, requires ``name`` (a string), ``memory`` and ``vcpus`` (numbers), and
  ``type`` (``pv``, ``pvh`` or ``hvm``) when present; parses every ``disk`` entry with
  ``xlu_disk_parse`` (xl's disk specification parser); checks every ``vif`` entry is a
  comma-separated list of ``key=value``;
- for xl's global configuration (``/etc/xen/xl.conf``, same syntax and parser): ``autoballoon``,
  ``vif.default.bridge`` and ``lockfile`` must be strings when set (``autoballoon`` one of on, off,
  auto, 0, 1).

It returns the parsed values, or raises XlCfgError listing every problem (libxlutil's own messages
first).  What it cannot check is everything xl decides with the hypervisor (whether the kernel
exists, the bridge exists, the memory is free...).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
from collections.abc import Callable
from typing import Any

XLUTIL = "libxlutil.so.4.17"
XENLIGHT = "libxenlight.so.4.17"
# libxl_device_disk is a few hundred bytes in Xen 4.17; libxl_device_disk_init zeroes what it uses.
DISK_STRUCT_BYTES = 4096
DOMAIN_TYPES = ("pv", "pvh", "hvm")
# xl.conf (--xl-conf): the settings the xen_host role writes, and what xl accepts for autoballoon.
XL_CONF_STRINGS = ("autoballoon", "vif.default.bridge", "lockfile")
AUTOBALLOON = ("on", "off", "auto", "0", "1")
ESRCH = 3


class XlCfgError(Exception):
    """The file is not a valid xl domain configuration."""


def _load(name: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise XlCfgError(f"cannot load {name} (package libxenmisc4.17): {exc}") from exc


def library_missing() -> str | None:
    """None when libxlutil and libxenlight load, else why not."""
    try:
        _load(XLUTIL)
        _load(XENLIGHT)
    except XlCfgError as exc:
        return str(exc)
    return None


class XlConfig:
    """One configuration file parsed by libxlutil; use as a context manager."""

    def __init__(self, path: str, report_fd: int = 2) -> None:
        self.path = path
        self.xlu = _load(XLUTIL)
        self.xl = _load(XENLIGHT)
        libc = self.libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.fdopen.restype = ctypes.c_void_p
        libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
        self.xlu.xlu_cfg_init.restype = ctypes.c_void_p
        self.xlu.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.xlu.xlu_cfg_readfile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.xlu.xlu_cfg_destroy.argtypes = [ctypes.c_void_p]
        self.xlu.xlu_cfg_get_string.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
        ]
        self.xlu.xlu_cfg_get_long.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_long),
            ctypes.c_int,
        ]
        self.xlu.xlu_cfg_get_list.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self.xlu.xlu_cfg_get_listitem.restype = ctypes.c_char_p
        self.xlu.xlu_cfg_get_listitem.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.xlu.xlu_disk_parse.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_void_p,
        ]
        self.xl.libxl_device_disk_init.argtypes = [ctypes.c_void_p]
        self.xl.libxl_device_disk_dispose.argtypes = [ctypes.c_void_p]
        # libxlutil writes its messages ("file:line: config parsing error ...") to this stream.
        # A duplicate of report_fd: fclose in __exit__ closes only the duplicate.
        libc.fclose.argtypes = [ctypes.c_void_p]
        report = self.report = libc.fdopen(os.dup(report_fd), b"w")
        libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
        libc.setvbuf(report, None, 2, 0)  # _IONBF: unbuffered, so messages come out in order
        self.cfg = self.xlu.xlu_cfg_init(report, path.encode())
        if not self.cfg:
            raise XlCfgError("xlu_cfg_init failed (out of memory)")

    def __enter__(self) -> XlConfig:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.xlu.xlu_cfg_destroy(self.cfg)
        self.libc.fclose(self.report)

    def read(self) -> None:
        rc = self.xlu.xlu_cfg_readfile(self.cfg, self.path.encode())
        if rc:
            raise XlCfgError(f"{self.path}: xl cannot parse the file (errno {rc})")

    def string(self, key: str) -> str | None:
        value = ctypes.c_char_p()
        rc = self.xlu.xlu_cfg_get_string(self.cfg, key.encode(), ctypes.byref(value), 0)
        if rc == ESRCH:
            return None
        if rc or value.value is None:
            raise XlCfgError(f"{key}: not a string")
        return value.value.decode()

    def number(self, key: str) -> int | None:
        value = ctypes.c_long()
        rc = self.xlu.xlu_cfg_get_long(self.cfg, key.encode(), ctypes.byref(value), 0)
        if rc == ESRCH:
            return None
        if rc:
            raise XlCfgError(f"{key}: not a number")
        return value.value

    def strings(self, key: str) -> list[str]:
        lst = ctypes.c_void_p()
        count = ctypes.c_int()
        rc = self.xlu.xlu_cfg_get_list(self.cfg, key.encode(), ctypes.byref(lst), ctypes.byref(count), 0)
        if rc == ESRCH:
            return []
        if rc:
            raise XlCfgError(f"{key}: not a list")
        items = []
        for i in range(count.value):
            item = self.xlu.xlu_cfg_get_listitem(lst, i)
            if item is None:
                raise XlCfgError(f"{key}[{i}]: not a string")
            items.append(item.decode())
        return items

    def disk_ok(self, spec: str) -> bool:
        disk = ctypes.create_string_buffer(DISK_STRUCT_BYTES)
        self.xl.libxl_device_disk_init(disk)
        try:
            specs = (ctypes.c_char_p * 1)(spec.encode())
            return self.xlu.xlu_disk_parse(self.cfg, 1, specs, disk) == 0
        finally:
            self.xl.libxl_device_disk_dispose(disk)


def vif_errors(index: int, spec: str) -> list[str]:
    """xl parses vifs itself (not in libxlutil): check the key=value shape only."""
    errors = []
    for part in (p.strip() for p in spec.split(",")):
        key, sep, _value = part.partition("=")
        if not part or not sep or not key.strip():
            errors.append(f"vif[{index}]: {part!r} is not key=value")
    return errors


# A domain's single-valued keys: (key, XlConfig getter, required).
DOMAIN_KEYS = (
    ("name", "string", True),
    ("type", "string", False),
    ("memory", "number", True),
    ("vcpus", "number", True),
    ("kernel", "string", False),
    ("cmdline", "string", False),
)


def _get(getter: Callable[[str], Any], key: str, errors: list[str], *, required: bool = False) -> Any:
    """``getter(key)``; None (and the problem in ``errors``) when it is missing or of another type."""
    try:
        value = getter(key)
    except XlCfgError as exc:
        errors.append(str(exc))
        return None
    if value is None and required:
        errors.append(f"{key}: missing")
    return value


def _one_of(values: dict[str, Any], key: str, allowed: tuple[str, ...], errors: list[str]) -> None:
    """A problem in ``errors`` when ``key`` is set to a value not in ``allowed``."""
    if values.get(key) not in (None, *allowed):
        errors.append(f"{key}: {values[key]!r} is not one of {', '.join(allowed)}")


def _result(values: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    if errors:
        raise XlCfgError("\n".join(errors))
    return values


def check(path: str, report_fd: int = 2) -> dict[str, Any]:
    """Parse PATH as a domain configuration; return its values or raise XlCfgError listing every problem."""
    errors: list[str] = []
    with XlConfig(path, report_fd) as cfg:
        cfg.read()
        values = {key: _get(getattr(cfg, kind), key, errors, required=req) for key, kind, req in DOMAIN_KEYS}
        _one_of(values, "type", DOMAIN_TYPES, errors)
        for key in ("disk", "vif"):
            values[key] = _get(cfg.strings, key, errors) or []
        for i, spec in enumerate(values["disk"]):
            if not cfg.disk_ok(spec):
                errors.append(f"disk[{i}]: xl rejects {spec!r}")
        for i, spec in enumerate(values["vif"]):
            errors.extend(vif_errors(i, spec))
    return _result(values, errors)


def check_xl_conf(path: str, report_fd: int = 2) -> dict[str, Any]:
    """Parse PATH as /etc/xen/xl.conf (xl's global settings, same syntax and parser)."""
    errors: list[str] = []
    with XlConfig(path, report_fd) as cfg:
        cfg.read()
        values = {key: _get(cfg.string, key, errors) for key in XL_CONF_STRINGS}
    _one_of(values, "autoballoon", AUTOBALLOON, errors)
    return _result(values, errors)


KINDS = {"domain": check, "xl_conf": check_xl_conf}


def check_text(text: str, kind: str, name: str) -> dict[str, Any]:
    """Check ``text`` as a file of ``kind`` (domain or xl_conf) called ``name`` in messages.

    Returns the parsed values, or raises XlCfgError with libxlutil's own messages first.
    """
    workdir = tempfile.mkdtemp(prefix="compleat-xl-")
    path, report_path = os.path.join(workdir, "config"), os.path.join(workdir, "report")
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        with open(report_path, "w+", encoding="utf-8") as report:
            try:
                return KINDS[kind](path, report.fileno())
            except XlCfgError as exc:
                report.seek(0)
                messages = [*report.read().splitlines(), *str(exc).splitlines()]
                raise XlCfgError("\n".join(line.replace(path, name) for line in messages if line)) from exc
    finally:
        for leftover in (path, report_path):
            if os.path.exists(leftover):
                os.unlink(leftover)
        os.rmdir(workdir)
