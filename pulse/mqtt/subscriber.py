"""A lean MQTT 3.1.1 subscriber for the ingest bridge: batches in, PUBACKs out when Pulse says so.

Why not aiomqtt/paho here: the bridge is the one process every message crosses, and paho spends
most of its time building per-packet objects (an MQTT 5 `Properties` per PUBLISH, a
`MQTTMessage` each, one callback each) and it acknowledges on receipt unless reached into. The
subscriber side of MQTT 3.1.1 is small — CONNECT, SUBSCRIBE, PUBLISH at QoS 0/1, PUBACK, PING —
so this parses PUBLISH packets straight out of the socket buffer into `(topic, payload, packet_id)`
tuples and hands them over a batch at a time. Acknowledgements are explicit (`ack`), in arrival
order as MQTT requires, one socket write per batch.

Both brokers Pulse runs on speak 3.1.1, shared subscriptions (`$share/...`) included on Mosquitto.
`mqtts://` endpoints are read over asyncio's TLS transport, certificate verified (see `endpoint`).
Devices and the outbound publisher (`pulse.mqtt.publisher`) use aiomqtt; this is only the bridge's intake.
"""
from __future__ import annotations

import asyncio
import ssl
import struct
import time
from collections import deque

from pulse.mqtt.endpoint import MqttEndpoint
from pulse.mqtt.errors import MqttError

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14)
CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client identifier rejected", 3: "server unavailable",
                   4: "bad user name or password", 5: "not authorized"}
PAUSE_AT = 100_000  # queued messages: stop reading the socket (the broker holds the rest) ...
RESUME_AT = 20_000  # ... and read again once the bridge has caught up this far

Received = tuple[str, bytes, int]  # topic, payload, packet id (0 for QoS 0)


