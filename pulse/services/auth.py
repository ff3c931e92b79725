"""Local login: a user's email and password for a signed session token."""
from __future__ import annotations

from dataclasses import dataclass

from pulse.errors import Unauthorized
from pulse.services.context import ServiceContext
from pulse.services.identity import issue_token
from pulse.storage import tenants


@dataclass
class Session:
    token: str
    ttl_s: int
    tenant_id: str | None
    role: str


async def login(ctx: ServiceContext, email: str, password: str) -> Session:
    user = await tenants.authenticate(ctx.db, email, password)
    if user is None:
        raise Unauthorized("wrong email or password")
    ttl = ctx.settings.jwt_ttl_seconds
    token = issue_token(ctx.settings, user["email"], user["tenant_id"], user["role"], ttl)
    return Session(token, ttl, user["tenant_id"], user["role"])
