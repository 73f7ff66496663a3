# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt helpers: domain XML from owned fields, owned-field comparison, lifecycle, devices.

Owned fields are the part of a domain the cloud stack decides: type, name, uuid, memory, vCPUs,
our metadata element, every ``disk`` and ``interface`` (with its virtio queue count), the serial
console and a VNC display, and for heavy workloads the ``vcpupin``/``emulatorpin`` entries of
``<cputune>``, the ``<hugepages>`` of ``<memoryBacking>`` and every PCI ``<hostdev>``.
Everything else (controllers, CPU model, addresses libvirt assigned, devices added by hand) is
left as libvirt or the operator made it: ``merge_owned`` replaces only the owned parts of an
existing definition and keeps the PCI/drive addresses of devices it re-creates.
"""

from __future__ import annotations

import contextlib
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import VirtError
from .resources import format_cpuset

try:
    import libvirt

    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - depends on the environment
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = _exc

METADATA_NS = "https://compleat.cloud/xmlns/instance/1"
METADATA_PREFIX = "compleat"
METADATA_KEYS = ("instance-id", "tenant", "offering", "host")
# libvirt domain type per host hypervisor ("test" hosts are libvirt's test driver, used by tests).
DOMAIN_TYPES = {"kvm": "kvm", "qemu": "qemu", "xen": "xen", "test": "qemu"}
# Host hypervisors acceptable for an instance's hypervisor family (QEMU-based or Xen/libxl).
HYPERVISOR_FAMILIES = {"kvm": frozenset({"kvm", "qemu", "test"}), "xen": frozenset({"xen"})}

# Flag values (stable libvirt ABI) so pure code does not need the binding.
AFFECT_LIVE = 1
AFFECT_CONFIG = 2
XML_INACTIVE = 2
UNDEFINE_FLAGS = 1 | 2 | 4  # MANAGED_SAVE | SNAPSHOTS_METADATA | NVRAM
ERR_NO_DOMAIN = 42
ERR_NO_SUPPORT = 3
ERR_INVALID_ARG = 8
ERR_NO_DOMAIN_SNAPSHOT = 72

_CONNECTIONS: dict[str, Any] = {}
# NIC kinds backed by a tap device: only they have virtio-net multiqueue (user-mode networking has not).
TAP_KINDS = frozenset({"network", "bridge"})


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """A disk: ``kind`` file|block|network, ``device`` disk|cdrom."""

    target: str
    source: str
    kind: str = "file"
    device: str = "disk"
    fmt: str = "qcow2"
    bus: str = "virtio"
    readonly: bool = False
    protocol: str | None = None
    hosts: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class NicSpec:
    """A NIC on a libvirt network, a bridge, or user-mode networking (``kind`` network|bridge|user)."""

    mac: str
    kind: str = "network"
    source: str = "default"
    model: str | None = "virtio"
    queues: int = 1  # virtio-net queue pairs (multiqueue when > 1)


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """Everything the cloud stack owns in a domain definition."""

    name: str
    uuid: str
    domain_type: str
    memory_mib: int
    vcpus: int
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    vnc: bool = False
    arch: str = "x86_64"
    cpu_pins: tuple[tuple[int, int], ...] = ()  # (vCPU, pCPU)
    hugepage_kib: int = 0  # page size backing the memory (0: normal pages)
    hostdevs: tuple[str, ...] = ()  # PCI addresses passed through, DDDD:BB:SS.F


# ------------------------------------------------------------------------------------------------
# Device naming
# ------------------------------------------------------------------------------------------------
def disk_bus(domain_type: str) -> str:
    """Paravirtual disk bus of a domain type."""
    return "xen" if domain_type == "xen" else "virtio"


def disk_target(domain_type: str, index: int) -> str:
    """Target name of paravirtual disk ``index`` (0 = root): vda, vdb... or xvda, xvdb..."""
    if not 0 <= index < 26:
        raise VirtError(
            f"Disk index {index} is out of range.", "An instance has at most 26 paravirtual disks."
        )
    return ("xvd" if domain_type == "xen" else "vd") + chr(ord("a") + index)


def seed_disk(domain_type: str, path: str, fmt: str) -> DiskSpec:
    """The NoCloud seed: a read-only CD-ROM for an ISO, a read-only paravirtual disk for vfat."""
    if fmt == "iso":
        bus, target = ("ide", "hdc") if domain_type == "xen" else ("sata", "sda")
        return DiskSpec(target=target, source=path, device="cdrom", fmt="raw", bus=bus, readonly=True)
    return DiskSpec(
        target=disk_target(domain_type, 25), source=path, fmt="raw", bus=disk_bus(domain_type), readonly=True
    )


# ------------------------------------------------------------------------------------------------
# XML building
# ------------------------------------------------------------------------------------------------
def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def disk_element(disk: DiskSpec) -> ET.Element:
    """``<disk>`` for a DiskSpec."""
    el = ET.Element("disk", {"type": disk.kind, "device": disk.device})
    _sub(el, "driver", name="qemu", type=disk.fmt)
    if disk.kind == "network":
        src = _sub(el, "source", protocol=disk.protocol or "iscsi", name=disk.source)
        for host, port in disk.hosts:
            _sub(src, "host", name=host, port=str(port))
    elif disk.kind == "block":
        _sub(el, "source", dev=disk.source)
    else:
        _sub(el, "source", file=disk.source)
    _sub(el, "target", dev=disk.target, bus=disk.bus)
    if disk.readonly:
        _sub(el, "readonly")
    return el


def nic_element(nic: NicSpec) -> ET.Element:
    """``<interface>`` for a NicSpec."""
    el = ET.Element("interface", {"type": nic.kind})
    _sub(el, "mac", address=nic.mac)
    if nic.kind == "network":
        _sub(el, "source", network=nic.source)
    elif nic.kind == "bridge":
        _sub(el, "source", bridge=nic.source)
    if nic.model:
        _sub(el, "model", type=nic.model)
    if nic.model == "virtio" and nic.queues > 1 and nic.kind in TAP_KINDS:
        _sub(el, "driver", queues=str(nic.queues))
    return el


def pci_address_attrs(address: str) -> dict[str, str]:
    """``<address>`` attributes of a PCI address ``DDDD:BB:SS.F``."""
    dom, bus, rest = address.split(":")
    slot, function = rest.split(".")
    return {"domain": f"0x{dom}", "bus": f"0x{bus}", "slot": f"0x{slot}", "function": f"0x{function}"}


def hostdev_element(address: str) -> ET.Element:
    """``<hostdev mode='subsystem' type='pci' managed='yes'>`` passing one host PCI device through."""
    el = ET.Element("hostdev", {"mode": "subsystem", "type": "pci", "managed": "yes"})
    _sub(_sub(el, "source"), "address", **pci_address_attrs(address))
    return el


def _pin_elements(spec: DomainSpec) -> list[ET.Element]:
    """``vcpupin`` per vCPU and an ``emulatorpin`` on the same pCPUs."""
    out = [ET.Element("vcpupin", {"vcpu": str(v), "cpuset": str(c)}) for v, c in spec.cpu_pins]
    if spec.cpu_pins:
        cpus = {c for _v, c in spec.cpu_pins}
        out.append(ET.Element("emulatorpin", {"cpuset": format_cpuset(cpus)}))
    return out


def _set_tuning(root: ET.Element, spec: DomainSpec) -> None:
    """Replace our parts of ``<cputune>`` and ``<memoryBacking>`` (others an operator set stay)."""
    for parent_tag, owned, new in (
        ("cputune", ("vcpupin", "emulatorpin"), _pin_elements(spec)),
        ("memoryBacking", ("hugepages",), _hugepage_elements(spec)),
    ):
        parent = root.find(parent_tag)
        if parent is not None:
            for child in [c for c in parent if c.tag in owned]:
                parent.remove(child)
        if new:
            if parent is None:
                parent = _sub(root, parent_tag)
            parent.extend(new)
        elif parent is not None and not len(parent) and not parent.attrib:
            root.remove(parent)


def _hugepage_elements(spec: DomainSpec) -> list[ET.Element]:
    if not spec.hugepage_kib:
        return []
    el = ET.Element("hugepages")
    _sub(el, "page", size=str(spec.hugepage_kib), unit="KiB")
    return [el]


def metadata_element(values: dict[str, str]) -> ET.Element:
    """Our ``<metadata>`` child: ``<compleat:instance>`` with one element per key."""
    ET.register_namespace(METADATA_PREFIX, METADATA_NS)
    el = ET.Element(f"{{{METADATA_NS}}}instance")
    for key in METADATA_KEYS:
        if key in values:
            _sub(el, f"{{{METADATA_NS}}}{key}", values[key])
    return el


def console_elements(spec: DomainSpec) -> list[ET.Element]:
    """Serial console (and an optional VNC display on loopback)."""
    serial = ET.Element("serial", {"type": "pty"})
    _sub(serial, "target", port="0")
    console = ET.Element("console", {"type": "pty"})
    _sub(console, "target", type="serial", port="0")
    out = [serial, console]
    if spec.vnc:
        graphics = ET.Element("graphics", {"type": "vnc", "autoport": "yes", "listen": "127.0.0.1"})
        _sub(graphics, "listen", type="address", address="127.0.0.1")
        out.append(graphics)
    return out


def _owned_devices(spec: DomainSpec) -> list[ET.Element]:
    return (
        [disk_element(d) for d in spec.disks]
        + [nic_element(n) for n in spec.nics]
        + [hostdev_element(a) for a in spec.hostdevs]
        + console_elements(spec)
    )


def build_xml(spec: DomainSpec) -> str:
    """A new domain definition from owned fields (plus the minimum libvirt needs to boot it)."""
    root = ET.Element("domain", {"type": spec.domain_type})
    _sub(root, "name", spec.name)
    _sub(root, "uuid", spec.uuid)
    _sub(root, "metadata").append(metadata_element(spec.metadata))
    _sub(root, "memory", str(spec.memory_mib * 1024), unit="KiB")
    _sub(root, "currentMemory", str(spec.memory_mib * 1024), unit="KiB")
    _sub(root, "vcpu", str(spec.vcpus), placement="static")
    _set_tuning(root, spec)
    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch=spec.arch)
    _sub(os_el, "boot", dev="hd")
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    devices = _sub(root, "devices")
    for el in _owned_devices(spec):
        devices.append(el)
    return _to_string(root)


def _to_string(root: ET.Element) -> str:
    ET.register_namespace(METADATA_PREFIX, METADATA_NS)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _device_key(el: ET.Element) -> str | None:
    if el.tag == "disk":
        target = el.find("target")
        return "disk:" + target.get("dev", "") if target is not None else None
    if el.tag == "interface":
        mac = el.find("mac")
        return "nic:" + mac.get("address", "").lower() if mac is not None else None
    if el.tag == "hostdev":
        return "pci:" + _hostdev_address(el)
    return None


def _is_pci_hostdev(el: ET.Element) -> bool:
    return el.tag == "hostdev" and el.get("mode") == "subsystem" and el.get("type") == "pci"


def _is_owned_device(el: ET.Element) -> bool:
    return (
        el.tag in ("disk", "interface", "serial", "console")
        or (el.tag == "graphics" and el.get("type") == "vnc")
        or _is_pci_hostdev(el)
    )


def merge_owned(existing_xml: str, spec: DomainSpec) -> str:
    """``existing_xml`` with its owned fields replaced by ``spec`` (addresses of kept devices preserved)."""
    root = ET.fromstring(existing_xml)
    root.set("type", spec.domain_type)
    root.attrib.pop("id", None)
    for tag, text in (("name", spec.name), ("uuid", spec.uuid), ("vcpu", str(spec.vcpus))):
        el = root.find(tag)
        if el is None:
            el = _sub(root, tag)
        el.text = text
    for tag in ("memory", "currentMemory"):
        el = root.find(tag)
        if el is None:
            el = _sub(root, tag)
        el.text = str(spec.memory_mib * 1024)
        el.attrib.clear()
        el.set("unit", "KiB")
    meta = root.find("metadata")
    if meta is None:
        meta = _sub(root, "metadata")
    for old in meta.findall(f"{{{METADATA_NS}}}instance"):
        meta.remove(old)
    meta.append(metadata_element(spec.metadata))
    _set_tuning(root, spec)
    devices = root.find("devices")
    if devices is None:
        devices = _sub(root, "devices")
    addresses: dict[str, ET.Element] = {}
    for el in list(devices):
        if _is_owned_device(el):
            key = _device_key(el)
            addr = el.find("address")
            if key and addr is not None:
                addresses[key] = addr
            devices.remove(el)
    for el in _owned_devices(spec):
        key = _device_key(el)
        if key in addresses:
            el.append(addresses[key])
        devices.append(el)
    return _to_string(root)


# ------------------------------------------------------------------------------------------------
# Owned-field comparison
# ------------------------------------------------------------------------------------------------
def _memory_kib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        return 0
    factor = {
        "b": 1 / 1024,
        "bytes": 1 / 1024,
        "k": 1,
        "kib": 1,
        "m": 1024,
        "mib": 1024,
        "g": 1024**2,
        "gib": 1024**2,
    }.get(el.get("unit", "KiB").lower(), 1)
    return int(int(el.text.strip()) * factor)


def _disk_fields(el: ET.Element) -> dict[str, Any]:
    src = el.find("source")
    target = el.find("target")
    driver = el.find("driver")
    kind = el.get("type", "file")
    source = ""
    hosts: list[str] = []
    if src is not None:
        source = src.get({"network": "name", "block": "dev"}.get(kind, "file"), "")
        hosts = [f"{h.get('name')}:{h.get('port', '')}" for h in src.findall("host")]
    return {
        "target": target.get("dev", "") if target is not None else "",
        "bus": target.get("bus", "") if target is not None else "",
        "kind": kind,
        "device": el.get("device", "disk"),
        "source": source,
        "hosts": hosts,
        "protocol": src.get("protocol") if src is not None and kind == "network" else None,
        "format": driver.get("type", "") if driver is not None else "",
        "readonly": el.find("readonly") is not None,
    }


def _nic_fields(el: ET.Element) -> dict[str, Any]:
    src = el.find("source")
    mac = el.find("mac")
    model = el.find("model")
    kind = el.get("type", "")
    return {
        "kind": kind,
        "mac": mac.get("address", "").lower() if mac is not None else "",
        "source": (
            src.get({"network": "network", "bridge": "bridge"}.get(kind, ""), "") if src is not None else ""
        ),
        "model": model.get("type") if model is not None else None,
        "queues": _queues(el),
    }


def _queues(el: ET.Element) -> int:
    driver = el.find("driver")
    text = driver.get("queues", "1") if driver is not None else "1"
    return int(text) if text.isdigit() else 1


def _hostdev_address(el: ET.Element) -> str:
    """``DDDD:BB:SS.F`` of a PCI hostdev's host address."""
    addr = el.find("source/address")
    if addr is None:
        return ""

    def part(name: str, width: int) -> str:
        return f"{int(addr.get(name, '0'), 0):0{width}x}"

    return f"{part('domain', 4)}:{part('bus', 2)}:{part('slot', 2)}.{int(addr.get('function', '0'), 0):x}"


