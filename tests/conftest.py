"""Shared fixtures: a fresh SQL store per test (SQLite, or PostgreSQL when PULSE_TEST_DATABASE_URL
is set, as in CI), settings in a temp data dir, and the API over an in-process LocalRuntime."""
from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from pulse.storage.db import Database

pytest_plugins = ["tests.broker.fixtures", "tests.simulators.telemetron_fixtures"]

PG_ADMIN_URL = os.environ.get("PULSE_TEST_DATABASE_URL")  # postgresql+asyncpg://user:pw@127.0.0.1:5432/postgres


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain(PG_ADMIN_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PgTestDatabase:
    """One migrated PostgreSQL database for the whole session, emptied before each test.

    Creating and migrating a database per test cost ~0.8 s, most of the suite's time on PostgreSQL;
    TRUNCATE ... RESTART IDENTITY and re-inserting the rows the migrations seed (system templates)
    gives each test the same state a fresh `upgrade head` would, in a few tens of milliseconds."""

    def __init__(self) -> None:
        self.name = f"pulse_test_{uuid.uuid4().hex[:12]}"
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"
        self.seed: list[tuple[str, list[str], list[tuple]]] = []  # (table, columns, rows) in insert order
        self.tables: list[str] = []
        self.ready = False

    async def fresh(self) -> str:
        import asyncpg

        if not self.ready:
            await self._create()
            return self.url
        await _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()")
        conn = await asyncpg.connect(_plain(self.url))
        try:
            async with conn.transaction():
                await conn.execute(f"TRUNCATE {', '.join(self.tables)} RESTART IDENTITY CASCADE")
                for table, columns, rows in self.seed:
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
                    if "id" in columns:
                        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                           f"(SELECT max(id) FROM {table}))")
        finally:
            await conn.close()
        return self.url

    async def _create(self) -> None:
        import asyncpg

        await _pg_admin(f'CREATE DATABASE "{self.name}"')
        db = Database(self.url)
        try:
            await db.migrate()
        finally:
            await db.dispose()
        conn = await asyncpg.connect(_plain(self.url))
        try:
            names = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
            self.tables = [f'"{n}"' for n in names]
            for name in _insert_order(names):
                rows = await conn.fetch(f'SELECT * FROM "{name}"')
                if rows:
                    self.seed.append((name, list(rows[0].keys()), [tuple(r.values()) for r in rows]))
        finally:
            await conn.close()
        self.ready = True

    async def drop(self) -> None:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _insert_order(names: list[str]) -> list[str]:
    """Parents before children (the seeded tables reference each other by foreign keys)."""
    from pulse.storage.tables import metadata

    order = [t.name for t in metadata.sorted_tables]
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))


_PG: PgTestDatabase | None = None


@pytest.fixture(scope="session", autouse=True)
def _pg_session_database() -> Iterator[None]:
    """Sync on purpose: the database outlives every test's event loop (asyncpg connects per call)."""
    global _PG
    if PG_ADMIN_URL:
        _PG = PgTestDatabase()
    yield
    if _PG is not None and _PG.ready:
        asyncio.run(_PG.drop())


DB_KINDS = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])


@pytest.fixture(params=DB_KINDS)
async def db_url(request, tmp_path: Path) -> AsyncIterator[str]:
    """Every store-backed test runs on SQLite, and on PostgreSQL too when one is configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/pulse.db"
        return
    yield await _PG.fresh()


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
        from pulse.services.identity import issue_token

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
    from pulse.mqtt.publisher import Downlink
    from pulse.actors.runtime import LocalRuntime
    from pulse.serve.app import create_app
    from pulse.services.commands import delivery_recorder
    from pulse.services.context import ServiceContext as Services
    from pulse.services.identity import TokenDecoder
    from pulse.storage import tenants
    from pulse.pipelines.telemetry import LakeReader

    settings = embedded_broker.settings
    settings.device_shards = 2
    runtime = LocalRuntime(settings)
    await runtime.start()
    db = embedded_broker.db
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    svc = Services(settings=settings, db=db, runtime=runtime, lake=LakeReader(settings.lake_dir),
                   downlink=Downlink(settings, on_sent=delivery_recorder(db)), credentials=embedded_broker.credentials,
                   decoder=TokenDecoder(settings))
    app = create_app()
    app.state.services = svc
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test")
    try:
        yield Api(client, svc)
    finally:
        await client.aclose()
        await svc.downlink.close()
        await svc.runtime.stop()  # the one in use: a test may have swapped in a restarted runtime
        if svc.runtime is not runtime:
            await runtime.stop()
