"""Who is calling: JWT (bearer header or `pulse_session` cookie), roles and permissions."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import jwt
from fastapi import Depends, Request

from pulse.config.settings import Settings
from pulse.errors import Forbidden, Unauthorized
from pulse.storage import audit

COOKIE = "pulse_session"
CUSTOMER_ROLES = ("customer_admin", "customer_viewer")
OPERATOR_ROLES = ("operator", "operator_admin")
ROLES = CUSTOMER_ROLES + OPERATOR_ROLES

# Permission strings follow the documented system (reference §10).
READ_PERMISSIONS = frozenset({
    "devices.read", "alerts.read", "alerts.rules.read", "telemetry.read", "quarantine.read",
    "maintenance.read",
    "templates.read",
    "oncall.read",
    "notifications.read",
    "escalation.read",
    "carrier.integrations.read",
    "telemetron.read",
})
WRITE_PERMISSIONS = frozenset({
    "devices.create", "devices.update", "devices.delete", "devices.decommission",
    "devices.tokens.rotate", "devices.tokens.revoke", "devices.twin.write", "devices.commands.send",
    "alerts.acknowledge", "alerts.close", "alerts.silence",
    "alert-rules.create", "alert-rules.update", "alert-rules.delete",
    "devices.tags.write", "devices.groups.write", "maintenance.create", "maintenance.update", "maintenance.delete",
    "templates.write",
    "oncall.create", "oncall.update", "oncall.delete", "oncall.layers.write", "oncall.overrides.write",
    "notifications.create", "notifications.update", "notifications.delete", "notifications.test",
    "notifications.routing.create", "notifications.routing.update", "notifications.routing.delete",
    "escalation.create", "escalation.update", "escalation.delete", "alerts.digest.write",
    "carrier.integrations.write", "carrier.actions.execute", "carrier.links.write",
    "telemetron.write", "devices.owners.write",
})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "customer_admin": READ_PERMISSIONS | WRITE_PERMISSIONS,
    "customer_viewer": READ_PERMISSIONS,
    "operator": READ_PERMISSIONS | {"operator.read"},
    "operator_admin": READ_PERMISSIONS | WRITE_PERMISSIONS | {"operator.read", "operator.write"},
}


@dataclass(frozen=True)
class Principal:
    sub: str
    tenant_id: str | None
    role: str

    @property
    def permissions(self) -> frozenset[str]:
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def is_operator(self) -> bool:
        return self.role in OPERATOR_ROLES


def issue_token(settings: Settings, sub: str, tenant_id: str | None, role: str, ttl_s: int | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + (ttl_s or settings.jwt_ttl_seconds)}
    if tenant_id:
        claims["tenant_id"] = tenant_id
    return jwt.encode(claims, settings.resolved_jwt_secret(), algorithm="HS256")


class TokenDecoder:
    """HS256 with the configured secret; RS256 through an OIDC JWKS URL when one is set."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.resolved_jwt_secret()
        self.audience = settings.oidc_audience
        self.jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True) if settings.oidc_jwks_url else None

    def decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self.jwks is not None:
                key = self.jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience,
                                    options={"verify_aud": self.audience is not None})
            else:
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {e}") from None
        role, sub = claims.get("role"), claims.get("sub")
        if role not in ROLES or not sub:
            raise Unauthorized("token lacks a known role or subject")
        return Principal(sub=str(sub), tenant_id=claims.get("tenant_id"), role=role)


def _token_from(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return cookie
    raise Unauthorized("missing bearer token or pulse_session cookie")


def principal(request: Request) -> Principal:
    return request.app.state.services.decoder.decode(_token_from(request))


def customer(permission: str) -> Callable[..., Any]:
    """A tenant user holding `permission`; the tenant always comes from the token."""

    def dep(p: Principal = Depends(principal)) -> Principal:
        if not p.tenant_id or p.role not in CUSTOMER_ROLES:
            raise Forbidden("customer endpoints need a tenant user token")
        if permission not in p.permissions:
            raise Forbidden(f"missing permission {permission}")
        return p

    return dep


def operator(permission: str = "operator.read") -> Callable[..., Any]:
    """An operator holding `permission`; every access is written to the operator audit log."""

    async def dep(request: Request, p: Principal = Depends(principal)) -> Principal:
        if not p.is_operator or permission not in p.permissions:
            raise Forbidden(f"operator endpoints need the {permission} permission")
        await audit.record_operator_access(
            request.app.state.services.db, user_id=p.sub, role=p.role, method=request.method,
            path=str(request.url.path), tenant_filter=request.query_params.get("tenant_id"),
            ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent"))
        return p

    return dep
