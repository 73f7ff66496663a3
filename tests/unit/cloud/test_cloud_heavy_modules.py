# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Heavy-workload options through the modules: offering, hypervisor, instance, evacuate, rebalance."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import virt
from ansible_collections.compleat.cloud.plugins.module_utils.cloud.store import Store
from ansible_collections.compleat.cloud.plugins.modules import (
    evacuate,
    hypervisor,
    instance,
    offering,
    rebalance,
)

A100 = {"class": "gpu-a100", "vendor_device": "10de:20b5"}
GPU_OFFERING = {
    "name": "gpu",
    "vcpus": 2,
    "ram_mb": 1024,
    "cpu_pinning": True,
    "hugepages": "2M",
    "pci_devices": [{"class": "gpu-a100", "count": 1}],
}


def vm(name, host=None, off="gpu"):
    out = {"name": name, "template": "tpl", "offering": off, "networks": [{"source": "default"}]}
    if host:
        out["host"] = host
    return out


def gpu_node(cloud, name, *, cpus, pages, address, group):
    """Declare ``name`` with pCPUs ``cpus`` dedicated, ``pages`` x 2M hugepages and one A100 at
    ``address`` in IOMMU group ``group``."""
    return cloud.ok(
        hypervisor,
        name=name,
        dedicated_cpus=cpus,
        hugepages={"2M": pages},
        pci_devices=[{"address": address, "iommu_group": group, **A100}],
    )


@pytest.fixture
def gpu_host(cloud):
    """hv1 with pCPUs 4-7 dedicated, 1024 x 2M hugepages and one A100; the gpu offering."""
    gpu_node(cloud, "hv1", cpus="4-7", pages=1024, address="0000:3b:00.0", group=30)
    cloud.ok(offering, **GPU_OFFERING)
    return cloud


def domain_xml(uuid):
    return virt.connect("test:///default").lookupByUUIDString(uuid).XMLDesc(virt.XML_INACTIVE)


# ------------------------------------------------------------------------------------------------
# offering
# ------------------------------------------------------------------------------------------------
def test_offering_heavy_options(cloud):
    assert cloud.ok(offering, check=True, diff=True, **GPU_OFFERING)["changed"]
    with Store.open(cloud.store) as s:
        assert s.get("offerings", name="gpu") is None
    res = cloud.ok(offering, **GPU_OFFERING)
    assert res["offering"] == {
        "name": "gpu",
        "vcpus": 2,
        "ram_mb": 1024,
        "disk_gb": 0,
        "nic_queues": 0,
        "cpu_pinning": True,
        "hugepages": "2M",
        "pci_devices": [{"class": "gpu-a100", "count": 1}],
    }
    assert not cloud.ok(offering, **GPU_OFFERING)["changed"]
    res = cloud.ok(offering, name="gpu", hugepages="none", pci_devices=[], nic_queues=2, diff=True)
    assert res["changed"] and res["diff"]["before"]["hugepages"] == "2M"
    assert (res["offering"]["hugepages"], res["offering"]["pci_devices"], res["offering"]["nic_queues"]) == (
        "none",
        [],
        2,
    )
    assert res["offering"]["cpu_pinning"] is True  # omitted options are kept


def test_offering_refusals_name_the_option(cloud):
    res = cloud.fails(offering, name="x", vcpus=2, ram_mb=1024, nic_queues=300)
    assert "nic_queues=300" in res["msg"]
    res = cloud.fails(offering, name="x", vcpus=2, ram_mb=1536, hugepages="1G")
    assert res["key"] == "ram_mb" and "multiple of the 1G hugepage size" in res["msg"]
    res = cloud.fails(offering, name="x", vcpus=2, ram_mb=1024, pci_devices=[{"class": "GPU!"}])
    assert res["key"] == "pci_devices[0].class" and res["value"] == "GPU!"
    cloud.ok(offering, name="x", vcpus=2, ram_mb=2048, hugepages="1G")
    res = cloud.fails(offering, name="x", ram_mb=1536)  # the stored page size still applies
    assert res["key"] == "ram_mb"
    with Store.open(cloud.store) as s:
        assert s.get("offerings", name="x")["ram_mb"] == 2048


