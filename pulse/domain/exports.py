"""Export jobs: what can be exported, in which formats, over which time ranges, and their states.

Names and values follow the documented system (reference §4); Parquet is a Pulse extra.
"""
from __future__ import annotations

from datetime import datetime, timedelta

EXPORT_TYPES = ("devices", "alerts", "telemetry")
FORMATS = ("csv", "json", "parquet")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}

PENDING, PROCESSING, COMPLETED, FAILED = "PENDING", "PROCESSING", "COMPLETED", "FAILED"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)

TIME_RANGES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24),
               "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
# Telemetry without a time range covers the last day (documented system); devices ignore the range and
# alerts without one are all of the tenant's alerts.
TELEMETRY_DEFAULT_RANGE = "24h"
FILE_TTL = timedelta(hours=24)  # a job's file is kept this long after the job was created


def range_start(time_range: str | None, export_type: str, now: datetime) -> datetime | None:
    """The first instant an export covers (None = no lower bound); the range is checked already."""
    if export_type == "devices":
        return None
    if time_range is None and export_type == "telemetry":
        time_range = TELEMETRY_DEFAULT_RANGE
    return now - TIME_RANGES[time_range] if time_range else None
