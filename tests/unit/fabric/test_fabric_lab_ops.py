# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers of the lab operations used by the drain and BFD lab tests (no root needed)."""

from __future__ import annotations

import sys
from datetime import datetime

from fabric_testlib import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from lab.fabric_lab import PingStats, Topology, parse_monitor


def test_parse_monitor_joins_multipath_lines() -> None:
    text = (
        "[2026-12-07T06:36:29.123456] 10.0.2.0/24 nhid 0 proto bgp metric 20 \n"
        "\tnexthop via 10.254.0.18 dev up2 weight 1 \n"
        "\tnexthop via 10.254.0.20 dev up3 weight 1 \n"
        "[2026-12-07T06:36:29.200000] Deleted 10.255.0.9/32 proto bgp metric 20\n"
    )
    events = parse_monitor(text)
    assert [round(stamp - events[0][0], 6) for stamp, _text in events] == [0.0, 0.076544]
    assert events[0][0] == datetime.fromisoformat("2026-12-07T06:36:29.123456").timestamp()
    assert "dev up2" in events[0][1] and "dev up3" in events[0][1] and "up2" not in events[1][1]


def test_ping_stats_loss_window() -> None:
    stats = PingStats(sent=200, received=183, interval=0.01, elapsed=3.4)
    assert stats.lost == 17
    assert round(stats.loss_window, 3) == 0.17
    assert round(stats.actual_interval, 3) == 0.017 and round(stats.measured_loss_window, 3) == 0.289


def test_link_mtu_per_link_with_fallback(tmp_path: object) -> None:
    topo = Topology(tmp_path, {"fabric": {"link_mtu": 9000}}, {}, [], [])  # type: ignore[arg-type]
    assert topo.mtu_of({"mtu": 1500}) == 1500
    assert topo.mtu_of({}) == 9000  # a topology.json written before links carried their MTU
