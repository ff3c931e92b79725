"""Carrier lines as Pulse understands them, whatever the carrier (docs/carriers.md).

The names every layer shares — which integration fields are secrets, the actions a line takes and
the status each leaves, the states of a carrier request — and the data-usage alert rule: a line
whose share of its plan crosses the threshold opens a `CARRIER_DATA_USAGE` alert, and clears it
when it falls back below. Pure: no carrier, store or HTTP in here."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pulse.domain.messages import AlertEvent

SECRET_FIELDS = ("api_key", "api_secret", "username", "password")
ACTIONS = ("activate", "suspend", "restore", "deactivate", "reboot")
REBOOT_SMS = "REBOOT"
# what a line's sim_status becomes once an action succeeded (reboot changes nothing)
STATUS_AFTER = {"activate": "active", "suspend": "suspended", "restore": "active", "deactivate": "deactivated"}
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"  # a carrier request
# a request the carrier took but will report on only by callback, when no callback URL is registered
SENT = "sent"
OUTCOME_UNKNOWN = ("sent, outcome unknown: {carrier} reports the result of a {action} only by callback, and this "
                   "integration has no callback URL registered (set public_base_url)")
USAGE_ALERT_TYPE = "CARRIER_DATA_USAGE"
USAGE_ALERT_SEVERITY = 3


def used_pct(used: int | None, limit: int | None) -> float | None:
    if used is None or not limit:
        return None
    return round(100.0 * used / limit, 2)


def usage_alert(tenant_id: str, device_id: str, was_active: bool, pct: float | None, threshold: float,
                at: datetime, details: dict[str, Any]) -> tuple[bool | None, AlertEvent | None]:
    """(alert state after this reading or None if unknown, the open/clear event on a crossing)."""
    if pct is None:
        return None, None
    active = pct >= threshold
    if active == was_active:
        return active, None
    event = AlertEvent("open" if active else "clear", tenant_id, device_id, "", "Carrier data usage",
                       USAGE_ALERT_SEVERITY, "data_used_pct", pct, int(at.timestamp() * 1000),
                       alert_type=USAGE_ALERT_TYPE, details={"threshold_pct": threshold, **details})
    return active, event
