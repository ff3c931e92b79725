"""Shards that host many virtual actors: placement-agnostic activation, write-behind, passivation.

`DeviceShard` and `TenantShard` are plain async classes. `LocalRuntime` uses them in-process;
`RayRuntime` runs each as a named Ray actor. They never import Ray.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import pickle
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, Protocol, TypeVar

from pulse.actors import metrics
from pulse.actors.lake_writer import LakeWriter
from pulse.actors.lane import Address, LaneServer
from pulse.config.settings import Settings
from pulse.domain.device import DeviceActor, presence_status
from pulse.domain.live import Event, Watch, alert_event, status_event, telemetry_event
from pulse.domain.envelope import Limits, decode
from pulse.domain.messages import (AlertEvent, CommandStatus, DeviceMessage, FieldReport, JobUpdate, Listening,
                                   MetricsDiscovered, OtaStatus, Publish, Rejection, Telemetry)
from pulse.domain.rules import Rule
from pulse.domain.tenant import AlertOp, CreateAlert, RetriggerAlert, TenantActor
from pulse.errors import Invalid, NotFound
from pulse.services import field_ops
from pulse.storage import alerts as alert_store
from pulse.storage import commands as command_store
from pulse.storage import escalation as escalation_store
from pulse.storage import device_state
from pulse.storage import modules as module_store
from pulse.storage import rules as rule_store
from pulse.storage import sensors as sensor_store
from pulse.storage.db import Database, utcnow
from pulse.storage.lake.rows import telemetry_table

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)
Notice = tuple[str, int, str]  # (tenant, alert id, OPEN | ACKNOWLEDGED | CLOSED) for the notifier
A = TypeVar("A")


class ActorTable(dict):
    """A shard's per-actor table (up to ~10^6 entries). A plain dict whose entries hold no object the
    collector tracks (status strings, last-use floats, tuple keys once untracked) is untracked by each
    full collection and tracked again by the next insert, which puts it in the youngest generation,
    where the next collections walk all its entries (~100 ms per full collection at 10^6 actors,
    bench_memory.py). A dict subclass is never untracked, so `gc.freeze()` takes it out of the
    collector for good."""

    __slots__ = ()


class ActorHost(Generic[K, A]):
    """Activation table of one shard: key -> live actor, with last-use times for passivation."""

    # what callers may ask over the shard's socket lane rather than as Ray calls (pulse.actors.lane)
    lane_methods: frozenset[str] = frozenset()

    def __init__(self, db_url: str, snapshot_interval_s: float, passivate_after_s: float) -> None:
        self.db = Database(db_url)
        self.actors: dict[K, A] = ActorTable()
        self.last_used: dict[K, float] = ActorTable()
        self.snapshot_interval_s = snapshot_interval_s
        self.passivate_after_s = passivate_after_s
        self._activation = asyncio.Lock()
        self._loop_task: asyncio.Task | None = None
        self._stopped = False
        self.lane: LaneServer | None = None

    async def lane_address(self) -> Address:
        """Where and with which token to reach this shard's lane, opened on first ask."""
        if self.lane is None:
            self.lane = LaneServer(self, self.lane_methods)
        return await self.lane.address()

    @property
    def lane_requests(self) -> int:
        return self.lane.served if self.lane is not None else 0

    async def start(self) -> bool:
        self._keep_running()
        return True

    def _keep_running(self) -> None:
        """Start the write-behind loop unless it runs (or the shard was stopped). Activation calls it
        too: a shard Ray restarted after a crash has only run `__init__`, and nobody calls `start`
        again, yet it must snapshot and passivate like before."""
        if self._loop_task is None and not self._stopped:
            self._loop_task = asyncio.create_task(self._maintenance_loop())

    async def stop(self) -> None:
        self._stopped = True
        if self.lane is not None:
            await self.lane.stop()
        if self._loop_task:
            self._loop_task.cancel()
            # wait for it: a snapshot it was writing must not overlap the final one below
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await self.persist()
        await self.db.dispose()

    async def ready(self) -> bool:
        return True

    def touch(self, key: K) -> None:
        self.last_used[key] = time.monotonic()

    async def persist(self) -> int:
        """Write-behind: snapshot every dirty actor in one transaction. Overridden per kind."""
        return 0

    def report(self) -> None:
        """Publish gauges (Ray dashboard); overridden per kind."""

    async def passivate_idle(self) -> int:
        """Persist, then drop the actors idle longer than `passivate_after_s`.

        An actor used or changed while the snapshot was being written stays: it is busy again, and
        its change is not in the store yet."""
        cutoff = time.monotonic() - self.passivate_after_s
        if not any(t < cutoff for t in self.last_used.values()):
            return 0
        await self.persist()
        # under the lock: an activation in progress counts on the actors it found in memory
        async with self._activation:
            idle = [k for k, t in self.last_used.items() if t < cutoff and not self._unsaved(k)]
            for k in idle:
                self._evict(k)
        return len(idle)

    async def active_keys(self) -> list[K]:
        return list(self.actors)

    async def release(self, keys: list[K]) -> int:
        """Persist and evict these actors now, busy or not: their partition moves to another shard.

        The caller routes no traffic to them meanwhile; should a message still slip in during the
        write, the changed actors are written again before they go."""
        left = [k for k in keys if k in self.actors]
        released = len(left)
        while left:
            await self.persist()
            async with self._activation:
                for k in [k for k in left if not self._unsaved(k)]:
                    self._evict(k)
                left = [k for k in left if k in self.actors]
        return released

    def _unsaved(self, key: K) -> bool:
        """True while the actor has changes the store has not (kinds with write-behind say so)."""
        return False

    def _evict(self, key: K) -> None:
        self.actors.pop(key, None)
        self.last_used.pop(key, None)

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_interval_s)
            try:
                await self.persist()
                await self.passivate_idle()
                self.report()
            except Exception:  # keep the shard alive; the next tick retries the dirty set
                log.exception("shard maintenance failed")