def _pins(root: ET.Element) -> list[list[int | str]]:
    return sorted(
        [[int(p.get("vcpu", "0")), p.get("cpuset", "")] for p in root.findall("cputune/vcpupin")],
        key=lambda p: p[0],
    )


def _hugepage_size(root: ET.Element) -> int:
    page = root.find("memoryBacking/hugepages/page")
    if page is not None:
        size = ET.Element("size", {"unit": page.get("unit", "KiB")})
        size.text = page.get("size", "0")
        return _memory_kib(size)
    return -1 if root.find("memoryBacking/hugepages") is not None else 0  # -1: default size


def owned_fields(xml: str) -> dict[str, Any]:
    """The owned fields of a domain definition, canonical (sorted devices) for comparison and diff."""
    root = ET.fromstring(xml)
    meta_el = root.find(f"metadata/{{{METADATA_NS}}}instance")
    metadata = {}
    if meta_el is not None:
        for child in meta_el:
            metadata[child.tag.split("}", 1)[-1]] = (child.text or "").strip()
    devices = root.find("devices")
    devs = list(devices) if devices is not None else []
    return {
        "type": root.get("type"),
        "name": (root.findtext("name") or "").strip(),
        "uuid": (root.findtext("uuid") or "").strip().lower(),
        "memory_kib": _memory_kib(root.find("memory")),
        "vcpus": int((root.findtext("vcpu") or "0").strip()),
        "metadata": dict(sorted(metadata.items())),
        "disks": sorted((_disk_fields(e) for e in devs if e.tag == "disk"), key=lambda d: d["target"]),
        "nics": sorted((_nic_fields(e) for e in devs if e.tag == "interface"), key=lambda n: n["mac"]),
        "serial_console": any(e.tag == "serial" and e.get("type") == "pty" for e in devs),
        "vnc": any(e.tag == "graphics" and e.get("type") == "vnc" for e in devs),
        "cpu_pins": _pins(root),
        "hugepage_kib": _hugepage_size(root),
        "hostdevs": sorted(_hostdev_address(e) for e in devs if _is_pci_hostdev(e)),
    }


