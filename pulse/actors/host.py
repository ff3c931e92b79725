"""Shards that host many virtual actors: placement-agnostic activation, write-behind, passivation.

`DeviceShard` and `TenantShard` are plain async classes. `LocalRuntime` uses them in-process;
`RayRuntime` runs each as a named Ray actor. They never import Ray.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, TypeVar

import pyarrow as pa

from pulse.actors import metrics
from pulse.domain.device import DeviceActor
from pulse.domain.envelope import Limits, decode
from pulse.domain.messages import (AlertEvent, CommandStatus, DeviceMessage, MetricsDiscovered, Publish, Rejection,
                                   Telemetry)
from pulse.domain.rules import Rule
from pulse.domain.tenant import AlertOp, CreateAlert, RetriggerAlert, TenantActor
from pulse.errors import Invalid, NotFound
from pulse.storage import alerts as alert_store
from pulse.storage import commands as command_store
from pulse.storage import escalation as escalation_store
from pulse.storage import device_state
from pulse.storage import rules as rule_store
from pulse.storage import sensors as sensor_store
from pulse.storage.db import Database, utcnow
from pulse.storage.lake.rows import telemetry_table

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)
Notice = tuple[str, int, str]  # (tenant, alert id, OPEN | ACKNOWLEDGED | CLOSED) for the notifier
A = TypeVar("A")


class ActorHost(Generic[K, A]):
    """Activation table of one shard: key -> live actor, with last-use times for passivation."""

    def __init__(self, db_url: str, snapshot_interval_s: float, passivate_after_s: float) -> None:
        self.db = Database(db_url)
        self.actors: dict[K, A] = {}
        self.last_used: dict[K, float] = {}
        self.snapshot_interval_s = snapshot_interval_s
        self.passivate_after_s = passivate_after_s
        self._activation = asyncio.Lock()
        self._loop_task: asyncio.Task | None = None

    async def start(self) -> bool:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._maintenance_loop())
        return True

    async def stop(self) -> None:
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
        """Drop actors idle longer than `passivate_after_s` (after persisting them)."""
        cutoff = time.monotonic() - self.passivate_after_s
        idle = [k for k, t in self.last_used.items() if t < cutoff]
        if not idle:
            return 0
        await self.persist()
        for k in idle:
            self.actors.pop(k, None)
            self.last_used.pop(k, None)
        return len(idle)

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
    discovered: dict[tuple[str, str], set[str]] = field(default_factory=dict)


@dataclass
class ShardResult:
    """What a shard returns for raw messages: counts, Arrow rows and effects — not the messages."""
    accepted: int = 0
    table: pa.Table | None = None
    rejections: list[Rejection] = field(default_factory=list)
    alert_events: list[AlertEvent] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)


def _collect(out: BatchResult, tenant_id: str, device_id: str, effect: Any) -> None:
    if isinstance(effect, AlertEvent):
        out.alert_events.append(effect)
    elif isinstance(effect, Publish):
        out.publishes.append(effect)
    elif isinstance(effect, CommandStatus):
        out.command_updates.append((tenant_id, device_id, effect))
    elif isinstance(effect, MetricsDiscovered):
        out.discovered.setdefault((tenant_id, device_id), set()).update(effect.keys)


class DeviceShard(ActorHost[tuple[str, str], DeviceActor]):
    def __init__(self, shard_id: int, db_url: str, snapshot_interval_s: float = 1.0,
                 passivate_after_s: float = 600.0) -> None:
        super().__init__(db_url, snapshot_interval_s, passivate_after_s)
        self.shard_id = shard_id
        self.status: dict[tuple[str, str], str] = {}
        self.rules: dict[str, list[Rule]] = {}
        self.messages_handled = 0

    async def _activate(self, keys: set[tuple[str, str]]) -> None:
        missing = [k for k in keys if k not in self.actors]
        if not missing:
            return
        async with self._activation:
            missing = [k for k in missing if k not in self.actors]
            loaded = await device_state.load_many(self.db, missing)
            for key, (status, snap) in loaded.items():
                self.actors[key] = DeviceActor(key[0], key[1], snap)
                self.status[key] = status
            for tenant in {t for t, _ in loaded} - self.rules.keys():
                self.rules[tenant] = await rule_store.load_active(self.db, tenant)

    async def handle_raw(self, items: list[tuple[str, bytes]], now_ms: int, limits: Limits) -> ShardResult:
        """Decode and validate raw MQTT/HTTP messages here, in the shard, then handle them."""
        msgs: list[DeviceMessage] = []
        rejections: list[Rejection] = []
        for topic, payload in items:
            ok, bad = decode(topic, payload, now_ms, limits)
            msgs.extend(ok)
            rejections.extend(bad)
        res = await self.handle_batch(msgs)
        telemetry = [m for m in res.accepted if isinstance(m, Telemetry)]
        return ShardResult(len(res.accepted), telemetry_table(telemetry) if telemetry else None,
                           rejections + res.rejections, res.alert_events, res.publishes)

    async def handle_batch(self, msgs: list[DeviceMessage]) -> BatchResult:
        """Process a batch in arrival order; unknown or revoked devices' messages are rejected."""
        await self._activate({(m.tenant_id, m.device_id) for m in msgs})
        out = BatchResult()
        now = time.monotonic()
        for m in msgs:
            key = (m.tenant_id, m.device_id)
            actor = self.actors.get(key)
            if actor is None or self.status.get(key) != "ACTIVE":
                reason = "UNREGISTERED_DEVICE" if actor is None else "DEVICE_REVOKED"
                out.rejections.append(Rejection(reason, f"tenant/{m.tenant_id}/device/{m.device_id}",
                                                m.tenant_id, m.device_id, None, m.ts_ms))
                continue
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
        return events

    async def call(self, tenant_id: str, device_id: str, method: str, *args: Any) -> Any:
        """A request from the API to one device actor (latest, twin, patch_desired, ...)."""
        key = (tenant_id, device_id)
        await self._activate({key})
        actor = self.actors.get(key)
        if actor is None:
            raise NotFound(f"device {device_id} not found")
        self.touch(key)
        try:
            return getattr(actor, method)(*args)
        except ValueError as e:
            raise Invalid(str(e)) from None

    async def device_changed(self, tenant_id: str, device_id: str, status: str | None) -> None:
        """Registry change: new status, or None when the device was deleted."""
        key = (tenant_id, device_id)
        if status is None:
            self.actors.pop(key, None)
            self.status.pop(key, None)
            self.last_used.pop(key, None)
        elif key in self.actors:
            self.status[key] = status

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
        dirty = {k: a.snapshot() for k, a in self.actors.items() if a.dirty}
        if not dirty:
            return 0
        await device_state.save_many(self.db, dirty)
        for k in dirty:
            self.actors[k].dirty = False
        return len(dirty)

    def report(self) -> None:
        metrics.gauge(metrics.ACTIVE_DEVICE_ACTORS, "device actors in memory", ("shard",)).set(
            len(self.actors), tags={"shard": str(self.shard_id)})

    async def stats(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "active_actors": len(self.actors), "messages": self.messages_handled}


