"""The FastAPI application, built by a factory so it runs under Ray Serve, uvicorn or a test client."""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pulse.actors.downlink import Downlink
from pulse.actors.runtime import Runtime
from pulse.broker.credentials import DeviceCredentials
from pulse.config.settings import Settings
from pulse.serve import errors
from pulse.serve.auth import TokenDecoder
from pulse.serve.rate_limit import RateLimiter
from pulse.storage.db import Database
from pulse.storage.lake import LakeReader
from pulse.storage.tokens import VerificationCache


@dataclass
class Services:
    settings: Settings
    db: Database
    runtime: Runtime
    lake: LakeReader
    downlink: Downlink
    credentials: DeviceCredentials
    decoder: TokenDecoder
    # per-process HTTP ingest state (one Serve replica = one limiter; docs/operations.md)
    rate_limiter: RateLimiter = field(init=False)
    token_cache: VerificationCache = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(self.settings.http_ingest_rate_per_s, self.settings.http_ingest_burst)
        self.token_cache = VerificationCache(positive_ttl=30.0, negative_ttl=5.0)


def services(request: Request) -> Services:
    return request.app.state.services


def _routers():
    from pulse.serve.routes import alert_rules, alerts, auth, commands, devices, ingest, quarantine, telemetry
    from pulse.serve.routes import groups, maintenance, tags
    from pulse.serve.routes import modules, sensors, templates, transports
    from pulse.serve.routes import oncall
    from pulse.serve.routes import notifications
    from pulse.serve.routes import digest, escalation
    from pulse.serve.routes import carrier_callbacks, carriers, operator_carriers
    from pulse.serve.routes import owners, telemetron

    return [auth.router, ingest.router, devices.router, telemetry.router, commands.router, alert_rules.router, alert_rules.templates_router,
            alerts.router, quarantine.router, tags.router, groups.router, maintenance.router,
            templates.router, modules.router, sensors.router, transports.router, oncall.router,
            notifications.router, escalation.router, digest.router,
            carriers.router, operator_carriers.router, carrier_callbacks.router,
            owners.router, telemetron.router]


def create_app(build: Callable[[], Awaitable[Services]] | None = None,
               close: Callable[[Services], Awaitable[None]] | None = None) -> FastAPI:
    """`build` makes the services at startup (in the process that serves); None = docs only."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if build is not None:
            app.state.services = await build()
        try:
            yield
        finally:
            if build is not None and close is not None:
                await close(app.state.services)

    app = FastAPI(title="Pulse", version="0.1.0", lifespan=lifespan,
                  description="IoT fleet platform: customer and operator REST API.")
    errors.install(app)
    for router in _routers():
        app.include_router(router)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> Any:
        svc: Services | None = getattr(request.app.state, "services", None)
        if svc is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await svc.runtime.ready()
        except Exception as e:  # an actor is missing or not started yet
            return JSONResponse({"status": "unavailable", "detail": str(e)[:200]}, status_code=503)
        return {"status": "ok"}

    return app
