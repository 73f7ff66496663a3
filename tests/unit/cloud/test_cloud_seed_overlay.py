# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloud-init seed rendering/writing and qcow2 overlays (real qemu-img on tiny images)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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


def test_render_round_trips_awkward_values():
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
    assert yaml.safe_load(seed.render(doc)) == doc
    assert yaml.safe_load(seed.render(doc, "#cloud-config")) == doc


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
    assert files["user-data"].startswith("#cloud-config\n")


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


NETCFG_AWK = Path(__file__).resolve().parents[3] / "scripts/images/tenant/netcfg.awk"


def flatten(text: str, awk: list[str]) -> list[str]:
    """The "path=value" lines the tiny tenant guest's netcfg.awk makes of a seed file."""
    done = subprocess.run(
        [*awk, "-f", str(NETCFG_AWK)], input=text, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


# busybox awk is the guest's (the tenant image installs busybox-static); mawk is the host's awk
@pytest.mark.parametrize("awk", [["busybox", "awk"], ["mawk"]], ids=["busybox", "mawk"])
def test_tenant_guest_reads_the_seed(awk):
    """The lab's tiny guest flattens meta-data and network-config into what its init looks up."""
    files = seed.seed_files(
        "iid-u3", "vm-ü", ["ssh-ed25519 AAAA user@x"], [*NETS, {"mac": "52:54:00:aa:bb:ce", "mtu": 1450}]
    )
    assert flatten(files["meta-data"], awk) == ["instance-id=iid-u3", "local-hostname=vm-ü"]
    assert flatten(files["network-config"], awk) == [
        "version=2",
        "ethernets.eth0.match.macaddress=52:54:00:aa:bb:cc",
        "ethernets.eth0.set-name=eth0",
        "ethernets.eth0.dhcp4=true",
        "ethernets.eth1.match.macaddress=52:54:00:aa:bb:cd",
        "ethernets.eth1.set-name=eth1",
        "ethernets.eth1.addresses.0=10.0.0.5/24",
        "ethernets.eth1.routes.0.to=0.0.0.0/0",
        "ethernets.eth1.routes.0.via=10.0.0.1",
        "ethernets.eth1.nameservers.addresses.0=10.0.0.2",
        "ethernets.eth2.match.macaddress=52:54:00:aa:bb:ce",
        "ethernets.eth2.set-name=eth2",
        "ethernets.eth2.mtu=1450",
        "ethernets.eth2.dhcp4=true",
    ]
    # escapes, nesting, empty containers and a header line, as a JSON parser reads them
    doc = {"s": 'q " b \\ t\tü', "n": [[], {}, [1, [-2.5e3, {"a": None, "b": False}]]], "e": {}}
    assert flatten(seed.render(doc, "#cloud-config"), awk) == [
        's=q " b \\ t\tü',
        "n.2.0=1",
        "n.2.1.0=-2500.0",
        "n.2.1.1.a=null",
        "n.2.1.1.b=false",
    ]


@pytest.mark.parametrize("text", ['{"a": [1,', '{"a": "open', "[1]]"])
def test_tenant_guest_rejects_a_broken_seed(text):
    """A truncated or unbalanced file fails netcfg.awk loudly instead of yielding half a config."""
    done = subprocess.run(
        ["busybox", "awk", "-f", str(NETCFG_AWK)], input=text, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "netcfg.awk:" in done.stderr


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
