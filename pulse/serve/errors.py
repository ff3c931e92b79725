"""One place mapping domain errors and validation failures to JSON `{"detail": ...}` responses, and
turning away request lines no route could read (stray bytes, NUL) before they reach one."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pulse.errors import PulseError

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    app.add_middleware(ReadableRequestLine)

    @app.exception_handler(PulseError)
    async def _domain(_: Request, exc: PulseError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": ["request"], "msg": "invalid request", "type": ""}
        return JSONResponse({"detail": f"{_field(first)}: {first['msg']}", "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error"}, status_code=500)


def _field(error: dict[str, Any]) -> str:
    """The offending field as a client names it: `query.limit`, `path.device_id`, `name`, `rules.0.metric`;
    `body` when the body as a whole is wrong (missing, not JSON, or failing a cross-field check)."""
    loc = [str(x) for x in error["loc"]]
    if loc[:1] == ["body"] and (len(loc) == 1 or error["type"] == "json_invalid"):
        return "body"
    return ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "request"


class ReadableRequestLine:
    """400 for a path or query string that is not UTF-8 once percent-decoded, or that holds a NUL.

    Servers decode such bytes to U+FFFD or pass NUL through, and neither can be stored (PostgreSQL
    text rejects NUL) nor echoed in a header; refusing them here keeps every route free of the case."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = _unreadable(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"detail": problem}, status_code=400)(scope, receive, send)


def _unreadable(scope: Scope) -> str | None:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    parts = {"path": unquote_to_bytes(raw_path.split(b"?", 1)[0]),
             "query string": unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))}
    for name, raw in parts.items():
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"the {name} is not valid UTF-8"
        if "\x00" in text:
            return f"the {name} contains a NUL character"
    return None
