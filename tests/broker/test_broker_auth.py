"""Device authentication and topic ACLs, on the embedded broker and on Mosquitto (dynsec)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from pulse.broker.embedded import EmbeddedBroker
from pulse.broker.credentials import EmbeddedCredentials
from pulse.storage import tokens

if TYPE_CHECKING:  # imported for real by pytest_plugins (importing it here would defeat assert rewriting)
    from tests.broker.fixtures import BrokerHandle

pytest_plugins = ["tests.broker.fixtures"]  # also in tests/conftest.py; kept so this module stands alone

pytestmark = [pytest.mark.broker]

ALL_DEVICES = "tenant/+/device/+/#"
WAIT_S = 3.0  # upper bound for a message to arrive on 127.0.0.1
QUIET_S = 0.3  # how long "nothing arrives" is observed


async def next_message(client: aiomqtt.Client, timeout: float = WAIT_S, presence: bool = False) -> aiomqtt.Message:
    """The next message; the embedded broker's presence announcements are skipped unless asked for."""
    async with asyncio.timeout(timeout):
        async for msg in client.messages:
            if presence == str(msg.topic).endswith("/presence"):
                return msg
    raise AssertionError("message stream ended")


async def assert_refused(handle: BrokerHandle, username: str | None, password: str | None) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with asyncio.timeout(WAIT_S + 2):
            async with handle.client(username, password) if username is not None else _anonymous(handle):
                pass


def _anonymous(handle: BrokerHandle) -> aiomqtt.Client:
    return aiomqtt.Client(handle.host, handle.port, timeout=5)


async def test_device_publish_reaches_service(mqtt_broker: BrokerHandle) -> None:
    secret, _ = await mqtt_broker.provision("t1", "d1")
    async with mqtt_broker.client() as service:
        await service.subscribe(ALL_DEVICES, qos=1)
        async with mqtt_broker.client("t1/d1", secret) as device:
            payload = json.dumps({"version": "1", "ts": "2024-01-01T00:00:00Z", "metrics": {"temp": 21.5}})
            await device.publish("tenant/t1/device/d1/telemetry", payload, qos=1)
            await device.publish("tenant/t1/device/d1/shadow/reported", '{"reported": {}}', qos=1)
        msg = await next_message(service)
        assert str(msg.topic) == "tenant/t1/device/d1/telemetry"
        assert json.loads(msg.payload)["metrics"] == {"temp": 21.5}
        assert str((await next_message(service)).topic) == "tenant/t1/device/d1/shadow/reported"


async def test_bad_credentials_refused(mqtt_broker: BrokerHandle) -> None:
    secret, _ = await mqtt_broker.provision("t1", "d1")
    await assert_refused(mqtt_broker, "t1/d1", "wrong-" + secret)
    await assert_refused(mqtt_broker, "t1/d1", "")
    await assert_refused(mqtt_broker, "t1/d2", secret)  # another device's name with d1's token
    await assert_refused(mqtt_broker, "t1", secret)
    await assert_refused(mqtt_broker, None, None)  # anonymous
    await assert_refused(mqtt_broker, mqtt_broker.service_username, "wrong")
    async with mqtt_broker.client("t1/d1", secret):  # the broker is still fine
        pass


async def test_device_cannot_publish_outside_its_prefix(mqtt_broker: BrokerHandle) -> None:
    secret, _ = await mqtt_broker.provision("t1", "d1")
    await mqtt_broker.provision("t1", "d2")
    await mqtt_broker.provision("t2", "d1")
    async with mqtt_broker.client() as service:
        await service.subscribe("#", qos=1)
        async with mqtt_broker.client("t1/d1", secret) as device:
            for topic in (
                "tenant/t1/device/d2/telemetry",  # same tenant, other device
                "tenant/t2/device/d1/telemetry",  # other tenant, same device id
                "tenant/t1/device/d1x/telemetry",  # prefix of a longer id
                "tenant/t1/telemetry",
                "other",
            ):
                await device.publish(topic, "{}", qos=1)  # acknowledged, then dropped by the broker
            await device.publish("tenant/t1/device/d1/heartbeat", "{}", qos=1)  # the connection survived
        # Same client, same QoS: the refused messages would have arrived before this one.
        assert str((await next_message(service)).topic) == "tenant/t1/device/d1/heartbeat"
        with pytest.raises(asyncio.TimeoutError):
            await next_message(service, QUIET_S)


