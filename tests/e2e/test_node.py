"""A real node on Ray with a real broker: devices publish over MQTT, users read through HTTP."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import aiomqtt
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]


def envelope(seq: int, **metrics) -> bytes:
    return json.dumps({"version": "1", "ts": datetime.now(timezone.utc).isoformat(), "seq": seq,
                       "metrics": metrics}).encode()


def device_client(stack, device_id: str, secret: str) -> aiomqtt.Client:
    return aiomqtt.Client(stack.mqtt_host, stack.mqtt_port, username=f"demo/{device_id}", password=secret, timeout=10)


def wait_for(fn, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


async def test_published_telemetry_reaches_latest_history_and_opens_an_alert(stack):
    r = stack.http.post("/api/v1/customer/alert-rules",
                        json={"name": "hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "critical"})
    assert r.status_code == 201
    secret = stack.create_device("e2e-1")
    async with device_client(stack, "e2e-1", secret) as dev:
        for seq, temp in enumerate([20.0, 25.0, 31.5]):
            await dev.publish("tenant/demo/device/e2e-1/telemetry", envelope(seq, temp=temp, hum=40), qos=1)
        assert wait_for(lambda: stack.http.get("/api/v1/customer/devices/e2e-1").json()["presence"]["status"] == "ONLINE")
    latest = wait_for(lambda: stack.http.get("/api/v1/customer/devices/e2e-1/telemetry/latest").json()["metrics"]
                      .get("temp", {}).get("value") == 31.5)
    assert latest, stack.http.get("/api/v1/customer/devices/e2e-1/telemetry/latest").text
    # latest (actor state) and history (lake) are written by different actors, so poll history too
    def history() -> list[float]:
        r = stack.http.get("/api/v1/customer/devices/e2e-1/telemetry/history", params={"metric": "temp"})
        return [p["value"] for p in r.json()["points"]]

    assert wait_for(lambda: len(history()) >= 3) and history() == [20.0, 25.0, 31.5]
    alerts = wait_for(lambda: stack.http.get("/api/v1/customer/alerts",
                                             params={"status": "OPEN", "device_id": "e2e-1",
                                                     "alert_type": "THRESHOLD"}).json()["alerts"])
    assert len(alerts) == 1 and alerts[0]["severity"] == 5 and alerts[0]["trigger_value"] == 31.5
    if stack.kind == "embedded":  # the embedded broker reports the disconnect
        # ...as `connected`; the status stays ONLINE while the device was heard from recently
        assert wait_for(lambda: stack.http.get("/api/v1/customer/devices/e2e-1").json()["presence"]["connected"] is False)
        assert stack.http.get("/api/v1/customer/devices/e2e-1").json()["presence"]["status"] == "ONLINE"


async def test_wrong_password_is_refused(stack):
    stack.create_device("e2e-2")
    with pytest.raises(aiomqtt.MqttError):
        async with device_client(stack, "e2e-2", "not-the-token"):
            pass


async def test_publishing_as_another_device_is_never_stored(stack):
    secret = stack.create_device("e2e-3")
    stack.create_device("e2e-4")
    async with device_client(stack, "e2e-3", secret) as dev:
        await dev.publish("tenant/demo/device/e2e-4/telemetry", envelope(1, temp=99), qos=1)
        await dev.publish("tenant/demo/device/e2e-3/telemetry", envelope(2, temp=1), qos=1)
    assert wait_for(lambda: stack.http.get("/api/v1/customer/devices/e2e-3/telemetry/latest").json()["metrics"])
    time.sleep(1.0)
    assert stack.http.get("/api/v1/customer/devices/e2e-4/telemetry/history").json()["count"] == 0


async def test_malformed_payloads_are_quarantined_and_the_bridge_keeps_running(stack):
    secret = stack.create_device("e2e-5")
    bad = [b"{nope", json.dumps({"version": "7", "metrics": {"a": 1}}).encode(),
           json.dumps({"metrics": {f"m{i}": i for i in range(60)}}).encode(),
           json.dumps({"metrics": {"a": "warm"}}).encode(),
           json.dumps({"ts": "2999-01-01T00:00:00Z", "metrics": {"a": 1}}).encode()]
    async with device_client(stack, "e2e-5", secret) as dev:
        for payload in bad:
            await dev.publish("tenant/demo/device/e2e-5/telemetry", payload, qos=1)
        await dev.publish("tenant/demo/device/e2e-5/telemetry", envelope(1, ok=1), qos=1)
    assert wait_for(lambda: stack.http.get("/api/v1/customer/devices/e2e-5/telemetry/latest").json()["metrics"])
    events = wait_for(lambda: (lambda r: r if r["total"] >= 5 else None)(
        stack.http.get("/api/v1/customer/quarantine", params={"device_id": "e2e-5"}).json()))
    assert events, "quarantine events did not appear"
    assert {e["reason"] for e in events["events"]} == {
        "INVALID_JSON", "UNSUPPORTED_ENVELOPE_VERSION", "TOO_MANY_METRICS", "METRIC_VALUE_INVALID", "TIMESTAMP_IN_FUTURE"}


async def test_desired_state_reaches_a_device_that_connects_later(stack):
    secret = stack.create_device("e2e-6")
    stack.http.patch("/api/v1/customer/devices/e2e-6/twin/desired", json={"interval_s": 10, "led": "on"},
                     headers={"If-Match": '"0"'})
    r = stack.http.patch("/api/v1/customer/devices/e2e-6/twin/desired", json={"interval_s": 15, "led": None},
                         headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["desired_version"] == 2
    time.sleep(0.5)
    async with device_client(stack, "e2e-6", secret) as dev:
        await dev.subscribe("tenant/demo/device/e2e-6/shadow/desired", qos=1)
        msg = await asyncio.wait_for(anext(dev.messages), 10)
        assert msg.retain and json.loads(msg.payload)["desired"] == {"interval_s": 15}
        assert json.loads(msg.payload)["version"] == 2
        await dev.publish("tenant/demo/device/e2e-6/shadow/reported", json.dumps({"reported": {"interval_s": 15}}), qos=1)
    assert wait_for(lambda: stack.http.get("/api/v1/customer/devices/e2e-6/twin/delta").json()["reported_version"] == 1)
    assert stack.http.get("/api/v1/customer/devices/e2e-6/twin/delta").json()["delta"] == {}


def test_background_processes_run_below_the_request_path(stack):
    import os

    import psutil

    from pulse.node import background_processes

    def nices(p: psutil.Process) -> set[int]:
        return {os.getpriority(os.PRIO_PROCESS, t.id) for t in p.threads()}

    agents = [psutil.Process(pid) for pid in background_processes()]
    names = {p.cmdline()[0].strip() for p in agents}
    assert {"ray::DashboardAgent", "ray::Notifier", "ray::Scheduler"} <= names
    assert all(nices(p) == {stack.settings.background_nice} for p in agents)
    for name in ("ray::ServeReplica", "ray::DeviceShard"):  # the request path: normal priority, Ray's 15 undone
        p = next(p for p in psutil.Process().children(recursive=True) if p.cmdline()[0].startswith(name))
        assert nices(p) == {0}, name
