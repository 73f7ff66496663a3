# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt QEMU hook of tenant networks (``cloud.vtep.hook_main`` and the role's thin hook file).

The fake kernel of test_cloud_vtep.py plays ``ip``; the real kernel and a real libvirtd run the hook
in tests/integration_libvirt/test_tenant_vtep_hook.py, the role's container in molecule/tenant_vtep.
"""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_cloud_vtep import VTEP, FakeKernel

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import vtep
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.vtep import (
    HookConfig,
    VtepError,
    bridges_of_domain_xml,
    hook_main,
    parse_hook_config,
    tenant_nics_of_domain_xml,
    vni_of_bridge,
)

ROOT = Path(__file__).resolve().parents[3]
HOOK = ROOT / "roles" / "tenant_vtep" / "files" / "qemu_hook.py"
CONFIG = HookConfig(vtep_ip=VTEP, mtu=8950)
LIST = ["ip", "-j", "-d", "link", "show"]

DOMAIN = """<domain type='qemu'>
  <name>vm1</name>
  <devices>
    <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='brv100'/>
      <mtu size='1450'/><model type='virtio'/></interface>
    <interface type='bridge'><source bridge='brv200'/><target dev='vnet7'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
    <interface type='bridge'><source bridge='brv0100'/></interface>
    <interface type='bridge'><source bridge='brv16777216'/></interface>
    <interface type='network'><source network='default'/></interface>
    <interface type='user'/>
  </devices>
