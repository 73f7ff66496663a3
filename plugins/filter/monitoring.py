# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``compleat.cloud.monitoring_*`` filters of the ``monitoring_server`` and
``monitoring_exporters`` roles: scrape targets, ECMP intent, alert rules, ``prometheus.yml``.

A view: the logic lives in ``plugins/module_utils/monitoring.py`` (pure functions, documented
there and in ``plugins/filter/monitoring_*.yml``); here its errors become ``AnsibleFilterError``.
A *plan* argument may be a ``Plan``, its plain-dict view (what ``compleat.cloud.fabric_plan``
returns) or a fabric definition (a mapping, or the path of a fabric YAML file).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.compleat.cloud.plugins.module_utils import monitoring
from ansible_collections.compleat.cloud.plugins.module_utils.fabric.adapter import FabricSourceError


def _view(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its ``MonitoringError`` / ``FabricSourceError`` raised as ``AnsibleFilterError``."""

    @wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (monitoring.MonitoringError, FabricSourceError) as exc:
            raise AnsibleFilterError(str(exc)) from None

    return call


inventory_targets = _view(monitoring.inventory_targets)
fabric_targets = _view(monitoring.fabric_targets)
fabric_router = _view(monitoring.fabric_router)
listen_address = _view(monitoring.listen_address)
ecmp_intent = _view(monitoring.ecmp_intent)
enabled_exporters = _view(monitoring.enabled_exporters)
alert_rules = _view(monitoring.alert_rules)
alert_names = _view(monitoring.alert_names)
prometheus_config = _view(monitoring.prometheus_config)


class FilterModule:
    """compleat.cloud monitoring filters."""

    def filters(self) -> dict[str, Any]:
        """Map filter names to functions."""
        return {
            "monitoring_inventory_targets": inventory_targets,
            "monitoring_fabric_targets": fabric_targets,
            "monitoring_fabric_router": fabric_router,
            "monitoring_listen": listen_address,
            "monitoring_ecmp_intent": ecmp_intent,
            "monitoring_enabled_exporters": enabled_exporters,
            "monitoring_alert_rules": alert_rules,
            "monitoring_alert_names": alert_names,
            "monitoring_prometheus_config": prometheus_config,
        }
