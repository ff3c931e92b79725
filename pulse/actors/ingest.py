"""IngestBridge: MQTT -> raw batches -> device shards (decode, actors, Arrow, lake WAL) / tenant shards -> ack.

At-least-once: QoS 1 messages are acknowledged to the broker only after the batch they belong
to is in the device shards' lake write-ahead logs (or recorded in quarantine). The session is
persistent (MQTT 3.1.1, clean session off), so whatever was not acknowledged when a bridge dies
is redelivered to the next one; the lake ignores the duplicates on read.

The bridge only reads the socket, routes raw `(topic, payload)` pairs to the shard that owns each
device and acknowledges: decoding and validation run in the shards, in parallel, and only
counts and effects come back. Its MQTT client is `pulse.mqtt.subscriber` (why: see there).

Where a bridge runs (`deploy_bridges`): by default inside a device shard's process, as its guest,
so the batches that shard owns are plain calls; or as a Ray actor of its own.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pulse.actors import metrics
from pulse.actors.host import DeviceShard
from pulse.domain.envelope import Limits
from pulse.domain.messages import Rejection
from pulse.actors.runtime import IngestResult, RayRuntime, Runtime
from pulse.config.settings import Settings
from pulse.mqtt.endpoint import service_endpoint
from pulse.mqtt.publisher import Downlink
from pulse.mqtt.subscriber import MqttSubscriber, Received
from pulse.services.commands import delivery_recorder
from pulse.services.ingest import accept, limits_from
from pulse.storage import quarantine
from pulse.storage.db import Database

log = logging.getLogger(__name__)
TOPIC_FILTER = "tenant/+/device/+/#"
SHARE_GROUP = "pulse-ingest"
SHARED_FILTER = f"$share/{SHARE_GROUP}/{TOPIC_FILTER}"
MAX_BRIDGES = 16  # sessions of bridge ids from ingest_bridges up to this are retired at start


@dataclass
class BridgeRef:
    """Where bridge `bridge_id` runs: a Ray actor of its own (`actor`), or a guest of device shard
    `host_shard` (`DeviceShard.host`, the default: `Settings.ingest_in_shards`). Each method returns
    a Ray object ref, to await or `ray.get`."""

    bridge_id: int
    settings: Settings
    cls: type  # IngestBridge, unless a benchmark times it
    actor: Any = None
    host_shard: Any = None

    @property
    def name(self) -> str:
        return f"ingest-bridge-{self.bridge_id}"

    def start(self) -> Any:
        """(Re)start; idempotent, so a supervisor calls it periodically."""
        if self.actor is not None:
            return self.actor.start.remote()
        return self.host_shard.host.remote(self.name, functools.partial(hosted_bridge, self.cls, self.settings,
                                                                        self.bridge_id))

    def call(self, method: str, *args: Any) -> Any:
        if self.actor is not None:
            return getattr(self.actor, method).remote(*args)
        return self.host_shard.guest_call.remote(self.name, method, *args)

    def stats(self) -> Any:
        return self.call("stats")

    def stop(self) -> Any:
        return self.actor.stop.remote() if self.actor is not None else self.host_shard.unhost.remote(self.name)


def deploy_bridges(settings: Settings, device_refs: Sequence[Any], options: Callable[[str], dict[str, Any]],
                   cls: type | None = None) -> list[BridgeRef]:
    """The node's `ingest_bridges` bridges, not started yet: bridge i in device shard i % shards, or
    (`ingest_in_shards` off) as Ray actors created with `options(name)`, which Ray restarts after a
    crash; `BridgeRef.start` then reconnects them to the broker, whose persistent session redelivers
    every unacknowledged message."""
    import ray

    cls = cls or IngestBridge
    refs = []
    for i in range(settings.ingest_bridges):
        ref = BridgeRef(i, settings, cls)
        if settings.ingest_in_shards:
            ref.host_shard = device_refs[i % len(device_refs)]
        else:
            ref.actor = ray.remote(cls).options(max_restarts=-1, **options(ref.name)).remote(settings, i)
        refs.append(ref)
    return refs


def hosted_bridge(cls: type, settings: Settings, bridge_id: int, shard: DeviceShard) -> "IngestBridge":
    """Bridge `bridge_id` as a guest of device shard `shard`, in its process: its batches for that
    shard are plain calls (`RayRuntime.inside`), the rest still go through Ray."""
    return cls(settings, bridge_id, RayRuntime(settings).inside(shard))


def bridge_client_id(bridge_id: int, password: str) -> str:
    """Stable per bridge (the persistent session is keyed on it) and not guessable, so no
    authenticated device can take over the bridge's session by connecting with its id."""
    return f"pulse-bridge-{bridge_id}-{hashlib.sha256(password.encode()).hexdigest()[:12]}"


