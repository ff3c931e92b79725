"""The FastAPI application, built by a factory so it runs under Ray Serve, uvicorn or a test client."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pulse.serve import console, errors
from pulse.serve.audit_trail import AuditTrail
from pulse.serve.csrf import CsrfProtection
from pulse.serve.shedding import LoadShedding
from pulse.serve.routes import (alert_rules, alerts, analytics, analytics_sql, audit, auth, carrier_callbacks,
                                carriers, commands, dashboards, device_api, devices, digest, escalation, exports,
                                firmware, groups, ingest, jobs, live, maintenance, modules, notifications, oncall,
                                operator_carriers, operator_tenants, ota, owners, quarantine, reports, sensors, tags,
                                telemetron, telemetry, templates, transports)
from pulse.services.context import ServiceContext

ROUTERS = [auth.router, ingest.router, devices.router, telemetry.router, telemetry.fleet_router,
           commands.router, alert_rules.router, alert_rules.templates_router, alerts.router,
           quarantine.router, tags.router, groups.router, maintenance.router, templates.router,
           modules.router, sensors.router, transports.router, oncall.router, notifications.router,
           escalation.router, digest.router, carriers.router, operator_carriers.router,
           operator_tenants.router, carrier_callbacks.router, owners.router, telemetron.router,
           exports.router, audit.router, analytics.router, reports.router, analytics_sql.router,
           firmware.router, ota.router, jobs.router, device_api.router, dashboards.router, live.router]


def create_app(build: Callable[[], Awaitable[ServiceContext]] | None = None,
               close: Callable[[ServiceContext], Awaitable[None]] | None = None) -> FastAPI:
    """`build` makes the services at startup (in the process that serves); None = docs only."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if build is not None:
            app.state.services = await build()
        try:
            yield
        finally:
            fanout = getattr(app.state, "live", None)  # the live streams of this process (docs/live.md)
            if fanout is not None:
                await fanout.close()
            if build is not None and close is not None:
                await close(app.state.services)

    app = FastAPI(title="Pulse", version="0.1.0", lifespan=lifespan,
                  description="IoT fleet platform: customer and operator REST API.")
    errors.install(app)
    app.add_middleware(CsrfProtection)  # inside the audit trail: a refused write still gets a request id
    app.add_middleware(AuditTrail)
    app.add_middleware(LoadShedding)  # outermost: a request over the limit runs no other code
    for router in ROUTERS:
        app.include_router(router)
    console.install(app)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> Any:
        svc: ServiceContext | None = getattr(request.app.state, "services", None)
        if svc is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await svc.runtime.ready()
        except Exception as e:  # an actor is missing or not started yet
            return JSONResponse({"status": "unavailable", "detail": str(e)[:200]}, status_code=503)
        return {"status": "ok"}

    return app
