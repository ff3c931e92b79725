"""Pulse's one outbound MQTT publisher: a shared connection, and the downlink's background queue on it.

`MqttPublisher` is one lazily opened connection (plain or TLS, see `endpoint`) whose `publish`
returns once the broker has the message (PUBACK at QoS 1); a failed publish drops the connection
and raises `MqttError`, and the next call reconnects. The MQTT notification channel awaits it
directly, so a failure becomes a retried delivery.

`Downlink` queues messages from Pulse to devices (desired state, commands) and sends them in the
background through an `MqttPublisher`: callers enqueue and return at once (or wait a bounded time
for their messages), a broker restart delays messages (retried with backoff, in order) instead of
failing API calls. Once the broker has a message, `on_sent` hears of it (a command is delivered).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiomqtt

from pulse.config.settings import Settings
from pulse.domain.messages import Publish
from pulse.mqtt.cancel import cancel_until_done
from pulse.mqtt.endpoint import MqttEndpoint, service_endpoint
from pulse.mqtt.errors import MqttError

log = logging.getLogger(__name__)


class MqttPublisher:
    """One connection shared by concurrent publishes; opened on first use, reopened after a failure."""

    def __init__(self, endpoint: MqttEndpoint, timeout_s: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Hand one message to the broker; raises `MqttError` if it could not be."""
        client: aiomqtt.Client | None = None
        try:
            client = await self._connected()
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=self.timeout_s)
        except (aiomqtt.MqttError, OSError, asyncio.TimeoutError) as e:
            await self._drop_if(client)
            raise MqttError(f"publish to {self.endpoint} failed: {str(e) or type(e).__name__}") from e
        except BaseException:  # cancelled mid-publish: the connection's state is unknown
            await self._drop_if(client)
            raise

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:  # one connect at a time; publishes then share the connection
            if self._client is None:
                ep = self.endpoint
                client = aiomqtt.Client(ep.host, ep.port, username=ep.username, password=ep.password,
                                        tls_context=ep.tls_context(), timeout=self.timeout_s)
                await client.__aenter__()
                self._client = client
            return self._client

    async def _drop_if(self, client: aiomqtt.Client | None) -> None:
        """Drop the connection a publish failed on, unless another caller already replaced it."""
        async with self._lock:
            if client is not None and self._client is client:
                await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:  # bounded: a disconnect from a broker that stopped answering must not hang a shutdown
                await asyncio.wait_for(client.__aexit__(None, None, None), self.timeout_s)
            except Exception:  # already broken (or timed out); nothing left to release
                pass


class Downlink:
    """MQTT messages to devices as Pulse's service account, published in the background at their QoS."""

    def __init__(self, settings: Settings, max_queue: int = 100_000,
                 on_sent: Callable[[Publish], Awaitable[None]] | None = None) -> None:
        self.publisher = MqttPublisher(service_endpoint(settings))
        self.queue: asyncio.Queue[tuple[Publish, asyncio.Future | None]] = asyncio.Queue(max_queue)
        self.on_sent = on_sent
        self.sent = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def publish(self, messages: list[Publish], wait_s: float = 0.0) -> None:
        """Queue `messages`; with `wait_s`, return once the broker has them or that time has passed
        (they stay queued either way)."""
        self.start()
        done = [asyncio.get_running_loop().create_future() for _ in messages] if wait_s > 0 else []
        for i, m in enumerate(messages):
            await self.queue.put((m, done[i] if done else None))
        if done:
            await asyncio.wait(done, timeout=wait_s)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far has been handed to the broker."""
        await asyncio.wait_for(self.queue.join(), timeout)

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_until_done([task] if task else [])
        await self.publisher.close()

    async def _run(self) -> None:
        while True:
            message, done = await self.queue.get()
            await self._send(message)
            self.sent += 1
            if self.on_sent is not None and message.command_id is not None:
                try:
                    await self.on_sent(message)
                except Exception:  # the message is out; the device's ack still moves the command on
                    log.exception("downlink: recording the delivery of command %s failed", message.command_id)
            if done is not None and not done.done():
                done.set_result(None)
            self.queue.task_done()

    async def _send(self, m: Publish) -> None:
        """Until the broker has it: a message is never dropped, and the ones behind it wait (order)."""
        backoff = 0.5
        while True:
            try:
                await self.publisher.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
                return
            except Exception as e:  # broker down, auth or TLS refused: retry, never drop
                log.warning("downlink: %s; retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
