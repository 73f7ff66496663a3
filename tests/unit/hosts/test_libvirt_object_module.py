# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compleat.cloud.libvirt_object (plugins/modules/libvirt_object.py,
plugins/module_utils/libvirt_object.py): libvirt networks and pools through virsh (a fake virsh
here), compared by inclusion, redefined under their UUID (check mode, diff, absent)."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
from module_run import Runner, module_runner  # noqa: E402

from ansible_collections.compleat.cloud.plugins.module_utils import libvirt_object as lo  # noqa: E402
from ansible_collections.compleat.cloud.plugins.modules import libvirt_object  # noqa: E402

NETWORK = """<!-- managed -->
<network>
  <name>vm</name>
  <forward mode='bridge'/>
  <bridge name='vm'/>
</network>
"""
POOL = """<pool type='netfs'>
  <name>secondary</name>
  <source>
    <host name='10.4.1.40'/>
    <dir path='/srv/secondary/templates'/>
    <format type='nfs'/>
    <protocol ver='4'/>
  </source>
  <target>
    <path>/var/lib/libvirt/secondary</path>
  </target>
</pool>
"""
UUID = "3e3fce45-4f53-4fa7-bb32-11f34168b82b"


def rendered(template: str, item: dict[str, Any]) -> str:
    """A template of the role for ``item`` (simple expressions and if/elif blocks only)."""
    from jinja2 import Template

    text = (ROOT / "roles" / "kvm_host" / "templates" / template).read_text(encoding="utf-8")
    return Template(text).render(item=item, ansible_managed="managed")


# ------------------------------------------------------------------------------------ the XML
@pytest.mark.parametrize(
    ("current", "covered"),
    [
        # what libvirt adds (uuid, mac, attributes, children) is no difference
        (
            f"<network><name>vm</name><uuid>{UUID}</uuid><forward mode='bridge'/><bridge name='vm' stp='on'/>"
            "<mac address='52:54:00:00:00:01'/></network>",
            True,
        ),
        # order of the children does not matter
        ("<network><bridge name='vm'/><name>vm</name><forward mode='bridge'/></network>", True),
        ("<network><name>vm</name><forward mode='nat'/><bridge name='vm'/></network>", False),
        ("<network><name>vm</name><forward mode='bridge'/></network>", False),
        ("<network><name>vm</name><forward/><bridge name='vm'/></network>", False),
        ("<network><name>vm2</name><forward mode='bridge'/><bridge name='vm'/></network>", False),
    ],
)
def test_covers(current: str, covered: bool) -> None:
    assert lo.covers(ET.fromstring(NETWORK), ET.fromstring(current)) is covered


def test_covers_matches_each_child_once() -> None:
    desired = ET.fromstring("<pool><source><host name='a'/><host name='a'/></source></pool>")
    assert not lo.covers(desired, ET.fromstring("<pool><source><host name='a'/></source></pool>"))
    assert lo.covers(desired, ET.fromstring("<pool><source><host name='a'/><host name='a'/></source></pool>"))


def test_with_uuid_goes_after_the_name() -> None:
    root = lo.with_uuid(lo.desired_root(NETWORK, "network", "vm"), UUID)
    assert [child.tag for child in root] == ["name", "uuid", "forward", "bridge"]
    assert root.findtext("uuid") == UUID
    own = lo.with_uuid(ET.fromstring("<network><name>vm</name><uuid>x</uuid></network>"), UUID)
    assert own.findtext("uuid") == "x"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<network><name>vm</name>", "the definition of network vm is not valid XML"),
        ("<pool><name>vm</name></pool>", "has the root element <pool>, not <network>"),
        ("<network><name>other</name></network>", "names it 'other'"),
    ],
)
def test_bad_definitions(xml: str, message: str) -> None:
    with pytest.raises(lo.LibvirtError, match=re.escape(message)):
        lo.desired_root(xml, "network", "vm")


def test_name_is_added_when_missing() -> None:
    root = lo.desired_root("<network><bridge name='vm'/></network>", "network", "vm")
    assert root[0].tag == "name" and root.findtext("name") == "vm"


# ------------------------------------------------------------------------------------ a fake virsh
@dataclass
class Obj:
    """One object of the fake libvirt."""

    xml: str
    active: bool = False
    autostart: bool = False


