"""Load shedding: past capacity, answer 503 at once instead of queueing.

Without it an API process past its capacity keeps accepting work: every request waits behind the
ones before it, latency grows without bound (seconds, then timeouts and dropped connections) and
the process spends its CPU on answers nobody waits for any more. With it, the requests refused cost
a few microseconds and get `503` with `Retry-After` and a JSON `detail`, and the ones accepted keep
their latency (docs/operations.md, "Capacity and load shedding").

When to refuse (`Admission`, per process: one uvicorn, one Serve replica): a request count alone
cannot tell cheap requests from dear ones, or CPU from I/O, and refused ~1 % of a paced load at
80 % of capacity (the pile-up after a GC or scheduling pause) while p99 was 26 ms. So:
- up to `api_max_in_flight` requests in progress, every request is taken;
- past it, up to `api_max_in_flight_burst`, only while a new request would wait less than
  `api_queue_target_ms`: the requests in progress times the CPU per request of the last 100 ms;
- past the burst bound, none.

Not counted, never shed: health checks (an orchestrator must see a busy process as alive), the
live streams (a WebSocket or SSE stream is open for hours; it has its own cap, `live_max_subscribers`)
and the console's static files. The console retries a GET refused with 503 after its `Retry-After`.
An ASGI middleware, outermost, so a shed request runs none of the app's code.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from pulse.config.settings import Settings
from pulse.serve.routes.live import STREAM

EXEMPT_PATHS = frozenset({"/healthz", "/"})  # "/": the console's page
# Ray Serve's own proxy health and routes endpoints; the console's static files (a page load asks
# for a dozen at once, each a file read: refusing one would break the page, not save CPU)
EXEMPT_PREFIXES = (STREAM, "/-/", "/console/")
INTERVAL_S = 0.1  # how often the CPU per request is measured


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


@dataclass(frozen=True)
class Limits:
    """In progress always taken (`steady`), at most (`burst`), and the expected wait (`target_s`)
    past which the requests between the two are refused. steady 0 = no limit."""
    steady: int
    burst: int
    target_s: float

    @classmethod
    def of(cls, settings: Settings, scale: int = 1, burst: bool = True) -> Limits:
        steady = settings.api_max_in_flight * scale
        bound = max(steady, settings.api_max_in_flight_burst * scale) if burst else steady
        return cls(steady, bound, settings.api_queue_target_ms / 1000)


class Admission:
    """Requests in progress in one process, and the wait a new one would have (module docstring).

    The wait is the CPU the requests ahead of it will take: their number times the process's CPU
    per finished request over the last window (`INTERVAL_S`). Requests waiting on I/O (a client, a
    remote database) cost no CPU and make no wait, and a pause where nothing finishes (a GC, the
    host busy elsewhere) leaves the estimate as it was, so the pile-up after it is let in. Until a
    window has been measured, nothing past the steady bound."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:
        self.clock, self.cpu_clock = clock, cpu_clock
        self.in_flight = 0
        self.window_start, self.window_cpu = clock(), cpu_clock()
        self.window_done = 0  # requests finished since window_start
        self.cost_s = math.inf  # CPU per finished request in the last window

    def admit(self, limits: Limits) -> bool:
        n = self.in_flight
        if limits.steady and n >= limits.steady and (n >= limits.burst or (n + 1) * self.cost_s > limits.target_s):
            return False
        self.in_flight = n + 1
        return True

    def done(self) -> None:
        self.in_flight -= 1
        self.window_done += 1
        now = self.clock()
        if now - self.window_start >= INTERVAL_S:
            cpu = self.cpu_clock()
            self.cost_s = (cpu - self.window_cpu) / self.window_done
            self.window_start, self.window_cpu, self.window_done = now, cpu, 0


class LoadShedding:
    """Admits this process's HTTP requests (`Admission`); a refused one is answered 503 + Retry-After.

    In the app it reads its limits from the services' settings. In front of it (Ray Serve's proxy,
    `pulse.deployment.proxy_middlewares`) it is given settings, `scale` (the replicas behind it) and
    `burst=False`: a plain count, because the proxy's own CPU says nothing of the replicas' queues."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None, scale: int = 1, burst: bool = True) -> None:
        self.app = app
        self.settings, self.scale, self.burst = settings, scale, burst
        self.admission = Admission()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self._settings(scope) if scope["type"] == "http" and not exempt(scope["path"]) else None
        if settings is None:
            await self.app(scope, receive, send)
            return
        if not self.admission.admit(Limits.of(settings, self.scale, self.burst)):
            start, body = busy_response(self.admission.in_flight, max(1, settings.api_shed_retry_after_s))
            await send(start)
            await send(body)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.done()

    def _settings(self, scope: Scope) -> Settings | None:
        if self.settings is not None:
            return self.settings
        # in the app, read per request: the services (and their settings) arrive with its lifespan
        return getattr(getattr(scope["app"].state, "services", None), "settings", None)