</domain>"""
PLAIN = "<domain type='qemu'><name>plain</name><devices><interface type='user'/></devices></domain>"


def run(argv: list[str], xml: str, kernel: FakeKernel, config=lambda: CONFIG) -> tuple[int, str]:
    err = io.StringIO()
    rc = hook_main(["qemu", *argv], io.StringIO(xml), kernel, config, err)
    return rc, err.getvalue()


def no_config() -> HookConfig:
    raise AssertionError("the configuration must not be read")


# ------------------------------------------------------------------------------------ XML
def test_tenant_nics_of_domain_xml() -> None:
    assert tenant_nics_of_domain_xml(DOMAIN) == {100: 1450, 200: None}
    assert bridges_of_domain_xml(DOMAIN) == [100, 200]
    assert bridges_of_domain_xml(PLAIN) == []
    two = (
        "<domain><devices>"
        + "<interface type='bridge'><source bridge='brv5'/><mtu size='{}'/></interface>" * 2
    )
    assert tenant_nics_of_domain_xml(two.format(1400, 1450) + "</devices></domain>") == {5: 1450}


@pytest.mark.parametrize(
    ("name", "vni"),
    [
        *[("brv1", 1), ("brv16777215", 16777215), ("brv0", None), ("brv01", None), ("brv16777216", None)],
        *[("br0", None), ("xbrv5", None), ("brv5x", None), (None, None), ("vxv5", None)],
    ],
)
def test_vni_of_bridge(name: str | None, vni: int | None) -> None:
    assert vni_of_bridge(name) == vni


def test_bad_xml_and_bad_mtu_are_errors() -> None:
    with pytest.raises(VtepError, match="domain XML"):
        tenant_nics_of_domain_xml("<domain><devices>")
    bad = "<domain><interface type='bridge'><source bridge='brv5'/><mtu size='big'/></interface></domain>"
    with pytest.raises(VtepError, match="mtu"):
        tenant_nics_of_domain_xml(bad)


# ------------------------------------------------------------------------------------ configuration
def test_parse_hook_config() -> None:
    good = parse_hook_config(json.dumps({"vtep_ip": VTEP, "mtu": 8950, "neigh_suppress": True}))
    assert good == HookConfig(VTEP, 8950, True)
    assert parse_hook_config(json.dumps({"vtep_ip": VTEP, "mtu": 1450})).neigh_suppress is False
    for bad, match in (
        ("{", "not JSON"),
        ("[]", "vtep_ip and mtu"),
        (json.dumps({"vtep_ip": VTEP}), "vtep_ip and mtu"),
        (json.dumps({"vtep_ip": VTEP, "mtu": 1450, "vni": 5}), "unknown keys: vni"),
        (json.dumps({"vtep_ip": "nope", "mtu": 1450}), "not an IP"),
        (json.dumps({"vtep_ip": VTEP, "mtu": "1450"}), "MTU"),
        (json.dumps({"vtep_ip": VTEP, "mtu": 1450, "neigh_suppress": "yes"}), "neigh_suppress"),
    ):
        with pytest.raises(VtepError, match=match):
            parse_hook_config(bad)


def test_read_hook_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(VtepError, match=r"cannot read .*missing\.json"):
        vtep.read_hook_config(str(tmp_path / "missing.json"))
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(VtepError, match=r"c\.json: configuration must"):
        vtep.read_hook_config(str(tmp_path / "c.json"))


# ------------------------------------------------------------------------------------ dispatch
def test_prepare_creates_every_tenant_network_once() -> None:
    kernel = FakeKernel()
    assert run(["vm1", "prepare", "begin", "-"], DOMAIN, kernel) == (0, "")
    links = kernel.parsed()
    assert sorted(n for n in links if n.startswith(("brv", "vxv"))) == [
        "brv100",
        "brv200",
        "vxv100",
        "vxv200",
    ]
    assert links["vxv100"].mtu == links["brv100"].mtu == 1450  # the NIC's <mtu>
    assert links["vxv200"].mtu == links["brv200"].mtu == 8950  # the host's largest tenant MTU
    assert (links["vxv200"].vni, links["vxv200"].local, links["vxv200"].master) == (200, VTEP, "brv200")
    assert not any("br0" in argv or "brv0100" in argv for argv in kernel.calls)
    calls = len(kernel.calls)
    assert run(["vm2", "prepare", "begin", "-"], DOMAIN, kernel) == (0, "")  # a second domain
    assert kernel.calls[calls:] == [LIST, LIST]  # read once per network, nothing changed


def test_neigh_suppress_from_the_configuration() -> None:
    kernel = FakeKernel()
    config = HookConfig(VTEP, 8950, neigh_suppress=True)
    assert run(["vm1", "prepare", "begin", "-"], DOMAIN, kernel, lambda: config)[0] == 0
    assert kernel.parsed()["vxv200"].neigh_suppress is True


def test_release_removes_only_unused_networks() -> None:
    kernel = FakeKernel()
    run(["vm1", "prepare", "begin", "-"], DOMAIN, kernel)
    kernel.add_port("vnet3", "brv200")  # another domain still on VNI 200
    assert run(["vm1", "release", "end", "destroyed"], DOMAIN, kernel, no_config) == (0, "")
    assert "brv100" not in kernel.links and "vxv100" not in kernel.links
    assert "brv200" in kernel.links and "vxv200" in kernel.links
    del kernel.links["vnet3"]
    assert run(["vm2", "release", "end", "-"], DOMAIN, kernel, no_config) == (0, "")
    assert not any(name.startswith(("brv", "vxv")) for name in kernel.links)
    calls = len(kernel.calls)
    assert run(["vm2", "release", "end", "-"], DOMAIN, kernel, no_config) == (0, "")  # idempotent
    assert kernel.calls[calls:] == [LIST, LIST]


@pytest.mark.parametrize(
    "argv",
    [
        ["vm1", "start", "begin", "-"],
        ["vm1", "started", "begin", "-"],
        ["vm1", "stopped", "end", "-"],
        ["vm1", "reconnect", "begin", "-"],  # a failure here would kill the running QEMU
        ["vm1", "migrate", "begin", "-"],  # stdout would replace the XML
        ["vm1", "restore", "begin", "-"],
        ["vm1", "attach", "begin", "-"],
    ],
)
def test_other_operations_do_nothing(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    kernel = FakeKernel()
    assert run(argv, DOMAIN, kernel, no_config) == (0, "")
    assert kernel.calls == [] and capsys.readouterr().out == ""


def test_domain_without_tenant_nics_needs_no_configuration() -> None:
    kernel = FakeKernel()
    assert run(["plain", "prepare", "begin", "-"], PLAIN, kernel, no_config) == (0, "")
    assert run(["plain", "release", "end", "-"], PLAIN, kernel, no_config) == (0, "")
    assert kernel.calls == []


# ------------------------------------------------------------------------------------ errors
def test_missing_configuration_refuses_the_start() -> None:
    kernel = FakeKernel()

    def broken() -> HookConfig:
        raise VtepError("/etc/compleat/tenant-vtep.json: cannot read")

    rc, err = run(["vm1", "prepare", "begin", "-"], DOMAIN, kernel, broken)
    assert rc == 1 and "domain vm1" in err and "tenant-vtep.json" in err
    assert kernel.calls == []


def test_failed_ip_command_refuses_the_start_and_rolls_back() -> None:
    kernel = FakeKernel()
    kernel.fail_on = "200"  # the second network cannot be made
    rc, err = run(["vm1", "prepare", "begin", "-"], DOMAIN, kernel)
    assert rc == 1 and "domain vm1" in err and "Operation not permitted" in err
    assert not any(name.startswith(("brv", "vxv")) for name in kernel.links)  # VNI 100 removed again


def test_failed_release_is_reported() -> None:
    kernel = FakeKernel()
    run(["vm1", "prepare", "begin", "-"], DOMAIN, kernel)
    kernel.fail_on = "vxv100"
    rc, err = run(["vm1", "release", "end", "-"], DOMAIN, kernel, no_config)
    assert rc == 1 and "brv100" in err and "Operation not permitted" in err
    assert "brv200" not in kernel.links  # the other network was still released


def test_bad_xml_and_usage() -> None:
    kernel = FakeKernel()
    rc, err = run(["vm1", "prepare", "begin", "-"], "<domain>", kernel)
    assert rc == 1 and "cannot parse the domain XML" in err
    assert run(["vm1"], DOMAIN, kernel)[0] == 2


# ------------------------------------------------------------------------------------ packaging
def test_vtep_imports_only_the_standard_library() -> None:
    """The role copies vtep.py to the hypervisors alone: it must not import anything else."""
    tree = ast.parse((ROOT / "plugins" / "module_utils" / "cloud" / "vtep.py").read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            modules.add((node.module or "").split(".")[0])
    assert modules, "found no imports"
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}, modules - set(sys.stdlib_module_names)


def test_hook_paths_match_the_role() -> None:
    role_vars = yaml.safe_load((ROOT / "roles" / "tenant_vtep" / "vars" / "main.yml").read_text())
    text = HOOK.read_text()
    assert f'LIB_DIR = "{role_vars["tenant_vtep_hook_lib_dir"]}"\n' in text
    assert f'CONFIG = "{role_vars["tenant_vtep_hook_config"]}"\n' in text
    assert role_vars["tenant_vtep_hook_marker"] in text
    assert role_vars["tenant_vtep_hook_file"] == "/etc/libvirt/hooks/qemu"
    assert role_vars["tenant_vtep_vxlan_overhead"] == vtep.VXLAN_OVERHEAD
    # the role writes the interpreter line (tenant_vtep_hook_python); the file itself has none
    assert role_vars["tenant_vtep_hook_python"] == "/usr/bin/python3"
    assert not os.access(HOOK, os.X_OK) and not text.startswith("#!")


def installed_hook(tmp_path: Path, config: dict) -> Path:
    """The role's hook file with its paths pointing into ``tmp_path`` (library, config, lock)."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "vtep.py").write_text((ROOT / "plugins/module_utils/cloud/vtep.py").read_text())
    (tmp_path / "tenant-vtep.json").write_text(json.dumps(config))
    text = HOOK.read_text()
    for key, value in (("LIB_DIR", tmp_path / "lib"), ("CONFIG", tmp_path / "tenant-vtep.json")):
        line = next(line for line in text.splitlines() if line.startswith(f"{key} = "))
        text = text.replace(line, f'{key} = "{value}"')
    line = next(line for line in text.splitlines() if line.startswith("LOCK = "))
    text = text.replace(line, f'LOCK = "{tmp_path / "lock"}"')
    hook = tmp_path / "qemu"
    hook.write_text(f"#!{sys.executable}\n{text}")  # the interpreter line, as the role writes it
    hook.chmod(0o755)
    return hook


def test_installed_hook_runs_standalone(tmp_path: Path) -> None:
    """The thin hook imports the copied vtep.py and nothing else (``-I``: no site, no PYTHONPATH)."""
    hook = installed_hook(tmp_path, {"vtep_ip": VTEP, "mtu": 8950})

    def call(*args: str, xml: str = DOMAIN) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-I", str(hook), *args]
        return subprocess.run(argv, input=xml, capture_output=True, text=True, check=False, timeout=30)

    for args in (("vm1", "reconnect", "begin", "-"), ("plain", "prepare", "begin", "-")):
        proc = call(*args, xml=PLAIN if args[0] == "plain" else DOMAIN)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    (tmp_path / "tenant-vtep.json").write_text('{"vtep_ip": "nope", "mtu": 8950}')
    proc = call("vm1", "prepare", "begin", "-")  # fails before any ip command
    assert proc.returncode == 1 and proc.stdout == "" and "not an IP address" in proc.stderr
    assert (tmp_path / "lock").exists()
