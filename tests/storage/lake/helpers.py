"""Telemetry rows for lake tests: messages at fixed days, as Arrow tables."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from pulse.domain.messages import Telemetry
from pulse.storage.lake.rows import telemetry_table

DAY1 = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
PATH_TRAVERSAL_TENANTS = ["../escape", "..", "a/b", "", ".hidden", "tenant_id=x", "a\x00b"]


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def msg(device: str, at: datetime, tenant: str = "acme", seq: int | None = None, **metrics: float) -> Telemetry:
    return Telemetry(tenant, device, ms(at), metrics or {"temp": 20.0}, seq)


def rows(*msgs: Telemetry) -> pa.Table:
    return telemetry_table(list(msgs))
