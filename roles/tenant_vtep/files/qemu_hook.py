# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt QEMU hook of compleat.cloud (installed by the role compleat.cloud.tenant_vtep).

Managed by Ansible: compleat.cloud.tenant_vtep (marker the role looks for before replacing a hook).

libvirt runs it as ``qemu <domain> <operation> <sub-operation> <extra>`` with the domain XML on
stdin. ``prepare begin`` creates the bridge brv<VNI> and the VXLAN device vxv<VNI> of every tenant
network the domain's NICs use; ``release end`` removes them once no NIC is left on the bridge. The
logic is in vtep.py (a copy of the collection's plugins/module_utils/cloud/vtep.py) in LIB_DIR.
"""

import sys

LIB_DIR = "/usr/local/lib/compleat"
CONFIG = "/etc/compleat/tenant-vtep.json"
LOCK = "/run/lock/compleat-tenant-vtep.lock"

if __name__ == "__main__":
    sys.path.insert(0, LIB_DIR)
    import vtep  # from LIB_DIR

    sys.exit(vtep.hook_cli(sys.argv, sys.stdin, sys.stderr, config_path=CONFIG, lock_path=LOCK))
