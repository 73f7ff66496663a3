"""Unit tests of the pure parts of lab/vm.py: specs, state JSON, kernel and QEMU command lines.

No VM is booted and nothing on the host is touched (the one impure helper exercised,
:func:`lab.vm.free_port`, only binds a socket on 127.0.0.1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab import vm, vm_net, vm_store  # noqa: E402

IMAGE = {
    "dir": "/cache/images/debian12-vm-abc",
    "recipe_hash": "abc",
    "disk": "/cache/images/debian12-vm-abc/disk.qcow2",
    "kernel": "/cache/images/debian12-vm-abc/vmlinuz",
    "initrd": "/cache/images/debian12-vm-abc/initrd.img",
}


def make_state(platform: dict, port: int = 40022) -> dict:
    spec = vm.spec_from_mapping(platform)
    return vm.state_dict(
        spec,
        state_dir=Path("/cache/vms") / spec.name,
        image=IMAGE,
        ssh_port=port,
        ssh_key=Path("/cache/images/lab_ssh_key"),
    )


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


# ---- names, sizes, derived identifiers -------------------------------------------------------


@pytest.mark.parametrize("name", ["vm-smoke", "node_1", "a", "storage.01", "A" * 63])
def test_validate_name_accepts(name: str) -> None:
    assert vm.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "a,b", "A" * 64, "../etc"])
def test_validate_name_rejects(name: str) -> None:
    with pytest.raises(vm.VmError, match="invalid VM name"):
        vm.validate_name(name)


@pytest.mark.parametrize(
    ("name", "hostname"), [("vm_smoke", "vm-smoke"), ("Node.01", "node-01"), ("_x_", "x")]
)
def test_hostname_for(name: str, hostname: str) -> None:
    assert vm.hostname_for(name) == hostname


@pytest.mark.parametrize(
    ("value", "mib"), [(768, 768), ("768", 768), ("512M", 512), ("1G", 1024), ("1GiB", 1024), ("2g", 2048)]
)
def test_parse_memory(value: int | str, mib: int) -> None:
    assert vm.parse_memory(value) == mib


@pytest.mark.parametrize("value", ["lots", "1T", 64, 99999, True, "-1G"])
def test_parse_memory_rejects(value: object) -> None:
    with pytest.raises(vm.VmError):
        vm.parse_memory(value)  # type: ignore[arg-type]


def test_derived_identifiers_are_stable_and_distinct() -> None:
    assert vm.mac_for("a", 1) == vm.mac_for("a", 1)
    assert vm.mac_for("a", 1) != vm.mac_for("a", 2) != vm.mac_for("b", 1)
    assert vm.MAC_RE.match(vm.mac_for("a", 0)) and vm.mac_for("a", 0).startswith("52:54:00:")
    taps = {vm.tap_name(name, i) for name in ("a", "b", "x" * 63) for i in range(1, 10)}
    assert len(taps) == 27
    assert all(len(tap) <= 15 for tap in taps)
    assert len(vm.machine_id_for("a")) == 32
    assert vm.machine_id_for("a") != vm.machine_id_for("b")


# ---- disks and NICs --------------------------------------------------------------------------


def test_parse_disk_forms() -> None:
    assert vm.parse_disk("2G", 1) == vm.DiskSpec(name="disk1", size="2G")
    assert vm.parse_disk("data:512m", 2) == vm.DiskSpec(name="data", size="512M")
    shared = vm.parse_disk({"name": "san", "path": "/srv/san.raw", "format": "raw", "shared": True}, 3)
    assert shared == vm.DiskSpec(name="san", path="/srv/san.raw", format="raw", shared=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("data:lots", "invalid size"),
        ({"name": "d", "size": "1G", "bogus": 1}, "unknown keys"),
        ({"name": "bad name", "size": "1G"}, "invalid name"),
        ({"name": "d", "size": "1G", "format": "vmdk"}, "format"),
        (42, "expected a size string"),
    ],
)
def test_parse_disk_rejects(value: object, message: str) -> None:
    with pytest.raises(vm.VmError, match=message):
        vm.parse_disk(value, 1)  # type: ignore[arg-type]


def test_parse_nic_forms() -> None:
    assert vm.parse_nic("san", 1) == vm.NicSpec(segment="san")
    assert vm.parse_nic("san,address=192.0.2.1/24+2001:db8::1/64", 1) == vm.NicSpec(
        segment="san", addresses=("192.0.2.1/24", "2001:db8::1/64")
    )
    assert vm.parse_nic("netns=fab-leaf1,bridge=br0,address=up", 2) == vm.NicSpec(
        netns="fab-leaf1", bridge="br0", addresses=("up",)
    )
    mapping = {"segment": "san", "address": ["192.0.2.1/24"], "mac": "52:54:00:AA:BB:CC"}
    assert vm.parse_nic(mapping, 3) == vm.NicSpec(
        segment="san", addresses=("192.0.2.1/24",), mac="52:54:00:aa:bb:cc"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("segment=a,netns=b,bridge=c", "either segment"),
        ({"address": "192.0.2.1/24"}, "either segment"),
        ("netns=ns", "needs bridge"),
        ("segment=this-name-is-too-long", "valid interface name"),
        ("san,address=192.0.2.1", "not a CIDR"),
        ("san,mac=zz", "invalid mac"),
        ("san,vlan=10", "unknown keys"),
        ("san,oops", "expected key=value"),
    ],
)
def test_parse_nic_rejects(value: object, message: str) -> None:
    with pytest.raises(vm.VmError, match=message):
        vm.parse_nic(value, 1)  # type: ignore[arg-type]


# ---- specs from molecule platforms -----------------------------------------------------------


def test_spec_from_minimal_platform() -> None:
    spec = vm.spec_from_mapping({"name": "vm_smoke", "groups": ["ignored"]})
    assert spec == vm.VmSpec(name="vm_smoke", memory_mib=768, cpus=1, hostname="vm-smoke")


def test_spec_from_full_platform() -> None:
    spec = vm.spec_from_mapping(
        {
            "name": "stor1",
            "memory": "1G",
            "cpus": 1,
            "hostname": "stor1",
            "disks": ["2G", {"name": "meta", "size": "256M"}],
            "nics": [{"segment": "san", "address": "192.0.2.11/24"}],
            "kernel_args": "quiet loglevel=3",
        }
    )
    assert spec.memory_mib == 1024
    assert [d.name for d in spec.disks] == ["disk1", "meta"]
    assert spec.nics[0].segment == "san"
    assert spec.kernel_args == ("quiet", "loglevel=3")


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ({"name": "a", "cpus": 8}, "cpus"),
        ({"name": "a", "hostname": "Bad_Host"}, "invalid hostname"),
        ({"name": "a", "disks": ["x:1G", "x:2G"]}, "unique"),
        ({}, "invalid VM name"),
    ],
)
def test_spec_rejects(platform: dict, message: str) -> None:
    with pytest.raises(vm.VmError, match=message):
        vm.spec_from_mapping(platform)


# ---- state JSON ------------------------------------------------------------------------------


def test_state_dict_describes_everything() -> None:
    state = make_state(
        {
            "name": "stor1",
            "memory": 512,
            "disks": ["data:1G", {"name": "san", "path": "/srv/san.raw", "format": "raw", "shared": True}],
            "nics": ["san,address=192.0.2.11/24", "netns=fab,bridge=br0"],
        }
    )
    assert json.loads(json.dumps(state)) == state  # plain JSON
    assert state["schema"] == vm.STATE_SCHEMA
    assert (state["address"], state["ssh_port"], state["ssh_user"]) == ("127.0.0.1", 40022, "root")
    assert state["overlay"] == "/cache/vms/stor1/root.qcow2"
    assert state["serial_log"] == "/cache/vms/stor1/serial.log"
    assert state["pidfile"] == "/cache/vms/stor1/qemu.pid"
    assert state["image"] == IMAGE
    own, shared = state["disks"]
    assert own == {
        "name": "data",
        "path": "/cache/vms/stor1/disk-data.qcow2",
        "size": "1G",
        "format": "qcow2",
        "shared": False,
        "owned": True,
    }
    assert shared["path"] == "/srv/san.raw" and not shared["owned"] and shared["size"] is None
    seg, fabric = state["nics"]
    assert (seg["guest_ifname"], seg["netns"], seg["bridge"]) == ("eth1", vm.VMNET_NETNS, "san")
    assert (fabric["guest_ifname"], fabric["netns"], fabric["bridge"]) == ("eth2", "fab", "br0")
    assert seg["tap"] == vm.tap_name("stor1", 1) and fabric["mac"] == vm.mac_for("stor1", 2)


def test_instance_config_is_what_molecule_reads() -> None:
    state = make_state({"name": "vm-smoke"}, port=41234)
    assert vm.instance_config(state) == {
        "instance": "vm-smoke",
        "address": "127.0.0.1",
        "port": 41234,
        "user": "root",
        "identity_file": "/cache/images/lab_ssh_key",
    }


def test_save_and_load_state_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm_store, "VMS_DIR", tmp_path)
    spec = vm.spec_from_mapping({"name": "rt"})
    state = vm.state_dict(spec, state_dir=tmp_path / "rt", image=IMAGE, ssh_port=1, ssh_key=Path("/k"))
    (tmp_path / "rt").mkdir()
    vm.save_state(state)
    assert vm.load_state("rt") == state
    assert [s["name"] for s in vm.all_states()] == ["rt"]
    with pytest.raises(vm.VmError, match="no VM named"):
        vm.load_state("other")


def test_spec_summary_ignores_runtime_fields() -> None:
    a = make_state({"name": "x", "nics": ["san"]}, port=1)
    b = make_state({"name": "x", "nics": ["san"]}, port=2)
    b["image"] = {}
    assert vm.spec_summary(a) == vm.spec_summary(b)
    c = make_state({"name": "x", "nics": ["other"]})
    assert vm.spec_summary(a) != vm.spec_summary(c)


# ---- kernel and QEMU command lines -----------------------------------------------------------


def test_kernel_cmdline() -> None:
    state = make_state(
        {
            "name": "n1",
            "nics": ["a,address=192.0.2.1/24+2001:db8::1/64", "b", "c,address=up"],
            "kernel_args": ["quiet"],
        }
    )
    args = vm.kernel_cmdline(state).split()
    assert args[:4] == ["root=/dev/vda", "rw", "console=ttyS0", "net.ifnames=0"]
    assert f"systemd.machine_id={vm.machine_id_for('n1')}" in args
    assert "compleat.hostname=n1" in args
    assert "compleat.net=eth1=192.0.2.1/24+2001:db8::1/64,eth3=up" in args
    assert args[-1] == "quiet"


def test_kernel_cmdline_without_extra_nics_has_no_net_arg() -> None:
    assert "compleat.net" not in vm.kernel_cmdline(make_state({"name": "n1"}))


def test_qemu_argv_basics() -> None:
    argv = vm.qemu_argv(make_state({"name": "n1", "memory": "1G"}, port=40100))
    assert argv[0] == "qemu-system-x86_64"
    assert option_values(argv, "-accel") == ["tcg"]
    assert option_values(argv, "-m") == ["1024"]
    assert option_values(argv, "-smp") == ["1"]
    assert option_values(argv, "-kernel") == [IMAGE["kernel"]]
    assert option_values(argv, "-initrd") == [IMAGE["initrd"]]
    assert option_values(argv, "-append")[0].startswith("root=/dev/vda rw console=ttyS0 net.ifnames=0")
    assert option_values(argv, "-drive") == [
        "file=/cache/vms/n1/root.qcow2,if=none,id=root,format=qcow2,cache=unsafe,discard=unmap"
    ]
    assert option_values(argv, "-netdev") == [
        "user,id=net0,net=192.168.253.0/24,hostfwd=tcp:127.0.0.1:40100-:22"
    ]
    assert option_values(argv, "-pidfile") == ["/cache/vms/n1/qemu.pid"]
    assert option_values(argv, "-qmp") == ["unix:/cache/vms/n1/qmp.sock,server=on,wait=off"]
    assert "path=/cache/vms/n1/serial.log" in option_values(argv, "-chardev")[0]
    assert argv[-1] == "-daemonize"
    assert "-enable-kvm" not in argv


def test_qemu_argv_root_disk_comes_first_then_extra_disks() -> None:
    state = make_state(
        {
            "name": "s",
            "disks": ["data:1G", {"name": "san", "path": "/srv/san.raw", "format": "raw", "shared": True}],
        }
    )
    argv = vm.qemu_argv(state)
    drives = option_values(argv, "-drive")
    devices = [d for d in option_values(argv, "-device") if d.startswith("virtio-blk-pci")]
    assert [d.split(",")[0] for d in drives] == [
        "file=/cache/vms/s/root.qcow2",
        "file=/cache/vms/s/disk-data.qcow2",
        "file=/srv/san.raw",
    ]
    assert devices == [
        "virtio-blk-pci,drive=root,serial=root",
        "virtio-blk-pci,drive=disk-data,serial=data",
        "virtio-blk-pci,drive=disk-san,serial=san,share-rw=on",
    ]
    assert drives[2].endswith(",format=raw,cache=unsafe,file.locking=off")


def test_qemu_argv_nics_are_taps_in_order() -> None:
    state = make_state({"name": "n2", "nics": ["san", "netns=fab,bridge=br0"]})
    argv = vm.qemu_argv(state)
    netdevs = option_values(argv, "-netdev")
    assert netdevs[1:] == [
        f"tap,id=net1,ifname={vm.tap_name('n2', 1)},script=no,downscript=no",
        f"tap,id=net2,ifname={vm.tap_name('n2', 2)},script=no,downscript=no",
    ]
    nets = [d for d in option_values(argv, "-device") if d.startswith("virtio-net-pci")]
    assert nets == [
        f"virtio-net-pci,netdev=net0,mac={vm.mac_for('n2', 0)},romfile=",
        f"virtio-net-pci,netdev=net1,mac={vm.mac_for('n2', 1)}",
        f"virtio-net-pci,netdev=net2,mac={vm.mac_for('n2', 2)}",
    ]


def test_ssh_argv() -> None:
    argv = vm.ssh_argv(make_state({"name": "n1"}, port=40200), ["uname", "-r"])
    assert argv[0] == "ssh"
    assert argv[argv.index("-p") + 1] == "40200"
    assert argv[argv.index("-i") + 1] == "/cache/images/lab_ssh_key"
    assert "StrictHostKeyChecking=no" in argv and "BatchMode=yes" in argv
    assert argv[-3:] == ["root@127.0.0.1", "uname", "-r"]


# ---- small impure helpers that are safe here -------------------------------------------------


def test_free_port_avoids_taken_ports() -> None:
    port = vm.free_port(set())
    assert 1024 < port < 65536
    assert vm.free_port({port}) != port


def test_read_image_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(vm.VmError, match="incomplete"):
        vm.read_image(tmp_path)
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (tmp_path / name).write_text("x")
    (tmp_path / "manifest.json").write_text(json.dumps({"recipe_hash": "h1"}))
    image = vm.read_image(tmp_path)
    assert image["recipe_hash"] == "h1" and image["kernel"] == str(tmp_path / "vmlinuz")


def test_cli_parses_create_options() -> None:
    args = vm.build_parser().parse_args(
        ["create", "n1", "--memory", "1G", "--disk", "data:2G", "--nic", "san,address=192.0.2.1/24"]
    )
    spec = vm._spec_from_args(args)
    assert (spec.name, spec.memory_mib) == ("n1", 1024)
    assert spec.disks == (vm.DiskSpec(name="data", size="2G"),)
    assert spec.nics == (vm.NicSpec(segment="san", addresses=("192.0.2.1/24",)),)
    assert not args.no_wait


def test_cli_reports_errors_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert vm.main(["create", "bad name"]) == 1
    assert "invalid VM name" in capsys.readouterr().err


def test_destroy_all_with_prefix_spares_other_vms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing real is touched: no namespace is seen, no process is found or signalled.
    monkeypatch.setattr(vm_store, "VMS_DIR", tmp_path)
    monkeypatch.setattr(vm_net, "netns_exists", lambda _ns: False)
    monkeypatch.setattr(vm_store, "stray_qemu_pids", lambda _d=tmp_path: [])
    for name in ("lab-a", "lab-b", "mol-c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "vm.json").write_text("{}")
    assert vm.destroy_all("lab-") == ["lab-a", "lab-b"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["mol-c"]
    assert vm.destroy("mol-c") is True
    assert vm.destroy("mol-c") is False


# ---- boot modes ------------------------------------------------------------------------------


def test_kernel_boot_is_the_default_and_eth0_has_no_option_rom() -> None:
    argv = vm.qemu_argv(make_state({"name": "k1"}))
    assert option_values(argv, "-kernel") == [IMAGE["kernel"]]
    devices = option_values(argv, "-device")
    assert "virtio-blk-pci,drive=root,serial=root" in devices
    assert any(d.startswith("virtio-net-pci,netdev=net0,") and d.endswith(",romfile=") for d in devices)
    assert not any("bootindex" in d for d in devices)


def test_disk_boot_runs_the_firmware_on_an_overlay_of_the_image() -> None:
    state = make_state(
        {"name": "t1", "boot": "disk", "image": "/srv/templates/debian-12.qcow2", "ssh_user": "ops"}
    )
    assert state["boot"] == "disk" and state["base_image"] == "/srv/templates/debian-12.qcow2"
    argv = vm.qemu_argv(state)
    assert "-kernel" not in argv and "-append" not in argv
    assert "virtio-blk-pci,drive=root,serial=root,bootindex=1" in option_values(argv, "-device")
    assert any(
        n.startswith("user,id=net0,net=192.168.253.0/24,hostfwd=tcp:127.0.0.1:40022-:22")
        for n in option_values(argv, "-netdev")
    )
    assert vm.instance_config(state)["user"] == "ops"


def test_network_boot_has_a_blank_root_and_boots_the_first_tap_nic() -> None:
    state = make_state({"name": "p1", "boot": "network", "root_size": "4g", "nics": ["netns=pxe,bridge=br0"]})
    assert state["root_size"] == "4G"
    assert vm.root_disk_command(state) == [vm.QEMU_IMG, "create", "-q", "-f", "qcow2", state["overlay"], "4G"]
    argv = vm.qemu_argv(state)
    assert "-kernel" not in argv
    assert not any(n.startswith("user,") for n in option_values(argv, "-netdev"))  # only the PXE NIC
    devices = option_values(argv, "-device")
    assert f"virtio-net-pci,netdev=net1,mac={state['nics'][0]['mac']},bootindex=1" in devices
    assert "virtio-blk-pci,drive=root,serial=root,bootindex=2" in devices


def test_kernel_root_disk_is_an_overlay_on_the_lab_image() -> None:
    state = make_state({"name": "k2"})
    assert vm.root_disk_command(state) == [
        vm.QEMU_IMG,
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        IMAGE["disk"],
        "-F",
        "qcow2",
        state["overlay"],
    ]


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ({"name": "b", "boot": "floppy"}, "boot must be one of"),
        ({"name": "b", "boot": "disk"}, "needs image"),
        ({"name": "b", "image": "/x.qcow2"}, "only used with boot: disk"),
        ({"name": "b", "boot": "network"}, "needs a NIC"),
        ({"name": "b", "boot": "network", "nics": ["s"], "root_size": "big"}, "invalid root_size"),
        (
            {"name": "b", "boot": "disk", "image": "/x", "kernel_args": "quiet"},
            "kernel_args need boot: kernel",
        ),
        (
            {"name": "b", "boot": "network", "nics": ["s,address=192.0.2.1/24"]},
            "NIC addresses need boot: kernel",
        ),
        ({"name": "b", "ssh_user": "Root!"}, "invalid ssh_user"),
    ],
)
def test_boot_settings_rejected(platform: dict, message: str) -> None:
    with pytest.raises(vm.VmError, match=message):
        vm.spec_from_mapping(platform)


def test_spec_summary_sees_the_boot_mode() -> None:
    a = make_state({"name": "x", "boot": "network", "nics": ["s"]})
    b = make_state({"name": "x", "nics": ["s"]})
    assert vm.spec_summary(a) != vm.spec_summary(b)
    old = dict(b)
    for key in ("boot", "base_image", "root_size"):
        old.pop(key)  # a vm.json written before boot modes existed
    assert vm.spec_summary(old) == vm.spec_summary(b)


@pytest.mark.parametrize(
    ("output", "mtu"),
    [
        ('[{"ifname": "storage", "mtu": 9000}]', 9000),
        ('[{"ifname": "san"}]', 1500),
        ("", 1500),
        ("[]", 1500),
    ],
)
def test_bridge_mtu(output: str, mtu: int) -> None:
    assert vm.bridge_mtu(output) == mtu


def test_bridge_mtu_bad_json() -> None:
    with pytest.raises(vm.VmError, match="cannot read ip -j link output"):
        vm.bridge_mtu("not json")


def _links() -> list[dict]:
    return [
        {"ifname": "lo"},
        {"ifname": "mine", "linkinfo": {"info_kind": "bridge"}},
        {"ifname": "theirs", "linkinfo": {"info_kind": "bridge"}},
        {"ifname": "stale", "linkinfo": {"info_kind": "bridge"}},
        {"ifname": "tap1", "master": "theirs", "linkinfo": {"info_kind": "tun"}},
    ]


def test_bridge_names_lists_only_bridges() -> None:
    assert vm.bridge_names(_links()) == ["mine", "stale", "theirs"]


def test_idle_bridges_spares_wanted_and_attached_bridges() -> None:
    assert vm.idle_bridges(_links(), {"mine"}) == ["stale"]
    assert vm.idle_bridges(_links(), set()) == ["mine", "stale"]
    assert vm.idle_bridges(_links(), {"mine", "stale"}) == []
