"""ActorHost, DeviceShard and TenantShard on a real store, no Ray: one activation per identity,
write-behind in batched transactions, passivation of idle actors, and clean retries after a
failed activation or a failed alert create."""
from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from pulse.actors.host import INLINE_BYTES, DeviceShard, TenantShard, pack_raw
from pulse.actors.lake_writer import LakeWriter
from pulse.domain.envelope import Limits
from pulse.domain.messages import AlertEvent, Telemetry
from pulse.errors import NotFound
from pulse.storage import alerts as alert_store
from pulse.storage import device_state, devices, modules, tenants
from pulse.storage import rules as rule_store
from pulse.storage.db import Database
from pulse.storage.lake.wal import read_wal
from pulse.storage.tables import alerts, device_sensors
from pulse.storage.tables import device_state as device_state_table

T0 = 1_772_000_000_000  # ms


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate()
    await tenants.ensure_tenant(db, "acme")
    for d in ("d1", "d2", "d3"):
        await devices.create(db, "acme", {"device_id": d})
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def shards(db: Database) -> AsyncIterator[Callable[..., DeviceShard | TenantShard]]:
    """Shards on the test store, stopped (which persists them) at the end."""
    made: list[DeviceShard | TenantShard] = []

    def make(cls: type = DeviceShard, **kw) -> DeviceShard | TenantShard:
        shard = cls(0, db.url, **kw)
        made.append(shard)
        return shard

    yield make
    for shard in made:
        await shard.stop()


def temp(device: str, value: float, at_s: int = 0) -> Telemetry:
    return Telemetry("acme", device, T0 + at_s * 1000, {"temp": value})


def opened(device: str = "d1", rule_id: str = "r1") -> AlertEvent:
    return AlertEvent("open", "acme", device, rule_id, "too hot", 4, "temp", 35.0, T0)


async def stored_state(db: Database) -> dict[str, dict]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(device_state_table.c.device_id, device_state_table.c.state))
        return {r.device_id: r.state for r in rows}


async def written(db: Database, device_id: str) -> dict:
    """The device's stored state once write-behind has written it (waits up to 5 s)."""
    for _ in range(250):
        state = await stored_state(db)
        if device_id in state:
            return state[device_id]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{device_id} was not written within 5 s")


async def stored_alerts(db: Database) -> list[str]:
    async with db.connect() as conn:
        return [r.fingerprint for r in await conn.execute(sa.select(alerts.c.fingerprint))]


async def stored_sensors(db: Database) -> dict[tuple[str, str], tuple]:
    s = device_sensors.c
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(s.device_id, s.metric_key, s.last_value, s.last_seen_at))
        return {(r.device_id, r.metric_key): (r.last_value, r.last_seen_at and int(r.last_seen_at.timestamp() * 1000))
                for r in rows}


def spy(monkeypatch, module, name: str, before: Callable[..., Awaitable[None]] | None = None) -> list[tuple]:
    """Wrap `module.name` (the real function still runs); returns each call's arguments after the
    first (the store or connection). `before(*those)` runs first: a pause that widens a race, a failure, a message mid-write."""
    real = getattr(module, name)
    calls: list[tuple] = []

    async def wrapper(*args):
        calls.append(args[1:])
        if before is not None:
            await before(*args[1:])
        return await real(*args)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def fail_once(error: Exception) -> Callable[..., Awaitable[None]]:
    failed: list[bool] = []

    async def before(*_args) -> None:
        if not failed:
            failed.append(True)
            raise error
    return before


def commits(db: Database) -> list[int]:
    """Counts the transactions committed on this store's engine from now on."""
    seen: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda _conn: seen.append(1))
    return seen