class TenantShard(ActorHost[str, TenantActor]):
    def __init__(self, shard_id: int, db_url: str, snapshot_interval_s: float = 1.0,
                 passivate_after_s: float = 3600.0) -> None:
        super().__init__(db_url, snapshot_interval_s, passivate_after_s)
        self.shard_id = shard_id
        self.alerts_opened = 0

    async def _actor(self, tenant_id: str) -> TenantActor:
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
        """acknowledge / close / silence / rule_deleted on the tenant actor; applies the ops."""
        actor = await self._actor(tenant_id)
        fn: Callable[..., list[AlertOp]] = getattr(actor, method)
        return await self._apply(actor, fn(*args))

    async def _apply(self, actor: TenantActor, ops: list[AlertOp]) -> list[Notice]:
        """Alert writes are write-through (the API reads alerts straight from the store), each op in
        one transaction with its escalation timer."""
        notices: list[Notice] = []
        t = actor.tenant_id
        for op in ops:
            async with self.db.begin() as conn:
                if isinstance(op, CreateAlert):
                    try:
                        alert_id = await alert_store.create(conn, op)
                        # wall-clock start: delays count from when Pulse opened it, not device time
                        await escalation_store.start(conn, t, alert_id, None, utcnow(), rule_id=op.event.rule_id or None)
                    except Exception:
                        actor.create_failed(op.event.fingerprint)
                        raise
                    actor.created(op.event.fingerprint, alert_id, op.event.rule_id)
                    notices.append((t, alert_id, "OPEN"))
                elif isinstance(op, RetriggerAlert):
                    await alert_store.retrigger(conn, op)
                else:
                    await alert_store.transition(conn, t, op)
                    if op.status in ("ACKNOWLEDGED", "CLOSED"):  # a human (or the device) answered: stop escalating
                        await escalation_store.stop(conn, op.alert_id)
                        notices.append((t, op.alert_id, op.status))
        return notices

    async def stats(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "active_actors": len(self.actors), "alerts_opened": self.alerts_opened}
