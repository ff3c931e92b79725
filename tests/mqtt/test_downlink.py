"""Downlink shutdown: `close` ends the sender even when a cancel is swallowed on its way in, as
Python 3.11's `asyncio.wait_for` does when the awaited PUBACK arrives in the same loop step (seen
as a teardown that waited forever). No broker: the publisher is replaced by one that misbehaves."""
from __future__ import annotations

import asyncio

from pulse.config.settings import Settings
from pulse.domain.messages import Publish
from pulse.mqtt.publisher import Downlink


class _SwallowsOneCancel:
    """Publishes instantly, except that the first cancel during a publish is eaten, as wait_for does."""

    def __init__(self) -> None:
        self.swallowed = 0
        self.closed = False

    async def publish(self, topic, payload, qos=1, retain=False) -> None:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1

    async def close(self) -> None:
        self.closed = True


async def test_close_ends_the_sender_even_if_a_cancel_is_swallowed(tmp_path):
    downlink = Downlink(Settings(data_dir=tmp_path))
    downlink.publisher = _SwallowsOneCancel()
    await downlink.publish([Publish(topic=f"t/{i}", payload=b"{}") for i in range(3)])
    await asyncio.sleep(0.01)  # the sender is inside its first publish
    await asyncio.wait_for(downlink.close(), 10)
    assert downlink.publisher.swallowed == 1 and downlink.publisher.closed
    assert downlink._task is None