# ---- the activation lock -------------------------------------------------------------------------
async def test_concurrent_first_messages_activate_a_device_once(monkeypatch, shards):
    loads = spy(monkeypatch, device_state, "load_many", lambda *_: asyncio.sleep(0.05))
    shard = shards()
    results = await asyncio.gather(*(shard.handle_batch([temp("d1", v, at_s=v)]) for v in range(5)),
                                   shard.call("acme", "d1", "latest_view"))
    assert sum(len(r.accepted) for r in results[:5]) == 5
    assert sum(("acme", "d1") in keys for (keys,) in loads) == 1
    assert (await shard.call("acme", "d1", "latest_view"))["temp"]["value"] == 4.0  # every message reached it


async def test_a_call_to_many_devices_activates_the_missing_ones_in_one_load(monkeypatch, shards):
    shard = shards()
    await shard.handle_batch([temp("d1", 20.0), temp("d2", 7.0, at_s=5)])
    await shard.release([("acme", "d2")])  # passivated: the call must bring it back with its state
    loads = spy(monkeypatch, device_state, "load_many")
    answers = await shard.call_many("acme", ["d1", "d2", "d3", "nope"], "latest_view")
    assert [sorted(keys) for (keys,) in loads] == [[("acme", "d2"), ("acme", "d3"), ("acme", "nope")]]
    assert answers == {"d1": {"temp": {"value": 20.0, "ts_ms": T0}}, "d2": {"temp": {"value": 7.0, "ts_ms": T0 + 5000}},
                       "d3": {}}  # an unknown device is left out


async def test_concurrent_first_events_activate_a_tenant_once(monkeypatch, db, shards):
    loads = spy(monkeypatch, alert_store, "load_open", lambda *_: asyncio.sleep(0.05))
    shard = shards(TenantShard)
    notices = await asyncio.gather(*(shard.handle_events([opened()]) for _ in range(3)))
    assert len(loads) == 1
    # two tenant actors would each have created the alert; one actor de-duplicates it
    assert [n[2] for ns in notices for n in ns] == ["OPEN"]
    assert len(await stored_alerts(db)) == 1


# ---- write-behind ----------------------------------------------------------------------------------
async def test_dirty_actors_are_written_in_one_transaction_and_a_restart_sees_them(db, shards):
    shard = shards()
    await shard.handle_batch([temp(d, 20.0 + i) for i, d in enumerate(["d1", "d2", "d3"])])
    assert await stored_state(db) == {}  # not written through
    seen = commits(shard.db)
    assert await shard.persist() == 3
    assert len(seen) == 1
    assert set(await stored_state(db)) == {"d1", "d2", "d3"}
    assert await shard.persist() == 0  # clean now
    await shard.stop()

    restarted = shards()
    assert (await restarted.call("acme", "d2", "latest_view"))["temp"] == {"value": 21.0, "ts_ms": T0}


async def test_the_snapshot_interval_persists_without_being_asked(db, shards):
    shard = shards(snapshot_interval_s=0.05)
    await shard.start()
    await shard.handle_batch([temp("d1", 25.0)])
    assert (await written(db, "d1"))["latest"]["temp"][0] == 25.0
    assert not shard.actors[("acme", "d1")].dirty


async def test_a_shard_ray_restarted_snapshots_without_being_started(db, shards):
    """Ray's restart of a crashed shard runs only __init__; its first message starts write-behind."""
    shard = shards(snapshot_interval_s=0.05)  # no start()
    await shard.handle_batch([temp("d1", 26.0)])
    assert (await written(db, "d1"))["latest"]["temp"][0] == 26.0


async def test_a_change_made_while_a_snapshot_is_written_is_not_lost(monkeypatch, db, shards):
    shard = shards()
    await shard.handle_batch([temp("d1", 20.0)])

    async def message_meanwhile(*_args) -> None:
        if len(writes) == 1:
            await shard.handle_batch([temp("d1", 30.0, at_s=1)])

    writes = spy(monkeypatch, device_state, "save_many", message_meanwhile)
    assert await shard.persist() == 1
    assert shard.actors[("acme", "d1")].dirty  # the second value still has to be written
    assert await shard.persist() == 1
    assert (await stored_state(db))["d1"]["latest"]["temp"][0] == 30.0


