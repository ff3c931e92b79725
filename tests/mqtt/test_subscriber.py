"""The bridge's MQTT 3.1.1 subscriber against real brokers: batches, explicit acks, persistent sessions."""
from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from pulse.mqtt.errors import MqttError
from pulse.mqtt.subscriber import MqttSubscriber, connect_packet, _remaining_length

if TYPE_CHECKING:
    from tests.broker.fixtures import BrokerHandle

pytest_plugins = ["tests.broker.fixtures"]
pytestmark = [pytest.mark.broker]

FILTER = "tenant/+/device/+/#"


def test_remaining_length_encoding_matches_the_spec_examples():
    assert _remaining_length(0) == b"\x00"
    assert _remaining_length(127) == b"\x7f"
    assert _remaining_length(128) == b"\x80\x01"
    assert _remaining_length(16_383) == b"\xff\x7f"
    assert _remaining_length(2_097_152) == b"\x80\x80\x80\x01"


def test_connect_packet_carries_flags_and_credentials():
    pkt = connect_packet("c1", "user", "pw", clean_session=False, keepalive=30)
    assert pkt[0] == 0x10 and b"MQTT\x04\xc0\x00\x1e" in pkt and pkt.endswith(b"\x00\x04user\x00\x02pw")
    assert connect_packet("c1", None, None, True, 30)[9] == 0x02


async def _subscriber(h: BrokerHandle, client_id: str, clean: bool = False) -> MqttSubscriber:
    sub = MqttSubscriber()
    await sub.connect(h.endpoint(), client_id, clean_session=clean)
    await sub.subscribe(FILTER, qos=1)
    return sub


async def _publish(h: BrokerHandle, n: int, device: str = "d1", qos: int = 1, envelope: bool = False) -> None:
    """n messages `{"seq": i}` (or valid telemetry envelopes with that seq and one metric)."""
    secret, _ = await h.provision("acme", device)
    async with h.client(f"acme/{device}", secret) as dev:
        for i in range(n):
            body = f'{{"version": "1", "metrics": {{"t": {i}}}, "seq": {i}}}' if envelope else f'{{"seq": {i}}}'
            await dev.publish(f"tenant/acme/device/{device}/telemetry", body.encode(), qos=qos)


def _seqs(batch) -> list[int]:
    """Sequence numbers of the telemetry in a batch (the embedded broker also announces presence)."""
    return [json.loads(p)["seq"] for t, p, _ in batch if t.endswith("/telemetry")]


async def test_batches_fill_up_to_the_size_then_close_on_the_deadline(mqtt_broker: BrokerHandle):
    sub = await _subscriber(mqtt_broker, "bridge-test-a", clean=True)
    try:
        await _publish(mqtt_broker, 25)
        got = []
        async with asyncio.timeout(5):
            while len(_seqs(got)) < 25:
                batch = await sub.batch(10, 0.05)
                assert 0 < len(batch) <= 10
                sub.ack(batch)
                got += batch
        assert _seqs(got) == list(range(25))
        pids = [pid for t, _, pid in got if t.endswith("/telemetry")]
        assert all(pids) and len(set(pids)) == 25  # QoS 1: each has its packet id
    finally:
        await sub.close()


async def test_unacked_messages_are_redelivered_to_the_persistent_session(mosquitto_broker: BrokerHandle):
    # Mosquitto only: amqtt does not redeliver a persistent session's unacked messages.
    mqtt_broker = mosquitto_broker
    sub = await _subscriber(mqtt_broker, "bridge-test-b", clean=True)
    await sub.close()
    sub = await _subscriber(mqtt_broker, "bridge-test-b")
    await _publish(mqtt_broker, 5)
    async with asyncio.timeout(5):
        first = []
        while len(_seqs(first)) < 5:
            first += await sub.batch(100, 0.05)
    sub.ack(first[:2] if _seqs(first[:2]) == [0, 1] else [])
    await asyncio.sleep(0.2)  # let the acks reach the broker before the connection drops
    await sub.close()
    again = await _subscriber(mqtt_broker, "bridge-test-b")
    try:
        assert again.session_present
        got = []
        async with asyncio.timeout(5):
            while len(_seqs(got)) < 3:
                got += await again.batch(100, 0.05)
        assert set(_seqs(got)) >= {2, 3, 4} and not set(_seqs(got)) & {0, 1}
        again.ack(got)
    finally:
        await again.close()


