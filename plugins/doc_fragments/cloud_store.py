# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Options of the cloud-stack metadata store (``compleat.cloud.cloud_store``)."""

from __future__ import annotations


class ModuleDocFragment:
    """The store every cloud-stack module reads and writes."""

    DOCUMENTATION = r"""
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
"""