async def test_a_failed_write_keeps_the_actors_dirty(monkeypatch, db, shards):
    shard = shards()
    await shard.handle_batch([temp("d1", 20.0)])
    spy(monkeypatch, device_state, "save_many", fail_once(ConnectionError("store down")))
    with pytest.raises(ConnectionError):
        await shard.persist()
    assert await shard.persist() == 1
    assert "d1" in await stored_state(db)
    assert (await stored_sensors(db))[("d1", "temp")] == (20.0, T0)  # the sensors' last values too


async def test_sensor_last_values_are_written_behind_with_the_snapshots(db, shards):
    shard = shards()
    await shard.handle_batch([temp("d1", 20.0), temp("d2", 30.0, at_s=5), temp("d1", 21.0, at_s=10)])
    assert await stored_sensors(db) == {("d1", "temp"): (None, None), ("d2", "temp"): (None, None)}  # not per message
    seen = commits(shard.db)
    await shard.persist()
    assert len(seen) == 1
    assert await stored_sensors(db) == {("d1", "temp"): (21.0, T0 + 10_000), ("d2", "temp"): (30.0, T0 + 5000)}
    await shard.handle_batch([temp("d1", 99.0, at_s=1)])  # older than what it has: no change
    await shard.persist()
    assert (await stored_sensors(db))[("d1", "temp")] == (21.0, T0 + 10_000)


# ---- module key maps -------------------------------------------------------------------------------
async def test_module_key_maps_rename_firmware_keys_at_ingest_and_follow_module_changes(monkeypatch, db, shards):
    await modules.create(db, "acme", "d1", {"slot_key": "rs485", "metric_key_map": {"t": "temp"}})
    loads = spy(monkeypatch, modules, "metric_key_maps")
    shard = shards()
    raw = Telemetry("acme", "d1", T0, {"t": 20.0})
    res = await shard.handle_batch([raw, Telemetry("acme", "d2", T0, {"t": 5.0})])
    assert [m.metrics for m in res.accepted] == [{"temp": 20.0}, {"t": 5.0}]  # what the lake gets
    assert len(loads) == 1  # one query for the activation batch
    assert set(await shard.call("acme", "d1", "latest_view")) == {"temp"}
    assert set(await stored_sensors(db)) == {("d1", "temp"), ("d2", "t")}
    module = (await modules.list_modules(db, "acme", "d1"))[0][0]
    await modules.update(db, "acme", "d1", module["id"], {"status": "inactive"})
    await shard.modules_changed("acme", "d1")
    res = await shard.handle_batch([Telemetry("acme", "d1", T0 + 1000, {"t": 21.0})])
    assert res.accepted[0].metrics == {"t": 21.0}


# ---- passivation -----------------------------------------------------------------------------------
async def test_idle_actors_are_persisted_then_evicted_and_come_back_with_their_state(monkeypatch, db, shards):
    shard = shards(passivate_after_s=0.5)
    await shard.handle_batch([temp("d1", 20.0), temp("d2", 21.0)])
    await asyncio.sleep(0.6)
    await shard.handle_batch([temp("d2", 22.0, at_s=1)])  # d2 is busy
    assert await shard.passivate_idle() == 1
    assert set(shard.actors) == {("acme", "d2")}
    assert (await stored_state(db))["d1"]["latest"]["temp"][0] == 20.0

    loads = spy(monkeypatch, device_state, "load_many")
    assert (await shard.call("acme", "d1", "latest_view"))["temp"]["value"] == 20.0
    assert loads == [([("acme", "d1")],)]


async def test_the_maintenance_loop_passivates(db, shards):
    shard = shards(snapshot_interval_s=0.05, passivate_after_s=0.1)
    await shard.start()
    await shard.handle_batch([temp("d1", 20.0)])
    for _ in range(250):
        if not shard.actors:
            break
        await asyncio.sleep(0.02)
    assert shard.actors == {} and shard.status == {}
    assert (await stored_state(db))["d1"]["latest"]["temp"][0] == 20.0