@dataclass
class BatchResult:
    accepted: list[DeviceMessage] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    alert_events: list[AlertEvent] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)
    command_updates: list[tuple[str, str, CommandStatus]] = field(default_factory=list)
    # last_seen_ms before the batch of each device whose tenant's status changes are watched
    seen_before: dict[tuple[str, str], int | None] = field(default_factory=dict)
    discovered: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    field_reports: list[FieldReport] = field(default_factory=list)
    listening: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ShardResult:
    """What a shard returns for raw messages: counts and effects. The rows are in its lake's WAL
    by then (durable): they never leave the shard's process."""
    accepted: int = 0
    rows: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    alert_events: list[AlertEvent] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)
    live: list[Event] = field(default_factory=list)  # for watched devices only; published once persisted


# Ray passes an argument up to 100 KB (its max_direct_call_object_size) inline in the call; a
# bigger one goes through its shared-memory store, which costs the raylet ~1.5 ms per object.
INLINE_BYTES = 90_000
PICKLE_BYTES_PER_ITEM = 16  # a (topic, payload) pair's framing in a pickle, rounded up (ASCII topics)


def pack_raw(items: list[tuple[str, bytes]]) -> list[bytes]:
    """A batch of raw `(topic, payload)` messages as pickles of at most `INLINE_BYTES` each (unless
    one message is bigger), how it crosses to a shard: one argument each, so each stays inline.
    The parts are sized from the messages' lengths, so each message is pickled once.

    Ray serializes a list element by element: ~2.8 us per message across the two processes on the
    2-core node, against ~0.6 us for one pickle of the list (bench_ingest.py's per-message CPU)."""
    cuts, size = [0], 0
    for i, (topic, payload) in enumerate(items):
        n = len(topic) + len(payload) + PICKLE_BYTES_PER_ITEM
        if size + n > INLINE_BYTES and i > cuts[-1]:
            cuts.append(i)
            size = 0
        size += n
    cuts.append(len(items))
    return [pickle.dumps(items[a:b], protocol=pickle.HIGHEST_PROTOCOL) for a, b in zip(cuts, cuts[1:])]


