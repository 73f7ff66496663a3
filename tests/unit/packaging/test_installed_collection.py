# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection as users get it: build the tarball, install it into an empty collections path,
and use it from there (no checkout path anywhere): what the tarball holds, ansible-doc of every
module, filter and role, and a playbook that renders a fabric and drives the cloud stack with the
store set once through the ``compleat.cloud.cloud`` action group."""

from __future__ import annotations

import json
import sys
import tarfile

import yaml
from pkglib import BIN, ROOT, run

NOT_SHIPPED = ("lab/", "molecule/", "scripts/", "benchmarks/", "Makefile", "ansible.cfg", "tests/lab/")


def test_the_tarball_holds_the_collection_and_no_lab(installed):
    tarball, _work, _env = installed
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["dependencies"] == {
        "community.general": ">=9.0.0",
        "ansible.posix": ">=1.5.0",
    }
    assert {
        "meta/runtime.yml",
        "plugins/modules/instance.py",
        "roles/dns/tasks/main.yml",
        "docs/fabric.md",
    } <= set(names)
    shipped = [n for n in names if n.startswith(NOT_SHIPPED)]
    assert shipped == [], shipped[:10]


def test_ansible_doc_of_every_plugin_and_role_from_the_installed_copy(installed):
    _tarball, work, env = installed
    doc = str(BIN / "ansible-doc")
    home = work / "collections" / "ansible_collections" / "compleat" / "cloud"
    modules = sorted(p.stem for p in (home / "plugins" / "modules").glob("*.py"))
    listed = json.loads(run([doc, "-t", "module", "--list", "--json", "compleat.cloud"], work, env))
    assert sorted(n.split(".")[-1] for n in listed) == modules
    out = json.loads(
        run([doc, "-t", "module", "--json", *(f"compleat.cloud.{m}" for m in modules)], work, env)
    )
    for name, entry in out.items():
        assert entry["doc"]["filename"].startswith(str(home)), (name, entry["doc"]["filename"])
        assert entry["examples"] and entry["return"], name
    filters = json.loads(run([doc, "-t", "filter", "--list", "--json", "compleat.cloud"], work, env))
    assert filters
    run([doc, "-t", "filter", "--json", *filters], work, env)
    roles = sorted(p.name for p in (home / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())
    assert roles and len(roles) == len([p for p in (home / "roles").iterdir() if p.is_dir()])
    out = json.loads(run([doc, "-t", "role", "--json", *(f"compleat.cloud.{r}" for r in roles)], work, env))
    assert sorted(k.split(".")[-1] for k in out) == roles


def test_a_playbook_runs_the_installed_modules_with_the_store_set_once(installed):
    _tarball, work, env = installed
    store, out = work / "cloud.db", work / "fabric"
    book = work / "site.yml"
    book.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "The installed collection at work",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {"ansible_python_interpreter": sys.executable},
                    "module_defaults": {"group/compleat.cloud.cloud": {"store": str(store)}},
                    "tasks": [
                        {
                            "name": "Render the lab fabric",
                            "compleat.cloud.fabric_render": {
                                "src": str(ROOT / "inventories" / "lab" / "fabric.yml"),
                                "dest": str(out),
                            },
                        },
                        {
                            "name": "An offering in the store the group default names",
                            "compleat.cloud.offering": {"name": "small", "vcpus": 1, "ram_mb": 512},
                        },
                        {
                            "name": "Read it back",
                            "compleat.cloud.cloud_info": {"gather": ["offerings"]},
                            "register": "cloud",
                        },
                        {
                            "name": "The offering is there",
                            "ansible.builtin.assert": {"that": ["cloud.offerings[0].name == 'small'"]},
                        },
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(book)], work, env)
    assert store.exists() and (out / "topology.json").exists()
