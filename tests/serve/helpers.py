"""Feeding device messages through the same pipeline the MQTT bridge uses; the app on a real port."""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import uvicorn
from fastapi import FastAPI

from pulse.domain.envelope import Limits
from pulse.serve.app import create_app
from pulse.services.ingest import accept
from tests.broker.fixtures import free_port

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


async def send(api, tenant: str, device: str, suffix: str, body) -> tuple:
    svc = api.services
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await accept(svc.runtime, svc.db, Limits(), [(f"tenant/{tenant}/device/{device}/{suffix}", payload)])


async def telemetry(api, device: str, at: float, tenant: str = "acme", seq: int | None = None, **metrics):
    body = {"version": "1", "ts": ts(at), "metrics": metrics}
    if seq is not None:
        body["seq"] = seq
    return await send(api, tenant, device, "telemetry", body)


@asynccontextmanager
async def served(api) -> AsyncIterator[tuple[str, FastAPI]]:
    """The app with the test's services on uvicorn on a real port, in the test's loop: (host:port, app)."""
    app = create_app()
    app.state.services = api.services
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}", app
    finally:
        srv.should_exit = True
        await task
        if getattr(app.state, "live", None) is not None:
            await app.state.live.close()