@dataclass
class FakeVirsh:
    """virsh of a fake libvirt: networks and pools, define/start/destroy/undefine/autostart."""

    objects: dict[str, dict[str, Obj]] = field(default_factory=lambda: {"net": {}, "pool": {}})
    calls: list[str] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)

    def add(self, prefix: str, xml: str, **state: bool) -> Obj:
        """An existing object, with what libvirt adds by itself (a UUID, a generated element)."""
        root = ET.fromstring(xml)
        lo.with_uuid(root, UUID)
        ET.SubElement(root, "mac" if prefix == "net" else "capacity").text = "generated"
        obj = self.objects[prefix][root.findtext("name") or ""] = Obj(
            ET.tostring(root, encoding="unicode"), **state
        )
        return obj

    def __call__(self, argv: list[str], **_kw: Any) -> tuple[int, str, str]:
        assert argv[:3] == ["/usr/bin/virsh", "--connect", "qemu:///system"]
        prefix, command = argv[3].split("-", 1)
        args, objects = argv[4:], self.objects[prefix]
        if command == "list":
            return 0, "".join(f" {name}  \n" for name in objects) + "\n", ""
        if command == "define":
            self.calls.append(argv[3])
            return self.define(objects, Path(args[0]).read_text(encoding="utf-8"))
        obj = objects.get(args[-1])
        if obj is None:
            return 1, "", f"error: failed to get {prefix} '{args[-1]}'"
        if command == "info":
            return 0, self.info(prefix, args[-1], obj), ""
        if command == "dumpxml":
            assert args[0] == "--inactive"
            return 0, obj.xml, ""
        self.calls.append(" ".join(argv[3:]))
        return self.change(objects, command, args)

    def change(self, objects: dict[str, Obj], command: str, args: list[str]) -> tuple[int, str, str]:
        """``*-start``, ``*-destroy``, ``*-undefine``, ``*-autostart [--disable]``."""
        obj = objects[args[-1]]
        if command == "destroy" and args[-1] in self.busy:
            return 1, "", "error: Failed to destroy pool: device or resource busy"
        if command == "undefine":
            del objects[args[-1]]
        elif command in ("start", "destroy"):
            obj.active = command == "start"
        else:
            assert command == "autostart"
            obj.autostart = "--disable" not in args
        return 0, "", ""

    @staticmethod
    def define(objects: dict[str, Obj], xml: str) -> tuple[int, str, str]:
        """``*-define``: libvirt refuses a known name without its UUID."""
        root = ET.fromstring(xml)
        name = root.findtext("name") or ""
        if name in objects and root.findtext("uuid") is None:
            return 1, "", f"error: operation failed: {name} already exists with uuid {UUID}"
        lo.with_uuid(root, UUID)
        old = objects.get(name, Obj(""))
        objects[name] = Obj(ET.tostring(root, encoding="unicode"), old.active, old.autostart)
        return 0, f"Defined {name}\n", ""

    @staticmethod
    def info(prefix: str, name: str, obj: Obj) -> str:
        """``net-info``/``pool-info``."""
        if prefix == "net":
            active = f"Active:         {'yes' if obj.active else 'no'}"
        else:
            active = f"State:          {'running' if obj.active else 'inactive'}"
        return f"Name:           {name}\n{active}\nAutostart:      {'yes' if obj.autostart else 'no'}\n"


@pytest.fixture
def virsh(monkeypatch: pytest.MonkeyPatch) -> FakeVirsh:
    fake = FakeVirsh()
    monkeypatch.setattr(
        libvirt_object.AnsibleModule, "run_command", lambda _self, argv, **kw: fake(argv, **kw)
    )
    monkeypatch.setattr(
        libvirt_object.AnsibleModule, "get_bin_path", lambda _self, _name, *a, **k: "/usr/bin/virsh"
    )
    return fake


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, virsh: FakeVirsh) -> Runner:
    return module_runner(libvirt_object, capsys, monkeypatch)


NET_ARGS = {"kind": "network", "name": "vm", "xml": NETWORK}
POOL_ARGS = {"kind": "pool", "name": "secondary", "xml": POOL}


# ------------------------------------------------------------------------------------ the module
def test_new_network_check_mode_then_real_then_idempotent(run: Runner, virsh: FakeVirsh) -> None:
    preview = run(NET_ARGS, check=True, diff=True)
    assert preview["changed"] and preview["actions"] == ["define", "autostart", "start"]
    assert virsh.calls == [] and virsh.objects["net"] == {}
    definition, state = preview["diff"]
    assert definition["before"] == "" and '<forward mode="bridge" />' in definition["after"]
    assert state == {
        "before_header": "network vm (state)",
        "before": "defined: false\n",
        "after_header": "network vm (state)",
        "after": "active: true\nautostart: true\n",
    }
    first = run(NET_ARGS, diff=True)
    assert first["changed"] and first["actions"] == ["define", "autostart", "start"]
    assert virsh.calls == ["net-define", "net-autostart vm", "net-start vm"]
    assert virsh.objects["net"]["vm"].active and virsh.objects["net"]["vm"].autostart
    virsh.calls.clear()
    again = run(NET_ARGS, diff=True)
    assert not again["changed"] and again["actions"] == [] and "diff" not in again and virsh.calls == []


def test_generated_elements_are_no_difference(run: Runner, virsh: FakeVirsh) -> None:
    virsh.add("pool", POOL, active=True, autostart=True)
    result = run(POOL_ARGS, check=True)
    assert not result["changed"] and virsh.calls == []


