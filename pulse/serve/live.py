"""The Serve side of live push: this process's WebSocket/SSE clients, fed from the node's LiveHub.

One `LiveFanout` per API process (Serve replica). It registers the union of its clients'
subscriptions with the hub (so the hosts publish only what someone watches), long-polls the hub
from one task, and hands each event to the clients whose subscription matches, each into its own
bounded drop-oldest queue (`pulse.domain.live`). A slow client therefore loses its oldest events
and is told how many; it never makes memory grow or holds up the other clients.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from pulse.config.settings import Settings
from pulse.domain.live import DropOldestQueue, Event, Subscription, Watch, dropped_notice
from pulse.errors import RateLimited
from pulse.services.ports import Runtime

log = logging.getLogger(__name__)
POLL_S = 5.0  # one long poll; it returns as soon as events arrive


class TooManyStreams(RateLimited):
    """Connection cap reached (WebSocket close 4029, SSE 429)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after_s=5.0)


@dataclass(eq=False)
class LiveClient:
    """One connected stream: its subscription, its bounded queue and a wake-up for its writer."""
    subscription: Subscription
    queue: DropOldestQueue
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    devices: frozenset[str] | None = None  # subscription.devices(), cached: matching runs per event
    delivered: int = 0

    def offer(self, event: Event) -> None:
        shaped = self.subscription.shape(event, self.devices)
        if shaped is not None:
            self.queue.put(shaped)
            self.wakeup.set()

    async def next_batch(self, timeout_s: float) -> list[Event]:
        """Events waiting (after a `dropped` notice if some were lost); [] after `timeout_s` idle."""
        if not self.queue:
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout_s)
            except asyncio.TimeoutError:
                return []
        events, dropped = self.queue.take()
        if dropped:
            events.insert(0, dropped_notice(self.subscription.tenant_id, dropped, int(time.time() * 1000)))
        self.delivered += len(events)
        return events


class LiveFanout:
    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.listener_id = f"api-{uuid.uuid4().hex[:12]}"
        self.clients: dict[str, set[LiveClient]] = defaultdict(set)  # tenant -> its clients here
        self._pump: asyncio.Task | None = None
        self._changes = asyncio.Lock()
        self.hub_dropped = 0

    @property
    def total(self) -> int:
        return sum(len(c) for c in self.clients.values())

    def count(self, tenant_id: str) -> int:
        return len(self.clients.get(tenant_id, ()))

    async def connect(self, subscription: Subscription) -> LiveClient:
        """Registers a client (refused beyond the caps) and tells the hub what is now watched."""
        s, tenant = self.settings, subscription.tenant_id
        if self.total >= s.live_max_subscribers:
            raise TooManyStreams(f"live stream limit reached ({s.live_max_subscribers} per API process)")
        if self.count(tenant) >= s.live_max_per_tenant:
            raise TooManyStreams(f"live stream limit reached ({s.live_max_per_tenant} per tenant)")
        client = LiveClient(subscription, DropOldestQueue(s.live_queue_size), devices=subscription.devices())
        self.clients[tenant].add(client)
        await self.changed()
        return client

    async def disconnect(self, client: LiveClient) -> None:
        """Idempotent: an SSE response releases its client however it ends."""
        tenant = client.subscription.tenant_id
        if client not in self.clients.get(tenant, ()):
            return
        self.clients[tenant].discard(client)
        if not self.clients[tenant]:
            del self.clients[tenant]
        await self.changed()

    async def resubscribed(self, client: LiveClient) -> None:
        """The client changed its filters (WebSocket actions)."""
        client.devices = client.subscription.devices()
        await self.changed()

    async def changed(self) -> None:
        """Send this process's union of subscriptions to the hub; start or stop the pump."""
        async with self._changes:
            watch = self._watch()
            await self.runtime.live_watch(self.listener_id, watch)
            if watch and (self._pump is None or self._pump.done()):
                self._pump = asyncio.create_task(self._run())
            elif not watch and self._pump is not None:
                self._pump.cancel()
                self._pump = None

    def _watch(self) -> Watch:
        """What this process's clients watch, together."""
        return Watch.union(c.subscription.watch() for cs in self.clients.values() for c in cs)

    def dispatch(self, events: list[Event]) -> None:
        for event in events:
            for client in self.clients.get(event["tenant_id"], ()):  # only the event's own tenant
                client.offer(event)

    async def _run(self) -> None:
        """Long-poll the hub and hand events out. An unknown listener (the hub restarted) re-registers."""
        while True:
            try:
                events, dropped = await self.runtime.live_poll(self.listener_id, POLL_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live hub poll failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if dropped < 0:
                await self._reregister()
                continue
            self.hub_dropped += dropped
            self.dispatch(events)

    async def _reregister(self) -> None:
        watch = self._watch()
        await self.runtime.live_watch(self.listener_id, watch)
        if not watch:
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        self.clients.clear()
        try:
            await self.runtime.live_watch(self.listener_id, Watch())
        except Exception:
            log.exception("could not unregister from the live hub")