async def test_an_actor_used_while_it_is_being_passivated_stays(monkeypatch, db, shards):
    shard = shards(passivate_after_s=0.1)
    await shard.handle_batch([temp("d1", 20.0)])
    await asyncio.sleep(0.2)

    async def message_meanwhile(*_args) -> None:
        await shard.handle_batch([temp("d1", 30.0, at_s=1)])

    spy(monkeypatch, device_state, "save_many", message_meanwhile)
    assert await shard.passivate_idle() == 0
    assert (await shard.call("acme", "d1", "latest_view"))["temp"]["value"] == 30.0
    monkeypatch.undo()
    assert await shard.persist() == 1
    assert (await stored_state(db))["d1"]["latest"]["temp"][0] == 30.0


async def test_actors_that_never_accepted_a_message_are_passivated_too(db, shards):
    await devices.update(db, "acme", "d3", {"status": "REVOKED"})
    shard = shards(passivate_after_s=0.1)
    res = await shard.handle_batch([temp("d3", 20.0)])
    assert [r.reason for r in res.rejections] == ["DEVICE_REVOKED"]
    await shard.tick([("acme", "d2")], T0)  # timers activate d2 without a message
    assert set(shard.actors) == {("acme", "d2"), ("acme", "d3")}
    await asyncio.sleep(0.2)
    assert await shard.passivate_idle() == 2
    assert shard.actors == {} and shard.status == {}


# ---- failed activation and failed create -----------------------------------------------------------
async def test_a_failed_state_load_leaves_nothing_behind_and_the_next_message_retries(monkeypatch, shards):
    shard = shards()
    loads = spy(monkeypatch, device_state, "load_many", fail_once(ConnectionError("store down")))
    with pytest.raises(ConnectionError):
        await shard.handle_batch([temp("d1", 20.0)])
    assert shard.actors == {} and shard.status == {} and shard.last_used == {}
    res = await shard.handle_batch([temp("d1", 21.0, at_s=1)])
    assert len(res.accepted) == 1 and len(loads) == 2


async def test_a_failed_rule_load_leaves_nothing_behind_and_the_next_message_retries(monkeypatch, db, shards):
    await rule_store.create(db, "acme", {"name": "too hot", "metric": "temp", "operator": "GT", "threshold": 30,
                                         "severity": 4})
    shard = shards()
    spy(monkeypatch, rule_store, "load_active", fail_once(ConnectionError("store down")))
    with pytest.raises(ConnectionError):
        await shard.handle_batch([temp("d1", 35.0)])
    assert shard.actors == {} and shard.rules == {}
    res = await shard.handle_batch([temp("d1", 35.0, at_s=1)])
    # an actor registered without its tenant's rules would accept this and never alert
    assert len(res.accepted) == 1 and [e.kind for e in res.alert_events] == ["open"]


async def test_a_failed_tenant_activation_leaves_nothing_behind(monkeypatch, db, shards):
    shard = shards(TenantShard)
    spy(monkeypatch, alert_store, "load_open", fail_once(ConnectionError("store down")))
    with pytest.raises(ConnectionError):
        await shard.handle_events([opened()])
    assert shard.actors == {}
    assert [n[2] for n in await shard.handle_events([opened()])] == ["OPEN"]
    assert len(await stored_alerts(db)) == 1


async def test_a_failed_alert_create_is_rolled_back_and_the_next_event_creates_it(monkeypatch, db, shards):
    shard = shards(TenantShard)
    spy(monkeypatch, alert_store, "create", fail_once(ConnectionError("store down")))
    with pytest.raises(ConnectionError):
        await shard.handle_events([opened()])
    assert await stored_alerts(db) == []
    assert shard.actors["acme"].creating == set()  # not stuck "in flight": that would swallow every retry
    assert [n[2] for n in await shard.handle_events([opened()])] == ["OPEN"]
    assert len(await stored_alerts(db)) == 1