# ------------------------------------------------------------------------------------------------
# hypervisor
# ------------------------------------------------------------------------------------------------
def test_hypervisor_registers_resources_idempotently(cloud):
    args = {
        "name": "hv1",
        "dedicated_cpus": "7,4-6",
        "hugepages": {"2M": 512, "1G": 0},
        "pci_devices": [{"address": "3b:00.0", "iommu_group": 30, **A100}],
    }
    res = cloud.ok(hypervisor, check=True, diff=True, **args)
    assert res["changed"] and res["actions"] == ["register PCI device 0000:3b:00.0 (gpu-a100)"]
    assert res["diff"]["after"]["pci_devices"][0]["address"] == "0000:3b:00.0"
    with Store.open(cloud.store) as s:
        assert s.select("pci_devices") == [] and s.get("hosts", name="hv1")["dedicated_cpus"] == ""
    res = cloud.ok(hypervisor, **args)
    host = res["host"]
    assert (host["dedicated_cpus"], host["hugepages"], host["pinned_cpus"]) == ("4-7", {"2M": 512}, "")
    assert host["pci_devices"] == [
        {
            "address": "0000:3b:00.0",
            "class": "gpu-a100",
            "vendor_device": "10de:20b5",
            "iommu_group": 30,
            "instance": None,
        }
    ]
    again = cloud.ok(hypervisor, **args)
    assert not again["changed"] and again["actions"] == []
    # the shared pools shrink by the dedicated set and the hugepage pool
    from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement

    with Store.open(cloud.store) as s:
        (hv1,) = placement.load_hosts(s)
    assert (hv1.vcpu_limit, hv1.ram_limit_mb) == (4, 16384 - 1024)
    res = cloud.fails(
        hypervisor, name="hv1", pci_devices=[{"address": "3b:00.0", "class": "g", "vendor_device": "x"}]
    )
    assert res["key"] == "pci_devices[0].vendor_device"
    res = cloud.fails(hypervisor, name="hv1", dedicated_cpus="4-2")
    assert res["key"] == "dedicated_cpus"
    res = cloud.fails(hypervisor, name="hv1", dedicated_cpus="4-8")  # hv1 has CPUs 0-7
    assert res["key"] == "dedicated_cpus" and "8 CPUs (0-7)" in res["msg"]
    res = cloud.fails(hypervisor, name="hv1", reserved_vcpus=5)  # 4 dedicated + 5 reserved > 8
    assert res["key"] == "dedicated_cpus" and "5 reserved" in res["msg"]
    assert cloud.ok(hypervisor, name="hv1", hugepages={"2M": "512"})["changed"] is False  # "512" from a file


def test_held_resources_cannot_be_taken_away(gpu_host):
    cloud = gpu_host
    cloud.ok(instance, state="present", **vm("train"))
    res = cloud.fails(hypervisor, name="hv1", pci_devices=[])
    assert "0000:3b:00.0 of hv1 is held by train" in res["msg"]
    res = cloud.fails(
        hypervisor,
        name="hv1",
        pci_devices=[{"address": "0000:3b:00.0", "class": "gpu-t4", "vendor_device": "10de:20b5"}],
    )
    assert "cannot change from gpu-a100 to gpu-t4" in res["msg"]
    res = cloud.fails(hypervisor, name="hv1", dedicated_cpus="6-7")
    assert "pCPUs 4-5 are pinned by instances" in res["msg"] and "force=true" in res["hint"]
    res = cloud.fails(hypervisor, name="hv1", hugepages={"2M": 100})
    assert "412 more 2M hugepages in use than the new pool has" in res["msg"]
    res = cloud.fails(hypervisor, name="hv1", hugepages={})
    assert "512 2M hugepages in use" in res["msg"]
    res = cloud.ok(hypervisor, name="hv1", dedicated_cpus="3-7", check=True)  # growing is fine
    assert res["changed"] and res["host"]["pinned_cpus"] == "4-5"
    res = cloud.fails(hypervisor, name="hv1", state="absent")
    assert "still has instances: train" in res["msg"]


