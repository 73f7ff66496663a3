# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The compleat.cloud.cloud inventory plugin, run through ansible-inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.compleat.cloud.plugins.inventory.cloud import InventoryModule, first_address
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store

ROOT = Path(__file__).resolve().parents[3]


def fill(path: str) -> None:
    with Store.open(path) as s:
        hosts = [
            s.insert(
                "hosts",
                {
                    "name": n,
                    "uri": "test:///default",
                    "hypervisor": "kvm",
                    "vcpus": 8,
                    "ram_mb": 8192,
                    "storage_dir": "/srv",
                },
            )
            for n in ("hv1", "hv-2")
        ]
        off = s.insert("offerings", {"name": "small", "vcpus": 1, "ram_mb": 512})
        img = s.insert(
            "images",
            {
                "name": "debian-12",
                "kind": "template",
                "os": "debian",
                "format": "qcow2",
                "path": "/t",
                "checksum": "sha256:0",
                "size_bytes": 1,
                "virtual_size": 1,
                "mtime": 0,
            },
        )
        for i, (host, tenant, state) in enumerate(
            [(0, "acme", "running"), (1, "acme", "stopped"), (1, "beta co", "running")]
        ):
            s.insert(
                "instances",
                {
                    "uuid": f"u{i}",
                    "name": f"vm{i}",
                    "instance_id": f"iid-u{i}",
                    "tenant": tenant,
                    "host_id": hosts[host]["id"],
                    "offering_id": off["id"],
                    "image_id": img["id"],
                    "vcpus": 1,
                    "ram_mb": 512,
                    "state": state,
                    "domain_type": "kvm",
                    "networks": [{"mac": "52:54:00:00:00:01", "ip": f"10.0.0.{i + 10}/24"}] if i == 0 else [],
                },
            )


def plain(value):
    """ansible-inventory marks strings from plugins as unsafe (2.19 data tagging): unwrap them."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


def ansible_inventory(src: Path, **env: str) -> subprocess.CompletedProcess:
    """``ansible-inventory --list`` of ``src`` with the cloud plugin enabled (``env`` added)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(src), "--list"],
        capture_output=True,
        text=True,
        env=dict(
            os.environ,
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_INVENTORY_ENABLED="compleat.cloud.cloud",
            **env,
        ),
        cwd=ROOT,
        check=False,
    )


def inventory(tmp_path, body: str) -> dict:
    src = tmp_path / "lab.cloud.yml"
    src.write_text(body)
    out = ansible_inventory(src, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_groups_and_hostvars(tmp_path):
    store = str(tmp_path / "cloud.db")
    fill(store)
    inv = inventory(
        tmp_path,
        f"plugin: compleat.cloud.cloud\nstore: {store}\n"
        "keyed_groups:\n  - key: cloud_template\n    prefix: template\n",
    )
    assert sorted(inv["host_hv1"]["hosts"]) == ["vm0"]
    assert sorted(inv["host_hv_2"]["hosts"]) == ["vm1", "vm2"]
    assert sorted(inv["tenant_acme"]["hosts"]) == ["vm0", "vm1"] and inv["tenant_beta_co"]["hosts"] == ["vm2"]
    assert sorted(inv["offering_small"]["hosts"]) == ["vm0", "vm1", "vm2"]
    template = inv.get("template_debian_12") or inv["template_debian-12"]  # keyed_groups follow ansible.cfg
    assert sorted(template["hosts"]) == ["vm0", "vm1", "vm2"]
    hv = {k: plain(v) for k, v in inv["_meta"]["hostvars"]["vm0"].items()}
    assert (
        hv["ansible_host"] == "10.0.0.10"
        and hv["cloud_instance_id"] == "iid-u0"
        and hv["cloud_host"] == "hv1"
    )
    running = inventory(tmp_path, f"plugin: compleat.cloud.cloud\nstore: {store}\nstates: [running]\n")
    assert sorted(running["_meta"]["hostvars"]) == ["vm0", "vm2"]


def test_missing_store_is_a_parse_error(tmp_path):
    src = tmp_path / "x.cloud.yml"
    src.write_text(f"plugin: compleat.cloud.cloud\nstore: {tmp_path / 'none.db'}\n")
    out = ansible_inventory(src, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    assert out.returncode != 0 and "No metadata store" in out.stderr
    assert not (tmp_path / "none.db").exists()


def test_verify_file_and_address(tmp_path):
    plugin = InventoryModule()
    good, bad = tmp_path / "a.cloud.yaml", tmp_path / "a.yml"
    good.write_text("plugin: compleat.cloud.cloud\n")
    bad.write_text("plugin: compleat.cloud.cloud\n")
    assert plugin.verify_file(str(good)) and not plugin.verify_file(str(bad))
    assert first_address([{"mac": "x"}, {"ip": "192.0.2.7/24"}]) == "192.0.2.7"
    assert first_address([]) is None
