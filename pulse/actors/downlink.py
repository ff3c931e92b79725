"""Downlink: MQTT messages from Pulse to devices (desired state, commands), sent in the background.

Callers enqueue and return at once; one connection publishes at QoS 1 and reconnects with
backoff, so a broker restart delays messages instead of failing API calls.
"""
from __future__ import annotations

import asyncio
import logging

import aiomqtt

from pulse.domain.messages import Publish
from pulse.config.settings import Settings

log = logging.getLogger(__name__)


class Downlink:
    def __init__(self, settings: Settings, max_queue: int = 100_000) -> None:
        self.host, self.port, self.user, self.password = settings.service_mqtt()
        self.queue: asyncio.Queue[Publish] = asyncio.Queue(max_queue)
        self.sent = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def publish(self, messages: list[Publish]) -> None:
        self.start()
        for m in messages:
            await self.queue.put(m)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far has been handed to the broker."""
        await asyncio.wait_for(self.queue.join(), timeout)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        current: Publish | None = None  # taken from the queue but not yet sent: retried first, in order
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, username=self.user, password=self.password,
                                          timeout=10) as client:
                    backoff = 0.5
                    while True:
                        if current is None:
                            current = await self.queue.get()
                        await client.publish(current.topic, current.payload, qos=current.qos, retain=current.retain)
                        current = None
                        self.sent += 1
                        self.queue.task_done()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # broker down or auth refused: retry, never drop
                log.warning("downlink: %s; retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
