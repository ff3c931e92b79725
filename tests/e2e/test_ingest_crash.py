"""kill -9 of the ingest bridge mid-stream at QoS 1 loses no acknowledged message.

Also pins the manual-ack reach into aiomqtt's private paho client: if acks were sent on
receipt, messages in flight at the kill would be lost and this test fails.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time

import aiomqtt
import pytest
import ray

from tests.e2e.test_node import device_client, envelope, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]
TOTAL = 1500


# Redelivery of a persistent session is the Mosquitto (production) path; amqtt keeps none.
@pytest.mark.parametrize("stack", ["mosquitto"], indirect=True)
async def test_kill_9_of_the_bridge_loses_no_acknowledged_message(stack):
    secret = stack.create_device("crash-1")
    bridge = stack.node.bridges[0]
    killed = asyncio.Event()

    async def kill_midway(sent: int) -> None:
        if sent == TOTAL // 3 and not killed.is_set():
            pid = (await bridge.stats.remote())["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.set()

    async with device_client(stack, "crash-1", secret) as dev:
        for seq in range(TOTAL):
            await dev.publish("tenant/demo/device/crash-1/telemetry", envelope(seq, v=seq), qos=1)
            await kill_midway(seq)
            if seq % 100 == 0:
                await asyncio.sleep(0.01)  # a steady stream, not one burst
    assert killed.is_set()
    # Ray restarts the actor (max_restarts); the node's supervisor reconnects it.
    deadline = time.monotonic() + 60
    while True:
        try:
            stack.node.supervise()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)

    def stored() -> int:
        r = stack.http.get("/api/v1/customer/devices/crash-1/telemetry/history", params={"limit": 10000}).json()
        return r["count"]

    wait_for(lambda: stored() >= TOTAL, timeout=60, interval=0.5)
    hist = stack.http.get("/api/v1/customer/devices/crash-1/telemetry/history", params={"limit": 10000}).json()
    seqs = sorted(p["seq"] for p in hist["points"])
    assert seqs == list(range(TOTAL)), f"missing: {sorted(set(range(TOTAL)) - set(seqs))[:20]}"