# ------------------------------------------------------------------------------------------------
# instance
# ------------------------------------------------------------------------------------------------
def test_instance_gets_pins_hugepages_device_and_queues(gpu_host):
    cloud = gpu_host
    plan = cloud.ok(instance, state="running", check=True, **vm("train"))
    assert plan["changed"] and plan["actions"][0] == "place on hv1"
    res = cloud.ok(instance, state="running", **vm("train"))
    inst = res["instance"]
    assert (inst["nic_queues"], inst["cpu_pinning"], inst["hugepages"]) == (2, 1, "2M")
    root = ET.fromstring(domain_xml(inst["uuid"]))
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == [
        ("0", "4"),
        ("1", "5"),
    ]
    assert root.find("memoryBacking/hugepages/page").get("size") == "2048"
    addr = root.find("devices/hostdev[@type='pci']/source/address")
    assert (addr.get("bus"), addr.get("slot"), addr.get("function")) == ("0x3b", "0x00", "0x0")
    assert root.find("devices/interface/driver").get("queues") == "2"
    assert not cloud.ok(instance, state="running", **vm("train"))["changed"]

    # the host has one GPU: the next instance is refused, naming the device
    res = cloud.fails(instance, state="running", **vm("train2"))
    assert "1 x gpu-a100" in res["msg"] and "1 no free gpu-a100 PCI device [hv1]" in res["msg"]
    host = cloud.ok(hypervisor, name="hv1")["host"]
    assert host["pci_devices"][0]["instance"] == "train" and host["pinned_cpus"] == "4-5"

    # deleting the instance gives everything back
    cloud.ok(instance, name="train", state="absent")
    host = cloud.ok(hypervisor, name="hv1")["host"]
    assert host["pci_devices"][0]["instance"] is None and host["pinned_cpus"] == ""
    assert cloud.ok(instance, state="present", **vm("train2"))["changed"]


def test_resize_to_a_heavy_offering_checks_the_resources(gpu_host):
    cloud = gpu_host
    cloud.ok(instance, state="stopped", **vm("web", off="small"))
    cloud.ok(offering, name="pinned-4", vcpus=4, ram_mb=1024, cpu_pinning=True)
    cloud.ok(offering, name="pinned-5", vcpus=5, ram_mb=1024, cpu_pinning=True)
    res = cloud.fails(instance, name="web", offering="pinned-5")
    assert "not enough free dedicated pCPUs [hv1]" in res["msg"]
    res = cloud.ok(instance, name="web", offering="pinned-4")
    pins = ET.fromstring(domain_xml(res["instance"]["uuid"])).findall("cputune/vcpupin")
    assert [p.get("cpuset") for p in pins] == ["4", "5", "6", "7"]
    res = cloud.ok(instance, name="web", offering="small")
    assert ET.fromstring(domain_xml(res["instance"]["uuid"])).find("cputune") is None
    assert cloud.ok(hypervisor, name="hv1")["host"]["pinned_cpus"] == ""


