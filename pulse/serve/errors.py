"""One place mapping domain errors and validation failures to JSON `{"detail": ...}` responses, and
turning away requests no route could read (stray bytes, NUL) before they reach one."""
from __future__ import annotations

import logging
import math
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulse.errors import PulseError, RateLimited

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    app.add_middleware(ReadableRequest)

    @app.exception_handler(PulseError)
    async def _domain(_: Request, exc: PulseError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
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


class ReadableRequest:
    """400 for a path or query string that is not UTF-8 once percent-decoded, and for a NUL anywhere
    (path, query, body raw or as the JSON escape `\\u0000`).

    Servers decode stray bytes to U+FFFD and pass NUL through; neither can be echoed in a header,
    and PostgreSQL text and JSON refuse NUL outright. Refusing them here keeps every route, schema
    and store free of the case (the body is read once and replayed to the app).

    Binary uploads (`BINARY_BODIES`: a firmware image) are bytes, not text, and are streamed by their
    route to the blob store: their body is neither read nor checked here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _unreadable(scope)
        if problem is None and not BINARY_BODIES.search(scope["path"]):
            messages = await _body_messages(receive)
            if _has_nul(b"".join(m.get("body", b"") for m in messages)):
                problem = "the body contains a NUL character"
            receive = _replay(messages, receive)
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


BINARY_BODIES = re.compile(r"/api/v1/customer/firmware/[^/]+/image$")
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # \u0000 not itself escaped (\\u0000 is text)


def _has_nul(chunk: bytes) -> bool:
    return b"\x00" in chunk or _JSON_NUL.search(chunk) is not None


async def _body_messages(receive: Receive) -> list[Message]:
    messages = [await receive()]
    while messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False):
        messages.append(await receive())
    return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
