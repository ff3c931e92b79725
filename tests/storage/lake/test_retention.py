"""Retention: tenant-days past their tenant's retention (30 days unless the tenant sets its own)
are deleted whole, by the scheduler's tick, and kill -9 never leaves a partial day behind."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pulse.actors.scheduler import Scheduler
from pulse.config.settings import Settings
from pulse.pipelines.lake_lifecycle import expire_days, expired_before
from pulse.pipelines.telemetry import LakeReader
from pulse.services.lake_lifecycle import expire_lake
from pulse.storage import tenants
from pulse.storage.db import Database
from pulse.storage.lake.parquet import partition_days, tenant_dir
from tests.storage.lake.crash import run_killed_at
from tests.storage.lake.helpers import msg, rows, stored_rows, write_parts

NOW = datetime(2026, 3, 31, 12, tzinfo=timezone.utc)
AGES = (40, 20, 5)  # days before NOW that hold telemetry


@pytest.fixture
async def db(broker_db: Database) -> Database:
    """The shared migrated store (SQLite, and PostgreSQL in CI) with tenants acme and globex."""
    for tenant in ("acme", "globex"):
        await tenants.ensure_tenant(broker_db, tenant)
    return broker_db


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url)


async def write_days(lake: Path, *tenant_ids: str) -> None:
    await write_parts(lake, *(rows(msg("d1", NOW - timedelta(days=age), tenant=t)) for t in tenant_ids for age in AGES))


def ages_kept(lake: Path, tenant: str) -> list[int]:
    return sorted((NOW.date() - day).days for day in partition_days(lake, tenant))


async def test_each_tenant_keeps_its_own_retention(db: Database, settings: Settings) -> None:
    await write_days(settings.lake_dir, "acme", "globex")
    assert await tenants.set_telemetry_retention_days(db, "globex", 7)
    assert not await tenants.set_telemetry_retention_days(db, "nobody", 7)

    assert await expire_lake(db, settings, NOW) == 3

    assert ages_kept(settings.lake_dir, "acme") == [5, 20]  # the default, 30 days
    assert ages_kept(settings.lake_dir, "globex") == [5]
    history = LakeReader(settings.lake_dir).history("globex", "d1")
    assert [r["ts"] for r in history] == [NOW - timedelta(days=5)]
    assert await expire_lake(db, settings, NOW) == 0

    await tenants.set_telemetry_retention_days(db, "globex", None)  # back to the default
    assert await tenants.telemetry_retention_days(db) == {}


def test_a_day_expires_once_its_last_row_is_older_than_the_retention() -> None:
    # at NOW, March 1 still holds rows 29.5 days old; February 28 ended 30.5 days ago
    assert expired_before(NOW, 30).isoformat() == "2026-03-01"


async def test_the_scheduler_ticks_compact_and_expire_the_lake(db: Database, settings: Settings) -> None:
    now = datetime.now(timezone.utc)
    old, yesterday = now - timedelta(days=45), now - timedelta(days=1, hours=2)
    await write_parts(settings.lake_dir, rows(msg("d1", old)), rows(msg("d1", yesterday)),
                      rows(msg("d2", yesterday)), rows(msg("d1", now)))
    scheduler = Scheduler(settings)
    scheduler.db = db

    assert "lake_compaction" in scheduler._every() and "lake_retention" in scheduler._every()
    assert await scheduler.tick_lake_compaction() == 1  # yesterday's two parts; today is open
    assert await scheduler.tick_lake_retention() == 1
    assert [d.isoformat() for d in partition_days(settings.lake_dir, "acme")] == [
        yesterday.date().isoformat(), now.date().isoformat()]
    assert len(LakeReader(settings.lake_dir).history("acme", "d1")) == 2


@pytest.mark.slow
async def test_kill_9_at_any_step_of_retention_leaves_each_day_whole_or_gone(tmp_path: Path) -> None:
    pristine = tmp_path / "lake"
    await write_days(pristine, "acme")
    before = {day: stored_rows(pristine, "acme", day) for day in partition_days(pristine, "acme")}
    code = f"expire_days(lake, lambda tenant: 30, datetime.fromisoformat({NOW.isoformat()!r}))"
    kill_at, killed = 0, True
    while killed:
        kill_at += 1
        lake = tmp_path / f"run-{kill_at}"
        shutil.copytree(pristine, lake)
        killed = run_killed_at(kill_at, lake, "from datetime import datetime\n"
                               "from pulse.pipelines.lake_lifecycle import expire_days", code)
        for day in partition_days(lake, "acme"):
            assert stored_rows(lake, "acme", day) == before[day], f"day {day} partial at event {kill_at}"
        assert ages_kept(lake, "acme") in ([5, 20], [5, 20, 40])

        expire_days(lake, lambda tenant: 30, NOW)  # the restarted scheduler's next pass
        assert ages_kept(lake, "acme") == [5, 20]
        assert sorted(p.name for p in tenant_dir(lake, "acme").iterdir()) == [
            f"date={(NOW - timedelta(days=age)).date().isoformat()}" for age in (20, 5)]
        shutil.rmtree(lake)
    assert kill_at > 3
