"""The bridge's MQTT parser (`_Protocol.data_received`): however the transport splits the byte
stream (a packet over many reads, many packets in one read, one byte at a time), the same PUBLISH
messages come out in order, and control packets reach the subscriber once each."""
from __future__ import annotations

import asyncio
import random
import struct

from pulse.mqtt.subscriber import PINGRESP, PUBLISH, SUBACK, MqttSubscriber, _packet, _Protocol


def publish(topic: str, payload: bytes, pid: int) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", pid) if pid else b"") + payload
    return _packet((PUBLISH << 4) | (0x02 if pid else 0), body)


def stream_of(rng: random.Random) -> tuple[bytes, list[tuple[str, bytes, int]], list[tuple[int, bytes]]]:
    """PUBLISH packets at QoS 0 and 1 with 1- to 3-byte remaining lengths, and control packets."""
    parts, msgs, controls = [], [], []
    for k in range(120):
        control = (PINGRESP, b"") if k % 17 == 5 else (SUBACK, b"\x00\x01\x01") if k % 23 == 7 else None
        if control:
            parts.append(_packet(control[0] << 4, control[1]))
            controls.append(control)
            continue
        # sizes stepping through every low 7 bits of the remaining length, and a few extremes
        size = rng.choice([0, 1, 40_000]) if k % 4 == 0 else (k * 131) % 20_000
        payload = rng.randbytes(size)
        pid = k + 1 if rng.random() < 0.5 else 0
        topic = f"tenant/t/device/d{k}/telemetry" + "é" * (k % 3)  # non-ASCII: lengths are in bytes
        msgs.append((topic, payload, pid))
        parts.append(publish(topic, payload, pid))
    return b"".join(parts), msgs, controls


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def parse(stream: bytes, cuts: list[int]) -> tuple[list, list]:
    sub = MqttSubscriber()
    sub._wake = asyncio.Event()
    sub._transport = _Transport()
    controls: list = []
    sub._control = lambda kind, body: controls.append((kind, bytes(body)))
    protocol, pos = _Protocol(sub), 0
    for cut in [*cuts, len(stream)]:
        protocol.data_received(stream[pos:cut])
        pos = cut
    return list(sub.queue), controls


async def test_any_split_of_the_stream_yields_the_same_messages():
    rng = random.Random(3)
    stream, msgs, controls = stream_of(rng)
    whole = await parse(stream, [])
    assert whole == (msgs, controls) and all(type(m[1]) is bytes for m in whole[0])
    splits = [sorted(rng.sample(range(1, len(stream)), rng.randint(1, 80))) for _ in range(30)]
    splits.append(list(range(1, 2_000)))  # the first packets one byte at a time
    for cuts in splits:
        assert await parse(stream, cuts) == (msgs, controls)
