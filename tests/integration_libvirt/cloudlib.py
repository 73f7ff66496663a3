# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the libvirt integration tests share: the modules run against one store, the real clients
(virsh, qemu-img, isoinfo) read back what they did."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.modules import hypervisor


class Cloud:
    """The modules against one store in the scratch directory, on the libvirt at ``uri``."""

    def __init__(self, run_module, workdir: Path, uri: str, tag: str) -> None:
        self.run_module, self.dir, self.uri, self.tag = run_module, workdir, uri, tag
        self.store = str(workdir / "cloud.db")

    def __call__(self, module, check: bool = False, expect_failure: bool = False, **args):
        return self.run_module(
            module, {"store": self.store, **args}, check=check, expect_failure=expect_failure
        )

    def name(self, short: str) -> str:
        """A domain name that belongs to this test (the fixtures remove every one at the end)."""
        return f"{self.tag}-{short}"

    def add_hosts(self, *names: str, **kw: Any) -> None:
        """Register hosts on this libvirt, each with its own storage dir (4 vCPU, 4 GiB by default)."""
        for name in names:
            (self.dir / name).mkdir()
            args = {"hypervisor": "qemu", "vcpus": 4, "ram_mb": 4096, **kw}
            self(hypervisor, name=name, uri=self.uri, storage_dir=str(self.dir / name), **args)

    def cleanup(self, *pools: Any) -> None:
        """Remove this test's domains, and the given storage pools with their volumes."""
        conn = virt.connect(self.uri)
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(self.tag):
                virt.undefine(dom)
        for pool in pools:
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            if pool.isActive():
                pool.destroy()
            pool.undefine()


class TwoDaemonCloud(Cloud):
    """The modules against one store; host hv-a on a private daemon, host hv-b on the suite's."""

    def __init__(self, run_module, workdir: Path, tag: str, uri_a: str, uri_b: str) -> None:
        super().__init__(run_module, workdir, uri_b, tag)
        self.uri_a, self.uri_b = uri_a, uri_b

    def __call__(self, module, check: bool = False, expect_failure: bool = False, **args):
        # Every Ansible task is a new process with no libvirt connection yet; so is every call here
        # (daemon A is killed and restarted under the cached connection).
        virt.forget_connections()
        return super().__call__(module, check=check, expect_failure=expect_failure, **args)


def dir_pool(uri: str, name: str, path: Path) -> Any:
    """A started libvirt ``dir`` pool at ``path`` (created)."""
    path.mkdir()
    pool = virt.connect(uri).storagePoolDefineXML(
        f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>", 0
    )
    pool.create(0)
    return pool


def virsh(uri: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``virsh -c URI ARGS`` (asserting success unless ``check`` is false)."""
    proc = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, check=False)
    assert not check or proc.returncode == 0, f"virsh -c {uri} {' '.join(args)}: {proc.stderr}"
    return proc


def wait_for(what: str, check, timeout: float = 30.0) -> None:
    """Poll ``check`` every 0.1 s until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def seed_meta(path: str) -> dict[str, Any]:
    """The NoCloud ``meta-data`` inside a seed ISO (isoinfo), parsed as cloud-init parses it (YAML)."""
    return yaml.safe_load(
        subprocess.run(
            ["isoinfo", "-J", "-i", path, "-x", "/meta-data"], capture_output=True, text=True, check=True
        ).stdout
    )


def virtual_size(path: str) -> int:
    """qemu-img's virtual size (``-U``: the image may be open in a running QEMU)."""
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)["virtual-size"]


def empty_template(path: Path, size: str = "64M") -> str:
    """An empty qcow2: SeaBIOS finds nothing to boot and keeps the domain running."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return str(path)


# The tenant network hook of the role compleat.cloud.tenant_vtep, installed into a private daemon
HOOK_VTEP_IP = "192.0.2.123"  # TEST-NET-1: on no interface, reaches nothing (VXLAN needs no route to bind)
HOOK_MTU = 8950


def install_tenant_vtep_hook(base: Path, vtep_ip: str = HOOK_VTEP_IP, mtu: int = HOOK_MTU) -> Path:
    """Install the role's QEMU hook as ``base/etc/hooks/qemu`` (the private daemon's /etc/libvirt)
    with its library, configuration and lock under ``base/tenant-vtep`` -- the role's file, only its
    three path constants rewritten. Returns the configuration file."""
    root = Path(__file__).resolve().parents[2]
    home = base / "tenant-vtep"
    home.mkdir()
    shutil.copy(root / "plugins" / "module_utils" / "cloud" / "vtep.py", home / "vtep.py")
    config = home / "tenant-vtep.json"
    config.write_text(json.dumps({"vtep_ip": vtep_ip, "mtu": mtu, "neigh_suppress": False}))
    text = (root / "roles" / "tenant_vtep" / "files" / "qemu_hook.py").read_text()
    for key, value in (("LIB_DIR", home), ("CONFIG", config), ("LOCK", home / "lock")):
        (line,) = [line for line in text.splitlines() if line.startswith(f"{key} = ")]
        text = text.replace(line, f'{key} = "{value}"')
    hook = base / "etc" / "hooks" / "qemu"
    hook.parent.mkdir()
    hook.write_text(f"#!/usr/bin/python3\n{text}")  # the interpreter line, as the role writes it
    hook.chmod(0o755)
    return config
