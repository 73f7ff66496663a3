"""Namespace labs for compleat.cloud: plain Python (no Ansible), needs root and iproute2.

- :mod:`lab.netns`: network namespaces, veth links, bridges, addresses, reliable teardown.
- :mod:`lab.proc`: the one process killer (SIGTERM, wait, SIGKILL).
- :mod:`lab.frr`: FRR daemons per namespace, loading a rendered ``frr.conf``, JSON queries.
- :mod:`lab.fabric_lab`: a whole fabric from a rendered output directory (``python -m lab.fabric_lab``).
- :mod:`lab.evpn_lab`, :mod:`lab.lb_lab`: EVPN VTEPs and the load-balancer farm on that fabric.
- :mod:`lab.vm` (with ``vm_spec``, ``vm_build``, ``vm_store``, ``vm_image``, ``vm_net``,
  ``vm_ops``): QEMU TCG VMs for ``make lab`` and the molecule VM scenarios.
- :mod:`lab.tenant_probe`, :mod:`lab.drill`: the lab cloud's tenant probe and failure drill.

The engine and the cloud code are imported as Ansible imports them, from the collection path
(``build/collections/ansible_collections/compleat/cloud`` links to this checkout; bootstrap makes
it), so this package puts ``build/collections`` on ``sys.path`` once, for every lab module.
"""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = str(Path(__file__).resolve().parent.parent / "build" / "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
