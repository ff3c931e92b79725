"""LiveHub: where the actors' live events meet the API processes that hold the clients.

One per node, a service actor like the notifier (in-process under `LocalRuntime`). API processes
(Serve replicas) register what their clients watch and long-poll for events; the hub tells every
shard the union, so hosts publish only for watched tenants and devices and ingest without
subscribers does no live work at all. Events for a process wait in a bounded drop-oldest queue.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pulse.config.settings import Settings
from pulse.domain.live import DropOldestQueue, Event, Watch

log = logging.getLogger(__name__)
REFRESH_S = 5.0  # re-send the watch to the shards: a shard Ray restarted starts with none
REPLICA_TTL_S = 30.0  # a process that has not polled for this long is gone (its watch is dropped)


@dataclass
class Listener:
    """One API process: what its clients watch and the events waiting for its next poll."""
    watch: Watch
    queue: DropOldestQueue
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    last_poll: float = field(default_factory=time.monotonic)


class LiveHub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Any = None
        self.listeners: dict[str, Listener] = {}
        self.current = Watch()
        self.published = 0
        self._refresh: asyncio.Task | None = None

    async def start(self, runtime: Any) -> None:
        self.runtime = runtime
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
            self._refresh = None

    async def watch(self, listener_id: str, watch: Watch) -> None:
        """An API process's clients changed: its new union (an empty watch unregisters it)."""
        if watch:
            current = self.listeners.get(listener_id)
            if current is None:
                self.listeners[listener_id] = Listener(watch, DropOldestQueue(self.settings.live_hub_queue_size))
            else:
                current.watch = watch
        else:
            self._drop(listener_id)
        await self._broadcast_if_changed()

    async def publish(self, events: list[Event]) -> int:
        """Events from the hosts (already limited to the watch); queued for each process that wants them."""
        self.published += len(events)
        for listener in self.listeners.values():
            wanted = [e for e in events if listener.watch.wants(e)]
            if wanted:
                listener.queue.extend(wanted)
                listener.wakeup.set()
        return len(events)

    async def poll(self, listener_id: str, timeout_s: float) -> tuple[list[Event], int]:
        """Waits up to `timeout_s` for events for this process; returns them and how many were dropped.
        An unknown process (it never watched, or the hub restarted) gets nothing and re-registers."""
        listener = self.listeners.get(listener_id)
        if listener is None:
            return [], -1
        listener.last_poll = time.monotonic()
        if not listener.queue:
            listener.wakeup.clear()
            try:
                await asyncio.wait_for(listener.wakeup.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        listener.last_poll = time.monotonic()
        return listener.queue.take()

    async def stats(self) -> dict[str, Any]:
        return {"listeners": len(self.listeners), "published": self.published,
                "watched_tenants": sorted(set(self.current.telemetry) | self.current.status | self.current.alerts)}

    def _drop(self, listener_id: str) -> None:
        listener = self.listeners.pop(listener_id, None)
        if listener is not None:
            listener.wakeup.set()

    async def _broadcast_if_changed(self, force: bool = False) -> None:
        union = Watch.union(lst.watch for lst in self.listeners.values())
        if union == self.current and not force:
            return
        self.current = union
        if self.runtime is not None:
            await self.runtime.broadcast_watch(union)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                cutoff = time.monotonic() - REPLICA_TTL_S
                for gone in [k for k, lst in self.listeners.items() if lst.last_poll < cutoff]:
                    self._drop(gone)
                await self._broadcast_if_changed(force=bool(self.current))
            except Exception:  # keep refreshing; a shard being restarted answers next time
                log.exception("live watch refresh failed")