async def retire_sessions(settings: Settings, runtime: Runtime | None = None, idle_s: float = 1.0) -> int:
    """Take over the broker sessions of bridges that no longer run (ingest_bridges shrank), ingest
    what they hold, then end them; -> messages ingested.

    Mosquitto keeps routing a shared subscription round-robin to offline members, so a stale
    session would hold part of the stream until it expires; ending it unprocessed would lose that."""
    taken = 0
    for bridge_id in range(settings.ingest_bridges, MAX_BRIDGES):
        bridge = IngestBridge(settings, bridge_id, runtime)
        try:
            taken += await bridge.retire(idle_s)
        finally:
            await bridge.stop()
    return taken


class IngestBridge:
    def __init__(self, settings: Settings, bridge_id: int = 0, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.bridge_id = bridge_id
        self.runtime = runtime
        self.limits = limits_from(settings)
        self.db: Database | None = None
        self.downlink: Downlink | None = None
        self.subscriber: MqttSubscriber | None = None
        self._in_order = asyncio.Lock()
        self.counts = {"received": 0, "accepted": 0, "rejected": 0, "rows": 0, "batches": 0, "acked": 0}
        self._tasks: list[asyncio.Task] = []
        self._connected: asyncio.Event | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> bool:
        """Connect and consume; a no-op while already running (the node calls it to supervise)."""
        if self._tasks and not self._tasks[0].done():
            return True
        self._open()
        self._connected = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run())]
        await asyncio.wait_for(self._connected.wait(), timeout=30)
        return True

    def _open(self) -> None:
        if self.runtime is None:
            rt = RayRuntime(self.settings)
            rt.connect()
            self.runtime = rt
        self.db = self.db or Database(self.settings.db_url)
        self.downlink = self.downlink or Downlink(self.settings, on_sent=delivery_recorder(self.db))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.downlink:
            await self.downlink.close()
        if self.db:
            await self.db.dispose()

    async def stats(self) -> dict[str, Any]:
        return {"bridge_id": self.bridge_id, "pid": os.getpid(), **self.counts, "queued": len(self.subscriber.queue) if self.subscriber else 0}

    def _filter(self) -> str:
        """The bridges' one subscription. A single bridge subscribes without a share: Mosquitto 2.0.11
        restores a persistent session's plain subscriptions after a restart but not its shared ones,
        so messages published between the broker's restart and the bridge's next SUBSCRIBE would be
        lost (tests/e2e/test_ingest_crash.py, victim "broker"). Several bridges split the stream with
        `$share` and keep that gap (docs/mqtt-broker.md). amqtt has no shared subscriptions."""
        plain = self.settings.uses_embedded_broker or self.settings.ingest_bridges == 1
        return TOPIC_FILTER if plain else SHARED_FILTER

    def _other_filter(self) -> str | None:
        """The subscription this bridge's persistent session may still hold from a start with another
        number of bridges: dropped, or each message would come twice."""
        if self.settings.uses_embedded_broker:
            return None
        return SHARED_FILTER if self._filter() == TOPIC_FILTER else TOPIC_FILTER

    async def _run(self) -> None:
        backoff = 0.5
        endpoint = service_endpoint(self.settings)
        while True:
            sub = MqttSubscriber()
            try:
                await sub.connect(endpoint, bridge_client_id(self.bridge_id, endpoint.password or ""))
                await sub.subscribe(self._filter(), qos=1)
                if stale := self._other_filter():
                    await sub.unsubscribe(stale)
                self.subscriber = sub
                self._connected.set()
                backoff = 0.5
                await self._batches(sub)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Unacked messages of a lost connection are redelivered by the broker.
                log.warning("bridge %d: %s; reconnecting in %.1fs", self.bridge_id, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await sub.close()

    async def retire(self, idle_s: float = 1.0) -> int:
        """Ingest what this bridge's persistent session holds, then end the session; -> messages."""
        endpoint = service_endpoint(self.settings)
        client_id = bridge_client_id(self.bridge_id, endpoint.password or "")
        taken = 0
        sub = MqttSubscriber()
        try:
            await sub.connect(endpoint, client_id)
            if sub.session_present:
                # no new traffic; what is queued still comes
                for topic_filter in (self._filter(), self._other_filter()):
                    if topic_filter:
                        await sub.unsubscribe(topic_filter)
                while True:
                    try:
                        batch = await asyncio.wait_for(sub.batch(self.settings.ingest_batch_size,
                                                                 self.settings.ingest_batch_ms / 1000), idle_s)
                    except asyncio.TimeoutError:
                        break
                    self._open()  # only now: an empty session needs no runtime
                    await self.process(batch)
                    sub.ack(batch)
                    taken += len(batch)
                await asyncio.sleep(0.1)  # the last PUBACKs reach the broker before the session ends
        finally:
            await sub.close()
        sub = MqttSubscriber()
        try:
            await sub.connect(endpoint, client_id, clean_session=True)
        finally:
            await sub.close()
        if taken:
            log.info("bridge %d: retired its session after ingesting %d queued messages", self.bridge_id, taken)
        return taken

    async def _batches(self, sub: MqttSubscriber) -> None:
        """Full batches (`ingest_batch_size`) or whatever waited `ingest_batch_ms`; acked once processed.

        Two batches overlap: while one finishes (quarantine, live push, downlinks), the next is
        already in the shards (which still see batches in arrival order, see `process`). Acks stay
        in arrival order."""
        size, wait_s = self.settings.ingest_batch_size, self.settings.ingest_batch_ms / 1000
        pending: tuple[list[Received], asyncio.Future] | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(sub.batch(size, wait_s))
                try:
                    if pending is not None:
                        await asyncio.wait({nxt, pending[1]}, return_when=asyncio.FIRST_COMPLETED)
                        if not nxt.done():  # the earlier batch is done first: acknowledge it meanwhile
                            await self._ack(sub, *pending)
                            pending = None
                    batch = await nxt
                except BaseException:
                    nxt.cancel()
                    raise
                task = asyncio.ensure_future(self.process(batch))
                if pending is not None:
                    await self._ack(sub, *pending)
                pending = (batch, task)
        finally:
            if pending is not None:
                pending[1].cancel()

    async def _ack(self, sub: MqttSubscriber, batch: list[Received], processed: asyncio.Future) -> None:
        await processed  # a failure propagates: the connection is dropped, the broker redelivers
        sub.ack(batch)
        self.counts["acked"] += len(batch)

    # ---- one batch ---------------------------------------------------------------------------
    async def process(self, batch: list[Received]) -> None:
        """Route, persist and record one batch; returns once it is safe to acknowledge."""
        started = time.monotonic()
        items = [(t, p) for t, p, _ in batch]
        async with self._in_order:
            result = await self.runtime.handle(items, int(time.time() * 1000), self.limits)
        await self.runtime.push_live(result)
        await quarantine.record(self.db, result.rejections)
        if result.publishes:
            await self.downlink.publish(result.publishes)
        self._count(len(batch), result, result.rejections, started)

    def _count(self, received: int, result: Any, rejections: list[Rejection], started: float) -> None:
        c = self.counts
        c["received"] += received
        c["batches"] += 1
        c["rejected"] += len(rejections)
        if result is not None:
            c["accepted"] += result.accepted
            c["rows"] += result.rows
        metrics.counter(metrics.MESSAGES_IN, "MQTT messages received").inc(received)
        if rejections:
            metrics.counter(metrics.MESSAGES_REJECTED, "messages quarantined").inc(len(rejections))
        metrics.gauge(metrics.INGEST_LAG_MS, "batch processing time, ms").set((time.monotonic() - started) * 1000)
