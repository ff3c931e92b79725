"""Ingest: the pipeline MQTT bridges and HTTP ingest share, and the device-authenticated HTTP intake."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from pulse.config.settings import Settings
from pulse.domain.envelope import Limits
from pulse.domain.messages import Rejection
from pulse.services.context import ServiceContext
from pulse.services.ports import Runtime
from pulse.storage import quarantine, tokens
from pulse.storage.db import Database


def limits_from(settings: Settings) -> Limits:
    return Limits(settings.max_payload_bytes, settings.max_metrics, settings.max_future_skew_s * 1000)


async def accept(runtime: Runtime, db: Database, limits: Limits,
                 items: Sequence[tuple[str, bytes]]) -> tuple[Any, list[Rejection]]:
    """The ingest pipeline shared by MQTT and HTTP: the shards decode and run the actors, the rest is quarantined.

    Returns after accepted telemetry is in the WAL and rejections are recorded.
    """
    if not items:
        return None, []
    result = await runtime.ingest(items, int(time.time() * 1000), limits)
    await quarantine.record(db, result.rejections)
    return result, result.rejections


@dataclass
class HttpIngest:
    """What one HTTP ingest request came to: refused (`reason`, `status`) or accepted/rejected counts."""

    status: int
    detail: str | None = None
    reason: str | None = None
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


async def _refuse(ctx: ServiceContext, reason: str, topic: str, tenant_id: str, device_id: str, status: int,
                  detail: str) -> HttpIngest:
    await quarantine.record(ctx.db, [Rejection(reason, topic, tenant_id, device_id, None, int(time.time() * 1000))])
    return HttpIngest(status=status, detail=detail, reason=reason)


async def http_ingest(ctx: ServiceContext, tenant_id: str, device_id: str, msg_type: str, token: str | None,
                      body: bytes) -> HttpIngest:
    """One envelope (or a list) from a device over HTTP: token, rate limit, then the shared pipeline."""
    topic = f"tenant/{tenant_id}/device/{device_id}/{msg_type}"
    if not token:
        return await _refuse(ctx, "TOKEN_MISSING", topic, tenant_id, device_id, 401, "X-Provision-Token header required")
    key = (f"{tenant_id}/{device_id}", tokens.hash_secret(token))
    ok = ctx.token_cache.get(key)
    if ok is None:
        ok = await tokens.verify(ctx.db, tenant_id, device_id, token)
        ctx.token_cache.put(key, ok)
    if not ok:
        return await _refuse(ctx, "TOKEN_INVALID", topic, tenant_id, device_id, 401, "invalid device token")
    if not ctx.rate_limiter.allow(key[0]):
        return await _refuse(ctx, "RATE_LIMITED", topic, tenant_id, device_id, 429,
                             f"more than {ctx.settings.http_ingest_rate_per_s:g} requests/s for this device")
    result, rejections = await accept(ctx.runtime, ctx.db, limits_from(ctx.settings), [(topic, body)])
    rejected = [{"reason": r.reason, "detail": r.detail} for r in rejections]
    accepted = result.accepted if result else 0
    if accepted == 0 and rejected:
        return HttpIngest(status=422, detail=f"rejected: {rejected[0]['reason']}", rejected=rejected)
    if result and result.publishes:
        await ctx.downlink.publish(result.publishes)
    return HttpIngest(status=202, accepted=accepted, rejected=rejected)
