# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers of compleat.cloud.iscsi_target (the configfs side runs in the storage scenario)."""

from __future__ import annotations

from ansible_collections.compleat.cloud.plugins.modules import iscsi_target

PARAMS = {
    "name": "iqn.2026-01.cloud.compleat:store01:vol1",
    "device": "/dev/vg_storage/vol1",
    "backstore_name": "vol1",
    "backstore_attributes": {"emulate_tpu": 1},
    "portals": [{"ip": "10.4.1.10", "port": 3260}],
    "acls": [
        {
            "initiator": "iqn.2026-01.cloud.compleat:r001-h01",
            "userid": "r001-h01",
            "password": "s3cret-s3cret",
            "mutual_userid": None,
            "mutual_password": None,
        }
    ],
    "authentication": True,
}


def test_default_backstore_name():
    assert iscsi_target.default_backstore_name("iqn.2026-01.cloud.compleat:store01.vol-1") == "store01_vol-1"
    assert iscsi_target.default_backstore_name("iqn.x:") == "lun0"


def test_portal_key():
    assert iscsi_target.portal_key("10.4.1.10", 3260) == "10.4.1.10:3260"
    assert iscsi_target.portal_key("fd00::1", 3260) == "[fd00::1]:3260"


def test_desired_state_shape():
    want = iscsi_target.desired_state(PARAMS)
    assert want["portals"] == ["10.4.1.10:3260"]
    assert want["backstore"]["attributes"] == {"emulate_tpu": "1"}
    assert want["attributes"]["authentication"] == "1"
    assert want["attributes"]["generate_node_acls"] == "0"
    acl = want["acls"]["iqn.2026-01.cloud.compleat:r001-h01"]
    assert acl == {
        "userid": "r001-h01",
        "password": "s3cret-s3cret",
        "mutual_userid": "",
        "mutual_password": "",
        "mapped_luns": [0],
    }


def test_masked_hides_secrets_only():
    masked = iscsi_target.masked(iscsi_target.desired_state(PARAMS))
    acl = masked["acls"]["iqn.2026-01.cloud.compleat:r001-h01"]
    assert acl["password"] == iscsi_target.MASK
    assert acl["mutual_password"] == ""
    assert acl["userid"] == "r001-h01"
    assert iscsi_target.masked({}) == {}


def test_comparable_ignores_unmanaged_attributes():
    want = iscsi_target.desired_state(PARAMS)
    current = iscsi_target.desired_state(PARAMS)
    current["attributes"] = {**current["attributes"], "netif_timeout": "2"}
    current["backstore"]["attributes"] = {"emulate_tpu": "1", "block_size": "512"}
    assert iscsi_target.comparable(current, want) == want


def test_comparable_sees_a_changed_secret():
    want = iscsi_target.desired_state(PARAMS)
    current = iscsi_target.desired_state(PARAMS)
    current["acls"]["iqn.2026-01.cloud.compleat:r001-h01"]["password"] = "old"
    assert iscsi_target.comparable(current, want) != want
