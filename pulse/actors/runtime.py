"""The actor runtime: placement of virtual actors on shards, and one interface, two implementations.

`LocalRuntime` hosts the shards in this process (tests, tiny setups); `RayRuntime` talks to
named, detached Ray actors in namespace `pulse`. Nothing outside `pulse.actors` knows which.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import pyarrow as pa

from pulse.actors import metrics
from pulse.actors.host import DeviceShard, ShardResult, TenantShard, pack_raw
from pulse.actors.lake_writer import LakeWriter, wal_dir_of
from pulse.actors.lane import LaneClient, LaneUnavailable
from pulse.actors.live import LiveHub
from pulse.domain.envelope import Limits
from pulse.domain.live import Event, Watch
from pulse.domain.messages import AlertEvent, Publish, Rejection
from pulse.config.settings import Settings
from pulse.services.carrier_sync import CarrierSync
from pulse.services.notifier import Notifier
from pulse.services.telemetron_sync import TelemetronSync

NAMESPACE = "pulse"
log = logging.getLogger(__name__)


def service_classes() -> dict[str, type]:
    """Singleton service actors: name -> class taking `(settings)`, with async `start(runtime)`/`stop`."""
    return {"notifier": Notifier, "carrier-sync": CarrierSync, "telemetron-sync": TelemetronSync,
            LIVE_HUB: LiveHub}


LIVE_HUB = "live-hub"
MAX_KNOWN_TOPICS = 100_000  # topics whose device shard a runtime remembers (~10 MB); then it starts again


def partition_of(key: str, partitions: int) -> int:
    """Stable across processes and restarts (unlike hash())."""
    return zlib.crc32(key.encode()) % partitions


@dataclass
class Placement:
    """partition -> shard for one kind of actor; every key is routed through `table`.

    Single-process for now: each process builds its own table from the settings (the same one
    everywhere, as long as no partition moved), and `Runtime.move_partition` changes this process's
    copy only, which is all a `LocalRuntime` needs. Multi-node moves (the table kept in the store,
    read by every router, with a handoff between the shards) are later work."""

    partitions: int
    shards: int
    table: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.table:
            self.table = [p % self.shards for p in range(self.partitions)]

    def partition(self, key: str | tuple[str, str]) -> int:
        """A tenant actor's key is its tenant id, a device actor's is (tenant id, device id)."""
        return partition_of(key if isinstance(key, str) else f"{key[0]}/{key[1]}", self.partitions)

    def device_shard(self, tenant_id: str, device_id: str) -> int:
        return self.table[partition_of(f"{tenant_id}/{device_id}", self.partitions)]

    def tenant_shard(self, tenant_id: str) -> int:
        return self.table[partition_of(tenant_id, self.partitions)]


@dataclass
class IngestResult:
    accepted: int = 0
    rows: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)
    alerts_opened: int = 0
    live: list[Event] = field(default_factory=list)  # pushed once the batch is persisted


class Runtime:
    """Routing over shard references; subclasses say how a reference is called."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.devices = Placement(settings.partitions, settings.device_shards)
        self.tenants = Placement(settings.partitions, settings.tenant_shards)
        self.device_refs: list[Any] = []
        self.tenant_refs: list[Any] = []
        self.service_refs: dict[str, Any] = {}
        self._topic_shards: dict[str, int] = {}  # topic -> device shard (`_topic_shard`); a move clears it

    @property
    def notifier_ref(self) -> Any:
        return self.service_refs.get("notifier")

    @property
    def live_ref(self) -> Any:
        return self.service_refs.get(LIVE_HUB)

    async def _call(self, ref: Any, method: str, *args: Any) -> Any:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    # ---- hot path ----------------------------------------------------------------------------
    async def ingest(self, items: Sequence[tuple[str, bytes]], now_ms: int, limits: Limits) -> IngestResult:
        """Raw `(topic, payload)` messages through `handle`, then their live events pushed.

        When this returns, accepted telemetry is in the lake's write-ahead log: the caller may
        acknowledge the messages to the broker.
        """
        result = await self.handle(items, now_ms, limits)
        await self.push_live(result)
        return result

    async def handle(self, items: Sequence[tuple[str, bytes]], now_ms: int, limits: Limits) -> IngestResult:
        """One call per device shard (which decodes, runs the actors, builds the Arrow rows and
        appends them to its lake WAL) and one per tenant shard for the alert events — per batch.
        On return the batch is durable; its live events are for `push_live` once acknowledged.

        Batches must be handled in arrival order (a device's messages are ordered across batches)."""
        by_shard: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
        known = self._topic_shards
        for item in items:
            shard = known.get(item[0])
            if shard is None:
                shard = self._topic_shard(item[0])
            by_shard[shard].append(item)
        if len(by_shard) == 1:  # one shard (the default): no task to gather
            [(s, batch)] = by_shard.items()
            results = [await self._handle_on(self.device_refs[s], now_ms, limits, batch)]
        else:
            results = await asyncio.gather(*(self._handle_on(self.device_refs[s], now_ms, limits, batch)
                                             for s, batch in by_shard.items()))
        out = IngestResult()
        events: list[AlertEvent] = []
        for r in results:
            out.accepted += r.accepted
            out.rows += r.rows
            out.rejections.extend(r.rejections)
            out.publishes.extend(r.publishes)
            out.live.extend(r.live)
            events.extend(r.alert_events)
        if events:
            out.alerts_opened = await self.tenant_events(events)
        return out

    async def _handle_on(self, ref: Any, now_ms: int, limits: Limits, batch: list[tuple[str, bytes]]) -> ShardResult:
        if isinstance(ref, DeviceShard):  # in this process (`LocalRuntime`, or `RayRuntime.inside`): no pickles
            return await ref.handle_items(now_ms, limits, batch)
        return await self._call(ref, "handle_raw", now_ms, limits, *pack_raw(batch))

    def _topic_shard(self, topic: str) -> int:
        """The device shard of a topic's device, remembered: a fleet's devices publish on the same
        topics over and over, and a dict lookup is a fraction of splitting and hashing each time."""
        parts = topic.split("/", 4)
        # A malformed topic goes to shard 0, whose decoder rejects it with the reason.
        shard = self.devices.device_shard(parts[1], parts[3]) if len(parts) == 5 else 0
        if len(self._topic_shards) >= MAX_KNOWN_TOPICS:
            self._topic_shards.clear()
        self._topic_shards[topic] = shard
        return shard

    async def push_live(self, result: IngestResult) -> None:
        """Live events of a handled (durable) batch to the hub; stamped with the acknowledgement time
        so clients can measure their lag. Best effort: ingest never fails because of live push."""
        events = result.live
        if not events:
            return
        acked_ms = int(time.time() * 1000)
        for e in events:
            e["acked_ms"] = acked_ms
        try:
            await self._call(self.live_ref, "publish", events)
        except Exception:
            log.exception("live hub unreachable; %d live events not pushed", len(events))

    # ---- live push ---------------------------------------------------------------------------
    async def broadcast_watch(self, watch: Watch) -> None:
        """What clients watch, to every shard (the hub calls this when it changes)."""
        await asyncio.gather(*(self._call(r, "set_watch", watch) for r in self.device_refs + self.tenant_refs))

    async def live_watch(self, listener_id: str, watch: Watch) -> None:
        await self._call(self.live_ref, "watch", listener_id, watch)

    async def live_poll(self, listener_id: str, timeout_s: float) -> tuple[list[Event], int]:
        return await self._call(self.live_ref, "poll", listener_id, timeout_s)

    async def tenant_events(self, events: list[AlertEvent]) -> int:
        """Alert open/clear events (from device shards or services) through the tenant actors."""
        by_shard: dict[int, list[AlertEvent]] = defaultdict(list)
        for ev in events:
            by_shard[self.tenants.tenant_shard(ev.tenant_id)].append(ev)
        results = await asyncio.gather(
            *(self._call(self.tenant_refs[s], "handle_events", evs) for s, evs in by_shard.items())
        )
        notices = [n for r in results for n in r]
        total = sum(1 for n in notices if n[2] == "OPEN")
        if total:
            metrics.counter(metrics.ALERTS_OPENED, "alerts opened").inc(total)
        await self.notify(notices)
        return total

    async def service_call(self, name: str, method: str, *args: Any) -> Any:
        return await self._call(self.service_refs[name], method, *args)

    async def notifier_call(self, method: str, *args: Any) -> Any:
        return await self.service_call("notifier", method, *args)

    async def notify(self, notices: list) -> None:
        """Hand committed alert transitions to the notifier (routing, maintenance, silence there).

        A failure is logged, never raised: the alert itself is stored and visible either way."""
        if not notices or self.notifier_ref is None:
            return
        try:
            await self._call(self.notifier_ref, "notify", notices)
        except Exception:
            log.exception("notifier unreachable; %d alert notices not routed", len(notices))

    async def tick(self, keys: list[tuple[str, str]] | None, now_ms: int) -> int:
        """Timer evaluation (one call per shard) for these devices, or with None for every device
        in memory including the built-in NO_HEARTBEAT alert; returns alerts opened."""
        if keys is None:
            s = self.settings
            heartbeat = (s.stale_after_s, s.no_heartbeat_severity) if s.no_heartbeat_alerts else None
            calls = [self._call(ref, "tick", None, now_ms, heartbeat) for ref in self.device_refs]
        else:
            calls = [self._call(self.device_refs[s], "tick", ks, now_ms) for s, ks in self._by_shard(keys).items()]
        results = await asyncio.gather(*calls)
        events = [e for r in results for e in r]
        return await self.tenant_events(events) if events else 0

    def _by_shard(self, keys: Iterable[tuple[str, str]]) -> dict[int, list[tuple[str, str]]]:
        """Device keys grouped by the device shard hosting them."""
        by_shard: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for t, d in keys:
            by_shard[self.devices.device_shard(t, d)].append((t, d))
        return by_shard

    # ---- requests ----------------------------------------------------------------------------
    async def device_call(self, tenant_id: str, device_id: str, method: str, *args: Any) -> Any:
        ref = self.device_refs[self.devices.device_shard(tenant_id, device_id)]
        return await self._call(ref, "call", tenant_id, device_id, method, *args)

    async def device_call_many(self, tenant_id: str, device_ids: Sequence[str], method: str,
                               *args: Any) -> dict[str, Any]:
        """The same request to many devices of a tenant: one call per device shard, concurrently.
        Device id -> answer; unknown devices are left out."""
        groups = self._by_shard((tenant_id, d) for d in device_ids)
        results = await asyncio.gather(*(self._call(self.device_refs[s], "call_many", tenant_id,
                                                    [d for _, d in keys], method, *args)
                                         for s, keys in groups.items()))
        return {d: answer for r in results for d, answer in r.items()}

    async def tenant_call(self, tenant_id: str, method: str, *args: Any) -> None:
        notices = await self._call(self.tenant_refs[self.tenants.tenant_shard(tenant_id)], "call", tenant_id,
                                   method, *args)
        await self.notify(notices)

    async def device_changed(self, tenant_id: str, device_id: str, status: str | None) -> None:
        ref = self.device_refs[self.devices.device_shard(tenant_id, device_id)]
        await self._call(ref, "device_changed", tenant_id, device_id, status)

    async def modules_changed(self, tenant_id: str, device_id: str) -> None:
        ref = self.device_refs[self.devices.device_shard(tenant_id, device_id)]
        await self._call(ref, "modules_changed", tenant_id, device_id)

    async def rules_changed(self, tenant_id: str) -> None:
        """Broadcast: every shard reloads the tenant's rules now (no restart needed)."""
        await asyncio.gather(*(self._call(r, "rules_changed", tenant_id) for r in self.device_refs))

    async def move_partition(self, kind: str, partition: int, shard: int) -> int:
        """Route a partition of device or tenant actors (`kind`) to another shard.

        The old shard first persists and evicts the partition's actors; then the table changes, and
        the next message activates each actor on the new shard from its persisted state. Call it
        between batches: a message handled by the old shard during the move would be written and
        evicted, but one sent to the new shard before the old one let go would read stale state.
        Returns the actors released. (Single process only, see `Placement`.)"""
        kinds = {"device": (self.devices, self.device_refs), "tenant": (self.tenants, self.tenant_refs)}
        if kind not in kinds:
            raise ValueError(f"kind must be one of {', '.join(kinds)}")
        placement, refs = kinds[kind]
        if not 0 <= partition < placement.partitions or not 0 <= shard < len(refs):
            raise ValueError(f"no partition {partition} or no {kind} shard {shard}")
        current = placement.table[partition]
        if current == shard:
            return 0
        keys = [k for k in await self._call(refs[current], "active_keys") if placement.partition(k) == partition]
        released = await self._call(refs[current], "release", keys)
        placement.table[partition] = shard
        self._topic_shards.clear()
        return released

    async def pending_telemetry(self, tenant_id: str, device_id: str | None = None) -> pa.Table | None:
        """Acknowledged rows not yet in Parquet, from every device shard's lake (a device's rows may
        sit in two shards' buffers after its partition moved)."""
        parts = await asyncio.gather(*(self._call(r, "lake_pending", tenant_id, device_id) for r in self.device_refs))
        parts = [p for p in parts if p is not None]
        return pa.concat_tables(parts) if parts else None

    async def flush(self) -> None:
        """Persist every dirty actor and write buffered telemetry to Parquet."""
        await asyncio.gather(*(self._call(r, "persist") for r in self.device_refs + self.tenant_refs))
        await asyncio.gather(*(self._call(r, "lake_flush") for r in self.device_refs))

    async def stats(self) -> dict[str, Any]:
        shards = await asyncio.gather(*(self._call(r, "stats") for r in self.device_refs))
        tenants = await asyncio.gather(*(self._call(r, "stats") for r in self.tenant_refs))
        active = sum(s["active_actors"] for s in shards)
        return {"device_shards": shards, "tenant_shards": tenants, "lake": lake_totals([s["lake"] for s in shards]),
                "active_device_actors": active}

    async def ready(self) -> bool:
        await asyncio.gather(*(self._call(r, "ready") for r in self.device_refs + self.tenant_refs))
        return True