# ------------------------------------------------------------------------------------------------
# evacuate and rebalance go only where the resources are
# ------------------------------------------------------------------------------------------------
def test_evacuation_targets_only_a_host_with_the_device(gpu_host, second_node, libvirt_test):
    cloud = gpu_host
    cloud.add_host("hv2", second_node)
    first = cloud.ok(instance, state="running", **vm("train", host="hv1"))["instance"]
    libvirt_test.lookupByName("train").destroy()  # hv1 died
    cloud.ok(hypervisor, name="hv1", host_state="fenced")
    res = cloud.fails(evacuate, host="hv1")
    (failure,) = res["failures"]
    assert "with 2 pinned pCPUs, 512 x 2M hugepages, 1 x gpu-a100" in failure["reason"]
    assert "1 not enough free dedicated pCPUs [hv2]" in failure["reason"]
    gpu_node(cloud, "hv2", cpus="2-3", pages=512, address="0000:af:00.0", group=4)
    assert cloud.ok(evacuate, host="hv1", check=True)["evacuated"][0]["to"] == "hv2"
    res = cloud.ok(evacuate, host="hv1")
    assert res["evacuated"][0]["to"] == "hv2" and res["evacuated"][0]["instance_id"] == first["instance_id"]
    xml = virt.connect(second_node).lookupByUUIDString(first["uuid"]).XMLDesc(virt.XML_INACTIVE)
    fields = virt.owned_fields(xml)
    assert fields["hostdevs"] == ["0000:af:00.0"] and fields["cpu_pins"] == [[0, "2"], [1, "3"]]
    assert cloud.ok(hypervisor, name="hv1")["host"]["pci_devices"][0]["instance"] is None
    assert cloud.ok(hypervisor, name="hv2")["host"]["pci_devices"][0]["instance"] == "train"


def test_rebalance_drains_a_pinned_instance_only_to_a_host_with_pcpus(gpu_host, second_node):
    cloud = gpu_host
    cloud.add_host("hv2", second_node)
    cloud.add_host("hv3", second_node)  # same test node, separate storage: no dedicated pCPUs
    cloud.ok(offering, name="pinned", vcpus=2, ram_mb=512, cpu_pinning=True)
    cloud.ok(instance, state="stopped", **vm("hpc", host="hv1", off="pinned"))
    cloud.ok(hypervisor, name="hv1", maintenance=True)
    plan = cloud.ok(rebalance, check=True)
    assert plan["moves"] == [] and plan["unplaced"][0]["instance"] == "hpc"
    cloud.ok(hypervisor, name="hv3", dedicated_cpus="6-7")
    plan = cloud.ok(rebalance, check=True)
    assert [(m["instance"], m["to"]) for m in plan["moves"]] == [("hpc", "hv3")]


def test_a_hostdev_removed_behind_the_store_is_drift_and_reconcile_restores_it(gpu_host, libvirt_test):
    from ansible_collections.compleat.cloud.plugins.modules import cloud_info, reconcile

    cloud = gpu_host
    inst = cloud.ok(instance, state="stopped", **vm("train"))["instance"]
    root = ET.fromstring(domain_xml(inst["uuid"]))
    devices = root.find("devices")
    devices.remove(devices.find("hostdev"))
    root.find("cputune").clear()
    libvirt_test.defineXML(ET.tostring(root, encoding="unicode"))
    health = cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]
    assert health["mismatched"] == ["train"]
    assert health["instances"]["train"]["drift"]["config"] == ["cpu_pins", "hostdevs"]
    res = cloud.ok(reconcile)
    assert res["changed"] and res["instances"][0]["repaired"]
    fields = virt.owned_fields(domain_xml(inst["uuid"]))
    assert fields["hostdevs"] == ["0000:3b:00.0"] and fields["cpu_pins"] == [[0, "4"], [1, "5"]]
    assert cloud.ok(cloud_info, gather=["hosts"], check_health=True)["health"]["mismatched"] == []


def test_a_dedicated_set_leaves_the_shared_pool_and_cannot_undercut_it(cloud):
    for name in ("web0", "web1"):  # 2 x 4 vCPU: hv1's 8 vCPUs (ratio 1) all committed
        cloud.ok(instance, state="present", **vm(name, off="large"))
    res = cloud.fails(hypervisor, name="hv1", dedicated_cpus="2-7")  # shared limit 8 -> 2, 8 committed
    assert "vCPU limit 2 < 8 committed" in res["msg"] and "force=true" in res["hint"]
    res = cloud.ok(hypervisor, name="hv1", dedicated_cpus="2-7", force=True)
    assert res["changed"] and res["host"]["dedicated_cpus"] == "2-7"
    res = cloud.fails(instance, state="present", **vm("web9", off="small"))
    assert "1 not enough vCPU [hv1]" in res["msg"]
