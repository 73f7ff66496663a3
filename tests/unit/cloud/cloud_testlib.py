# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small cloud for module tests: a store, a template, hosts on libvirt's test driver."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f user@test"


@dataclass
class Cloud:
    """Paths and a runner bound to one store."""

    tmp: Path
    store: str
    run_module: object

    def args(self, **kw):
        return {"store": self.store, **kw}

    def run(self, module, check=False, diff=False, **kw):
        return self.run_module(module, self.args(**kw), check=check, diff=diff)

    def ok(self, module, check=False, diff=False, **kw):
        failed, result = self.run(module, check=check, diff=diff, **kw)
        assert not failed, result
        return result

    def fails(self, module, check=False, **kw):
        failed, result = self.run(module, check=check, **kw)
        assert failed, result
        return result

    def add_host(self, name, uri, **kw):
        """Register another test-driver host with its own storage dir (ratio 1: capacity is exact)."""
        from ansible_collections.compleat.cloud.plugins.modules import hypervisor

        (self.tmp / name).mkdir()
        args = {"hypervisor": "test", "cpu_ratio": 1.0, "storage_dir": str(self.tmp / name), **kw}
        return self.ok(hypervisor, name=name, uri=uri, **args)


def make_template(path: Path, size: str = "64M") -> str:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return str(path)
