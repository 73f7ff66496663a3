# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloud-init seed rendering/writing and qcow2 overlays (real qemu-img on tiny images)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import overlay, seed
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.errors import (
    CommandError,
    Conflict,
    NotFound,
)

NETS = [
    {"mac": "52:54:00:aa:bb:cc"},
    {"mac": "52:54:00:aa:bb:cd", "ip": "10.0.0.5/24", "gateway": "10.0.0.1", "nameservers": ["10.0.0.2"]},
]


def test_yaml_emitter_round_trips_awkward_values():
    doc = {
        "a": "yes",
        "b": "multi\nline: with colon",
        "c": [1, 2.5, True, None, "#x"],
        "d": {},
        "e": [],
        "f": [{"k": "v", "n": [["x"]]}],
        "true": "key that is a keyword",
        "g h": 'quote " and \\ back',
    }
    assert yaml.safe_load(seed.render_yaml(doc)) == doc


def test_seed_files_parse_back_to_their_documents():
    """Every seed file, read by a YAML parser as cloud-init does, is the document it was made from."""
    args = ("iid-u2", "vm-ü", ["ssh-ed25519 AAAA user@x"], NETS)
    script = "#!/bin/sh\nprintf 'yes: no\\n' > /root/é\n"
    files = seed.seed_files(*args, first_boot_script=script, packages=["jq", "no"])
    assert yaml.safe_load(files["meta-data"]) == seed.meta_data("iid-u2", "vm-ü")
    assert yaml.safe_load(files["user-data"]) == seed.user_data(
        "vm-ü", ["ssh-ed25519 AAAA user@x"], script, ["jq", "no"]
    )
    assert yaml.safe_load(files["network-config"]) == seed.network_config(NETS)
    # block style, one key per line: the tiny tenant guest's parser (scripts/images/tenant/netcfg.awk)
    # reads only that, so the emitter must not switch to flow style or JSON
    assert files["meta-data"].splitlines()[0].startswith("instance-id: ")


def test_seed_files_are_valid_and_deterministic():
    files = seed.seed_files(
        "iid-u1",
        "vm1",
        ["ssh-ed25519 AAAA user@x\n"],
        NETS,
        first_boot_script="#!/bin/sh\necho hi > /root/hi\n",
    )
    assert files == seed.seed_files(
        "iid-u1",
        "vm1",
        ["ssh-ed25519 AAAA user@x\n"],
        NETS,
        first_boot_script="#!/bin/sh\necho hi > /root/hi\n",
    )
    meta = yaml.safe_load(files["meta-data"])
    assert meta == {"instance-id": "iid-u1", "local-hostname": "vm1"}
    assert files["user-data"].startswith("#cloud-config\n")
    user = yaml.safe_load(files["user-data"])
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA user@x"]
    assert user["runcmd"] == [[seed.FIRST_BOOT_PATH]]
    assert user["write_files"][0]["content"].startswith("#!/bin/sh")
    net = yaml.safe_load(files["network-config"])
    assert net["ethernets"]["eth0"] == {
        "match": {"macaddress": "52:54:00:aa:bb:cc"},
        "set-name": "eth0",
        "dhcp4": True,
    }
    assert net["ethernets"]["eth1"]["addresses"] == ["10.0.0.5/24"]
    assert net["ethernets"]["eth1"]["routes"] == [{"to": "0.0.0.0/0", "via": "10.0.0.1"}]
    assert seed.seed_hash(files) != seed.seed_hash({**files, "meta-data": "x"})


def test_instance_id_is_stable():
    assert seed.instance_id_for("abc") == "iid-abc"


@pytest.mark.skipif(not shutil.which("genisoimage"), reason="genisoimage missing")
def test_write_iso_seed(tmp_path):
    files = seed.seed_files("iid-1", "vm", [], NETS)
    path = tmp_path / "seed.iso"
    seed.write_seed(str(path), files, "iso", overlay.subprocess_runner)
    out = subprocess.run(
        ["isoinfo", "-d", "-i", str(path)], capture_output=True, text=True, check=False
    ).stdout
    assert "Volume id: cidata" in out
    listing = subprocess.run(
        ["isoinfo", "-J", "-f", "-i", str(path)], capture_output=True, text=True, check=False
    ).stdout
    assert set(listing.split()) == {"/meta-data", "/user-data", "/network-config"}


@pytest.mark.skipif(not shutil.which("mcopy"), reason="mtools missing")
def test_write_vfat_seed(tmp_path):
    path = tmp_path / "seed.img"
    seed.write_seed(str(path), seed.seed_files("iid-1", "vm", [], []), "vfat", overlay.subprocess_runner)
    listing = subprocess.run(
        ["mdir", "-b", "-i", str(path), "::"], capture_output=True, text=True, check=True
    ).stdout
    assert sorted(x.rsplit("/", 1)[-1] for x in listing.split()) == [
        "meta-data",
        "network-config",
        "user-data",
    ]


def test_missing_iso_tool_is_actionable(tmp_path):
    with pytest.raises(CommandError, match="No ISO builder") as info:
        seed.write_seed(
            str(tmp_path / "s.iso"),
            seed.seed_files("i", "h", [], []),
            "iso",
            overlay.subprocess_runner,
            which=lambda _n: None,
        )
    assert "genisoimage" in info.value.hint


def test_commands():
    assert overlay.create_command("/b.qcow2", "/o.qcow2") == [
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "/b.qcow2",
        "-F",
        "qcow2",
        "/o.qcow2",
    ]
    assert overlay.create_command("/b", "/o", "raw", 10)[-3:] == ["raw", "/o", "10"]
    assert overlay.overlay_size(2 * overlay.GIB, 1) is None
    assert overlay.overlay_size(overlay.GIB, 3) == 3 * overlay.GIB
    assert "-B" in overlay.convert_command("/a", "/b", backing="/t")


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "tpl.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return str(path)


def test_create_overlay_is_small_and_backed(tmp_path, template):
    info = overlay.create_overlay(template, str(tmp_path / "vm" / "o.qcow2"), overlay.subprocess_runner)
    assert info["backing_file"] == template and info["format"] == "qcow2"
    assert info["virtual_size"] == 64 * 1024**2 and info["actual_size"] < 1024**2
    with pytest.raises(Conflict):
        overlay.create_overlay(template, str(tmp_path / "vm" / "o.qcow2"), overlay.subprocess_runner)
    with pytest.raises(NotFound):
        overlay.create_overlay(str(tmp_path / "nope"), str(tmp_path / "x.qcow2"), overlay.subprocess_runner)


def test_failed_command_is_actionable(tmp_path):
    with pytest.raises(CommandError, match="rc=1") as info:
        overlay.run_checked(lambda argv: (1, "", "bad things"), ["false"], "do this")
    assert info.value.hint == "do this"
    with pytest.raises(NotFound):
        overlay.image_info(str(tmp_path / "nothing"), overlay.subprocess_runner)