def lake_totals(per_shard: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The device shards' lake writer stats as one lake's: counts summed, the latest flush time."""
    out: dict[str, Any] = {}
    for stats in filter(None, per_shard):
        for key, value in stats.items():
            if key == "last_flush_at":
                out[key] = max(filter(None, (out.get(key), value)), default=None)
            else:
                out[key] = out.get(key, 0) + value
    return out


def _shard_args(settings: Settings, i: int) -> tuple:
    return (i, settings.db_url, settings.snapshot_interval_s, settings.passivate_after_s)


def _shard_lake(settings: Settings, i: int) -> LakeWriter:
    """Device shard `i`'s lake writer; shard 0's also replays WAL directories no shard owns."""
    s = settings
    orphans_of = (str(s.wal_dir), s.device_shards) if i == 0 else None
    return LakeWriter(str(s.lake_dir), str(wal_dir_of(s.wal_dir, i)), s.lake_flush_interval_s, s.lake_flush_rows,
                      orphans_of)


class LocalRuntime(Runtime):
    """Everything in this process and event loop."""

    async def _call(self, ref: Any, method: str, *args: Any) -> Any:
        return await getattr(ref, method)(*args)

    async def start(self) -> None:
        self.settings.ensure_dirs()
        s = self.settings
        self.service_refs = {name: cls(s) for name, cls in service_classes().items()}
        hub = self.live_ref  # the shards publish timer and alert events to it directly
        self.device_refs = [DeviceShard(*_shard_args(s, i), settings=s, live=hub, lake=_shard_lake(s, i))
                            for i in range(s.device_shards)]
        self.tenant_refs = [TenantShard(*_shard_args(s, i), live=hub) for i in range(s.tenant_shards)]
        for ref in self.service_refs.values():
            await ref.start(self)  # a service that feeds actors (carrier alerts) reaches them through us
        for r in self.device_refs + self.tenant_refs:
            await r.start()

    async def stop(self) -> None:
        for r in self.device_refs + self.tenant_refs:
            await r.stop()
        for ref in self.service_refs.values():
            await ref.stop()


def actor_names(settings: Settings) -> dict[str, list[str]]:
    return {
        "device": [f"device-shard-{i}" for i in range(settings.device_shards)],
        "tenant": [f"tenant-shard-{i}" for i in range(settings.tenant_shards)],
        "service": list(service_classes()),
    }


# The ingest actors' calls are safe to repeat (a lake append is de-duplicated on read, an alert
# event on an open alert is a retrigger, a shard re-reads its snapshot), so a call in flight when
# its actor dies runs again on the restarted actor instead of failing the batch. Failing it is
# not enough: the device actors already moved on, and the redelivered messages would not raise
# their alert events again. After a few restarts in a row the call fails and the broker redelivers.
RETRY_ON_RESTART = {"max_task_retries": 3}


class HubHandle:
    """The LiveHub actor as a shard's `LiveSink` (shards never import Ray)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def publish(self, events: list[Event]) -> int:
        return await self.handle.publish.remote(events)


class RayRuntime(Runtime):
    """Named detached Ray actors. `deploy()` creates them; any process in the cluster may `connect()`.

    Requests to the shards go over their socket lanes (`Settings.shard_lanes`, pulse.actors.lane),
    a fraction of a Ray call's CPU; to the Ray call when a lane is unavailable."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.lanes = LaneClient() if settings.shard_lanes else None

    async def _call(self, ref: Any, method: str, *args: Any) -> Any:
        if isinstance(ref, DeviceShard):  # the shard this runtime runs inside (`inside`)
            return await getattr(ref, method)(*args)
        key = self._lane_key(ref, method)
        if key is not None:
            try:
                return await self.lanes.call(key, ref.lane_address.remote, method, args)
            except LaneUnavailable:
                pass  # the Ray call waits for Ray to restart the shard
        return await getattr(ref, method).remote(*args)

    def _lane_key(self, ref: Any, method: str) -> tuple[str, int] | None:
        """The lane to carry `method` to `ref`, if it is a shard serving that method on one."""
        if self.lanes is None:
            return None
        for kind, refs, cls in (("device", self.device_refs, DeviceShard), ("tenant", self.tenant_refs, TenantShard)):
            for i, r in enumerate(refs):
                if r is ref:
                    return (kind, i) if method in cls.lane_methods else None
        return None

    def inside(self, shard: DeviceShard) -> "RayRuntime":
        """This runtime as used by a guest of device shard `shard` (`DeviceShard.host`), in the shard's
        process: calls to that shard stay in the process, those to the other actors go through Ray.
        Not to be passed on: it holds the shard itself."""
        self.connect()
        self.device_refs[shard.shard_id] = shard
        return self

    def _options(self, name: str) -> dict[str, Any]:
        # num_cpus=0: shards are I/O-bound asyncio actors; reserving a CPU each would starve a 2-core node.
        return {"name": name, "namespace": NAMESPACE, "lifetime": "detached", "get_if_exists": True,
                "num_cpus": 0, "max_restarts": -1, "runtime_env": {"env_vars": self.settings.env()}}

    def deploy(self) -> None:
        import ray

        s = self.settings
        s.ensure_dirs()
        names = actor_names(s)
        self.service_refs = {name: ray.remote(cls).options(**self._options(name)).remote(s)
                             for name, cls in service_classes().items()}
        # the handle is a constructor argument: a shard Ray restarts gets it back
        hub = HubHandle(self.live_ref)
        self.device_refs = [ray.remote(DeviceShard).options(**self._options(n), **RETRY_ON_RESTART)
                            .remote(*_shard_args(s, i), settings=s, live=hub, lake=_shard_lake(s, i), own_process=True)
                            for i, n in enumerate(names["device"])]
        self.tenant_refs = [ray.remote(TenantShard).options(**self._options(n), **RETRY_ON_RESTART)
                            .remote(*_shard_args(s, i), live=hub) for i, n in enumerate(names["tenant"])]

    def connect(self) -> None:
        import ray

        names = actor_names(self.settings)
        self.device_refs = [ray.get_actor(n, namespace=NAMESPACE) for n in names["device"]]
        self.tenant_refs = [ray.get_actor(n, namespace=NAMESPACE) for n in names["tenant"]]
        self.service_refs = {n: ray.get_actor(n, namespace=NAMESPACE) for n in names["service"]}

    async def start(self) -> None:
        if not self.device_refs:
            self.connect()
        # the services get this runtime (its actor handles travel with it) to reach the shards
        await asyncio.gather(*(self._call(r, "start", self) for r in self.service_refs.values()))
        await asyncio.gather(*(self._call(r, "start") for r in self.device_refs + self.tenant_refs))

    async def stop(self) -> None:
        """Persist and kill the actors (detached actors outlive drivers otherwise)."""
        import ray

        await asyncio.gather(*(self._call(r, "stop") for r in self.device_refs + self.tenant_refs),
                             return_exceptions=True)
        services = list(self.service_refs.values())
        await asyncio.gather(*(self._call(r, "stop") for r in services), return_exceptions=True)
        for r in self.device_refs + self.tenant_refs + services:
            ray.kill(r, no_restart=True)
