"""IngestBridge: MQTT -> validated batches -> device shards / lake WAL / tenant shards -> ack.

At-least-once: QoS 1 messages are acknowledged to the broker only after the batch they belong
to is in the lake writer's write-ahead log (or recorded in quarantine). The session is
persistent, so whatever was not acknowledged when a bridge dies is redelivered to the next one;
the lake ignores the duplicates on read.

aiomqtt 2.5 acks on receipt and exposes no manual ack; paho (underneath) does. The reach into
aiomqtt's private `_client` is confined to `_paho()` and pinned by the versions in pyproject;
tests/e2e/test_ingest_crash.py fails if it stops working.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import logging
import time
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pulse.actors import metrics
from pulse.actors.downlink import Downlink
from pulse.actors.envelope import Limits, decode
from pulse.actors.messages import DeviceMessage, Rejection
from pulse.actors.runtime import IngestResult, RayRuntime, Runtime
from pulse.config.settings import Settings
from pulse.storage import quarantine
from pulse.storage.db import Database

log = logging.getLogger(__name__)
TOPIC_FILTER = "tenant/+/device/+/#"
SHARE_GROUP = "pulse-ingest"


def _paho(client: aiomqtt.Client) -> paho.Client:
    return client._client  # noqa: SLF001 - see module docstring


def limits_from(settings: Settings) -> Limits:
    return Limits(settings.max_payload_bytes, settings.max_metrics, settings.max_future_skew_s * 1000)


def _payload_bytes(payload: Any) -> bytes:
    return bytes(payload) if isinstance(payload, (bytes, bytearray)) else str(payload or "").encode()


async def accept(runtime: Runtime, db: Database, limits: Limits,
                 items: list[tuple[str, bytes]]) -> tuple[IngestResult | None, list[Rejection]]:
    """The ingest pipeline shared by MQTT and HTTP: decode, run through the actors, quarantine the rest.

    Returns after accepted telemetry is in the WAL and rejections are recorded.
    """
    now_ms = int(time.time() * 1000)
    msgs: list[DeviceMessage] = []
    rejections: list[Rejection] = []
    for topic, payload in items:
        ok, bad = decode(topic, payload, now_ms, limits)
        msgs.extend(ok)
        rejections.extend(bad)
    result = await runtime.ingest(msgs) if msgs else None
    if result is not None:
        rejections.extend(result.rejections)
    await quarantine.record(db, rejections)
    return result, rejections


class IngestBridge:
    def __init__(self, settings: Settings, bridge_id: int = 0, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.bridge_id = bridge_id
        self.runtime = runtime
        self.limits = limits_from(settings)
        self.db: Database | None = None
        self.downlink: Downlink | None = None
        self.pending: list[aiomqtt.Message] = []
        self.arrived: asyncio.Event | None = None  # made in start(), on the actor's loop
        self.counts = {"received": 0, "accepted": 0, "rejected": 0, "rows": 0, "batches": 0, "acked": 0}
        self._tasks: list[asyncio.Task] = []
        self._connected: asyncio.Event | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> bool:
        """Connect and consume; a no-op while already running (the node calls it to supervise)."""
        if self._tasks and not self._tasks[0].done():
            return True
        if self.runtime is None:
            rt = RayRuntime(self.settings)
            rt.connect()
            self.runtime = rt
        self.db = self.db or Database(self.settings.db_url)
        self.downlink = self.downlink or Downlink(self.settings)
        self.arrived = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run())]
        await asyncio.wait_for(self._connected.wait(), timeout=30)
        return True

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.downlink:
            await self.downlink.close()
        if self.db:
            await self.db.dispose()

    async def stats(self) -> dict[str, Any]:
        return {"bridge_id": self.bridge_id, "pid": os.getpid(), **self.counts, "queued": len(self.pending)}

    def _client(self) -> aiomqtt.Client:
        host, port, user, password = self.settings.service_mqtt()
        common: dict[str, Any] = dict(username=user, password=password, identifier=self._client_id(password),
                                      max_queued_incoming_messages=0, timeout=10)
        if self.settings.uses_embedded_broker:  # amqtt speaks MQTT 3.1.1 only
            return aiomqtt.Client(host, port, clean_session=False, **common)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600  # the broker keeps unacked messages for a restarting bridge
        props.ReceiveMaximum = 65535  # a big in-flight window: acks are batched
        return aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                              properties=props, **common)

    def _client_id(self, password: str) -> str:
        """Stable per bridge (the persistent session is keyed on it) and not guessable, so no
        authenticated device can take over the bridge's session by connecting with its id."""
        return f"pulse-bridge-{self.bridge_id}-{hashlib.sha256(password.encode()).hexdigest()[:12]}"

    def _filter(self) -> str:
        return TOPIC_FILTER if self.settings.uses_embedded_broker else f"$share/{SHARE_GROUP}/{TOPIC_FILTER}"

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                client = self._client()
                _paho(client).manual_ack_set(True)
                async with client:
                    await client.subscribe(self._filter(), qos=1)
                    self._connected.set()
                    backoff = 0.5
                    reader = asyncio.create_task(self._read(client))
                    try:
                        await self._batches(client)
                    finally:
                        reader.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Unacked messages of a lost connection are redelivered by the broker; drop our copies.
                self.pending.clear()
                log.warning("bridge %d: %s; reconnecting in %.1fs", self.bridge_id, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.pending.append(message)
            self.arrived.set()

    async def _batches(self, client: aiomqtt.Client) -> None:
        """Take what arrived, at most `ingest_batch_size`, waiting at most `ingest_batch_ms` to fill up."""
        size, wait_s = self.settings.ingest_batch_size, self.settings.ingest_batch_ms / 1000
        while True:
            await self.arrived.wait()
            if len(self.pending) < size:
                await asyncio.sleep(wait_s)
            batch, self.pending = self.pending[:size], self.pending[size:]
            if not self.pending:
                self.arrived.clear()
            if batch:
                await self.process(batch)
                for m in batch:
                    if m.qos > 0:
                        _paho(client).ack(m.mid, m.qos)
                self.counts["acked"] += len(batch)

    # ---- one batch ---------------------------------------------------------------------------
    async def process(self, batch: list[aiomqtt.Message]) -> None:
        """Validate, route and persist one batch; returns once it is safe to acknowledge."""
        started = time.monotonic()
        items = [(m.topic.value, _payload_bytes(m.payload)) for m in batch]
        result, rejections = await accept(self.runtime, self.db, self.limits, items)
        if result is not None and result.publishes:
            await self.downlink.publish(result.publishes)
        self._count(len(batch), result, rejections, started)

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
