"""The async SQL engine and schema migrations (SQLite WAL by default, PostgreSQL in production)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pulse.errors import NotFound, PulseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(sync_conn: sa.Connection, url: str, revision: str) -> None:
    from alembic import command

    cfg = _alembic_config(url)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`, by default the newest (run at every start; a no-op when current).

    The migrations are one linear history, so "head" is one revision; a second head makes this fail
    instead of silently applying a branch."""
    url = engine.url.render_as_string(hide_password=False)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, url, revision)


def run_migrations(url: str) -> None:
    async def _go() -> None:
        engine = make_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(_go())


class Database:
    """An engine plus the small helpers every storage module uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sqlite = is_sqlite(url)

    def begin(self):
        return self.engine.begin()

    def connect(self):
        return self.engine.connect()

    async def migrate(self) -> None:
        await migrate(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _count_query(query: sa.Select) -> sa.Select:
    return sa.select(sa.func.count()).select_from(query.order_by(None).subquery())


async def count(conn: AsyncConnection, query: sa.Select) -> int:
    return (await conn.execute(_count_query(query))).scalar_one()


async def page_rows(conn: AsyncConnection, query: sa.Select, order: list[sa.ColumnElement[Any]], limit: int,
                    offset: int) -> tuple[list[sa.Row], int]:
    """One page of `query` in `order` (end it with a unique column: pages stay stable), and the total."""
    total = await count(conn, query)
    return list(await conn.execute(query.order_by(*order).limit(limit).offset(offset))), total


TOTAL = "_page_total"


async def page_with_total(conn: AsyncConnection, query: sa.Select, order: list[sa.ColumnElement[Any]], limit: int,
                          offset: int) -> tuple[list[sa.Row], int]:
    """`page_rows` in one statement: the total rides on each row (column `TOTAL`) as a scalar
    subquery, which the database counts once, from an index where it can. (`count(*) over ()` did
    the same in one round trip, but made SQLite build every matching row and sort them all before
    the LIMIT: 0.38 against 0.15 ms for a page of 50 of 200 devices, growing with the fleet.) A page
    past the end has no row to carry the total, so it is counted then."""
    total = _count_query(query).scalar_subquery().label(TOTAL)
    rows = list(await conn.execute(query.add_columns(total).order_by(*order).limit(limit).offset(offset)))
    if rows:
        return rows, rows[0]._mapping[TOTAL]
    return [], (await count(conn, query) if offset else 0)


def where_given(query: sa.Select, table: sa.Table, **filters: Any) -> sa.Select:
    """`query` narrowed to the rows whose column equals each filter that is given (None or "" is not)."""
    given = [table.c[name] == value for name, value in filters.items() if value is not None and value != ""]
    return query.where(*given) if given else query


def _owned(table: sa.Table, tenant_id: str, key: str, value: Any) -> list[sa.ColumnElement[bool]]:
    return [table.c.tenant_id == tenant_id, table.c[key] == value]


async def find_tenant_row(conn: AsyncConnection, table: sa.Table, tenant_id: str, key: str,
                          value: Any) -> sa.Row | None:
    """The tenant's row whose `key` column is `value`, or None."""
    return (await conn.execute(sa.select(table).where(*_owned(table, tenant_id, key, value)))).first()


async def tenant_row(conn: AsyncConnection, table: sa.Table, tenant_id: str, key: str, value: Any,
                     what: str) -> sa.Row:
    """The tenant's row whose `key` column is `value`; NotFound ("{what} {value} not found") otherwise."""
    row = await find_tenant_row(conn, table, tenant_id, key, value)
    if row is None:
        raise NotFound(f"{what} {value} not found")
    return row


def of_device(table: sa.Table, tenant_id: str, device_id: str) -> list[sa.ColumnElement[bool]]:
    """The conditions selecting one device's rows of a per-device table (modules, sensors, transports)."""
    return [table.c.tenant_id == tenant_id, table.c.device_id == device_id]


async def device_row(conn: AsyncConnection, table: sa.Table, tenant_id: str, device_id: str, row_id: int,
                     what: str) -> sa.Row:
    """Row `row_id` of a per-device table; NotFound ("{what} {row_id} not found on device {device_id}") otherwise."""
    row = (await conn.execute(sa.select(table).where(table.c.id == row_id,
                                                     *of_device(table, tenant_id, device_id)))).first()
    if row is None:
        raise NotFound(f"{what} {row_id} not found on device {device_id}")
    return row


async def delete_tenant_row(conn: AsyncConnection, table: sa.Table, tenant_id: str, key: str, value: Any,
                            what: str) -> None:
    """Delete the tenant's row whose `key` column is `value`; NotFound when there is none."""
    res = await conn.execute(table.delete().where(*_owned(table, tenant_id, key, value)))
    if res.rowcount == 0:
        raise NotFound(f"{what} {value} not found")


async def update_row(conn: AsyncConnection, table: sa.Table, key: str, value: Any, values: dict[str, Any],
                     clash: PulseError) -> None:
    """Set `values` and `updated_at` on the row whose `key` column is `value` (the caller has checked that
    the tenant owns it); raises `clash` when that breaks a unique constraint (e.g. a name taken meanwhile)."""
    try:
        await conn.execute(table.update().where(table.c[key] == value).values(updated_at=utcnow(), **values))
    except sa.exc.IntegrityError:
        raise clash from None


def _insert(conn: AsyncConnection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT: both dialects have one, with the same methods."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


async def upsert(conn: AsyncConnection, table: sa.Table, rows: list[dict], keys: list[str],
                 keep: tuple[str, ...] = ()) -> None:
    """Insert rows; where the key exists, update the other columns given except those in `keep`
    (e.g. `created_at`). SQLite and PostgreSQL."""
    if not rows:
        return
    stmt = _insert(conn, table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys and c not in keep}
    await conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


async def insert_missing(conn: AsyncConnection, table: sa.Table, rows: list[dict],
                         keys: list[str] | None = None) -> int:
    """Insert the rows whose key (`keys`, default: any unique constraint) is not taken yet, leaving
    existing rows untouched; race-safe (ON CONFLICT DO NOTHING). Returns the rows inserted."""
    if not rows:
        return 0
    stmt = _insert(conn, table).values(rows).on_conflict_do_nothing(index_elements=keys)
    return len((await conn.execute(stmt.returning(*table.primary_key.columns))).all())
