# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""MAC addresses of instance NICs: unique across the store, checked where they are allocated.

A generated MAC is QEMU's ``52:54:00`` prefix plus 24 bits of a hash of the instance UUID and
the NIC index: stable (the same instance gets the same MAC wherever it is rebuilt), but with
2^24 values two NICs collide with ~50 % probability at ~4,800 NICs.  So every NIC's MAC is
checked against the MACs of every other instance inside the write transaction that stores it:
a generated MAC that is taken is re-derived (``attempt`` 1, 2, ...), a MAC the operator gave
that is taken is refused.  The check first locks the host rows (``SELECT ... FOR UPDATE`` on
PostgreSQL), the lock every allocation takes, so two runs can never claim the same MAC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import Conflict, InvalidInput
from .store import Store, decode_row

MAX_ATTEMPTS = 64


def generated_mac(uuid: str, index: int, attempt: int = 0) -> str:
    """A stable locally administered MAC for NIC ``index`` of ``uuid`` (``attempt`` > 0 after a clash)."""
    seed = f"{uuid}/{index}" if attempt == 0 else f"{uuid}/{index}/{attempt}"
    digest = hashlib.sha256(seed.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def used_macs(rows: Iterable[Mapping[str, Any]], exclude_id: int | None = None) -> dict[str, str]:
    """MAC -> instance name over ``instances`` rows (their decoded ``networks``), one row left out."""
    used: dict[str, str] = {}
    for row in rows:
        if exclude_id is not None and row.get("id") == exclude_id:
            continue
        for nic in row.get("networks") or []:
            if nic.get("mac"):
                used[str(nic["mac"]).lower()] = str(row["name"])
    return used


def assign(
    nics: list[dict[str, Any]], uuid: str, given: set[int], used: Mapping[str, str], owner: str
) -> list[dict[str, Any]]:
    """``nics`` with every MAC unique against ``used`` and among themselves.

    ``given`` holds the indexes whose MAC the operator chose: a clash there is an error naming
    the other instance; any other MAC is re-derived until it is free.
    """
    taken = dict(used)
    out = []
    for index, nic in enumerate(nics):
        mac = str(nic["mac"]).lower()
        if index in given:
            if mac in taken:
                raise Conflict(
                    f"networks[{index}].mac={mac} of instance {owner} is already used by instance "
                    f"{taken[mac]}.",
                    "Give another MAC address, or omit mac and let the module generate a unique one.",
                )
        else:
            attempt = 0
            while mac in taken:
                attempt += 1
                if attempt > MAX_ATTEMPTS:  # pragma: no cover - 2^24 values, never this full
                    raise Conflict(f"No free MAC for NIC {index} of {owner}.", "Give networks[].mac.")
                mac = generated_mac(uuid, index, attempt)
        taken[mac] = owner
        out.append({**nic, "mac": mac})
    return out


def check_format(nics: list[dict[str, Any]]) -> None:
    """Refuse a MAC that is not six hex octets, or a multicast one (collects every bad NIC)."""
    bad = []
    for index, nic in enumerate(nics):
        mac = str(nic.get("mac") or "")
        parts = mac.split(":")
        ok = len(parts) == 6 and all(
            len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
        )
        if mac and (not ok or int(parts[0], 16) & 1):
            bad.append(f"networks[{index}].mac={mac!r}")
    if bad:
        raise InvalidInput(
            f"Invalid MAC address: {', '.join(bad)}.",
            "Give six hex octets such as 52:54:00:12:34:56 (unicast: the first octet even), or omit mac.",
        )


def claim(
    store: Store,
    nics: list[dict[str, Any]],
    uuid: str,
    given: set[int],
    *,
    owner: str,
    instance_id: int | None = None,
) -> list[dict[str, Any]]:
    """``assign`` against the store, inside the caller's write transaction (host rows locked first)."""
    store.select("hosts", lock=True)
    rows = [decode_row("instances", r) for r in store.query("SELECT id, name, networks FROM instances")]
    return assign(nics, uuid, given, used_macs(rows, exclude_id=instance_id), owner)
