"""Built-in alert rule templates and applying them to a tenant (idempotent by template and scope)."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa

from pulse.storage import rules
from pulse.storage.db import Database
from pulse.storage.tables import alert_rules

# key -> a RuleCreate body (severity: 1 info .. 5 critical)
TEMPLATES: dict[str, dict[str, Any]] = {
    "temp_high": {"name": "Temperature high", "metric": "temperature", "operator": "GT", "threshold": 40,
                  "duration_seconds": 300, "severity": "major", "clear_threshold": 38},
    "temp_low": {"name": "Temperature low", "metric": "temperature", "operator": "LT", "threshold": 0,
                 "duration_seconds": 300, "severity": "major", "clear_threshold": 2},
    "humidity_high": {"name": "Humidity high", "metric": "humidity", "operator": "GT", "threshold": 85,
                      "duration_seconds": 600, "severity": "minor"},
    "humidity_low": {"name": "Humidity low", "metric": "humidity", "operator": "LT", "threshold": 20,
                     "duration_seconds": 600, "severity": "minor"},
    "battery_low": {"name": "Battery low", "metric": "battery_pct", "operator": "LT", "threshold": 15,
                    "severity": "warning", "clear_threshold": 20},
    "battery_critical": {"name": "Battery critical", "metric": "battery_pct", "operator": "LT", "threshold": 5,
                         "severity": "critical"},
    "signal_weak": {"name": "Weak signal", "rule_type": "window", "metric": "signal_rssi", "operator": "LT",
                    "threshold": -105, "aggregation": "avg", "window_seconds": 900, "severity": "warning"},
    "pressure_high": {"name": "Pressure high", "metric": "pressure", "operator": "GT", "threshold": 10,
                      "duration_seconds": 60, "severity": "critical"},
    "vibration_high": {"name": "Vibration high", "rule_type": "window", "metric": "vibration", "operator": "GT",
                       "threshold": 7.1, "aggregation": "avg", "window_seconds": 300, "severity": "major"},
    "temp_rising_fast": {"name": "Temperature rising fast", "rule_type": "rate_of_change", "metric": "temperature",
                         "operator": "GT", "threshold": 2, "severity": "major"},
    "temp_anomaly": {"name": "Temperature anomaly", "rule_type": "anomaly", "metric": "temperature",
                     "z_threshold": 4, "min_samples": 30, "window_size": 120, "severity": "minor"},
    "device_silent": {"name": "No telemetry for 30 minutes", "rule_type": "telemetry_gap", "metric": "*",
                      "gap_seconds": 1800, "severity": "major"},
}


def catalogue() -> list[dict[str, Any]]:
    return [{"key": k, **v} for k, v in TEMPLATES.items()]


def apply_key(template_key: str, scope: dict[str, Any]) -> str:
    """Identifies (template, scope): applying the same pair again creates nothing."""
    blob = json.dumps({"t": template_key, "s": scope}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


async def existing(db: Database, tenant_id: str, key: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(alert_rules.c.rule_id, alert_rules.c.config).where(
            alert_rules.c.tenant_id == tenant_id))
        for r in rows:
            if (r.config or {}).get("applied_from") == key:
                return await rules.get(db, tenant_id, r.rule_id)
    return None
