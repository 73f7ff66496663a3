# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names and storage paths the cloud stack accepts (module_utils/cloud/names.py)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import InvalidInput
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.names import (
    NAME_MAX,
    check_name,
    confined,
    name_problem,
)


@pytest.mark.parametrize("name", ["a", "web1", "Web-1", "1x", "a" * NAME_MAX, "a-b-c"])
def test_dns_labels_are_names(name):
    assert name_problem(name) is None
    assert check_name("name", name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        (None, "empty"),
        ("a" * (NAME_MAX + 1), "64 characters"),
        ("wéb", "non-ASCII"),
        ("-a", "DNS label"),
        ("a-", "DNS label"),
        ("a.b", "DNS label"),
        ("a_b", "DNS label"),
        ("../x", "DNS label"),
        ("a b", "DNS label"),
    ],
)
def test_other_strings_are_refused_with_key_and_value(name, why):
    assert why in (name_problem(name) or "")
    with pytest.raises(InvalidInput) as err:
        check_name("volumes[0].name", name)
    result = err.value.as_result()
    assert result["key"] == "volumes[0].name" and result["value"] == name
    assert result["msg"].startswith(f"volumes[0].name: {name!r} is not a valid name") and result["hint"]


def test_confined_keeps_plain_files_in_the_directory(tmp_path):
    assert confined(str(tmp_path), "vm1.qcow2") == str(tmp_path / "vm1.qcow2")


@pytest.mark.parametrize("filename", ["../x.qcow2", "/etc/passwd", "sub/x.qcow2", ".."])
def test_confined_refuses_what_leaves_the_directory(tmp_path, filename):
    with pytest.raises(InvalidInput) as err:
        confined(str(tmp_path), filename)
    assert err.value.details["storage_dir"] == os.path.realpath(tmp_path)


def test_confined_refuses_a_symlink_out(tmp_path):
    (tmp_path / "vm1.qcow2").symlink_to("/etc")
    with pytest.raises(InvalidInput, match="outside the directory"):
        confined(str(tmp_path), "vm1.qcow2")