class Guest(Protocol):
    """A service a device shard runs in its own process and event loop (`DeviceShard.host`): the
    node's MQTT intake, whose calls to that shard then skip Ray (`pulse.actors.ingest`)."""

    async def start(self) -> bool: ...

    async def stop(self) -> None: ...

    async def stats(self) -> dict[str, Any]: ...


class LiveSink:
    """Where a shard publishes live events it produces outside ingest (timers, alert changes): the
    node's LiveHub, in-process or behind a Ray handle (`pulse.actors.runtime` gives the shard one)."""

    async def publish(self, events: list[Event]) -> int: ...


async def _publish(live: LiveSink | None, events: list[Event]) -> None:
    """Live push is best effort: a hub being restarted must not fail a timer or an alert write."""
    if not events or live is None:
        return
    try:
        await live.publish(events)
    except Exception:
        log.exception("live hub unreachable; %d live events not pushed", len(events))


def _collect(out: BatchResult, tenant_id: str, device_id: str, effect: Any) -> None:
    if isinstance(effect, AlertEvent):
        out.alert_events.append(effect)
    elif isinstance(effect, Publish):
        out.publishes.append(effect)
    elif isinstance(effect, CommandStatus):
        out.command_updates.append((tenant_id, device_id, effect))
    elif isinstance(effect, MetricsDiscovered):
        out.discovered.setdefault((tenant_id, device_id), set()).update(effect.keys)
    elif isinstance(effect, (OtaStatus, JobUpdate)):
        out.field_reports.append(effect)
    elif isinstance(effect, Listening):
        out.listening.append((tenant_id, device_id))


def _invoke(actor: DeviceActor, method: str, args: tuple[Any, ...]) -> Any:
    """An API request on a device actor; its ValueError (a bad request) is the client's error."""
    try:
        return getattr(actor, method)(*args)
    except ValueError as e:
        raise Invalid(str(e)) from None