def test_changed_definition_keeps_the_uuid_and_restarts(run: Runner, virsh: FakeVirsh) -> None:
    virsh.add("net", NETWORK.replace("'bridge'/>", "'nat'/>"), active=True, autostart=True)
    preview = run(NET_ARGS, check=True, diff=True)
    assert preview["actions"] == ["define", "restart"] and virsh.calls == []
    assert 'mode="nat"' in virsh.objects["net"]["vm"].xml
    assert f"<uuid>{UUID}</uuid>" in preview["diff"][0]["after"] and len(preview["diff"]) == 1
    result = run(NET_ARGS)
    assert result["changed"] and virsh.calls == ["net-define", "net-destroy vm", "net-start vm"]
    root = ET.fromstring(virsh.objects["net"]["vm"].xml)
    assert root.findtext("uuid") == UUID and root.find("forward").get("mode") == "bridge"  # type: ignore[union-attr]
    assert virsh.objects["net"]["vm"].active


def test_busy_pool_keeps_running_with_a_warning(run: Runner, virsh: FakeVirsh) -> None:
    virsh.add("pool", POOL.replace("ver='4'", "ver='3'"), active=True, autostart=True)
    virsh.busy.add("secondary")
    result = run(POOL_ARGS)
    assert result["changed"] and result["actions"] == ["define", "restart"]
    assert virsh.calls == ["pool-define", "pool-destroy secondary"]
    assert (
        "device or resource busy" in result["warned"][0] and "next start of the pool" in result["warned"][0]
    )
    assert virsh.objects["pool"]["secondary"].active and 'ver="4"' in virsh.objects["pool"]["secondary"].xml


def test_no_restart_when_not_asked_or_not_running(run: Runner, virsh: FakeVirsh) -> None:
    virsh.add("pool", POOL.replace("ver='4'", "ver='3'"), active=True, autostart=True)
    assert run({**POOL_ARGS, "restart": False})["actions"] == ["define"]
    virsh.add("net", NETWORK.replace("'bridge'/>", "'nat'/>"))
    assert run(NET_ARGS)["actions"] == ["define", "autostart", "start"]


def test_state_only_changes(run: Runner, virsh: FakeVirsh) -> None:
    virsh.add("net", NETWORK, active=True, autostart=True)
    result = run({**NET_ARGS, "active": False, "autostart": False}, diff=True)
    assert result["actions"] == ["noautostart", "destroy"]
    assert virsh.calls == ["net-autostart --disable vm", "net-destroy vm"]
    assert [d["before_header"] for d in result["diff"]] == ["network vm (state)"]
    assert result["diff"][0]["after"] == "active: false\nautostart: false\n"


def test_absent(run: Runner, virsh: FakeVirsh) -> None:
    args = {"kind": "network", "name": "default", "state": "absent"}
    virsh.add("net", "<network><name>default</name><forward mode='nat'/></network>", active=True)
    preview = run(args, check=True, diff=True)
    assert preview["changed"] and preview["actions"] == ["destroy", "undefine"] and virsh.calls == []
    assert preview["diff"][0]["after"] == "" and "nat" in preview["diff"][0]["before"]
    result = run(args)
    assert result["changed"] and virsh.calls == ["net-destroy default", "net-undefine default"]
    assert virsh.objects["net"] == {}
    assert not run(args)["changed"]


def test_errors_name_the_object_and_virsh_message(run: Runner, virsh: FakeVirsh) -> None:
    virsh.add("net", NETWORK)
    virsh.objects["net"]["vm"].xml = NETWORK.replace("'bridge'/>", "'nat'/>")  # libvirt without the UUID
    result = run(NET_ARGS)
    assert result["failed"]
    assert (
        result["msg"]
        == f"network vm: virsh net-define failed: error: operation failed: vm already exists with uuid {UUID}"
    )
    assert (
        run({"kind": "network", "name": "vm"})["msg"]
        == "state is present but all of the following are missing: xml"
    )
    assert "names it 'x'" in run({**NET_ARGS, "xml": "<network><name>x</name></network>"})["msg"]


def test_role_templates_are_covered_by_what_libvirt_returns() -> None:
    """The role's templates parse; a definition libvirt returns with additions still covers them."""
    items = [
        ("libvirt-network.xml.j2", "network", {"name": "vm", "vlan": 40}),
        (
            "libvirt-pool.xml.j2",
            "pool",
            {"name": "scratch", "type": "dir", "path": "/var/lib/libvirt/scratch"},
        ),
        ("libvirt-pool.xml.j2", "pool", {"name": "lvm", "type": "logical", "vg": "vg_scratch"}),
        (
            "libvirt-pool.xml.j2",
            "pool",
            {"name": "sec", "type": "netfs", "host": "h", "source": "/s", "path": "/p"},
        ),
    ]
    for template, kind, item in items:
        root = lo.desired_root(rendered(template, item), kind, item["name"])
        current = ET.fromstring(
            lo.to_text(lo.with_uuid(lo.desired_root(rendered(template, item), kind, item["name"]), UUID))
        )
        ET.SubElement(current, "allocation").text = "0"
        assert lo.covers(root, current)
        assert (
            lo.plan(
                kind,
                item["name"],
                lo.Current(True, lo.to_text(current), True, True),
                xml=rendered(template, item),
                present=True,
                active=True,
                autostart=True,
            )
            == lo.Plan()
        )