async def test_wrong_password_is_refused(mqtt_broker: BrokerHandle):
    sub = MqttSubscriber()
    with pytest.raises((MqttError, ConnectionError)):
        await sub.connect(mqtt_broker.endpoint(mqtt_broker.service_username, "wrong"), "bridge-test-c")
    await sub.close()


async def test_a_broken_connection_surfaces_in_batch(embedded_broker: BrokerHandle):
    sub = await _subscriber(embedded_broker, "bridge-test-d", clean=True)
    sub._transport.abort()  # the socket dies under the bridge
    with pytest.raises(MqttError):
        async with asyncio.timeout(5):
            await sub.batch(10, 0.05)


async def test_retiring_a_removed_bridge_ingests_what_its_session_held(mosquitto_broker: BrokerHandle):
    """ingest_bridges 2 -> 1: the offline bridge-1 session's share of the stream is ingested, not dropped."""
    from pulse.actors.ingest import SHARE_GROUP, TOPIC_FILTER, bridge_client_id, retire_sessions
    from pulse.actors.runtime import LocalRuntime

    h = mosquitto_broker
    share = f"$share/{SHARE_GROUP}/{TOPIC_FILTER}"
    subs = []
    for bridge_id in (0, 1):
        sub = MqttSubscriber()
        await sub.connect(h.endpoint(), bridge_client_id(bridge_id, h.service_password), clean_session=False)
        await sub.subscribe(share, qos=1)
        subs.append(sub)
    await subs[1].close()  # bridge 1 is gone; its persistent session stays in the share group
    await _publish(h, 40, envelope=True)
    got = []
    async with asyncio.timeout(5):
        while len(_seqs(got)) < 20:
            batch = await subs[0].batch(100, 0.05)
            subs[0].ack(batch)
            got += batch
    await subs[0].close()
    assert len(_seqs(got)) == 20  # round-robin: the other half waits in bridge 1's session

    settings = h.settings.model_copy(update={"ingest_bridges": 1})
    runtime = LocalRuntime(settings)
    await runtime.start()
    try:
        assert await retire_sessions(settings, runtime, idle_s=0.5) == 20
        pending = await runtime.pending_telemetry("acme", "d1")
    finally:
        await runtime.stop()
    assert pending is not None and sorted(pending["seq"].to_pylist()) == sorted(set(range(40)) - set(_seqs(got)))
    again = MqttSubscriber()
    await again.connect(h.endpoint(), bridge_client_id(1, h.service_password), clean_session=False)
    try:
        assert not again.session_present  # ended after it was drained
    finally:
        await again.close()
        cleanup = MqttSubscriber()
        await cleanup.connect(h.endpoint(), bridge_client_id(1, h.service_password), clean_session=True)
        await cleanup.close()


@pytest.mark.parametrize("mqtt_url, bridges, expected, dropped", [
    ("", 1, "plain", None),  # amqtt: no shared subscriptions at all
    ("mqtt://svc:pw@127.0.0.1:1883", 1, "plain", "shared"),  # restored after a Mosquitto restart
    ("mqtt://svc:pw@127.0.0.1:1883", 2, "shared", "plain"),
])
def test_one_bridge_subscribes_without_the_share_and_drops_the_other_filter(tmp_path, mqtt_url, bridges, expected,
                                                                            dropped):
    from pulse.actors.ingest import SHARED_FILTER, TOPIC_FILTER, IngestBridge
    from pulse.config.settings import Settings

    names = {"plain": TOPIC_FILTER, "shared": SHARED_FILTER, None: None}
    bridge = IngestBridge(Settings(data_dir=tmp_path, mqtt_url=mqtt_url, ingest_bridges=bridges))
    assert (bridge._filter(), bridge._other_filter()) == (names[expected], names[dropped])