async def test_device_subscribes_only_its_own_topics(mqtt_broker: BrokerHandle) -> None:
    secret, _ = await mqtt_broker.provision("t1", "d1")
    async with mqtt_broker.client("t1/d1", secret) as device, mqtt_broker.client() as service:
        for pattern in (ALL_DEVICES, "tenant/t1/device/+/commands", "#", "tenant/t1/device/d2/#"):
            granted = await device.subscribe(pattern, qos=1)
            assert list(granted) == [128], pattern
        assert list(await device.subscribe("tenant/t1/device/d1/#", qos=1)) == [1]
        await service.publish("tenant/t1/device/d2/commands", '{"command_id": "x"}', qos=1)
        await service.publish("tenant/t1/device/d1/commands", '{"command_id": "c1"}', qos=1)
        msg = await next_message(device)
        assert str(msg.topic) == "tenant/t1/device/d1/commands"
        assert json.loads(msg.payload) == {"command_id": "c1"}


async def test_a_device_gets_only_its_own_retained_messages(mqtt_broker: BrokerHandle) -> None:
    """Retained downlinks (`shadow/desired`) of other devices and tenants never reach a device, also not
    through another client's wildcard subscription (the bridge's) when it connects."""
    secret, _ = await mqtt_broker.provision("t1", "d1")
    async with mqtt_broker.client() as service:
        await service.subscribe(ALL_DEVICES, qos=1)  # as the ingest bridge does
        for tenant, device in (("t1", "d2"), ("t2", "d1"), ("t1", "d1")):
            await service.publish(f"tenant/{tenant}/device/{device}/shadow/desired",
                                  json.dumps({"desired": {"owner": f"{tenant}/{device}"}}), qos=1, retain=True)
        async with mqtt_broker.client("t1/d1", secret) as device:
            await device.subscribe("tenant/t1/device/d1/shadow/desired", qos=1)
            msg = await next_message(device)
            assert str(msg.topic) == "tenant/t1/device/d1/shadow/desired"
            assert json.loads(msg.payload) == {"desired": {"owner": "t1/d1"}}
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(next_message(device), 1.0)


async def test_revoked_token_refused_after_cache_ttl(mqtt_broker: BrokerHandle) -> None:
    secret, token_id = await mqtt_broker.provision("t1", "d1")
    async with mqtt_broker.client("t1/d1", secret) as live:
        await tokens.revoke(mqtt_broker.db, "t1", "d1", token_id)
        if mqtt_broker.kind == "mosquitto":
            await mqtt_broker.credentials.remove_device("t1", "d1")  # Mosquitto only learns through dynsec
            # ... and dynsec also disconnects the live connection (the embedded broker does not).
            with pytest.raises(aiomqtt.MqttError):
                await next_message(live)
    await asyncio.sleep(mqtt_broker.cache_ttl_s + 0.2)
    await assert_refused(mqtt_broker, "t1/d1", secret)


async def test_rotated_token_replaces_old_one(mqtt_broker: BrokerHandle) -> None:
    old, _ = await mqtt_broker.provision("t1", "d1")
    new = (await tokens.rotate(mqtt_broker.db, "t1", "d1"))["token"]
    await mqtt_broker.credentials.set_device_secret("t1", "d1", new)
    await asyncio.sleep(mqtt_broker.cache_ttl_s + 0.2)
    await assert_refused(mqtt_broker, "t1/d1", old)
    async with mqtt_broker.client("t1/d1", new) as device:
        await device.publish("tenant/t1/device/d1/heartbeat", "{}", qos=1)
    await mqtt_broker.credentials.remove_device("t1", "d1")
    await mqtt_broker.credentials.remove_device("t1", "d1")  # idempotent


async def test_unauthenticated_client_cannot_disturb_a_session(mqtt_broker: BrokerHandle) -> None:
    """A refused CONNECT reusing the service's client id leaves the service's session alone."""
    secret, _ = await mqtt_broker.provision("t1", "d1")
    async with mqtt_broker.client(identifier="pulse-bridge-0", clean_session=False) as service:
        await service.subscribe(ALL_DEVICES, qos=1)
        for clean in (True, False):
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    mqtt_broker.host, mqtt_broker.port, username="t1/d1", password="wrong",
                    identifier="pulse-bridge-0", clean_session=clean, timeout=5,
                ):
                    pass
        async with mqtt_broker.client("t1/d1", secret) as device:
            await device.publish("tenant/t1/device/d1/telemetry", "{}", qos=1)
        assert str((await next_message(service)).topic) == "tenant/t1/device/d1/telemetry"


async def test_embedded_device_cannot_take_over_service_client_id(embedded_broker: BrokerHandle) -> None:
    """Embedded broker: sessions are scoped by username, so a device reusing a client id gets its own.

    (Mosquitto lets an *authenticated* client take over any client id; see docs/mqtt-broker.md.)
    """
    secret, _ = await embedded_broker.provision("t1", "d1")
    async with embedded_broker.client(identifier="pulse-bridge-0", clean_session=False) as service:
        await service.subscribe(ALL_DEVICES, qos=1)
        async with embedded_broker.client("t1/d1", secret, identifier="pulse-bridge-0", clean_session=False) as device:
            await device.publish("tenant/t1/device/d1/telemetry", "{}", qos=1)
            assert str((await next_message(service)).topic) == "tenant/t1/device/d1/telemetry"
            with pytest.raises(asyncio.TimeoutError):  # the device did not inherit the service's subscription
                await next_message(device, QUIET_S)


