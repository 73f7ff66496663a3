# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection as users get it: built into a tarball and installed into an empty collections
path, once for every packaging test."""

from __future__ import annotations

import os

import pytest
from pkglib import BIN, ROOT, SITE_COLLECTIONS, run


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """(tarball, work dir, environment) with the collection installed from the tarball only."""
    assert SITE_COLLECTIONS is not None, "the venv's ansible package (community.general) is missing"
    work = tmp_path_factory.mktemp("installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        HOME=str(work),
        ANSIBLE_CONFIG=str(work / "none.cfg"),  # never the checkout's ansible.cfg
        ANSIBLE_COLLECTIONS_PATH=f"{work / 'collections'}:{SITE_COLLECTIONS}",
        ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    galaxy = str(BIN / "ansible-galaxy")
    run([galaxy, "collection", "build", "--output-path", str(work), str(ROOT)], work, env)
    tarball = next(work.glob("compleat-cloud-*.tar.gz"))
    run(
        [galaxy, "collection", "install", "--offline", "-p", str(work / "collections"), str(tarball)],
        work,
        env,
    )
    return tarball, work, env
