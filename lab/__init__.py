"""Namespace labs for compleat.cloud: plain Python (no Ansible), needs root and iproute2.

- :mod:`lab.netns`: network namespaces, veth links, bridges, addresses, reliable teardown.
- :mod:`lab.frr`: FRR daemons per namespace, loading a rendered ``frr.conf``, JSON queries.
- :mod:`lab.fabric_lab`: a whole fabric from a rendered output directory (``python -m lab.fabric_lab``).
"""

from __future__ import annotations
