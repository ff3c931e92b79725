"""Who is calling over HTTP: the bearer header or `pulse_session` cookie, checked per route."""
from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, Request

from pulse.domain.permissions import CUSTOMER_ROLES, Principal
from pulse.errors import Forbidden, Unauthorized
from pulse.serve.audit_trail import PRINCIPAL
from pulse.services import audit
from pulse.services.auth import require_active_tenant

COOKIE = "pulse_session"


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
    """A tenant user holding `permission`, of an ACTIVE tenant; the tenant always comes from the token."""

    async def dep(request: Request, p: Principal = Depends(principal)) -> Principal:
        if not p.tenant_id or p.role not in CUSTOMER_ROLES:
            raise Forbidden("customer endpoints need a tenant user token")
        if permission not in p.permissions:
            raise Forbidden(f"missing permission {permission}")
        await require_active_tenant(request.app.state.services, p.tenant_id)
        setattr(request.state, PRINCIPAL, p)  # who the audit trail records for a change
        return p

    return dep


def operator(permission: str = "operator.read") -> Callable[..., Any]:
    """An operator holding `permission`; every access is written to the operator audit log."""

    async def dep(request: Request, p: Principal = Depends(principal)) -> Principal:
        if not p.is_operator or permission not in p.permissions:
            raise Forbidden(f"operator endpoints need the {permission} permission")
        await audit.record_operator_access(
            request.app.state.services.db, p, method=request.method, path=str(request.url.path),
            tenant_filter=request.query_params.get("tenant_id"), ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"))
        return p

    return dep
