"""Commands and HTTP ingest against a real node and broker."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.e2e.test_node import device_client, envelope, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]


async def announce(stack, dev, device_id: str) -> None:
    """Mosquitto has no presence hook: devices announce themselves (docs/device-protocol.md)."""
    if stack.kind == "mosquitto":
        await dev.publish(f"tenant/demo/device/{device_id}/presence", json.dumps({"connected": True}), qos=1)


def command_status(stack, device_id: str, command_id: str) -> str:
    cmds = stack.http.get(f"/api/v1/customer/devices/{device_id}/commands").json()["commands"]
    return next(c["status"] for c in cmds if c["command_id"] == command_id)


async def test_device_receives_a_command_acks_it_and_the_api_shows_succeeded(stack):
    secret = stack.create_device("cmd-1")
    r = stack.http.post("/api/v1/customer/devices/cmd-1/commands", json={"type": "reboot", "params": {"delay_s": 1}})
    assert r.status_code == 201 and r.json()["status"] == "pending"  # offline: it waits
    cid = r.json()["command_id"]
    async with device_client(stack, "cmd-1", secret) as dev:
        await dev.subscribe("tenant/demo/device/cmd-1/commands", qos=1)
        await announce(stack, dev, "cmd-1")
        msg = await asyncio.wait_for(anext(dev.messages), 15)
        body = json.loads(msg.payload)
        assert body["command_id"] == cid and body["type"] == "reboot" and body["params"] == {"delay_s": 1}
        assert wait_for(lambda: command_status(stack, "cmd-1", cid) == "delivered")
        await dev.publish("tenant/demo/device/cmd-1/commands/ack",
                          json.dumps({"command_id": cid, "status": "succeeded"}), qos=1)
        assert wait_for(lambda: command_status(stack, "cmd-1", cid) == "succeeded")
        # connected now: a second command goes out at once
        cid2 = stack.http.post("/api/v1/customer/devices/cmd-1/commands", json={"type": "ping"}).json()["command_id"]
        msg = await asyncio.wait_for(anext(dev.messages), 15)
        assert json.loads(msg.payload)["command_id"] == cid2


async def test_an_unacked_command_to_an_offline_device_expires(stack):
    stack.create_device("cmd-2")
    r = stack.http.post("/api/v1/customer/devices/cmd-2/commands", json={"type": "x", "expires_in_seconds": 1})
    cid = r.json()["command_id"]
    # the scheduler's sweep runs every command_expiry_interval_s
    assert wait_for(lambda: command_status(stack, "cmd-2", cid) == "expired", timeout=30, interval=0.5)


async def test_http_ingest_data_shows_in_history_exactly_like_mqtt_data(stack):
    secret = stack.create_device("http-1")
    base = f"http://127.0.0.1:{stack.settings.http_port}"
    body = {"version": "1", "ts": "2026-01-01T00:00:00Z", "seq": 1, "metrics": {"temp": 19.5}}
    r = httpx.post(f"{base}/ingest/v1/tenant/demo/device/http-1/telemetry", json=body,
                   headers={"X-Provision-Token": secret}, timeout=30)
    assert r.status_code == 202, r.text
    async with device_client(stack, "http-1", secret) as dev:
        await dev.publish("tenant/demo/device/http-1/telemetry",
                          json.dumps({**body, "ts": "2026-01-01T00:01:00Z", "seq": 2}), qos=1)
    hist = wait_for(lambda: (lambda h: h if h["count"] == 2 else None)(
        stack.http.get("/api/v1/customer/devices/http-1/telemetry/history",
                       params={"start": "2026-01-01T00:00:00Z"}).json()))
    assert hist and [(p["seq"], p["value"]) for p in hist["points"]] == [(1, 19.5), (2, 19.5)]
