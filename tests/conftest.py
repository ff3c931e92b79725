"""Shared fixtures: a fresh SQL store per test (SQLite, or PostgreSQL when PULSE_TEST_DATABASE_URL
is set, as in CI), settings in a temp data dir, and the API over an in-process LocalRuntime."""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pulse.storage.db import Database

pytest_plugins = ["tests.broker.fixtures"]

PG_ADMIN_URL = os.environ.get("PULSE_TEST_DATABASE_URL")  # postgresql+asyncpg://user:pw@127.0.0.1:5432/postgres


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


DB_KINDS = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])


@pytest.fixture(params=DB_KINDS)
async def db_url(request, tmp_path: Path) -> AsyncIterator[str]:
    """Every store-backed test runs on SQLite, and on PostgreSQL too when one is configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/pulse.db"
        return
    name = f"pulse_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def broker_db(db_url: str) -> AsyncIterator[Database]:
    """Overrides the broker plugin's SQLite-only store so broker tests run on PostgreSQL in CI too."""
    db = Database(db_url)
    await db.migrate()
    try:
        yield db
    finally:
        await db.dispose()


class Api:
    """An httpx client on the app, plus tokens for any tenant/role."""

    def __init__(self, client: httpx.AsyncClient, services) -> None:
        self.client = client
        self.services = services

    def token(self, tenant: str | None = "acme", role: str = "customer_admin", sub: str | None = None) -> str:
        from pulse.serve.auth import issue_token

        return issue_token(self.services.settings, sub or f"{role}@{tenant}", tenant, role)

    def headers(self, tenant: str | None = "acme", role: str = "customer_admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, role)}"}

    async def request(self, method: str, url: str, tenant: str | None = "acme", role: str = "customer_admin",
                      **kw) -> httpx.Response:
        headers = kw.pop("headers", None) or self.headers(tenant, role)
        return await self.client.request(method, url, headers=headers, **kw)

    async def get(self, url, **kw):
        return await self.request("GET", url, **kw)

    async def post(self, url, **kw):
        return await self.request("POST", url, **kw)

    async def patch(self, url, **kw):
        return await self.request("PATCH", url, **kw)

    async def delete(self, url, **kw):
        return await self.request("DELETE", url, **kw)


@pytest.fixture
async def api(embedded_broker) -> AsyncIterator[Api]:
    """The real app on a LocalRuntime, real store, real lake, and the embedded broker for downlinks."""
    from pulse.actors.downlink import Downlink
    from pulse.actors.runtime import LocalRuntime
    from pulse.serve.app import Services, create_app
    from pulse.serve.auth import TokenDecoder
    from pulse.storage import tenants
    from pulse.storage.lake import LakeReader

    settings = embedded_broker.settings
    settings.device_shards = 2
    runtime = LocalRuntime(settings)
    await runtime.start()
    db = embedded_broker.db
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    svc = Services(settings=settings, db=db, runtime=runtime, lake=LakeReader(settings.lake_dir),
                   downlink=Downlink(settings), credentials=embedded_broker.credentials,
                   decoder=TokenDecoder(settings))
    app = create_app()
    app.state.services = svc
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test")
    try:
        yield Api(client, svc)
    finally:
        await client.aclose()
        await svc.downlink.close()
        await runtime.stop()
