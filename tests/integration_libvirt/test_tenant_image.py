# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tiny tenant image (scripts/images/build-tenant-image.sh, docs/tenant-image.md) booted by
plain QEMU (TCG) the way libvirt runs a cloud instance: root disk on virtio (booted by SeaBIOS
through syslinux), a NoCloud seed written by the stack's own code (``seed.seed_files`` +
``seed.write_seed``: an ISO on a SATA CD-ROM behind an AHCI controller, or a vfat paravirtual disk),
a raw data disk, and a virtio NIC on a tap device inside a network namespace this test creates
(all test traffic stays in that namespace).

Checks: the READY line on the serial console, ping of the instance's address from the namespace,
/cgi-bin/volume and /cgi-bin/id over HTTP; a reset (reboot) and a fresh QEMU on the same volume
(what an evacuation to another hypervisor amounts to) find the same volume line; the ACPI power
button powers the guest off; a DHCP NIC (busybox udhcpd in the namespace) and no data volume give
``volume=none``. Boot times to READY are printed (never asserted).

Run (as root):
    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/integration_libvirt/test_tenant_image.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import seed
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.overlay import subprocess_runner

pytestmark = pytest.mark.libvirt
ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "images" / "build-tenant-image.sh"
BOOT_TIMEOUT = float(os.environ.get("COMPLEAT_TENANT_BOOT_TIMEOUT", "300"))
READY = re.compile(
    r"^COMPLEAT-TENANT-READY instance-id=(?P<iid>\S+) hostname=(?P<host>\S+) ip=(?P<ip>\S+) "
    r"volume=(?P<volume>none|written|found)\s*$",
    re.M,
)
GUEST_MAC = "52:54:00:7e:11:05"
GUEST_IP, GATEWAY = "10.200.0.5", "10.200.0.1"


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, **kw)


@pytest.fixture(scope="module")
def image() -> Path:
    """The built (or cached) tenant image."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, tap devices)")
    for binary in ("qemu-system-x86_64", "qemu-img", "ip", "curl", "ping"):
        if not shutil.which(binary):
            pytest.skip(f"{binary} not installed")
    proc = sh(str(BUILD), check=False)
    assert proc.returncode == 0, f"build-tenant-image.sh failed:\n{proc.stderr[-3000:]}"
    disk = ROOT / ".cache" / "images" / "tenant-tiny" / "disk.qcow2"
    manifest = json.loads((disk.parent / "manifest.json").read_text())
    print(
        f"\ntenant image: disk.qcow2 {manifest['files']['disk.qcow2']['bytes']} B "
        f"(virtual {manifest['disk_virtual_bytes']} B), vmlinuz {manifest['files']['vmlinuz']['bytes']} B, "
        f"initrd.gz {manifest['files']['initrd.gz']['bytes']} B, kernel {manifest['kernel_version']}"
    )
    return disk


class Netns:
    """A network namespace holding the guest's tap (the instance's gateway address on it)."""

    def __init__(self, name: str, cidr: str) -> None:
        self.name, self.tap = name, "tap0"
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "tuntap", "add", "dev", self.tap, "mode", "tap")
        sh("ip", "-n", name, "link", "set", self.tap, "mtu", "9000", "up")
        sh("ip", "-n", name, "addr", "add", cidr, "dev", self.tap)

    def run(self, *argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *argv, check=check, timeout=timeout)

    def delete(self) -> None:
        # Anything this test started in the namespace has been killed by PID before.
        sh("ip", "netns", "delete", self.name, check=False)


class Guest:
    """One QEMU process (TCG) running the tenant image in ``netns``."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        netns: Netns,
        *,
        overlay: Path,
        seed_path: Path,
        seed_format: str,
        data: Path | None,
        memory: int = 128,
    ) -> None:
        self.dir, self.name = workdir, name
        self.serial = workdir / f"{name}.serial"
        self.qmp_path = workdir / f"{name}.qmp"
        self.pidfile = workdir / f"{name}.pid"
        self.serial.write_text("")
        argv = [
            "qemu-system-x86_64",
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            str(memory),
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-drive",
            f"file={overlay},if=none,id=root,format=qcow2",
            "-device",
            "virtio-blk-pci,drive=root,bootindex=1",
        ]
        if data is not None:
            argv += [
                "-drive",
                f"file={data},if=none,id=data,format=raw",
                "-device",
                "virtio-blk-pci,drive=data",
            ]
        if seed_format == "iso":  # libvirt's <target dev='sda' bus='sata'/> cdrom on a pc machine
            argv += [
                "-device",
                "ich9-ahci,id=sata0",
                "-drive",
                f"file={seed_path},if=none,id=seed,media=cdrom,format=raw,readonly=on",
                "-device",
                "ide-cd,bus=sata0.0,drive=seed",
            ]
        else:  # <target dev='vdz' bus='virtio'/> read-only
            argv += [
                "-drive",
                f"file={seed_path},if=none,id=seed,format=raw,readonly=on",
                "-device",
                "virtio-blk-pci,drive=seed",
            ]
        argv += [
            "-netdev",
            f"tap,id=net0,ifname={netns.tap},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=net0,mac={GUEST_MAC}",
            "-serial",
            f"file:{self.serial}",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
            "-pidfile",
            str(self.pidfile),
            "-daemonize",
        ]
        self.started = time.monotonic()
        netns.run(*argv, check=True)
        self.pid = int(self.pidfile.read_text().strip())

    def console(self) -> str:
        return self.serial.read_text(errors="replace").replace("\r", "")

    def wait_ready(self, count: int = 1) -> tuple[re.Match, float]:
        """The ``count``-th READY line and the seconds since QEMU started."""
        deadline = self.started + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            text = self.console()
            found = list(READY.finditer(text))
            if len(found) >= count:
                return found[count - 1], time.monotonic() - self.started
            assert "COMPLEAT-TENANT-FAILED" not in text, text[-3000:]
            assert self.alive(), f"QEMU exited before READY:\n{text[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"no READY line #{count} after {BOOT_TIMEOUT:.0f}s:\n{self.console()[-3000:]}")

    def qmp(self, command: str) -> dict:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(str(self.qmp_path))
            reader = sock.makefile("r")
            json.loads(reader.readline())  # greeting
            for cmd in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")
                while True:
                    reply = json.loads(reader.readline())
                    if "return" in reply or "error" in reply:
                        break
            return reply

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        with contextlib.suppress(OSError):
            if " Z " in Path(f"/proc/{self.pid}/stat").read_text():
                return False
        return True

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.2)
        return False

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not self.wait_exit(15):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)


