"""Layer-4 sharing with the national monitoring centre: the stored alerts as a STIX 2.1 bundle (``stix``),
pushed to a TAXII 2.1 server (``taxii``), or as raw ECS NDJSON (``ndjson``).

A stage after ``sinks``: it reads the alert store (``soc.sinks.alert_store.AlertStore``), never the logs. What
is shared, and with which TLP marking, is data: ``policy/sharing.toml`` (``soc.export.policy``).
"""

from __future__ import annotations

from soc.export.policy import SharingError, SharingPolicy, load_sharing
from soc.export.select import Filters, shared_alerts

__all__ = ["Filters", "SharingError", "SharingPolicy", "load_sharing", "shared_alerts"]
