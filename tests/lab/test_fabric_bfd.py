# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Silent failure: a fabric uplink drops every packet while its carrier stays up (issue 17 item 7).

Only BFD can see this failure (no link-down event, BGP hold time is seconds).  Hosts of two racks
ping each other every 10 ms; the uplink the flow is hashed to starts dropping everything (``tc``
netem 100 % loss egress + ingress drop); the test prints the loss window (lost pings x 10 ms),
when bgpd learnt of the BFD down and when the kernel FIB lost the next hop, then asserts the
functional facts: the BFD session is down, the route to the remote rack lost that next hop in
FRR's RIB and in the kernel FIB and the remaining uplinks still carry it, the pings keep flowing,
and everything comes back when the link heals.  Figures are printed, not asserted (a loaded CI box
is slower); they are recorded in docs/fabric.md.

Run (root): ``.venv/bin/python -m pytest -q -p no:cacheprovider -m lab tests/lab/test_fabric_bfd.py -rP``
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labtestlib import rack_prefixes, render, running_lab, show_paths, skip_unless_lab

from ansible_collections.compleat.cloud.plugins.module_utils.fabric import intent as fabric_intent
from lab.fabric_lab import FabricLab
from lab.netns import wait_for

pytestmark = pytest.mark.lab

FABRIC = Path(__file__).resolve().parent / "fabric-bfd.yml"
PREFIX = "ccf-t-bfd-"
INTERVAL = 0.01  # ping interval (s): 100/s


@pytest.fixture(scope="module")
def bfd_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricLab]:
    skip_unless_lab(PREFIX)
    with running_lab(render(FABRIC, tmp_path_factory.mktemp("fabric-bfd")), PREFIX, timeout=120) as lab:
        yield lab


def bfd_timers(lab: FabricLab, device: str, interface: str) -> str:
    """Negotiated BFD timers of the session on ``interface`` (what the detection time follows)."""
    for peer in lab.nodes[device].json("show bfd peers json"):
        if peer.get("interface") == interface:
            keys = ("detect-multiplier", "receive-interval", "transmit-interval", "echo-receive-interval")
            remote = ("remote-detect-multiplier", "remote-receive-interval", "remote-transmit-interval")
            local = ", ".join(f"{key} {peer.get(key)}" for key in keys)
            return f"{local}; remote {', '.join(f'{key[7:]} {peer.get(key)}' for key in remote)}"
    return "absent"


def bfd_peer_status(lab: FabricLab, device: str, interface: str) -> str:
    """``up``/``down``/... of the BFD session of ``device`` on ``interface``."""
    for peer in lab.nodes[device].json("show bfd peers json"):
        if peer.get("interface") == interface:
            return str(peer.get("status"))
    return "absent"


def test_silent_uplink_failure_rerouted_by_bfd(bfd_lab: FabricLab) -> None:
    lab = bfd_lab
    topo = lab.topology
    src, dst = "r001-h01", "r002-h01"
    tor = "r001-tor1"
    remote = rack_prefixes(lab, topo.devices[dst]["rack"])
    src_address, dst_address = lab.host_address(src), lab.host_address(dst)
    uplinks = [i["name"] for i in topo.devices[tor]["interfaces"] if i["kind"] == "uplink"]
    failed = lab.flow_uplink(tor, src_address, dst_address)
    assert failed in uplinks
    before = show_paths(lab, "before", tor, remote)
    assert all(len(p["rib"]) == len(uplinks) == len(p["fib"]) for p in before.values())
    assert bfd_peer_status(lab, tor, failed) == "up"

    monitor = lab.monitor_routes(tor)
    flood = lab.ping_flood(src, dst_address, interval=INTERVAL)
    time.sleep(1.0)
    watch = lab.watch_bfd(tor, failed)
    dropped_at = time.time()
    lab.silent_failure(tor, failed, on=True)
    applied_at = time.time()  # the drop began between dropped_at and applied_at
    try:

        def next_hop_gone() -> bool:
            observed = lab.observe(tor)
            return all(
                not any(hop.endswith(f"%{failed}") for hop in paths)
                for prefix in remote
                for paths in (
                    fabric_intent.rib_nexthops(observed["routes"], prefix),
                    fabric_intent.fib_nexthops(observed["kernel_routes"], prefix),
                )
            )

        # 5 s: well inside the BGP hold time (9 s), so only BFD can have withdrawn the next hop
        wait_for(next_hop_gone, timeout=5, interval=0.05, what=f"{tor}: next hop via {failed} withdrawn")
        time.sleep(1.0)
        stats = flood.stop()
        events = monitor.stop()
        after = show_paths(lab, f"after silent failure of {failed}", tor, remote)
        bfd_down_at = watch.result()
        fib_at = next((stamp for stamp, text in events if stamp >= dropped_at and remote[0] in text), None)
        print(f"--- silent failure of {tor} {failed} (ping every {INTERVAL * 1000:.0f} ms {src} -> {dst})")
        print(f"  BFD session: {bfd_timers(lab, tor, failed)}")
        print(f"  drop applied within {1000 * (applied_at - dropped_at):.0f} ms (nft in the namespace)")
        print(
            f"  pings sent {stats.sent} (one per {stats.actual_interval * 1000:.1f} ms), lost {stats.lost}: "
            f"loss window {stats.loss_window * 1000:.0f} ms at 10 ms, "
            f"{stats.measured_loss_window * 1000:.0f} ms at the kept rate"
        )
        if bfd_down_at is not None:
            print(f"  BFD down seen {1000 * (bfd_down_at - applied_at):.0f} ms after the drop (polled)")
        if fib_at is not None:
            print(f"  kernel FIB updated {1000 * (fib_at - applied_at):.0f} ms after the drop")
            if bfd_down_at is not None:
                print(f"  BFD down -> kernel FIB updated: {1000 * (fib_at - bfd_down_at):.0f} ms")

        assert bfd_peer_status(lab, tor, failed) == "down"
        for prefix, hops in after.items():
            assert not any(hop.endswith(f"%{failed}") for hop in hops["rib"] + hops["fib"]), (prefix, hops)
            assert len(hops["rib"]) == len(uplinks) - 1 == len(hops["fib"]), (prefix, hops)
        assert stats.received > 0 and stats.lost < stats.sent
        assert fib_at is not None, events
    finally:
        flood.stop() if flood.proc.poll() is None else None
        lab.silent_failure(tor, failed, on=False)

    wait_for(lambda: bfd_peer_status(lab, tor, failed) == "up", timeout=30, what="BFD up again")
    lab.wait_converged(timeout=60)
    restored = show_paths(lab, f"after {failed} healed", tor, remote)
    assert all(len(p["rib"]) == len(uplinks) == len(p["fib"]) for p in restored.values())
    assert lab.ping(src, dst_address, count=2)
