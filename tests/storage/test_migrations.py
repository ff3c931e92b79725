"""The migrations are one linear history, and it builds exactly `pulse.storage.tables.metadata`:
from an empty database, and from a data dir migrated when the areas were still separate branches.

Each test runs on SQLite, and on PostgreSQL too when PULSE_TEST_DATABASE_URL is set (`db_url`).
"""
from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from pulse.storage import tenants
from pulse.storage.db import MIGRATIONS_DIR, Database, is_sqlite, migrate
from pulse.storage.tables import metadata

# The heads before revision 0010 merged them: what every data dir created before then is at.
OLD_HEADS = {"0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"}


def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


@pytest.fixture
async def empty_db_url(db_url: str) -> AsyncIterator[str]:
    """An empty database: the test's fresh SQLite file, or on PostgreSQL a throwaway database beside
    the suite's (which `db_url` hands out already migrated)."""
    if is_sqlite(db_url):
        yield db_url
        return
    server = sa.make_url(db_url)
    name = f"pulse_migrations_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _predicate(where: object) -> str:
    # PostgreSQL hands back the predicate as it deparsed it, e.g. `(next_escalation_at IS NOT NULL)`
    # for `next_escalation_at IS NOT NULL`; SQLite the text as written. Outer parentheses, spacing
    # and case carry no meaning, so they are dropped before comparing.
    text = re.sub(r"\s+", " ", str(where)).strip().lower()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text


def _index_predicates(conn: sa.Connection) -> list[tuple]:
    """Partial-index predicates that differ; compare_metadata does not look at WHERE clauses, and
    these indexes enforce rules (one primary transport per device, one default policy per tenant)."""
    dialect = conn.dialect.name
    wanted = {ix.name: _predicate(ix.dialect_options[dialect]["where"])
              for table in metadata.sorted_tables for ix in table.indexes
              if ix.dialect_options[dialect]["where"] is not None}
    inspector = sa.inspect(conn)
    found = {ix["name"]: _predicate(ix["dialect_options"][f"{dialect}_where"])
             for table in metadata.tables for ix in inspector.get_indexes(table)
             if ix.get("dialect_options", {}).get(f"{dialect}_where") is not None}
    return [("index_where", name, found.get(name), wanted.get(name))
            for name in sorted(wanted.keys() | found.keys()) if found.get(name) != wanted.get(name)]


def _differences(conn: sa.Connection) -> list:
    """Every way the database's schema differs from `metadata`; no difference is ignored."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, metadata) + _index_predicates(conn)


async def _drift(db: Database) -> list:
    async with db.connect() as conn:
        return await conn.run_sync(_differences)


async def _versions(db: Database) -> set[str]:
    async with db.connect() as conn:
        return set((await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars())


def test_the_migrations_have_exactly_one_head() -> None:
    assert len(_script().get_heads()) == 1


def test_revision_0010_merges_exactly_the_old_heads() -> None:
    assert set(_script().get_revision("0010").down_revision) == OLD_HEADS


async def test_upgrade_head_on_an_empty_database_builds_exactly_the_tables(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        await db.migrate()
        assert await _versions(db) == {_script().get_current_head()}
        assert await _drift(db) == []
    finally:
        await db.dispose()


async def test_a_data_dir_at_the_old_heads_upgrades_to_head_and_keeps_its_data(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        for head in sorted(OLD_HEADS):
            await migrate(db.engine, head)
        assert await _versions(db) == OLD_HEADS
        await tenants.ensure_tenant(db, "acme", "Acme Corp")

        await db.migrate()

        assert await _versions(db) == {_script().get_current_head()}
        assert (await tenants.get_tenant(db, "acme"))["name"] == "Acme Corp"
        assert await _drift(db) == []
    finally:
        await db.dispose()
