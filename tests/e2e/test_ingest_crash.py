"""Every ingest actor can die mid-stream at QoS 1 without losing an acknowledged message.

The bridge is killed with kill -9 (by default it runs inside device shard 0, which dies with it;
as its own Ray actor, alone); the device shards (which own the lake's WALs), one of them
alone, and the tenant shards are killed through Ray (which restarts them: max_restarts);
Mosquitto is restarted. After recovery
every published `seq` is in history exactly once, `telemetry/latest` shows the last message, and
the alert that opened before the crash is still one open alert, and the API's requests reach the
device's shard over its socket lane again.

The bridge case also pins the manual acks: if acks were sent on receipt, messages in flight at the
kill would be lost and the test fails.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Awaitable, Callable

import aiomqtt
import pytest
import ray

from tests.e2e.test_node import device_client, envelope, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]
TOTAL = 1500
VICTIMS = ["bridge", "device-shards", "one-device-shard", "tenant-shards", "broker"]


async def kill(stack, victim: str) -> None:
    runtime = stack.node.runtime
    if victim == "bridge":
        os.kill((await stack.node.bridges[0].stats())["pid"], signal.SIGKILL)  # its shard, by default
    elif victim == "device-shards":
        for ref in runtime.device_refs:
            ray.kill(ref, no_restart=False)
    elif victim == "tenant-shards":
        for ref in runtime.tenant_refs:
            ray.kill(ref, no_restart=False)
    elif victim == "one-device-shard":  # the other goes on appending to its own WAL meanwhile
        ray.kill(runtime.device_refs[-1], no_restart=False)
    elif victim == "broker":  # SIGTERM: Mosquitto saves its sessions and queued messages, then starts again
        stack.mosquitto.stop()
        await asyncio.sleep(1)
        stack.mosquitto.start()


async def publish_all(stack, device_id: str, secret: str, payloads: list[bytes],
                      after: Callable[[int], Awaitable[None]]) -> None:
    """QoS 1 as a device does it: a message counts as sent once the broker acknowledged it; one
    whose acknowledgement was lost with the connection is sent again (the lake drops the copy)."""
    seq = 0
    while seq < len(payloads):
        try:
            async with device_client(stack, device_id, secret) as dev:
                while seq < len(payloads):
                    await dev.publish(f"tenant/demo/device/{device_id}/telemetry", payloads[seq], qos=1)
                    seq += 1
                    await after(seq - 1)
                    if seq % 100 == 0:
                        await asyncio.sleep(0.01)  # a steady stream, not one burst
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)


def recover_bridges(stack) -> None:
    """Ray restarts a killed bridge; the node's supervisor (run periodically by `pulse up`) reconnects it."""
    deadline = time.monotonic() + 60
    while True:
        try:
            stack.node.supervise()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


# Redelivery of a persistent session is the Mosquitto (production) path; amqtt keeps none.
# (One stack per parametrize list: a list of (stack, victim) pairs would start a node per pair.)
@pytest.mark.parametrize("stack", ["mosquitto"], indirect=True)
@pytest.mark.parametrize("victim", VICTIMS)
async def test_a_crash_mid_stream_loses_no_acknowledged_message(stack, victim):
    """The bridge runs inside device shard 0 (the default): "bridge" kills that process."""
    await crash_and_recover(stack, victim)


@pytest.mark.parametrize("stack", ["bridge-actor"], indirect=True)
async def test_a_bridge_actor_killed_mid_stream_loses_no_acknowledged_message(stack):
    """`ingest_in_shards` off: the bridge is a Ray actor of its own, killed alone."""
    await crash_and_recover(stack, "bridge")


async def crash_and_recover(stack, victim: str) -> None:
    device = f"crash-{victim}" + ("" if stack.settings.ingest_in_shards else "-actor")
    secret = stack.create_device(device)
    r = stack.http.post("/api/v1/customer/alert-rules", json={
        "name": f"always {victim}", "metric": "v", "operator": "GT", "threshold": -1, "severity": 3,
        "device_ids": [device]})
    assert r.status_code == 201, r.text
    payloads = [envelope(seq, v=seq) for seq in range(TOTAL)]
    killed = asyncio.Event()

    async def kill_midway(seq: int) -> None:
        if seq == TOTAL // 3 and not killed.is_set():
            await kill(stack, victim)
            killed.set()

    await publish_all(stack, device, secret, payloads, kill_midway)
    assert killed.is_set()
    recover_bridges(stack)

    def history() -> list[int]:
        r = stack.http.get(f"/api/v1/customer/devices/{device}/telemetry/history", params={"limit": 10000})
        return [p["seq"] for p in r.json()["points"]] if r.status_code == 200 else []

    wait_for(lambda: len(history()) >= TOTAL, timeout=90, interval=0.5)
    seqs = history()
    assert sorted(seqs) == list(range(TOTAL)), f"missing: {sorted(set(range(TOTAL)) - set(seqs))[:20]}"

    def latest() -> float | None:
        r = stack.http.get(f"/api/v1/customer/devices/{device}/telemetry/latest")
        return r.json()["metrics"].get("v", {}).get("value") if r.status_code == 200 else None

    assert wait_for(lambda: latest() == TOTAL - 1, timeout=30), latest()
    # the API reaches the device's shard over its socket lane again, restarted or not (pulse.actors.lane)
    runtime = stack.node.runtime
    shard = runtime.device_refs[runtime.devices.device_shard("demo", device)]
    assert wait_for(lambda: latest() is not None and ray.get(shard.stats.remote())["lane_requests"] > 0, timeout=30)
    alerts = stack.http.get("/api/v1/customer/alerts", params={"device_id": device, "status": "ALL"}).json()["alerts"]
    assert [a["status"] for a in alerts] == ["OPEN"], (alerts, stack.http.get("/api/v1/customer/alerts").json(), stack.http.get("/api/v1/customer/alert-rules").json())
