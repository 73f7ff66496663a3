# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every cloud-stack module shares (``compleat.cloud.cloud_store``).

The store options, the note on the store, the author and the attributes (check mode, diff mode,
POSIX platform). ``compleat.cloud.cloud_store`` leaves the check_mode and diff_mode support to the
module; ``compleat.cloud.cloud_store.full`` supports both, ``compleat.cloud.cloud_store.read_only``
is for the info modules, ``compleat.cloud.cloud_store.no_diff`` for modules that support check mode
but not diff mode (they add the check mode details). ``compleat.cloud.cloud_store.libvirt`` adds
the libvirt-python requirement.
"""

from __future__ import annotations

_STORE = r"""
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
    description: Can run in check mode and report what would change without changing anything.{check}
  diff_mode:
    description: Reports what changed (or would change in check mode) when run with C(--diff).{diff}
  platform:
    description: Target operating systems the module can run against.
    platforms: posix
    support: full
"""
_FULL = "\n    support: full"
_READ_ONLY_CHECK = "\n    support: full\n    details: Read-only; runs the same in check mode."
_NONE = "\n    support: none"


class ModuleDocFragment:
    """The store every cloud-stack module reads and writes, and the attributes they share."""

    DOCUMENTATION = _STORE.format(check="", diff="")

    FULL = _STORE.format(check=_FULL, diff=_FULL)

    READ_ONLY = _STORE.format(check=_READ_ONLY_CHECK, diff=_NONE)

    NO_DIFF = _STORE.format(check=_FULL, diff=_NONE)

    LIBVIRT = r"""
options: {}
requirements:
  - libvirt-python (Debian python3-libvirt)
"""
