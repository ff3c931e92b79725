"""Local login: a user's email and password for a signed session token; and the tenant's standing,
which every customer request and login must have (a SUSPENDED or DELETED tenant keeps none)."""
from __future__ import annotations

import time
from dataclasses import dataclass

from pulse.errors import Forbidden, RateLimited, Unauthorized
from pulse.services.context import ServiceContext
from pulse.services.identity import issue_token
from pulse.storage import tenants

MAX_CACHED_TENANTS = 10_000


@dataclass
class Session:
    token: str
    ttl_s: int
    tenant_id: str | None
    role: str


async def login(ctx: ServiceContext, email: str, password: str, client: str = "") -> Session:
    """A session for the user; failed attempts are limited per caller address (`client`) and email
    (`ctx.login_failures`): past the limit, 429 without checking the password, so guessing is slow
    while other users behind the same address still get in."""
    key = f"{client}|{email.lower()}"
    wait = ctx.login_failures.retry_after(key)
    if wait > 0:
        raise RateLimited("too many failed logins; try again later", wait)
    user = await tenants.authenticate(ctx.db, email, password)
    if user is None:
        ctx.login_failures.allow(key)
        raise Unauthorized("wrong email or password")
    if user["tenant_id"]:
        await require_active_tenant(ctx, user["tenant_id"])
    ttl = ctx.settings.jwt_ttl_seconds
    token = issue_token(ctx.settings, user["email"], user["tenant_id"], user["role"], ttl)
    return Session(token, ttl, user["tenant_id"], user["role"])


async def require_active_tenant(ctx: ServiceContext, tenant_id: str) -> None:
    """Forbidden unless the tenant is ACTIVE (an unknown tenant passes: its data is simply not found)."""
    status = await tenant_status(ctx, tenant_id)
    if status is not None and status != "ACTIVE":
        raise Forbidden(f"tenant {tenant_id} is {status}")


async def tenant_status(ctx: ServiceContext, tenant_id: str) -> str | None:
    """The tenant's status, kept `tenant_status_ttl_s` per process: every customer request asks, and a
    primary-key read was a fifth of the CPU of a device-detail request. A suspension
    made by another process counts within that window."""
    now = time.monotonic()
    hit = ctx.tenant_statuses.get(tenant_id)
    if hit is not None and hit[1] > now:
        return hit[0]
    tenant = await tenants.get_tenant(ctx.db, tenant_id)
    status = tenant["status"] if tenant is not None else None
    if len(ctx.tenant_statuses) >= MAX_CACHED_TENANTS:
        ctx.tenant_statuses.clear()  # bounded: token-carried tenant ids are signed, but stay safe
    ctx.tenant_statuses[tenant_id] = (status, now + ctx.settings.tenant_status_ttl_s)
    return status