class DeviceShard(ActorHost[tuple[str, str], DeviceActor]):
    lane_methods = frozenset({"call", "call_many", "device_changed", "modules_changed", "rules_changed", "tick",
                              "lake_pending", "lake_flush", "handle_raw"})
    freeze_every = 5_000  # activations between two gc.freeze() (see _settle); 0: never freeze

    def __init__(self, shard_id: int, db_url: str, snapshot_interval_s: float = 1.0,
                 passivate_after_s: float = 600.0, settings: Settings | None = None,
                 live: LiveSink | None = None, lake: LakeWriter | None = None, own_process: bool = False) -> None:
        super().__init__(db_url, snapshot_interval_s, passivate_after_s)
        self.shard_id = shard_id
        self.own_process = own_process  # a Ray actor: the process is the shard's alone
        # telemetry the shard accepts is made durable here, in its own WAL (None: this shard
        # handles no raw telemetry, e.g. a benchmark driving `handle_batch`)
        self.lake = lake
        # field operations sign links in what they send (OTA instructions): the node's settings
        self.settings = settings if settings is not None else Settings(database_url=db_url)
        self.status: dict[tuple[str, str], str] = ActorTable()
        # live push: what some client watches (set by the hub), and the presence status last pushed
        # per watched device, so a timer sweep pushes changes only
        self.live = live
        self.watch = Watch()
        self.live_status: dict[tuple[str, str], str] = ActorTable()
        self.rules: dict[str, list[Rule]] = {}
        self.messages_handled = 0
        self._unfrozen = 0  # actors activated since the last gc.freeze (see _settle)
        self.guests: dict[str, Guest] = {}

    async def _activate(self, keys: set[tuple[str, str]]) -> None:
        """Bring the devices not in memory into it, from their snapshots.

        One activation at a time (the lock): concurrent first messages to a device load it once.
        Everything (snapshots, the tenants' rules) is loaded before anything is registered, so a
        failed load leaves no actor half-activated (e.g. without its rules) and the next message
        simply retries."""
        self._keep_running()
        if all(k in self.actors for k in keys):
            return
        async with self._activation:
            missing = [k for k in keys if k not in self.actors]
            loaded = await device_state.load_many(self.db, missing)
            key_maps = await module_store.metric_key_maps(self.db, list(loaded))
            rules = {t: await rule_store.load_active(self.db, t) for t in {t for t, _ in loaded} - self.rules.keys()}
            for tenant, tenant_rules in rules.items():
                self.rules.setdefault(tenant, tenant_rules)
            now = time.monotonic()
            for key, (status, snap) in loaded.items():
                self._register(DeviceActor(key[0], key[1], snap, key_maps.get(key)), status, now)
            self._settle(len(loaded))

    def _register(self, actor: DeviceActor, status: str, now: float) -> None:
        """An activated actor into the shard's tables under one key tuple of the actor's own strings
        (its tenant id interned), with the status string interned: not three copies of a row's
        strings per device (bench_memory.py)."""
        key = (actor.tenant_id, actor.device_id)
        self.actors[key] = actor
        self.status[key] = sys.intern(status)
        # activated counts as used: a revoked or only-ticked device is passivated in time too
        self.last_used[key] = now

    def _settle(self, activated: int) -> None:
        """After every `freeze_every` activations: collect garbage, then move every live object out of
        the collector's generations (gc.freeze). Activated actors live for many minutes; left in the
        oldest generation, 10^6 of them make each full collection stop the shard for ~2 s, while a
        frozen object is never walked again (its memory is still freed by reference counting when its
        actor is passivated). The collect first keeps garbage cycles out of the frozen set; it walks
        only what was not frozen before, so it stays short (bench_memory.py measures both)."""
        self._unfrozen += activated
        if self.freeze_every and self._unfrozen >= self.freeze_every:
            self._unfrozen = 0
            gc.collect()
            gc.freeze()

    async def start(self) -> bool:
        if self.lake is not None:
            await self.lake.start()
        started = await super().start()
        if self.own_process:
            # What the process holds once started (Ray, pyarrow, SQLAlchemy, the settings) lives as
            # long as it does: out of the collector, so a full collection does not walk it
            # (bench_ingest.py saw one of 121 ms in a shard that had activated too few actors to
            # freeze them, see `_settle`). Not in a shared process: its objects would never be
            # collected once they are garbage cycles.
            gc.collect()
            gc.freeze()
        return started

    async def stop(self) -> None:
        try:
            # the guests first: an intake stops feeding batches before the last snapshot
            guests, self.guests = self.guests, {}
            await asyncio.gather(*(g.stop() for g in guests.values()), return_exceptions=True)
            await super().stop()
        finally:
            if self.lake is not None:
                await self.lake.stop()

    async def host(self, name: str, make: Callable[["DeviceShard"], Guest]) -> dict[str, Any]:
        """Run guest `name` (built by `make(self)` the first time) in this shard's process and loop,
        and (re)start it; -> its stats. Idempotent, so a supervisor calls it periodically: a shard
        Ray restarted after a crash has only run `__init__`, and gets its guest back this way."""
        if name not in self.guests:
            self.guests[name] = make(self)
        guest = self.guests[name]
        await guest.start()
        return await guest.stats()

    async def unhost(self, name: str) -> None:
        guest = self.guests.pop(name, None)
        if guest is not None:
            await guest.stop()

    async def guest_call(self, name: str, method: str, *args: Any) -> Any:
        """A method of a running guest (`host`), e.g. its `stats`, called from another process."""
        if name not in self.guests:
            raise NotFound(f"device shard {self.shard_id} hosts no {name}")
        return await getattr(self.guests[name], method)(*args)

    async def handle_raw(self, now_ms: int, limits: Limits, *packed: bytes) -> ShardResult:
        """`handle_items` for a batch that crossed from another process (`pack_raw`)."""
        return await self.handle_items(now_ms, limits, [item for part in packed for item in pickle.loads(part)])

    async def handle_items(self, now_ms: int, limits: Limits, items: list[tuple[str, bytes]]) -> ShardResult:
        """Decode and validate raw MQTT/HTTP `(topic, payload)` messages (in order) here, in the shard,
        handle them, and append their telemetry rows to the shard's lake WAL. On return the batch is
        durable: the caller may acknowledge it."""
        if self.lake is None:
            raise RuntimeError(f"device shard {self.shard_id} has no lake to write telemetry to")
        msgs: list[DeviceMessage] = []
        rejections: list[Rejection] = []
        for topic, payload in items:
            ok, bad = decode(topic, payload, now_ms, limits)
            msgs.extend(ok)
            rejections.extend(bad)
        res = await self.handle_batch(msgs)
        telemetry = [m for m in res.accepted if isinstance(m, Telemetry)]
        live = self._live_events(res, telemetry, now_ms) if self.watch else []
        rows = await self.lake.append(telemetry_table(telemetry)) if telemetry else 0
        return ShardResult(len(res.accepted), rows, rejections + res.rejections, res.alert_events, res.publishes, live)

    async def lake_pending(self, tenant_id: str, device_id: str | None = None) -> Any:
        """Acknowledged rows of this shard not yet in Parquet (`LakeWriter.pending`)."""
        return await self.lake.pending(tenant_id, device_id) if self.lake is not None else None

    async def lake_flush(self) -> int:
        return await self.lake.flush() if self.lake is not None else 0

    async def set_watch(self, watch: Watch) -> None:
        """What clients watch now (from the hub); status memory of unwatched tenants is let go."""
        self.watch = watch
        if self.live_status:
            self.live_status = ActorTable((k, v) for k, v in self.live_status.items() if k[0] in watch.status)

    def _status_change(self, key: tuple[str, str], before: str | None, now_ms: int) -> Event | None:
        """A status event when the device's presence status differs from the one last pushed."""
        actor = self.actors.get(key)
        if actor is None:
            return None
        s = self.settings
        last_seen = actor.presence["last_seen_ms"]
        status = presence_status(last_seen, now_ms, s.stale_after_s, s.offline_after_s)
        previous = self.live_status.get(key, before)
        self.live_status[key] = status
        if status == previous:
            return None
        return status_event(key[0], key[1], status, previous, now_ms, last_seen)

    def _live_events(self, res: BatchResult, telemetry: list[Telemetry], now_ms: int) -> list[Event]:
        """Events for what clients watch, from a handled batch: each watched device's telemetry,
        and a status event for each device whose ONLINE/STALE/OFFLINE status the batch changed."""
        w, s = self.watch, self.settings
        events = [telemetry_event(m.tenant_id, m.device_id, m.metrics, m.ts_ms, m.seq)
                  for m in telemetry if w.wants_telemetry(m.tenant_id, m.device_id)]
        for key, seen in res.seen_before.items():
            before = presence_status(seen, now_ms, s.stale_after_s, s.offline_after_s)
            event = self._status_change(key, before, now_ms)
            if event is not None:
                events.append(event)
        return events

    async def handle_batch(self, msgs: list[DeviceMessage]) -> BatchResult:
        """Process a batch in arrival order; unknown or revoked devices' messages are rejected."""
        await self._activate({(m.tenant_id, m.device_id) for m in msgs})
        out = BatchResult()
        now = time.monotonic()
        status_watched = self.watch.status
        for m in msgs:
            key = (m.tenant_id, m.device_id)
            actor = self.actors.get(key)
            if actor is None or self.status.get(key) != "ACTIVE":
                reason = "UNREGISTERED_DEVICE" if actor is None else "DEVICE_REVOKED"
                out.rejections.append(Rejection(reason, f"tenant/{m.tenant_id}/device/{m.device_id}",
                                                m.tenant_id, m.device_id, None, m.ts_ms))
                continue
            if status_watched and m.tenant_id in status_watched and key not in out.seen_before:
                out.seen_before[key] = actor.presence["last_seen_ms"]
            actor.normalize(m)
            for effect in actor.handle(m, self.rules.get(m.tenant_id, ())):
                _collect(out, m.tenant_id, m.device_id, effect)
            out.accepted.append(m)
            self.last_used[key] = now
        self.messages_handled += len(msgs)
        if out.command_updates:  # rare (acks, reconnects): written through, not write-behind
            await command_store.apply_statuses(self.db, out.command_updates)
        if out.discovered:  # rare: first sight of a metric; one read and one write for the whole batch
            await sensor_store.discover_unmodeled_many(self.db, out.discovered)
        out.discovered = {}
        if out.field_reports or out.listening:  # rare: OTA and job progress, reconnects
            out.publishes.extend(await field_ops.handle(self.db, self.settings, out.field_reports, out.listening))
        return out

    async def tick(self, keys: list[tuple[str, str]] | None, now_ms: int,
                   heartbeat: tuple[int, int] | None = None) -> list[AlertEvent]:
        """Timers of these devices (activated if needed), or of every device in memory when `keys`
        is None: telemetry_gap rules and, with `heartbeat`, the built-in NO_HEARTBEAT alert.

        In-memory actors suffice for heartbeats: a device stays active well past the OFFLINE
        threshold (passivate_after_s >> offline_after_s), so its alert opens before it is passivated."""
        if keys is None:
            keys = list(self.actors)
        else:
            await self._activate(set(keys))
        events: list[AlertEvent] = []
        for key in keys:
            actor = self.actors.get(key)
            if actor is not None and self.status.get(key) == "ACTIVE":
                events.extend(e for e in actor.on_tick(now_ms, self.rules.get(key[0], ()), heartbeat)
                              if isinstance(e, AlertEvent))
        if self.watch.status:
            await _publish(self.live, self._status_sweep(keys, now_ms))
        return events

    def _status_sweep(self, keys: list[tuple[str, str]], now_ms: int) -> list[Event]:
        """Devices of status-watched tenants that went STALE or OFFLINE by silence (no message
        marks that moment; the timer sweep finds it)."""
        watched, s = self.watch.status, self.settings
        events: list[Event] = []
        for key in keys:
            if key[0] not in watched or self.status.get(key) != "ACTIVE" or key not in self.actors:
                continue
            if key not in self.live_status:  # first sight since the tenant is watched: no change to push
                seen = self.actors[key].presence["last_seen_ms"]
                self.live_status[key] = presence_status(seen, now_ms, s.stale_after_s, s.offline_after_s)
                continue
            event = self._status_change(key, None, now_ms)
            if event is not None:
                events.append(event)
        return events

    async def call(self, tenant_id: str, device_id: str, method: str, *args: Any) -> Any:
        """A request from the API to one device actor (latest, twin, patch_desired, ...)."""
        key = (tenant_id, device_id)
        await self._activate({key})
        actor = self.actors.get(key)
        if actor is None:
            raise NotFound(f"device {device_id} not found")
        self.touch(key)
        return _invoke(actor, method, args)

    async def call_many(self, tenant_id: str, device_ids: list[str], method: str, *args: Any) -> dict[str, Any]:
        """The same request to many device actors of a tenant at once (a dashboard's latest values of
        a fleet): the missing ones activated in one go; device id -> answer, unknown devices left out."""
        keys = [(tenant_id, d) for d in device_ids]
        await self._activate(set(keys))
        now, out = time.monotonic(), {}
        for key in keys:
            actor = self.actors.get(key)
            if actor is not None:
                self.last_used[key] = now
                out[key[1]] = _invoke(actor, method, args)
        return out

    async def device_changed(self, tenant_id: str, device_id: str, status: str | None) -> None:
        """Registry change: new status, or None when the device was deleted."""
        key = (tenant_id, device_id)
        if status is None:
            self._evict(key)
        elif key in self.actors:
            self.status[key] = status

    async def modules_changed(self, tenant_id: str, device_id: str) -> None:
        """A module was installed, changed or removed: reload the device's key map if it is in memory."""
        key = (tenant_id, device_id)
        if key in self.actors:
            key_map = await module_store.metric_key_map(self.db, tenant_id, device_id)
            actor = self.actors.get(key)  # it may have been passivated during the read
            if actor is not None:
                actor.set_key_map(key_map)

    async def rules_changed(self, tenant_id: str) -> int:
        """Reload the tenant's rules now; active actors drop state of deleted rules."""
        if tenant_id not in self.rules and not any(t == tenant_id for t, _ in self.actors):
            return 0
        rules = await rule_store.load_active(self.db, tenant_id)
        self.rules[tenant_id] = rules
        live = {r.rule_id for r in rules}
        for (t, _), actor in self.actors.items():
            if t == tenant_id:
                actor.rules_changed(live)
        return len(rules)

    async def persist(self) -> int:
        """Write-behind: every dirty actor's snapshot, and the last values of its sensors that
        changed, in one transaction.

        The flags are cleared before the write, so an actor changed while it runs is dirty again
        (and written next time) instead of being marked clean with its change unsaved; a failed or
        cancelled write marks them all dirty again."""
        dirty = {k: a for k, a in self.actors.items() if a.dirty}
        if not dirty:
            return 0
        snapshots = {k: a.snapshot() for k, a in dirty.items()}
        sensor_values = {k: a.take_changed() for k, a in dirty.items()}
        for actor in dirty.values():
            actor.dirty = False
        try:
            await device_state.save_many(self.db, snapshots, sensor_values)
        except BaseException:
            for k, actor in dirty.items():
                actor.dirty = True
                actor.keep_changed(sensor_values[k])
            raise
        return len(dirty)

    def _unsaved(self, key: tuple[str, str]) -> bool:
        actor = self.actors.get(key)
        return actor is not None and actor.dirty

    def _evict(self, key: tuple[str, str]) -> None:
        super()._evict(key)
        self.status.pop(key, None)

    def report(self) -> None:
        metrics.gauge(metrics.ACTIVE_DEVICE_ACTORS, "device actors in memory", ("shard",)).set(
            len(self.actors), tags={"shard": str(self.shard_id)})

    async def stats(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "active_actors": len(self.actors), "messages": self.messages_handled,
                "lane_requests": self.lane_requests, "lake": await self.lake.stats() if self.lake is not None else None}