def _utf8(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + _remaining_length(len(body)) + body


def connect_packet(client_id: str, username: str | None, password: str | None, clean_session: bool,
                   keepalive: int) -> bytes:
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0) | (0x02 if clean_session else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _utf8(client_id)
    if username is not None:
        body += _utf8(username)
    if password is not None:
        body += _utf8(password)
    return _packet(CONNECT << 4, body)


class _Protocol(asyncio.Protocol):
    """Parses the byte stream; everything else lives in `MqttSubscriber`.

    This loop runs once per message the node ingests, so it is written for few Python steps: it
    parses straight from the bytes the transport hands over (a slice of `bytes` is the payload,
    one copy), and only what a read left of a packet is kept for the next one."""

    def __init__(self, owner: "MqttSubscriber") -> None:
        self.owner = owner
        self.rest = bytearray()  # the start of a packet the last read did not complete
        self.need = 0  # bytes `rest` must reach before parsing again (0: unknown yet)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(exc)

    def data_received(self, data: bytes) -> None:
        self.owner.last_heard = time.monotonic()
        if self.rest:
            self.rest += data
            if len(self.rest) < self.need:  # a large packet arriving in many reads: parse it once
                return
            data = bytes(self.rest)
            self.rest = bytearray()
        owner = self.owner
        queue = owner.queue
        before = len(queue)
        n, pos = len(data), 0
        while n - pos >= 2:
            first, length = data[pos], data[pos + 1]
            i = pos + 2
            if length & 0x80:  # remaining length: 1-4 bytes of 7 bits (one, up to 127 bytes)
                length, shift, complete = length & 0x7F, 7, False
                while i < n:
                    b = data[i]
                    i += 1
                    length |= (b & 0x7F) << shift
                    if not b & 0x80:
                        complete = True
                        break
                    shift += 7
                    if shift > 21:
                        owner._protocol_error("malformed remaining length")
                        return
                if not complete:
                    self.need = 0
                    break
            end = i + length
            if end > n:
                self.need = end - pos
                break
            if first >> 4 == PUBLISH:
                j = i + 2 + ((data[i] << 8) | data[i + 1])
                if first & 0x06:
                    queue.append((data[i + 2:j].decode(), data[j + 2:end], (data[j] << 8) | data[j + 1]))
                else:
                    queue.append((data[i + 2:j].decode(), data[j:end], 0))
            else:
                owner._control(first >> 4, data[i:end])
            pos = end
        else:
            self.need = 0
        if pos < n:
            self.rest = bytearray(data[pos:])
        if len(queue) != before:
            owner._arrived(len(queue))


class MqttSubscriber:
    """One connection: `connect`, `subscribe`, then `batch`/`ack` in a loop; `close` when done."""

    def __init__(self, keepalive_s: int = 30) -> None:
        self.keepalive_s = keepalive_s
        self.queue: deque[Received] = deque()
        self.session_present = False
        self.last_heard = time.monotonic()
        self._transport: asyncio.Transport | None = None
        self._waiters: dict[int, asyncio.Future] = {}  # control packet type -> its answer
        self._wake: asyncio.Event | None = None
        self._head_since: float | None = None  # when the oldest queued message arrived
        self._error: BaseException | None = None
        self._paused = False
        self._pinger: asyncio.Task | None = None
        self._next_id = 0

    # ---- connection -----------------------------------------------------------------------
    async def connect(self, endpoint: MqttEndpoint, client_id: str, clean_session: bool = False,
                      timeout_s: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        tls = endpoint.tls_context()
        try:
            await asyncio.wait_for(loop.create_connection(
                lambda: _Protocol(self), endpoint.host, endpoint.port, ssl=tls,
                ssl_handshake_timeout=timeout_s if tls else None), timeout_s)
        except ssl.SSLError as e:
            raise MqttError(f"TLS with {endpoint} failed: {e}") from e
        answer = self._expect(CONNACK)
        self._transport.write(connect_packet(client_id, endpoint.username, endpoint.password, clean_session,
                                             self.keepalive_s))
        body = await asyncio.wait_for(answer, timeout_s)
        if body[1] != 0:
            self._transport.close()
            raise MqttError(f"connection refused: {CONNACK_REASONS.get(body[1], body[1])}")
        self.session_present = bool(body[0] & 0x01)
        self._pinger = asyncio.create_task(self._keepalive())

    async def subscribe(self, topic_filter: str, qos: int = 1, timeout_s: float = 10.0) -> int:
        self._next_id = self._next_id % 0xFFFF + 1
        answer = self._expect(SUBACK)
        self._transport.write(_packet((SUBSCRIBE << 4) | 0x02, struct.pack("!H", self._next_id)
                                      + _utf8(topic_filter) + bytes([qos])))
        granted = (await asyncio.wait_for(answer, timeout_s))[2]
        if granted == 0x80:
            raise MqttError(f"subscription to {topic_filter} refused")
        return granted

    async def unsubscribe(self, topic_filter: str, timeout_s: float = 10.0) -> None:
        self._next_id = self._next_id % 0xFFFF + 1
        answer = self._expect(UNSUBACK)
        self._transport.write(_packet((UNSUBSCRIBE << 4) | 0x02, struct.pack("!H", self._next_id) + _utf8(topic_filter)))
        await asyncio.wait_for(answer, timeout_s)

    async def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(bytes([DISCONNECT << 4, 0]))
            self._transport.close()

    # ---- messages -------------------------------------------------------------------------
    async def batch(self, max_messages: int, max_wait_s: float) -> list[Received]:
        """The next batch: as soon as `max_messages` are queued, or when the oldest queued message
        has waited `max_wait_s` (a deadline, so a trickle is not held back by waiting for more)."""
        while True:
            self._raise_if_broken()
            if len(self.queue) >= max_messages:
                break
            if self.queue:
                left = self._head_since + max_wait_s - time.monotonic()
                if left <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except asyncio.TimeoutError:
                    break
            else:
                self._wake.clear()
                await self._wake.wait()
        take = min(max_messages, len(self.queue))
        queue = self.queue
        out = [queue.popleft() for _ in range(take)]
        if not queue:
            self._head_since = None  # else the rest keep the older arrival time: served sooner, never later
        if self._paused and len(queue) <= RESUME_AT:
            self._paused = False
            self._transport.resume_reading()
        return out

    def ack(self, messages: list[Received]) -> None:
        """PUBACK every QoS 1 message of a processed batch, in arrival order, in one write."""
        acks = b"".join(b"\x40\x02" + struct.pack("!H", pid) for _, _, pid in messages if pid)
        if acks and self._transport is not None and not self._transport.is_closing():
            self._transport.write(acks)

    # ---- internals ------------------------------------------------------------------------
    def _expect(self, packet_type: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters[packet_type] = fut
        return fut

    def _control(self, packet_type: int, body: bytes) -> None:
        fut = self._waiters.pop(packet_type, None)
        if fut is not None and not fut.done():
            fut.set_result(body)

    def _arrived(self, queued: int) -> None:
        if self._head_since is None:
            self._head_since = time.monotonic()
        self._wake.set()
        if not self._paused and queued >= PAUSE_AT:
            self._paused = True
            self._transport.pause_reading()

    def _lost(self, exc: Exception | None) -> None:
        self._error = exc or MqttError("connection closed by the broker")
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(MqttError(f"connection lost: {self._error}"))
        self._waiters.clear()
        if self._wake is not None:
            self._wake.set()
        if self._pinger is not None:
            self._pinger.cancel()

    def _protocol_error(self, what: str) -> None:
        self._lost(MqttError(f"protocol error: {what}"))
        self._transport.abort()

    def _raise_if_broken(self) -> None:
        if self._error is not None:
            raise MqttError(f"connection lost: {self._error}")

    async def _keepalive(self) -> None:
        """PINGREQ every half keepalive; a broker silent for 1.5 keepalives is taken as gone."""
        while True:
            await asyncio.sleep(self.keepalive_s / 2)
            if time.monotonic() - self.last_heard > 1.5 * self.keepalive_s:
                self._transport.abort()
                return
            self._transport.write(bytes([PINGREQ << 4, 0]))
