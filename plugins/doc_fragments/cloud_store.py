# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every cloud-stack module shares (``compleat.cloud.cloud_store``).

``compleat.cloud.cloud_store`` has the author, the store options, the note on the store and the
attributes (check mode, diff mode, POSIX platform) without their support. A module lists it with
one of the support variants after it: ``compleat.cloud.attributes.full`` (check and diff mode, the
collection's one fragment for that), ``compleat.cloud.cloud_store.read_only`` (info modules) or
``compleat.cloud.cloud_store.no_diff`` (check mode without diff mode; the module adds the check
mode details), and ``compleat.cloud.cloud_store.libvirt`` when it needs libvirt-python.
"""

from __future__ import annotations


class ModuleDocFragment:
    """The store every cloud-stack module reads and writes, and the attributes they share."""

    DOCUMENTATION = r"""
author:
  - compleat.cloud developers (@compleat-cloud)
options:
  store:
    description:
      - Path of the SQLite metadata store (created, in WAL mode, by the first module that writes).
      - Ignored when O(store_dsn) is set.
      - When the task does not set it, the environment variable E(COMPLEAT_CLOUD_STORE) does, if set.
    type: path
    default: /var/lib/compleat-cloud/cloud.db
  store_dsn:
    description:
      - libpq connection string of a PostgreSQL database holding the same schema, for controllers
        where several runs write at once (AWX), for example C(host=db1 dbname=cloud user=cloud).
      - Needs the C(psycopg) (3.x) Python package. The value is never logged.
      - When the task does not set it, the environment variable E(COMPLEAT_CLOUD_STORE_DSN) does, if
        set. That is how an AWX credential of the type in C(awx/controller.yml) passes it, out of
        the job's extra vars and output.
    type: str
notes:
  - The store is the source of truth of the cloud stack; libvirt is made to agree with it. Its schema
    is migrated forward automatically by modules that write (never in check mode).
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing anything.
  diff_mode:
    description: Reports what changed (or would change in check mode) when run with C(--diff).
  platform:
    description: Target operating systems the module can run against.
    platforms: posix
    support: full
"""

    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
"""

    NO_DIFF = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

    LIBVIRT = r"""
options: {}
requirements:
  - libvirt-python (Debian python3-libvirt)
"""
