"""Who is calling over HTTP: the bearer header or `pulse_session` cookie, checked per route."""
from __future__ import annotations

from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from pulse.domain.permissions import CUSTOMER_ROLES, Principal
from pulse.errors import Forbidden, Unauthorized
from pulse.serve.audit_trail import PRINCIPAL
from pulse.services import audit
from pulse.services.auth import require_active_tenant

COOKIE = "pulse_session"


def _token_from(conn: HTTPConnection) -> str:
    """The bearer header, else the session cookie (a request or a WebSocket)."""
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    cookie = conn.cookies.get(COOKIE)
    if cookie:
        return cookie
    raise Unauthorized("missing bearer token or pulse_session cookie")


async def principal(request: Request) -> Principal:
    """async: FastAPI would run a plain `def` dependency in a worker thread, a hop per request."""
    return request.app.state.services.decoder.decode(_token_from(request))


def customer(permission: str) -> Callable[..., Any]:
    """A tenant user holding `permission`, of an ACTIVE tenant; the tenant always comes from the token."""

    async def dep(request: Request, p: Principal = Depends(principal)) -> Principal:
        await check_customer(request.app.state.services, p, (permission,))
        setattr(request.state, PRINCIPAL, p)  # who the audit trail records for a change
        return p

    return dep


async def check_customer(svc: Any, p: Principal, permissions: Iterable[str]) -> None:
    """A tenant user of an ACTIVE tenant holding every one of `permissions`."""
    if not p.tenant_id or p.role not in CUSTOMER_ROLES:
        raise Forbidden("customer endpoints need a tenant user token")
    for permission in permissions:
        if permission not in p.permissions:
            raise Forbidden(f"missing permission {permission}")
    await require_active_tenant(svc, p.tenant_id)


def stream_token(websocket: WebSocket) -> str:
    """A WebSocket's credentials: browsers cannot set headers on one, so besides the bearer header
    and the session cookie (sent by the browser; the Origin check keeps other sites from using it),
    the documented `?token=` query parameter."""
    return websocket.query_params.get("token") or _token_from(websocket)


def same_origin(websocket: WebSocket, allowed: str) -> bool:
    """No Origin (not a browser) or the API's own, or one configured: a page on another site must not
    open a stream with the user's cookie (browsers do not apply CORS to WebSockets)."""
    origin = websocket.headers.get("origin")
    if not origin:
        return True
    if urlsplit(origin).netloc == websocket.headers.get("host", ""):
        return True
    return origin.rstrip("/") in {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}


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
