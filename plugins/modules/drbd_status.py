#!/usr/bin/python
# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse ``drbdadm status`` into facts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: drbd_status
short_description: Publish the state of DRBD resources as facts
version_added: "0.1.0"
description:
  - Runs C(drbdadm status) and parses its output into the fact C(drbd_status), one entry per
    resource that is up (configured in the kernel). Resources that are down are absent.
  - Understands the output of drbd-utils 9 for both DRBD 9 and DRBD 8.4 kernel modules.
  - Each entry has the local C(role) and C(disk) state (of volume 0), the C(peer) name and its
    C(peer_role), C(peer_disk), C(connection) and C(replication) states, C(connected),
    C(sync_percent) while a resync runs, and the full per-volume and per-peer detail.
author:
  - compleat.cloud developers (@compleat-cloud)
requirements:
  - drbd-utils (C(drbdadm))
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing is changed.
  facts:
    support: full
    description: Sets C(drbd_status).
  platform:
    platforms: posix
    support: full
    description: Linux with DRBD.
options: {}
notes:
  - With two nodes (the compleat.cloud.drbd pairs) the flat C(peer_*) keys describe the only peer.
"""

EXAMPLES = r"""
- name: Read the DRBD state
  compleat.cloud.drbd_status:

- name: Wait until r0 is UpToDate on both sides
  compleat.cloud.drbd_status:
  register: drbd
  until: >-
    drbd.ansible_facts.drbd_status.r0.disk == 'UpToDate'
    and drbd.ansible_facts.drbd_status.r0.peer_disk == 'UpToDate'
  retries: 60
  delay: 5
"""

RETURN = r"""
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    drbd_status:
      description: Resources that are up, by name.
      returned: always
      type: dict
      sample:
        r0:
          role: Primary
          disk: UpToDate
          connected: true
          peer: store02
          peer_role: Secondary
          peer_disk: UpToDate
          connection: Connected
          replication: Established
          sync_percent: null
          volumes: {"0": {disk: UpToDate}}
          peers: {store02: {connection: Connected, role: Secondary,
                            volumes: {"0": {replication: Established, peer-disk: UpToDate}}}}
raw:
  description: The output of C(drbdadm status).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# Connection states meaning "talking to the peer" (DRBD 9 names and DRBD 8.4 names).
CONNECTED_STATES = {
    "Connected",
    "Established",
    "SyncSource",
    "SyncTarget",
    "WFBitMapS",
    "WFBitMapT",
    "WFSyncUUID",
    "PausedSyncS",
    "PausedSyncT",
    "VerifyS",
    "VerifyT",
    "Ahead",
    "Behind",
}


def _pairs(words: list[str]) -> dict[str, str]:
    """``key:value`` words into a dict (words without a colon are ignored)."""
    out = {}
    for word in words:
        key, sep, value = word.partition(":")
        if sep:
            out[key] = value
    return out


def parse_status(text: str) -> dict[str, dict]:
    """Parse the text of ``drbdadm status`` (drbd-utils 9 format) into raw nested dicts.

    Indentation gives the structure: column 0 a resource, two spaces a local volume or a peer
    (a peer line starts with the peer's name), four spaces a peer's volume.
    """
    resources: dict[str, dict] = {}
    res = None
    peer = None
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        words = line.split()
        if indent == 0:
            res = {"name": words[0], **_pairs(words[1:]), "volumes": {}, "peers": {}}
            resources[words[0]] = res
            peer = None
        elif res is None:
            continue
        elif indent <= 2:
            if ":" in words[0]:
                fields = _pairs(words)
                volume = fields.pop("volume", "0")
                res["volumes"].setdefault(volume, {}).update(fields)
            else:
                peer = {"name": words[0], **_pairs(words[1:]), "volumes": {}}
                res["peers"][words[0]] = peer
        elif peer is not None:
            fields = _pairs(words)
            volume = fields.pop("volume", "0")
            peer["volumes"].setdefault(volume, {}).update(fields)
    return resources


def summarize(res: dict) -> dict:
    """Flatten one parsed resource into the fact layout (local volume 0, first peer)."""
    volumes = res.get("volumes", {})
    local = volumes.get("0") or (next(iter(volumes.values())) if volumes else {})
    peers = res.get("peers", {})
    peer_name = next(iter(peers)) if peers else None
    peer = peers.get(peer_name, {}) if peer_name else {}
    peer_volumes = peer.get("volumes", {})
    peer_vol = peer_volumes.get("0") or (next(iter(peer_volumes.values())) if peer_volumes else {})
    # DRBD 9 omits "connection:" once connected; DRBD 8.4 style output always names it.
    connection = peer.get("connection") or ("Connected" if peer_name else None)
    replication = peer_vol.get("replication")
    done = peer_vol.get("done")
    try:
        sync_percent = float(done) if done is not None else None
    except ValueError:
        sync_percent = None
    return {
        "role": res.get("role"),
        "disk": local.get("disk"),
        "suspended": res.get("suspended", "no") not in ("no", ""),
        "peer": peer_name,
        "peer_role": peer.get("role"),
        "peer_disk": peer_vol.get("peer-disk"),
        "connection": connection,
        "replication": replication,
        "connected": connection in CONNECTED_STATES or (replication in CONNECTED_STATES),
        "sync_percent": sync_percent,
        "volumes": volumes,
        "peers": peers,
    }


def facts_from_text(text: str) -> dict[str, dict]:
    """The drbd_status fact from the text of ``drbdadm status``."""
    return {name: summarize(res) for name, res in parse_status(text).items()}


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={},
        supports_check_mode=True,
    )
    drbdadm = module.get_bin_path("drbdadm", required=True)
    rc, out, err = module.run_command([drbdadm, "status", "all"])
    if rc != 0:
        # No resource up at all is not an error: every resource is absent.
        if not out.strip():
            module.exit_json(changed=False, ansible_facts={"drbd_status": {}}, raw=out, stderr=err)
        module.fail_json(msg=f"drbdadm status failed: {err.strip()}", rc=rc, stdout=out, stderr=err)
    module.exit_json(changed=False, ansible_facts={"drbd_status": facts_from_text(out)}, raw=out)


if __name__ == "__main__":
    main()
