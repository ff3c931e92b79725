"""Double-submit CSRF protection for cookie-authenticated writes (docs/console.md).

A browser sends the `pulse_session` cookie with any request to Pulse, even one a hostile page
started; a Bearer header it never adds by itself. So a write (POST/PUT/PATCH/DELETE under /api/)
that is authenticated by the cookie alone must echo the `csrf_token` cookie in the `X-CSRF-Token`
header: another site can make the browser send the cookie but can neither read it nor set the
header. Every GET/HEAD answer sets that cookie when the caller has none (HttpOnly, SameSite=Strict)
and echoes its value in the `X-CSRF-Token` response header, which is how the console learns it.

Calls with a Bearer token need no CSRF token (the seed's curl examples send none); the documented
system asks for one even then. Login is exempt: it is not authenticated by the cookie, it makes it.
An ASGI middleware rather than a dependency: it must answer before any route, for every route.
"""
from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulse.serve.auth import COOKIE as SESSION_COOKIE

COOKIE = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PATHS = frozenset({"/api/v1/auth/login"})
REFUSED = "CSRF token missing or invalid"
_OURS = re.compile(r"^[A-Za-z0-9_-]{32,128}$")  # the shape token_urlsafe(32) has; anything else is replaced


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for raw in headers.getlist("cookie"):
        try:
            jar.load(raw)
        except Exception:  # a malformed Cookie header carries no usable token; same as none
            continue
    return {name: morsel.value for name, morsel in jar.items()}


def needs_token(method: str, path: str, headers: Headers, cookies: dict[str, str]) -> bool:
    """A write under /api/ that only the session cookie authenticates."""
    if method in SAFE_METHODS or not path.startswith("/api/") or path in EXEMPT_PATHS:
        return False
    if headers.get("authorization", "").lower().startswith("bearer "):
        return False
    return SESSION_COOKIE in cookies


def token_matches(cookie: str | None, header: str | None) -> bool:
    return bool(cookie) and bool(header) and secrets.compare_digest(cookie.encode(), header.encode())


def _set_cookie(token: str, secure: bool) -> bytes:
    attrs = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    return (attrs + "; Secure" if secure else attrs).encode("latin-1")


class CsrfProtection:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSocket: authenticated by its own handshake (docs/live.md)
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = _cookies(headers)
        method, path = scope["method"], scope["path"]
        if needs_token(method, path, headers, cookies) and not token_matches(cookies.get(COOKIE),
                                                                             headers.get(HEADER)):
            await JSONResponse({"detail": REFUSED}, status_code=403)(scope, receive, send)
            return
        if method not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        given = cookies.get(COOKIE, "")
        fresh = not _OURS.match(given)
        token = secrets.token_urlsafe(32) if fresh else given

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(HEADER.encode(), token.encode())]
                if fresh:
                    extra.append((b"set-cookie", _set_cookie(token, scope.get("scheme") == "https")))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_token)
