"""The one place the tenant audit trail is written from, and where every request gets its id.

An ASGI middleware rather than code in each handler: it sees the request id, the client address,
the matched route (its path template and parameters), the principal `customer()` authorized and
the response status. For a successful (2xx) POST/PUT/PATCH/DELETE under /api/v1/customer it holds
the response until the audit row is written, so a client that reads the trail right after its
change finds it. A failed write is logged and the response still goes out: the change is already
committed, and failing the request would invite a client to repeat it (docs/audit-log.md).

Every response carries `X-Request-ID`: the caller's own when it sent a usable one, else a new one.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulse.domain.audit import is_audited
from pulse.domain.permissions import Principal
from pulse.services import audit
from pulse.services.audit import CustomerChange

log = logging.getLogger(__name__)

HEADER = "x-request-id"
# an incoming id is echoed in a header and stored: printable, no spaces, bounded
_USABLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}$")
PRINCIPAL = "principal"  # request.state key `customer()` puts the authorized caller under


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name.decode("latin-1").lower() == HEADER:
            given = value.decode("latin-1").strip()
            if _USABLE_ID.match(given):
                return given
    return uuid.uuid4().hex


class AuditTrail:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        held: Message | None = None

        async def send_with_trail(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER.encode(), rid.encode())]}
                if _changed(scope, message["status"]):
                    held = message  # sent once the body is known and the row written
                    return
            elif held is not None and message["type"] == "http.response.body":
                start, held = held, None
                await _record(scope, start, message, rid)
                await send(start)
            await send(message)

        await self.app(scope, receive, send_with_trail)


def _principal(scope: Scope) -> Principal | None:
    p = scope.get("state", {}).get(PRINCIPAL)
    return p if isinstance(p, Principal) and p.tenant_id else None


def _changed(scope: Scope, status: int) -> bool:
    """A successful change a tenant user made: what the trail records (failures change nothing)."""
    route = scope.get("route")  # its template, not the path: a deployment's root path is no part of it
    return (200 <= status < 300 and route is not None and is_audited(scope["method"], getattr(route, "path", ""))
            and _principal(scope) is not None)


def _result(start: Message, body: Message) -> Any:
    """The response body as JSON when it is whole in this one message; else None."""
    content_type = dict(start.get("headers", [])).get(b"content-type", b"")
    if body.get("more_body") or not body.get("body") or not content_type.startswith(b"application/json"):
        return None
    try:
        return json.loads(body["body"])
    except ValueError:
        return None


async def _record(scope: Scope, start: Message, body: Message, rid: str) -> None:
    change = CustomerChange(who=_principal(scope), method=scope["method"], route=scope["route"].path,
                            params=scope.get("path_params", {}), status=start["status"],
                            ip=scope["client"][0] if scope.get("client") else None, request_id=rid,
                            result=_result(start, body))
    try:
        await audit.record_change(scope["app"].state.services.db, change)
    except Exception:  # the change is committed; losing its row is logged, never turned into an error
        log.exception("audit trail: could not record %s %s (request %s)", change.method, change.route, rid)