def spec_fields(spec: DomainSpec) -> dict[str, Any]:
    """Owned fields of ``spec`` in the same canonical form as ``owned_fields``."""
    return owned_fields(build_xml(spec))


def changed_fields(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Names of the owned fields that differ."""
    return sorted(k for k in desired if desired[k] != actual.get(k))


# ------------------------------------------------------------------------------------------------
# Connections and lifecycle (need the libvirt binding)
# ------------------------------------------------------------------------------------------------
def require_libvirt() -> None:
    """Raise an actionable error when the binding is missing."""
    if not HAS_LIBVIRT:
        raise VirtError(
            "The libvirt Python binding is not installed.",
            "Install python3-libvirt (Debian) or libvirt-python (pip) on the machine running the module.",
        )


def _quiet(_ctx: Any, _err: Any) -> None:
    """libvirt's default handler prints every error to stderr; errors are raised anyway."""


def connect(uri: str) -> Any:
    """An open connection to ``uri`` (one per URI and process, reused)."""
    require_libvirt()
    conn = _CONNECTIONS.get(uri)
    if conn is not None:
        # isAlive() stays true after the daemon died until a call fails: one cheap round trip
        # tells a live connection from a dead one (long-lived callers: host_health, tests).
        try:
            if conn.isAlive() and conn.getLibVersion():
                return conn
        except libvirt.libvirtError:
            pass
        _CONNECTIONS.pop(uri, None)
    libvirt.registerErrorHandler(_quiet, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise VirtError(
            f"Cannot connect to libvirt at {uri}: {exc}",
            "Is libvirtd (and virtlogd) running on the host and the URI right? Try: virsh -c URI list.",
            uri=uri,
        ) from exc
    _CONNECTIONS[uri] = conn
    return conn


def try_connect(uri: str, timeout: float) -> tuple[Any | None, str]:
    """(connection, "") when libvirt at ``uri`` answers within ``timeout`` seconds, else (None, reason).

    The attempt runs in a daemon thread: a dead host behind ``qemu+ssh://`` can block for minutes.
    """
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["conn"] = connect(uri)
        except VirtError as exc:
            box["error"] = exc.msg

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    if "conn" in box:
        return box["conn"], ""
    return None, box.get("error", f"no answer within {timeout:g} s")


def forget_connections() -> None:
    """Close every cached connection (tests, long-lived controllers)."""
    for conn in _CONNECTIONS.values():
        with contextlib.suppress(Exception):  # closing is best effort
            conn.close()
    _CONNECTIONS.clear()


def error_code(exc: Exception) -> int | None:
    """libvirt error code of an exception (None for other exceptions)."""
    getter = getattr(exc, "get_error_code", None)
    return getter() if getter else None


def call(what: str, fn: Callable[..., Any], *args: Any, hint: str = "") -> Any:
    """Run a libvirt call; turn libvirtError into VirtError saying what was attempted."""
    try:
        return fn(*args)
    except Exception as exc:
        if HAS_LIBVIRT and isinstance(exc, libvirt.libvirtError):
            raise VirtError(
                f"libvirt could not {what}: {exc}",
                hint or "See the libvirtd log on the host.",
                libvirt_code=error_code(exc),
            ) from exc
        raise


def _find_domain(conn: Any, method: str, key: str) -> Any | None:
    """The domain ``conn.<method>(key)`` returns, or None when libvirt has no such domain."""
    try:
        return getattr(conn, method)(key)
    except Exception as exc:
        if error_code(exc) == ERR_NO_DOMAIN:
            return None
        raise VirtError(f"libvirt lookup of domain {key} failed: {exc}", "See the libvirtd log.") from exc


def lookup(conn: Any, uuid: str) -> Any | None:
    """The domain with ``uuid``, or None."""
    return _find_domain(conn, "lookupByUUIDString", uuid)


def lookup_name(conn: Any, name: str) -> Any | None:
    """The domain called ``name``, or None."""
    return _find_domain(conn, "lookupByName", name)


def power_state(dom: Any | None) -> str:
    """absent | running | stopped | paused | other."""
    if dom is None:
        return "absent"
    state = dom.state()[0]
    return {
        1: "running",
        2: "running",
        3: "paused",
        4: "running",
        5: "stopped",
        6: "stopped",
        7: "paused",
    }.get(state, "other")


def inactive_xml(dom: Any) -> str:
    """The persistent definition."""
    return call("read the domain definition", dom.XMLDesc, XML_INACTIVE)


def define(conn: Any, xml: str) -> Any:
    """Define (or redefine) a domain."""
    return call(
        "define the domain",
        conn.defineXML,
        xml,
        hint="The generated XML was refused; check the host's domain types (virsh capabilities).",
    )


def start(dom: Any) -> None:
    """Start a defined domain."""
    call(
        "start the domain",
        dom.create,
        hint="Check that virtlogd runs and the disk files exist and are readable by libvirt.",
    )


def stop(
    dom: Any,
    timeout: float,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """ACPI shutdown, wait up to ``timeout`` seconds, then destroy.  Returns already|graceful|forced."""
    if not dom.isActive():
        return "already"
    try:
        dom.shutdown()
    except Exception as exc:
        if error_code(exc) is None:
            raise
    deadline = clock() + timeout
    while clock() < deadline:
        if not dom.isActive():
            return "graceful"
        sleep(poll)
    if not dom.isActive():
        return "graceful"
    try:
        dom.destroy()
    except Exception as exc:
        if dom.isActive():
            raise VirtError(f"Could not force off the domain: {exc}", "See the libvirtd log.") from exc
    return "forced"


def undefine(dom: Any) -> None:
    """Destroy if running, then undefine with snapshot metadata, managed save and NVRAM.

    Drivers that reject a flag (the test driver has no NVRAM) are retried with fewer flags.
    """
    if dom.isActive():
        call("force off the domain", dom.destroy)
    for flags in (UNDEFINE_FLAGS, UNDEFINE_FLAGS & ~4):
        try:
            dom.undefineFlags(flags)
            return
        except Exception as exc:
            if error_code(exc) not in (ERR_NO_SUPPORT, ERR_INVALID_ARG):
                raise VirtError(
                    f"libvirt could not undefine the domain: {exc}", "See the libvirtd log."
                ) from exc
    call("undefine the domain", dom.undefine)


def disk_xml(disk: DiskSpec) -> str:
    """Device XML of a disk (for attach/detach)."""
    return ET.tostring(disk_element(disk), encoding="unicode")


def change_device(dom: Any, device_xml: str, attach: bool, config_fallback: Callable[[], None]) -> str:
    """Attach or detach a device live and persistently.  Returns live+config | config.

    A running domain gets ``LIVE|CONFIG``.  A stopped one gets ``CONFIG``; when the driver cannot
    change devices that way, ``config_fallback`` redefines the domain instead.
    """
    fn = dom.attachDeviceFlags if attach else dom.detachDeviceFlags
    what = "attach the device" if attach else "detach the device"
    if dom.isActive():
        call(
            what + " (live and persistent)",
            fn,
            device_xml,
            AFFECT_LIVE | AFFECT_CONFIG,
            hint="The guest or driver refused hot-plug; stop the instance and retry.",
        )
        return "live+config"
    try:
        fn(device_xml, AFFECT_CONFIG)
    except Exception as exc:
        if error_code(exc) != ERR_NO_SUPPORT:
            raise VirtError(f"libvirt could not {what}: {exc}", "See the libvirtd log.") from exc
        config_fallback()
    return "config"


def live_xml(dom: Any) -> str:
    """The running definition (devices as the guest has them now)."""
    return call("read the live definition", dom.XMLDesc, 0)


def live_disk_xml(dom: Any, target: str) -> str | None:
    """Device XML of the live disk on ``target`` (what a live detach needs), or None."""
    for el in ET.fromstring(live_xml(dom)).findall("devices/disk"):
        dev = el.find("target")
        if dev is not None and dev.get("dev") == target:
            return ET.tostring(el, encoding="unicode")
    return None


def change_live_device(dom: Any, device_xml: str, attach: bool) -> None:
    """Attach or detach a device in the running guest only (the definition is handled apart)."""
    fn = dom.attachDeviceFlags if attach else dom.detachDeviceFlags
    call(
        ("attach" if attach else "detach") + " the device in the running guest",
        fn,
        device_xml,
        AFFECT_LIVE,
        hint="The guest or driver refused hot-plug; stop and start the instance to apply the store's view.",
    )


def console_info(uri: str, dom: Any | None, name: str) -> dict[str, Any]:
    """How to reach the console: a virsh command, the serial PTY and VNC display when running."""
    info: dict[str, Any] = {"command": f"virsh -c {uri} console {name}", "pty": None, "vnc": None}
    if dom is None or not dom.isActive():
        return info
    root = ET.fromstring(call("read the live definition", dom.XMLDesc, 0))
    serial = root.find("devices/serial[@type='pty']/source")
    if serial is not None:
        info["pty"] = serial.get("path")
    vnc = root.find("devices/graphics[@type='vnc']")
    if vnc is not None and vnc.get("port") not in (None, "-1"):
        info["vnc"] = {"listen": vnc.get("listen", "127.0.0.1"), "port": int(vnc.get("port", "0"))}
    return info


# ------------------------------------------------------------------------------------------------
# Internal snapshots
# ------------------------------------------------------------------------------------------------
def snapshot_names(dom: Any) -> list[str]:
    """Names of the domain's snapshots, sorted."""
    return sorted(s.getName() for s in call("list snapshots", dom.listAllSnapshots, 0))


def snapshot_xml(name: str, description: str = "") -> str:
    """``<domainsnapshot>`` for an internal snapshot."""
    root = ET.Element("domainsnapshot")
    _sub(root, "name", name)
    if description:
        _sub(root, "description", description)
    return ET.tostring(root, encoding="unicode")


def find_snapshot(dom: Any, name: str) -> Any | None:
    """A snapshot by name, or None."""
    try:
        return dom.snapshotLookupByName(name, 0)
    except Exception as exc:
        if error_code(exc) == ERR_NO_DOMAIN_SNAPSHOT:
            return None
        raise VirtError(f"libvirt could not look up snapshot {name}: {exc}", "See the libvirtd log.") from exc


def domain_names(conn: Any) -> list[str]:
    """Names of every domain on a connection, sorted."""
    return sorted(d.name() for d in call("list domains", conn.listAllDomains, 0))


def metadata_of(dom: Any) -> dict[str, str]:
    """Our metadata element of a domain's persistent definition."""
    return owned_fields(inactive_xml(dom))["metadata"]


def spec_disk_sources(disks: Sequence[DiskSpec]) -> list[str]:
    """Source of every disk (for messages and tests)."""
    return [d.source for d in disks]
