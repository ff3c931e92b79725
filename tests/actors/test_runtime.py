"""Placement is stable, spreads partitions over shards, and routes through its table: a moved
partition's actors really move, with their state, on a running runtime."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pulse.actors.runtime import LocalRuntime, Placement, partition_of
from pulse.config.settings import Settings
from pulse.domain.envelope import Limits
from pulse.domain.messages import AlertEvent
from pulse.storage import devices, tenants
from pulse.storage.db import Database

NOW_MS = 1_772_000_000_000


def test_partition_is_stable_across_calls_and_processes():
    # crc32 is specified; Python's hash() would change per process
    assert partition_of("acme/dev-1", 1024) == partition_of("acme/dev-1", 1024) == 793  # zlib.crc32(b"acme/dev-1") % 1024


def test_placement_spreads_devices_evenly():
    p = Placement(1024, 4)
    counts = Counter(p.device_shard("t", f"d{i}") for i in range(10_000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 2000


def test_tenants_are_routed_through_the_table_too():
    p = Placement(64, 2)
    moved = p.partition("acme")
    assert p.tenant_shard("acme") == moved % 2
    p.table[moved] = 1 - p.table[moved]
    assert p.tenant_shard("acme") == 1 - moved % 2


@pytest.fixture
async def runtime(db_url: str, tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    db = Database(db_url)
    await db.migrate()
    await tenants.ensure_tenant(db, "acme")
    await db.dispose()
    rt = LocalRuntime(Settings(data_dir=tmp_path / "pulse", database_url=db_url, partitions=64,
                               device_shards=2, tenant_shards=2))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def ingest(runtime: LocalRuntime, device: str, at_s: int, **metrics: float) -> int:
    body = json.dumps({"ts": (NOW_MS + at_s * 1000) / 1000, "metrics": metrics}).encode()
    result = await runtime.ingest([(f"tenant/acme/device/{device}/telemetry", body)], NOW_MS + 60_000, Limits())
    return result.accepted


def hosted(runtime: LocalRuntime, device: str) -> list[int]:
    """The device shards that have this device's actor in memory."""
    return [i for i, shard in enumerate(runtime.device_refs) if ("acme", device) in shard.actors]


async def test_moving_a_partition_moves_only_its_devices_with_their_state(runtime):
    p = runtime.devices
    before = {f"d{i}": p.device_shard("acme", f"d{i}") for i in range(500)}
    moved, source = p.partition(("acme", "d0")), before["d0"]
    # a neighbour on the same shard, in another partition: it must stay where it is
    neighbour = next(d for d in before if before[d] == source and p.partition(("acme", d)) != moved)
    db = Database(runtime.settings.db_url)
    for d in ("d0", neighbour):
        await devices.create(db, "acme", {"device_id": d})
    await db.dispose()
    assert await ingest(runtime, "d0", 0, temp=20.0) == await ingest(runtime, neighbour, 0, temp=5.0) == 1
    assert hosted(runtime, "d0") == hosted(runtime, neighbour) == [source]

    assert await runtime.move_partition("device", moved, 1 - source) == 1
    changed = [d for d in before if p.device_shard("acme", d) != before[d]]
    assert "d0" in changed
    assert all(partition_of(f"acme/{d}", 64) == moved for d in changed)
    assert hosted(runtime, "d0") == [] and hosted(runtime, neighbour) == [source]

    # the next message goes to the other shard, which activates d0 from the state the old one persisted
    assert await ingest(runtime, "d0", 1, hum=50.0) == 1
    assert hosted(runtime, "d0") == [1 - source]
    latest = await runtime.device_call("acme", "d0", "latest_view")
    assert (latest["temp"]["value"], latest["hum"]["value"]) == (20.0, 50.0)


async def test_moving_a_tenant_partition_moves_its_open_alerts(runtime):
    def opened() -> AlertEvent:
        return AlertEvent("open", "acme", "d1", "r1", "too hot", 4, "temp", 35.0, NOW_MS)

    source, moved = runtime.tenants.tenant_shard("acme"), runtime.tenants.partition("acme")
    db = Database(runtime.settings.db_url)
    await devices.create(db, "acme", {"device_id": "d1"})
    await db.dispose()
    assert await runtime.tenant_events([opened()]) == 1
    assert "acme" in runtime.tenant_refs[source].actors

    assert await runtime.move_partition("tenant", moved, 1 - source) == 1
    assert runtime.tenants.tenant_shard("acme") == 1 - source
    assert "acme" not in runtime.tenant_refs[source].actors
    # the new tenant actor loads the open alert: the same event re-triggers it, no second alert
    assert await runtime.tenant_events([opened()]) == 0
    assert "acme" in runtime.tenant_refs[1 - source].actors


async def test_moving_to_the_same_shard_or_nowhere(runtime):
    p = runtime.devices.partition(("acme", "d0"))
    assert await runtime.move_partition("device", p, runtime.devices.table[p]) == 0
    for args in (("device", 64, 0), ("device", p, 2), ("lake", p, 0)):
        with pytest.raises(ValueError):
            await runtime.move_partition(*args)
