# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ansible-core releases the tests run on are the ones meta/runtime.yml promises: the lowest
(requirements-core-min.txt, scripts/compat.sh) and the newest (requirements-dev.txt, make test)."""

from __future__ import annotations

import re

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pkglib import ROOT

# ansible (the community package) major version -> the ansible-core minor it is built on
ANSIBLE_ON_CORE = {10: "2.17", 11: "2.18", 12: "2.19"}


def pins(name: str) -> dict[str, Version]:
    text = (ROOT / name).read_text()
    return {m[0]: Version(m[1]) for m in re.findall(r"^([a-z][a-z0-9-]*)==([0-9.]+)\s*$", text, re.M)}


def minor(v: Version) -> str:
    return f"{v.major}.{v.minor}"


def test_the_lowest_and_newest_tested_cores_are_the_supported_range():
    required = SpecifierSet(yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"])
    (lower,) = [Version(s.version) for s in required if s.operator == ">="]
    low, new = pins("requirements-core-min.txt"), pins("requirements-dev.txt")
    assert low["ansible-core"] in required and minor(low["ansible-core"]) == minor(lower)
    assert new["ansible-core"] in required and new["ansible-core"] > low["ansible-core"]
    for versions in (low, new):
        assert ANSIBLE_ON_CORE[versions["ansible"].major] == minor(versions["ansible-core"]), versions
    # the test tools are the same in both venvs, so a difference of result is the core's
    shared = set(low) & set(new) - {"ansible", "ansible-core"}
    assert {"pytest", "ansible-runner", "libvirt-python"} <= shared
    assert {k: low[k] for k in shared} == {k: new[k] for k in shared}