async def test_embedded_credentials_invalidate_cache_in_process(embedded_broker: BrokerHandle) -> None:
    """With a long positive TTL, EmbeddedCredentials.remove_device makes a revocation immediate."""
    settings = embedded_broker.settings.model_copy(update={"mqtt_port": 0})
    broker = EmbeddedBroker(settings, positive_ttl=60, negative_ttl=60)
    await broker.start()
    try:
        handle = dataclasses.replace(embedded_broker, port=broker.port)
        secret, token_id = await handle.provision("t1", "d1")
        # A refusal cached before the token existed would block for 60 s without invalidation.
        await assert_refused(handle, "t1/d9", "not-yet")
        secret9, _ = await handle.provision("t1", "d9")
        async with handle.client("t1/d9", secret9):
            pass
        async with handle.client("t1/d1", secret):  # cached as valid for 60 s
            pass
        await tokens.revoke(handle.db, "t1", "d1", token_id)
        await EmbeddedCredentials().remove_device("t1", "d1")
        await assert_refused(handle, "t1/d1", secret)
    finally:
        await broker.stop()


async def test_mosquitto_shared_subscription(mosquitto_broker: BrokerHandle) -> None:
    """Several Pulse bridges can split device traffic with an MQTT 5 shared subscription."""
    secret, _ = await mosquitto_broker.provision("t1", "d1")
    v5 = aiomqtt.ProtocolVersion.V5
    async with mosquitto_broker.client(protocol=v5) as a, mosquitto_broker.client(protocol=v5) as b:
        for c in (a, b):
            await c.subscribe("$share/pulse/" + ALL_DEVICES, qos=1)
        async with mosquitto_broker.client("t1/d1", secret) as device:
            for i in range(10):
                await device.publish("tenant/t1/device/d1/telemetry", json.dumps({"seq": i}), qos=1)

        async def drain(c: aiomqtt.Client) -> list[int]:
            got: list[int] = []
            try:
                while True:
                    got.append(json.loads((await next_message(c, QUIET_S)).payload)["seq"])
            except asyncio.TimeoutError:
                return got

        got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert sorted(got_a + got_b) == list(range(10))  # each message to exactly one member


async def test_mosquitto_persistent_session_survives_restart(mosquitto_broker: BrokerHandle) -> None:
    """QoS 1 messages queued for an offline persistent session survive a broker restart."""
    assert mosquitto_broker.mosquitto is not None
    secret, _ = await mosquitto_broker.provision("t1", "d1")
    async with mosquitto_broker.client(identifier="pulse-bridge-0", clean_session=False) as service:
        await service.subscribe(ALL_DEVICES, qos=1)
    async with mosquitto_broker.client("t1/d1", secret) as device:
        await device.publish("tenant/t1/device/d1/telemetry", '{"seq": 1}', qos=1)
    await asyncio.to_thread(mosquitto_broker.mosquitto.stop)
    await asyncio.to_thread(mosquitto_broker.mosquitto.start)
    async with mosquitto_broker.client(identifier="pulse-bridge-0", clean_session=False) as service:
        msg = await next_message(service)
        assert json.loads(msg.payload) == {"seq": 1}
    # The device account survived too (dynsec state is in its JSON file).
    async with mosquitto_broker.client("t1/d1", secret):
        pass


async def test_embedded_broker_announces_device_connects_and_disconnects(embedded_broker: BrokerHandle) -> None:
    secret, _ = await embedded_broker.provision("t1", "d1")
    async with embedded_broker.client() as service:
        await service.subscribe("tenant/+/device/+/presence", qos=1)
        async with embedded_broker.client("t1/d1", secret):
            msg = await next_message(service, presence=True)
            assert str(msg.topic) == "tenant/t1/device/d1/presence" and json.loads(msg.payload)["connected"] is True
        msg = await next_message(service, presence=True)
        assert json.loads(msg.payload)["connected"] is False


async def test_messages_published_right_before_a_disconnect_are_all_routed(mqtt_broker: BrokerHandle) -> None:
    secret, _ = await mqtt_broker.provision("t1", "d1")
    got: list[int] = []
    async with mqtt_broker.client() as service:
        await service.subscribe("tenant/t1/device/d1/telemetry", qos=1)
        for _ in range(3):
            async with mqtt_broker.client("t1/d1", secret) as device:
                for i in range(40):
                    await device.publish("tenant/t1/device/d1/telemetry", json.dumps({"i": len(got) + i}), qos=1)
            batch = []
            while len(batch) < 40:
                batch.append(json.loads((await next_message(service)).payload)["i"])
            got.extend(batch)
    assert len(got) == 120
