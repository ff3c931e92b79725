"""Reading telemetry against a sensor's declared range."""
from __future__ import annotations

from typing import Any


def out_of_range(value: float, sensor: dict[str, Any] | None) -> bool:
    """Values outside the sensor's declared range are stored as sent and flagged on read."""
    if not sensor:
        return False
    lo, hi = sensor.get("min_range"), sensor.get("max_range")
    return (lo is not None and value < lo) or (hi is not None and value > hi)
