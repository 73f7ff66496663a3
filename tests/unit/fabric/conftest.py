# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the fabric engine tests (helpers live in fabric_testlib.py)."""

from __future__ import annotations

import pytest
from fabric_testlib import LAB_FILE, make_doc, plan_of

from ansible_collections.compleat.cloud.plugins.module_utils.fabric.model import Plan
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.plan import build_plan, load_fabric


@pytest.fixture
def lab_plan() -> Plan:
    """Plan of inventories/lab/fabric.yml."""
    return build_plan(load_fabric(LAB_FILE))


@pytest.fixture
def base_plan() -> Plan:
    """Plan of fabric_testlib.BASE_DOC."""
    return plan_of(make_doc())