class TenantShard(ActorHost[str, TenantActor]):
    lane_methods = frozenset({"call", "handle_events"})

    def __init__(self, shard_id: int, db_url: str, snapshot_interval_s: float = 1.0,
                 passivate_after_s: float = 3600.0, live: LiveSink | None = None) -> None:
        super().__init__(db_url, snapshot_interval_s, passivate_after_s)
        self.shard_id = shard_id
        self.alerts_opened = 0
        self.live = live
        self.watch = Watch()

    async def set_watch(self, watch: Watch) -> None:
        self.watch = watch

    async def _actor(self, tenant_id: str) -> TenantActor:
        self._keep_running()
        actor = self.actors.get(tenant_id)
        if actor is None:
            async with self._activation:
                actor = self.actors.get(tenant_id)
                if actor is None:
                    actor = TenantActor(tenant_id, await alert_store.load_open(self.db, tenant_id))
                    self.actors[tenant_id] = actor
        self.touch(tenant_id)
        return actor

    async def handle_events(self, events: list[AlertEvent]) -> list[Notice]:
        """Alert events from device shards, applied in order per tenant.

        Returns the notices (tenant, alert id, event) to hand to the notifier once committed."""
        by_tenant: dict[str, list[AlertEvent]] = defaultdict(list)
        for ev in events:
            by_tenant[ev.tenant_id].append(ev)
        notices: list[Notice] = []
        for tenant_id, evs in by_tenant.items():
            actor = await self._actor(tenant_id)
            for ev in evs:
                notices.extend(await self._apply(actor, actor.on_alert_event(ev)))
        self.alerts_opened += sum(1 for n in notices if n[2] == "OPEN")
        return notices

    async def call(self, tenant_id: str, method: str, *args: Any) -> list[Notice]:
        """acknowledge / close / silence / rule_deleted / device_removed on the tenant actor; applies the ops."""
        actor = await self._actor(tenant_id)
        fn: Callable[..., list[AlertOp]] = getattr(actor, method)
        return await self._apply(actor, fn(*args))

    async def _apply(self, actor: TenantActor, ops: list[AlertOp]) -> list[Notice]:
        """Alert writes are write-through (the API reads alerts straight from the store), each op in
        one transaction with its escalation timer."""
        notices: list[Notice] = []
        t = actor.tenant_id
        live: list[Event] | None = [] if t in self.watch.alerts else None
        try:
            for op in ops:
                await self._apply_one(actor, op, notices)
                if live is not None:
                    live.append(_alert_change(actor, op, int(time.time() * 1000)))
        finally:  # what was committed is pushed, even when a later op failed
            if live:
                await _publish(self.live, live)
        return notices

    async def _apply_one(self, actor: TenantActor, op: AlertOp, notices: list[Notice]) -> None:
        t = actor.tenant_id
        async with self.db.begin() as conn:
            if isinstance(op, CreateAlert):
                try:
                    alert_id = await alert_store.create(conn, op)
                    # wall-clock start: delays count from when Pulse opened it, not device time
                    await escalation_store.start(conn, t, alert_id, None, utcnow(), rule_id=op.event.rule_id or None)
                except Exception:
                    actor.create_failed(op.event.fingerprint)
                    raise
                actor.created(op.event.fingerprint, alert_id, op.event.rule_id, op.event.device_id)
                notices.append((t, alert_id, "OPEN"))
            elif isinstance(op, RetriggerAlert):
                await alert_store.retrigger(conn, op)
            else:
                await alert_store.transition(conn, t, op)
                if op.status in ("ACKNOWLEDGED", "CLOSED"):  # a human (or the device) answered: stop escalating
                    await escalation_store.stop(conn, op.alert_id)
                    notices.append((t, op.alert_id, op.status))

    async def stats(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "active_actors": len(self.actors), "alerts_opened": self.alerts_opened,
                "lane_requests": self.lane_requests}


def _alert_change(actor: TenantActor, op: AlertOp, now_ms: int) -> Event:
    """The live event of a committed alert op (a CreateAlert's id is indexed by then)."""
    t = actor.tenant_id
    if isinstance(op, (CreateAlert, RetriggerAlert)):
        ev = op.event
        known = actor.by_fingerprint.get(ev.fingerprint)
        alert_id = op.alert_id if isinstance(op, RetriggerAlert) else known.alert_id if known else 0
        return alert_event(t, alert_id, known.status if known else "OPEN",
                           "RETRIGGER" if isinstance(op, RetriggerAlert) else "OPEN", now_ms,
                           ev.device_id, ev.alert_type, ev.severity, ev.rule_name)
    current = actor.by_id.get(op.alert_id)
    return alert_event(t, op.alert_id, op.status, op.action, now_ms, current.device_id if current else None)
