# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The instance mix of the cloud-stack benchmarks (placement.py, rebalance.py): offerings, the
hypervisor families and the random requests both place."""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "build" / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.compleat.cloud.plugins.module_utils.cloud import placement as pl  # noqa: E402

OFFERINGS = ((1, 1024), (2, 2048), (2, 4096), (4, 8192), (8, 16384))
KVM = frozenset({"kvm", "qemu"})
XEN = frozenset({"xen"})


def make_requests(count: int, rng: random.Random) -> list[pl.Request]:
    """Offerings mixed, 10 % in one of 500 anti-affinity groups, 10 % on Xen."""
    out = []
    for _n in range(count):
        vcpus, ram = rng.choice(OFFERINGS)
        group = f"g{rng.randrange(500)}" if rng.random() < 0.1 else None
        out.append(
            pl.Request(vcpus, ram, hypervisors=XEN if rng.random() < 0.1 else KVM, anti_affinity_group=group)
        )
    return out
