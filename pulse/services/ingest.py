"""Ingest: the pipeline MQTT bridges and HTTP ingest share, and the device-authenticated HTTP intake."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Sequence

from pulse.config.settings import Settings
from pulse.domain.envelope import Limits
from pulse.domain.messages import Rejection
from pulse.services.context import ServiceContext
from pulse.services.ports import Runtime
from pulse.storage import quarantine, tokens
from pulse.storage.db import Database

log = logging.getLogger(__name__)

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


async def _refuse(ctx: ServiceContext, reason: str, *, topic: str, tenant_id: str, device_id: str, status: int,
                  detail: str) -> HttpIngest:
    """Quarantine the refusal, within a fixed budget per replica: a refused request is not known to
    come from the device it names (any tenant id fits in a URL), so past the budget refusals are
    counted and logged instead of stored."""
    if ctx.quarantine_budget.allow(""):
        await quarantine.record(ctx.db, [Rejection(reason, topic, tenant_id, device_id, None, int(time.time() * 1000))])
    else:
        ctx.unrecorded_refusals += 1
        if ctx.unrecorded_refusals % 1000 == 1:
            log.warning("HTTP ingest: quarantine budget spent; %d refusals not recorded (last: %s %s)",
                        ctx.unrecorded_refusals, reason, topic)
    return HttpIngest(status=status, detail=detail, reason=reason)


async def _authenticate(ctx: ServiceContext, tenant_id: str, device_id: str, token: str,
                        client: str) -> bool | None:
    """The token's verdict, cached (kept in step with revocations made anywhere by `ctx.revocations`)
    or looked up; None, without a lookup, once `client` (the caller's address) has spent its failed
    lookups (`ctx.auth_failures`). So junk costs each client a bounded number of reads, while a
    device retrying one wrong token mostly hits its cached verdict."""
    await ctx.revocations.refresh()
    key = (f"{tenant_id}/{device_id}", tokens.hash_secret(token))
    ok = ctx.token_cache.get(key)
    if ok is not None:
        return ok
    if ctx.auth_failures.retry_after(client) > 0:
        return None
    ok = await tokens.verify(ctx.db, tenant_id, device_id, token)
    ctx.token_cache.put(key, ok)
    if not ok:
        ctx.auth_failures.allow(client)
    return ok


async def http_ingest(ctx: ServiceContext, tenant_id: str, device_id: str, msg_type: str, token: str | None,
                      body: bytes, client: str = "") -> HttpIngest:
    """One envelope (or a list) from a device over HTTP: the refusals that need no store first (no
    token, the device's rate), then the token, then the shared pipeline. `client`: the caller's address."""
    topic = f"tenant/{tenant_id}/device/{device_id}/{msg_type}"
    refuse = partial(_refuse, ctx, topic=topic, tenant_id=tenant_id, device_id=device_id)
    if not token:
        return await refuse("TOKEN_MISSING", status=401, detail="X-Provision-Token header required")
    if not ctx.rate_limiter.allow(f"{tenant_id}/{device_id}"):
        return await refuse("RATE_LIMITED", status=429,
                            detail=f"more than {ctx.settings.http_ingest_rate_per_s:g} requests/s for this device")
    ok = await _authenticate(ctx, tenant_id, device_id, token, client)
    if ok is None:
        return await refuse("RATE_LIMITED", status=429,
                            detail="too many failed device authentications from this address; retry later")
    if not ok:
        return await refuse("TOKEN_INVALID", status=401, detail="invalid device token")
    result, rejections = await accept(ctx.runtime, ctx.db, limits_from(ctx.settings), [(topic, body)])
    rejected = [{"reason": r.reason, "detail": r.detail} for r in rejections]
    accepted = result.accepted if result else 0
    if accepted == 0 and rejected:
        return HttpIngest(status=422, detail=f"rejected: {rejected[0]['reason']}", rejected=rejected)
    if result and result.publishes:
        await ctx.downlink.publish(result.publishes)
    return HttpIngest(status=202, accepted=accepted, rejected=rejected)
