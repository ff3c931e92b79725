"""The dependencies a use case gets: one `ServiceContext` per process (a Serve replica, a test)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pulse.broker.credentials import DeviceCredentials
from pulse.config.settings import Settings
from pulse.domain.rate_limit import RateLimiter
from pulse.pipelines.telemetry import LakeReader
from pulse.services.identity import TokenDecoder
from pulse.services.ports import Downlink, Runtime
from pulse.storage.db import Database
from pulse.storage.tokens import RevocationFeed, VerificationCache


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    runtime: Runtime
    lake: LakeReader
    downlink: Downlink
    credentials: DeviceCredentials
    decoder: TokenDecoder
    # per-process HTTP ingest state (one Serve replica = one limiter; docs/operations.md)
    rate_limiter: RateLimiter = field(init=False)
    token_cache: VerificationCache = field(init=False)
    revocations: RevocationFeed = field(init=False)  # keeps token_cache in step with other replicas
    # failed token lookups per client address, and refusals written to quarantine (one key: the replica)
    auth_failures: RateLimiter = field(init=False)
    quarantine_budget: RateLimiter = field(init=False)
    unrecorded_refusals: int = field(init=False, default=0)
    login_failures: RateLimiter = field(init=False)  # per address and email: 5, then one a minute
    tenant_sql_slots: asyncio.Semaphore = field(init=False)  # bounds the memory and threads tenant SQL takes
    # tenant id -> (status or None if unknown, monotonic expiry): see `auth.require_active_tenant`
    tenant_statuses: dict[str, tuple[str | None, float]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(self.settings.http_ingest_rate_per_s, self.settings.http_ingest_burst)
        self.token_cache = VerificationCache(positive_ttl=30.0, negative_ttl=5.0)
        self.revocations = RevocationFeed(self.db, self.token_cache)
        self.auth_failures = RateLimiter(rate=1.0, burst=20.0)
        self.quarantine_budget = RateLimiter(rate=2.0, burst=100.0)
        self.login_failures = RateLimiter(rate=1 / 60, burst=5.0)
        self.tenant_sql_slots = asyncio.Semaphore(self.settings.tenant_sql_concurrency)

    async def close(self) -> None:
        await self.downlink.close()
        await self.credentials.close()
        await self.db.dispose()
