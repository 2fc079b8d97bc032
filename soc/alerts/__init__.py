"""Alerts: the ECS alert model built from rule and detector hits (aggregation, ids, grading, enrichment).

``build_alerts(hits)`` is the entry point; sinks (``soc.sinks.alert_store``, ``soc.sinks.elasticsearch``)
store what it returns.
"""

from soc.alerts.build import DEFAULT_WINDOW, build_alerts
from soc.alerts.inventory import Inventory, InventoryError, load_inventory
from soc.alerts.policy import Policy, PolicyError, load_policy
from soc.alerts.schema import ALERT_SCHEMA

__all__ = ["ALERT_SCHEMA", "DEFAULT_WINDOW", "Inventory", "InventoryError", "Policy", "PolicyError", "build_alerts",
           "load_inventory", "load_policy"]
