# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A libvirt network or storage pool brought to a definition and a state through virsh
(module libvirt_object).

The definition is compared with the object's inactive definition (``virsh net-dumpxml --inactive``,
``pool-dumpxml --inactive``) by inclusion: every element, attribute and non-blank text of the
desired XML must be in the current XML with the same value. What libvirt adds by itself (the UUID,
a MAC address, capacity figures, default permissions) does not count as a difference. An existing
object is redefined under its own UUID (libvirt refuses a definition of the same name without it).

``plan`` works out, without running anything, what virsh has to do; ``apply`` runs it. A running
object whose definition changed is restarted so that the new definition applies; a pool libvirt
cannot stop (a ``netfs`` pool whose mount is in use) keeps running with its old definition until
its next start.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("network", "pool")
# virsh's command prefix per kind
PREFIX = {"network": "net", "pool": "pool"}
# "Name: value" lines of net-info/pool-info that say the object runs
ACTIVE_LINE = {"network": ("Active", "yes"), "pool": ("State", "running")}

# run(argv) -> (rc, stdout, stderr)
RunFn = Callable[[list[str]], tuple[int, str, str]]


class LibvirtError(Exception):
    """virsh failed, or the definition is not usable."""


@dataclass(frozen=True)
class Current:
    """What libvirt has now of one object (``exists`` False: nothing else is meaningful)."""

    exists: bool
    xml: str = ""
    active: bool = False
    autostart: bool = False


@dataclass(frozen=True)
class Plan:
    """What virsh has to do, in this order: the definition to define (or None), then the steps."""

    define: str | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything is to be done."""
        return self.define is not None or bool(self.steps)


# ------------------------------------------------------------------------------------ the XML
def parse(text: str, what: str) -> ET.Element:
    """The root element of ``text``; LibvirtError naming ``what`` when it is not XML."""
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise LibvirtError(f"{what} is not valid XML: {exc}") from exc


def covers(desired: ET.Element, current: ET.Element) -> bool:
    """Whether ``current`` has everything ``desired`` has (tag, attributes, non-blank text and,
    recursively, each child matched by its own distinct child of the same tag)."""
    if desired.tag != current.tag:
        return False
    if any(current.get(key) != value for key, value in desired.attrib.items()):
        return False
    text = (desired.text or "").strip()
    if text and text != (current.text or "").strip():
        return False
    unused = list(current)
    for child in desired:
        match = next((cand for cand in unused if covers(child, cand)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def desired_root(xml: str, kind: str, name: str) -> ET.Element:
    """The desired definition, checked: root element ``kind`` and ``<name>`` ``name`` (added when
    missing)."""
    root = parse(xml, f"the definition of {kind} {name}")
    if root.tag != kind:
        raise LibvirtError(f"the definition of {kind} {name} has the root element <{root.tag}>, not <{kind}>")
    element = root.find("name")
    if element is None:
        element = ET.Element("name")
        element.text = name
        root.insert(0, element)
    elif (element.text or "").strip() != name:
        raise LibvirtError(f"the definition of {kind} {name} names it {(element.text or '').strip()!r}")
    return root


def with_uuid(root: ET.Element, uuid: str) -> ET.Element:
    """``root`` with ``<uuid>`` ``uuid`` right after ``<name>``, unless it has a ``<uuid>``."""
    if not uuid or root.find("uuid") is not None:
        return root
    element = ET.Element("uuid")
    element.text = uuid
    names = [index for index, child in enumerate(root) if child.tag == "name"]
    root.insert(names[0] + 1 if names else 0, element)
    return root


def to_text(root: ET.Element) -> str:
    """Serialised XML (unicode, no declaration)."""
    return ET.tostring(root, encoding="unicode")


# ------------------------------------------------------------------------------------ the plan
def plan(
    kind: str, name: str, current: Current, *, xml: str | None, present: bool, active: bool, autostart: bool
) -> Plan:
    """The virsh work that brings ``current`` to the wanted state (runs nothing).

    Steps are ``destroy``, ``undefine``, ``autostart``, ``noautostart``, ``start`` and ``restart``.
    """
    if not present:
        steps = (["destroy"] if current.active else []) + ["undefine"]
        return Plan(steps=steps if current.exists else [])
    if xml is None:
        raise LibvirtError(f"xml: the definition of {kind} {name} is required with state=present")
    root = desired_root(xml, kind, name)
    define = None
    if not current.exists:
        define = to_text(root)
    else:
        now = parse(current.xml, f"the current definition of {kind} {name}")
        if not covers(root, now):
            define = to_text(with_uuid(root, (now.findtext("uuid") or "").strip()))
    steps: list[str] = []
    if autostart != current.autostart:
        steps.append("autostart" if autostart else "noautostart")
    if active and not current.active:
        steps.append("start")
    elif active and define is not None:
        steps.append("restart")
    elif not active and current.active:
        steps.append("destroy")
    return Plan(define=define, steps=steps)


# ------------------------------------------------------------------------------------ virsh
class Virsh:
    """virsh commands on one object, through ``run`` (AnsibleModule.run_command in the module)."""

    def __init__(self, run: RunFn, virsh: str, uri: str, kind: str, name: str) -> None:
        self.run, self.base, self.kind, self.name = run, [virsh, "--connect", uri], kind, name
        self.prefix = PREFIX[kind]

    def call(self, command: str, *args: str) -> str:
        """stdout of ``virsh <prefix>-<command> args``; LibvirtError with virsh's message."""
        rc, out, err = self.run([*self.base, f"{self.prefix}-{command}", *args])
        if rc != 0:
            message = (err or out).strip() or f"exit code {rc}"
            raise LibvirtError(f"{self.kind} {self.name}: virsh {self.prefix}-{command} failed: {message}")
        return out

    def read(self) -> Current:
        """The object as libvirt has it now."""
        names = [line.strip() for line in self.call("list", "--all", "--name").splitlines()]
        if self.name not in names:
            return Current(exists=False)
        info = info_fields(self.call("info", self.name))
        key, running = ACTIVE_LINE[self.kind]
        return Current(
            exists=True,
            xml=self.call("dumpxml", "--inactive", self.name),
            active=info.get(key) == running,
            autostart=info.get("Autostart") == "yes",
        )

    def define(self, xml: str, tmpdir: str | None = None) -> None:
        """``virsh <prefix>-define`` of ``xml`` (through a temporary file, removed after)."""
        fd, path = tempfile.mkstemp(prefix=f"libvirt-{self.kind}-", suffix=".xml", dir=tmpdir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(xml)
            self.call("define", path)
        finally:
            os.unlink(path)

    def step(self, step: str) -> str | None:
        """Run one step of a plan; a warning when a running pool could not be restarted."""
        if step == "restart":
            try:
                self.call("destroy", self.name)
            except LibvirtError as exc:
                if self.kind != "pool":
                    raise
                return f"{exc}: the new definition applies at the next start of the pool"
            self.call("start", self.name)
        elif step == "noautostart":
            self.call("autostart", "--disable", self.name)
        else:
            self.call(step, self.name)
        return None


def info_fields(text: str) -> dict[str, str]:
    """``Name: value`` lines of ``virsh net-info``/``pool-info`` as a dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields
