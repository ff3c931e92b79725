"""Feeding device messages through the same pipeline the MQTT bridge uses."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from pulse.domain.envelope import Limits
from pulse.services.ingest import accept

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


async def send(api, tenant: str, device: str, suffix: str, body) -> tuple:
    svc = api.services
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await accept(svc.runtime, svc.db, Limits(), [(f"tenant/{tenant}/device/{device}/{suffix}", payload)])


async def telemetry(api, device: str, at: float, tenant: str = "acme", seq: int | None = None, **metrics):
    body = {"version": "1", "ts": ts(at), "metrics": metrics}
    if seq is not None:
        body["seq"] = seq
    return await send(api, tenant, device, "telemetry", body)