# ---- raw batches -----------------------------------------------------------------------------------
async def test_a_large_raw_batch_crosses_in_inline_sized_parts_and_is_handled_in_order(shards, tmp_path):
    raw = [(f"tenant/acme/device/d{1 + i % 3}/telemetry",
            json.dumps({"ts": (T0 + i) / 1000, "seq": i, "metrics": {f"metric_{k}": i for k in range(10)}}).encode())
           for i in range(1500)]
    parts = pack_raw(raw)
    assert len(parts) > 1 and all(len(p) <= INLINE_BYTES for p in parts)
    assert [m for p in parts for m in pickle.loads(p)] == raw
    shard = shards(lake=LakeWriter(str(tmp_path / "lake"), str(tmp_path / "wal")))
    result = await shard.handle_raw(T0 + 60_000, Limits(), *parts)
    assert result.accepted == 1500 and result.rows == 15_000 and not result.rejections
    # durable in the shard's own WAL on return, in arrival order
    assert pa.concat_tables(read_wal(tmp_path / "wal")).column("seq").to_pylist()[::10] == list(range(1500))
    assert (await shard.lake_pending("acme")).num_rows == 15_000


async def test_a_shard_without_a_lake_refuses_raw_telemetry(shards):
    with pytest.raises(RuntimeError, match="no lake"):
        await shards().handle_raw(T0, Limits(), *pack_raw([("tenant/acme/device/d1/telemetry", b"{}")]))


# ---- guests ------------------------------------------------------------------------------------
class FakeIntake:
    """A guest that records what the shard asks of it (the real one is the ingest bridge)."""

    def __init__(self, shard: DeviceShard) -> None:
        self.shard, self.starts, self.stopped = shard, 0, False

    async def start(self) -> bool:
        self.starts += 1
        return True

    async def stop(self) -> None:
        self.stopped = True

    async def stats(self) -> dict:
        return {"starts": self.starts, "shard": self.shard.shard_id}


async def test_a_guest_is_built_once_restarted_on_each_host_call_and_stopped_with_the_shard(shards):
    shard = shards()
    built: list[FakeIntake] = []

    def make(s: DeviceShard) -> FakeIntake:
        built.append(FakeIntake(s))
        return built[-1]

    assert await shard.host("intake", make) == {"starts": 1, "shard": 0}
    assert await shard.host("intake", make) == {"starts": 2, "shard": 0}  # a supervisor's periodic call
    assert len(built) == 1 and built[0].shard is shard
    assert await shard.guest_call("intake", "stats") == {"starts": 2, "shard": 0}
    with pytest.raises(NotFound):
        await shard.guest_call("other", "stats")
    await shard.stop()
    assert built[0].stopped and not shard.guests


async def test_an_unhosted_guest_is_stopped_and_the_next_host_call_builds_a_new_one(shards):
    shard = shards()
    built: list[FakeIntake] = []
    await shard.host("intake", lambda s: built.append(FakeIntake(s)) or built[-1])
    await shard.unhost("intake")
    assert built[0].stopped and not shard.guests
    await shard.host("intake", lambda s: built.append(FakeIntake(s)) or built[-1])
    assert len(built) == 2 and not built[1].stopped


async def test_items_handled_in_process_match_the_same_batch_crossing_as_pickles(shards, tmp_path):
    raw = [(f"tenant/acme/device/d{1 + i % 3}/telemetry", json.dumps({"ts": (T0 + i) / 1000, "seq": i,
                                                                      "metrics": {"t": i}}).encode())
           for i in range(30)] + [("tenant/acme/device/d1/telemetry", b"not json")]
    local = shards(lake=LakeWriter(str(tmp_path / "l1"), str(tmp_path / "w1")))
    crossed = shards(lake=LakeWriter(str(tmp_path / "l2"), str(tmp_path / "w2")))
    a = await local.handle_items(T0 + 60_000, Limits(), raw)
    b = await crossed.handle_raw(T0 + 60_000, Limits(), *pack_raw(raw))
    assert (a.accepted, a.rows, [r.reason for r in a.rejections]) == (b.accepted, b.rows, [r.reason for r in b.rejections])
    assert a.accepted == 30 and len(a.rejections) == 1