@pytest.fixture
def lab(tmp_path):
    """Namespaces, guests and helper processes of one test, all removed at the end."""
    made: dict[str, list] = {"netns": [], "guests": [], "pids": []}
    yield made
    for guest in made["guests"]:
        guest.kill()
    for pid in made["pids"]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for netns in made["netns"]:
        netns.delete()


def tag() -> str:
    return f"tiny-t-{uuid.uuid4().hex[:6]}"


def make_seed(workdir: Path, fmt: str, iid: str, hostname: str, networks: list[dict]) -> Path:
    files = seed.seed_files(iid, hostname, ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA test"], networks)
    path = workdir / f"seed.{fmt}"
    seed.write_seed(str(path), files, fmt, subprocess_runner)
    return path


def overlay_of(image: Path, workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2", str(path), "1G")
    return path


def http(netns: Netns, path: str) -> str:
    proc = netns.run("curl", "-s", "--max-time", "30", f"http://{GUEST_IP}{path}")
    assert proc.returncode == 0, f"curl {path}: rc={proc.returncode} {proc.stderr}"
    return proc.stdout.strip()


def test_iso_seed_static_ip_volume_survives_reboot_and_new_host(image, lab, tmp_path):
    name = tag()
    netns = Netns(name, f"{GATEWAY}/24")
    lab["netns"].append(netns)
    iid = seed.instance_id_for(str(uuid.uuid4()))
    networks = [
        {
            "mac": GUEST_MAC,
            "ip": f"{GUEST_IP}/24",
            "gateway": GATEWAY,
            "nameservers": ["10.0.1.10"],
            "mtu": 8950,
        }
    ]
    seed_path = make_seed(tmp_path, "iso", iid, "tiny-web", networks)
    data = tmp_path / "data.raw"
    with data.open("wb") as fh:
        fh.truncate(64 * 1024**2)

    def iso_guest(name: str, root: str) -> Guest:
        """A QEMU of the image on a fresh root overlay, with the ISO seed and the shared volume."""
        return Guest(
            tmp_path,
            name,
            netns,
            overlay=overlay_of(image, tmp_path, root),
            seed_path=seed_path,
            seed_format="iso",
            data=data,
        )

    # First boot: the volume is blank, the guest stamps it.
    guest = iso_guest("boot1", "root1")
    lab["guests"].append(guest)
    ready, seconds = guest.wait_ready()
    print(f"\nboot to READY (single TCG, 128 MiB, ISO seed on SATA): {seconds:.1f}s")
    assert ready["iid"] == iid and ready["host"] == "tiny-web"
    assert ready["ip"] == f"{GUEST_IP}/24" and ready["volume"] == "written", ready.group(0)
    assert "eth0 mac=52:54:00:7e:11:05 mtu=8950" in guest.console()
    ping = netns.run("ping", "-c", "3", "-W", "5", GUEST_IP)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    line = http(netns, "/cgi-bin/volume")
    assert re.fullmatch(
        rf"COMPLEAT-DATA instance-id={re.escape(iid)} written=\d+ nonce=[0-9a-f]{{32}}", line
    ), line
    assert http(netns, "/cgi-bin/id") == f"instance-id={iid} hostname=tiny-web"
    assert data.read_bytes()[:512].rstrip(b"\0") == (line + "\n").encode()

    # Reboot (reset) in the same QEMU: the stamp is found, not rewritten.
    reset_at = time.monotonic()
    assert "error" not in guest.qmp("system_reset")
    ready, _seconds = guest.wait_ready(count=2)
    print(f"reboot (reset) to READY: {time.monotonic() - reset_at:.1f}s")
    assert ready["volume"] == "found", ready.group(0)
    assert http(netns, "/cgi-bin/volume") == line

    # ACPI power button (what `virsh shutdown` sends): busybox acpid powers the guest off.
    assert "error" not in guest.qmp("system_powerdown")
    assert guest.wait_exit(120), f"no poweroff after the power button:\n{guest.console()[-2000:]}"
    assert "tenant: power button: poweroff" in guest.console()

    # A fresh QEMU with a new root overlay on the same volume: an evacuated instance.
    guest2 = iso_guest("boot2", "root2")
    lab["guests"].append(guest2)
    ready, seconds = guest2.wait_ready()
    print(f"new QEMU, same volume, to READY: {seconds:.1f}s")
    assert ready["volume"] == "found" and ready["iid"] == iid, ready.group(0)
    assert http(netns, "/cgi-bin/volume") == line


def test_vfat_seed_dhcp_without_volume(image, lab, tmp_path):
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("busybox not installed (udhcpd)")
    name = tag()
    netns = Netns(name, f"{GATEWAY}/24")
    lab["netns"].append(netns)
    conf = tmp_path / "udhcpd.conf"
    leases = tmp_path / "udhcpd.leases"
    leases.write_text("")
    conf.write_text(
        f"start {GUEST_IP}\nend {GUEST_IP}\ninterface {netns.tap}\nlease_file {leases}\n"
        f"pidfile {tmp_path / 'udhcpd.pid'}\noption subnet 255.255.255.0\noption router {GATEWAY}\n"
        "option lease 3600\n"
    )
    udhcpd = subprocess.Popen(
        ["ip", "netns", "exec", name, busybox, "udhcpd", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lab["pids"].append(udhcpd.pid)
    iid = seed.instance_id_for(str(uuid.uuid4()))
    seed_path = make_seed(tmp_path, "vfat", iid, "tiny-dhcp", [{"mac": GUEST_MAC}])
    guest = Guest(
        tmp_path,
        "dhcp",
        netns,
        overlay=overlay_of(image, tmp_path, "root"),
        seed_path=seed_path,
        seed_format="vfat",
        data=None,
        memory=96,
    )
    lab["guests"].append(guest)
    ready, seconds = guest.wait_ready()
    print(f"\nboot to READY (single TCG, 96 MiB, vfat seed, DHCP): {seconds:.1f}s")
    assert ready.group(0).strip() == (
        f"COMPLEAT-TENANT-READY instance-id={iid} hostname=tiny-dhcp ip={GUEST_IP}/24 volume=none"
    )
    assert netns.run("ping", "-c", "2", "-W", "5", GUEST_IP).returncode == 0
    assert http(netns, "/cgi-bin/volume") == "none"
    assert http(netns, "/cgi-bin/id") == f"instance-id={iid} hostname=tiny-dhcp"
    udhcpd.terminate()
    udhcpd.wait(timeout=15)
