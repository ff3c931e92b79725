"""Load shedding: past a bound of requests in progress, answer 503 at once instead of queueing.

Without it an API process past its capacity keeps accepting work: every request waits behind the
ones before it, latency grows without bound (seconds, then timeouts and dropped connections) and
the process spends its CPU on answers nobody waits for any more. With it, the requests beyond
`api_max_in_flight` (per process: one uvicorn, one Serve replica) cost a few microseconds and get
`503` with `Retry-After` and a JSON `detail`, and the ones accepted keep their latency
(docs/operations.md, "Capacity and load shedding").

Not counted, never shed: health checks (an orchestrator must see a busy process as alive), the
live streams (a WebSocket or SSE stream is open for hours; it has its own cap, `live_max_subscribers`)
and the console's static files. The console retries a GET refused with 503 after its `Retry-After`.
An ASGI middleware, outermost, so a shed request runs none of the app's code.
"""
from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from pulse.config.settings import Settings
from pulse.serve.routes.live import STREAM

EXEMPT_PATHS = frozenset({"/healthz", "/"})  # "/": the console's page
# Ray Serve's own proxy health and routes endpoints; the console's static files (a page load asks
# for a dozen at once, each a file read: refusing one would break the page, not save CPU)
EXEMPT_PREFIXES = (STREAM, "/-/", "/console/")


def exempt(path: str) -> bool:
    """Requests that never count against the limit: health checks, live streams, console files."""
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


def busy_response(in_flight: int, retry_after_s: int) -> tuple[dict, dict]:
    """The ASGI start and body messages of a shed request."""
    body = json.dumps({"detail": f"server busy ({in_flight} requests in progress); retry after {retry_after_s} s"})
    start = {"type": "http.response.start", "status": 503,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"retry-after", str(retry_after_s).encode())]}
    return start, {"type": "http.response.body", "body": body.encode()}


class LoadShedding:
    """Counts this process's HTTP requests in progress; over the configured limit, 503 + Retry-After.

    In the app it reads its limit from the services' settings; in front of it (Ray Serve's proxy,
    `pulse.deployment.proxy_middlewares`) it is given settings and a limit for all the replicas."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None, limit: int | None = None) -> None:
        self.app = app
        self.settings, self.limit = settings, limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        settings, limit = self._limits(scope)
        if limit and self.in_flight >= limit:
            start, body = busy_response(self.in_flight, max(1, settings.api_shed_retry_after_s))
            await send(start)
            await send(body)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _limits(self, scope: Scope) -> tuple[Settings | None, int]:
        if self.settings is not None:
            return self.settings, self.settings.api_max_in_flight if self.limit is None else self.limit
        # in the app, read per request: the services (and their settings) arrive with its lifespan
        settings = getattr(getattr(scope["app"].state, "services", None), "settings", None)
        return settings, settings.api_max_in_flight if settings is not None else 0
