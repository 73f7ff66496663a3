# Mitogen's linear strategy without its CPU pinning, for the lab and the molecule VM scenarios
# (scripts/lib.sh mitogen_env). Not part of the collection.
#
# On a machine with 2 or 3 CPUs Mitogen pins its connection multiplexer to CPU 0 and every
# Ansible worker to CPU 1, and every process those start (ssh, and the QEMU of a VM that a local
# task starts) inherits "CPU 1 only". On the 2-core CI machine that put every lab VM of both
# molecule lanes on one core: the machine sat at 50 % busy for the whole VM phase
# (docs/dev/testing.md). Here the pinning policy is Mitogen's own no-op base policy; the
# scheduler places every process.
"""Mitogen's ``linear`` strategy with Mitogen's CPU affinity policy switched off."""

from __future__ import annotations

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

DOCUMENTATION = """
name: mitogen_linear_unpinned
short_description: Mitogen's linear strategy without CPU pinning
description:
  - Mitogen's C(mitogen_linear) strategy with Mitogen's CPU affinity policy replaced by its no-op
    base policy, so that Ansible's workers and everything they start may run on any CPU.
author: compleat.cloud
"""

ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):  # type: ignore[misc,valid-type]
    """Mitogen's linear strategy; the affinity policy was replaced at import."""
