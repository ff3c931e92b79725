"""Local login: a user's email and password for a signed session token; and the tenant's standing,
which every customer request and login must have (a SUSPENDED or DELETED tenant keeps none)."""
from __future__ import annotations

from dataclasses import dataclass

from pulse.errors import Forbidden, RateLimited, Unauthorized
from pulse.services.context import ServiceContext
from pulse.services.identity import issue_token
from pulse.storage import tenants


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
    """Forbidden unless the tenant is ACTIVE (one primary-key read, so a suspension counts at once)."""
    tenant = await tenants.get_tenant(ctx.db, tenant_id)
    if tenant is not None and tenant["status"] != "ACTIVE":
        raise Forbidden(f"tenant {tenant_id} is {tenant['status']}")
