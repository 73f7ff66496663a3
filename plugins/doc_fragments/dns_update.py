# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``dns_update`` option (``compleat.cloud.dns_update``) of the modules that place instances."""

from __future__ import annotations


class ModuleDocFragment:
    """RFC 2136 dynamic DNS updates of instance records, signed with TSIG."""

    DOCUMENTATION = r"""
options:
  dns_update:
    description:
      - Keep the instances' DNS records on a DNS server by RFC 2136 dynamic update signed with a
        TSIG key (pure Python, no C(nsupdate) needed) - an A record C(NAME.ZONE) for the first
        address allocated from a tenant or rack network and its PTR record in
        O(dns_update.reverse_zone).
      - M(compleat.cloud.instance) adds them when the instance is created, changes them when its
        address changes and removes them when it is deleted; M(compleat.cloud.evacuate) moves
        them for every moved instance whose address changed (a rack-network address changes with
        the rack; a tenant-network address never does).
      - A failed update fails the task naming the server and the zone; the instance, or the
        moves, are kept.
    type: dict
    suboptions:
      server:
        description: Address of the primary DNS server that accepts the updates.
        type: str
        required: true
      port:
        description: DNS port of the server (TCP).
        type: int
        default: 53
      zone:
        description: Forward zone the A records go to (C(cloud.example.com)).
        type: str
        required: true
      reverse_zone:
        description: Reverse zone of the PTR records (C(10.10.in-addr.arpa)); without it no PTR records.
        type: str
      key_name:
        description: TSIG key name.
        type: str
        required: true
      key_secret:
        description: TSIG key secret (base64), as in the server's C(key) statement.
        type: str
        required: true
      key_algorithm:
        description: TSIG algorithm.
        type: str
        choices: [hmac-sha256, hmac-sha512, hmac-sha1, hmac-md5]
        default: hmac-sha256
      ttl:
        description: TTL of the records in seconds.
        type: int
        default: 300
      timeout:
        description: Seconds to wait for the server.
        type: int
        default: 10
"""
