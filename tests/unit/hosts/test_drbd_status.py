# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drbdadm status parser of compleat.cloud.drbd_status."""

from __future__ import annotations

from ansible_collections.compleat.cloud.plugins.modules import drbd_status

CONNECTED = """\
r0 role:Primary
  disk:UpToDate
  store02 role:Secondary
    peer-disk:UpToDate

"""

SYNCING = """\
r0 role:Primary
  disk:UpToDate
  store02 role:Secondary
    replication:SyncSource peer-disk:Inconsistent done:42.10

r1 role:Secondary
  disk:Inconsistent
  store02 connection:Connecting

"""

MULTI_VOLUME = """\
data role:Secondary
  volume:0 disk:UpToDate
  volume:1 disk:UpToDate
  store01 role:Primary
    volume:0 peer-disk:UpToDate
    volume:1 peer-disk:UpToDate
"""


def test_connected_pair():
    facts = drbd_status.facts_from_text(CONNECTED)
    r0 = facts["r0"]
    assert r0["role"] == "Primary"
    assert r0["disk"] == "UpToDate"
    assert r0["peer"] == "store02"
    assert r0["peer_role"] == "Secondary"
    assert r0["peer_disk"] == "UpToDate"
    assert r0["connected"] is True
    assert r0["connection"] == "Connected"
    assert r0["sync_percent"] is None


def test_sync_in_progress_and_unconnected_resource():
    facts = drbd_status.facts_from_text(SYNCING)
    assert facts["r0"]["replication"] == "SyncSource"
    assert facts["r0"]["sync_percent"] == 42.1
    assert facts["r0"]["connected"] is True
    r1 = facts["r1"]
    assert r1["disk"] == "Inconsistent"
    assert r1["connection"] == "Connecting"
    assert r1["connected"] is False
    assert r1["peer_disk"] is None


def test_volumes_are_kept():
    facts = drbd_status.facts_from_text(MULTI_VOLUME)
    data = facts["data"]
    assert set(data["volumes"]) == {"0", "1"}
    assert data["disk"] == "UpToDate"
    assert data["peers"]["store01"]["volumes"]["1"]["peer-disk"] == "UpToDate"
    assert data["peer_role"] == "Primary"


def test_empty_output():
    assert drbd_status.facts_from_text("") == {}
