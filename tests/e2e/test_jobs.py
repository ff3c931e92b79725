"""IoT jobs on a real node and broker (docs/jobs.md): a job to a group reaches every member over MQTT,
members answer over MQTT and over the device HTTP API, a member that connects late is notified when it
is listening, and expiry times out the silent one and completes the job."""
from __future__ import annotations

import asyncio
import json

import aiomqtt
import httpx
import pytest

from tests.e2e.test_fleet_protocol import announce
from tests.e2e.test_node import device_client, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]

MEMBERS = ("job-m1", "job-m2", "job-m3", "job-m4", "job-m5")
# long enough for the members that answer to do so on a slow machine; the silent one waits this out
EXPIRES_IN_S = 30


def prefix(device_id: str) -> str:
    return f"tenant/demo/device/{device_id}"


async def listen(stack, dev: aiomqtt.Client, device_id: str) -> None:
    """Subscribed to everything under its prefix: that makes it listening (docs/device-protocol.md)."""
    await dev.subscribe(f"{prefix(device_id)}/#", qos=1)
    await announce(stack, dev, device_id)


async def next_on(dev: aiomqtt.Client, topic: str, timeout: float = 20.0) -> dict:
    """The next message on `topic` (others, such as the device's own publishes, are passed over)."""
    async def first() -> dict:
        async for msg in dev.messages:
            if msg.topic.value == topic:
                return json.loads(msg.payload)
        raise AssertionError("the client stopped")

    return await asyncio.wait_for(first(), timeout)


async def update(dev: aiomqtt.Client, device_id: str, job_id: str, **body) -> tuple[str, dict]:
    """Publish an execution update and wait for Pulse's answer: ("accepted" | "rejected", body)."""
    base = f"{prefix(device_id)}/jobs/{job_id}/update"
    await dev.publish(base, json.dumps(body), qos=1)

    async def reply() -> tuple[str, dict]:
        async for msg in dev.messages:
            if msg.topic.value in (f"{base}/accepted", f"{base}/rejected"):
                return msg.topic.value.rsplit("/", 1)[1], json.loads(msg.payload)
        raise AssertionError("the client stopped")

    return await asyncio.wait_for(reply(), 20)


def job(stack, job_id: str) -> dict:
    r = stack.http.get(f"/api/v1/customer/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_job_to_a_group_over_mqtt_and_http_with_a_late_member_and_expiry(stack):
    secrets = {d: stack.create_device(d) for d in MEMBERS}
    r = stack.http.post("/api/v1/customer/device-groups", json={"name": "job-fleet"})
    group_id = r.json()["group_id"]
    for d in MEMBERS:
        assert stack.http.put(f"/api/v1/customer/device-groups/{group_id}/devices/{d}").status_code == 200
    base = f"http://127.0.0.1:{stack.settings.http_port}/device/v1"

    async with device_client(stack, "job-m1", secrets["job-m1"]) as m1, \
            device_client(stack, "job-m2", secrets["job-m2"]) as m2:
        await listen(stack, m1, "job-m1")
        await listen(stack, m2, "job-m2")
        # listening is recorded by the device actors: wait until both are known as connected
        assert wait_for(lambda: all(stack.http.get(f"/api/v1/customer/devices/{d}").json()["presence"].get("connected")
                                    for d in ("job-m1", "job-m2")))
        r = stack.http.post("/api/v1/customer/jobs", json={
            "job_id": "fleet-upgrade", "document_type": "upgrade", "document_params": {"version": "2.1"},
            "target_group_id": group_id, "expires_in_seconds": EXPIRES_IN_S})
        assert r.status_code == 201 and r.json()["execution_count"] == 5, r.text

        # connected members are notified at once, and answer over MQTT
        for dev, d in ((m1, "job-m1"), (m2, "job-m2")):
            note = await next_on(dev, f"{prefix(d)}/jobs/notify")
            assert (note["job_id"], note["document_type"], note["document_params"], note["status"],
                    note["execution_number"]) == ("fleet-upgrade", "upgrade", {"version": "2.1"}, "QUEUED", 1)
            assert await update(dev, d, "fleet-upgrade", status="IN_PROGRESS", expected_execution_number=1) == (
                "accepted", {"job_id": "fleet-upgrade", "status": "IN_PROGRESS", "execution_number": 2})
        reply, body = await update(m2, "job-m2", "fleet-upgrade", status="SUCCEEDED", expected_execution_number=1)
        assert reply == "rejected" and body["code"] == "VERSION_MISMATCH" and body["execution_number"] == 2
        for dev, d in ((m1, "job-m1"), (m2, "job-m2")):
            reply, body = await update(dev, d, "fleet-upgrade", status="SUCCEEDED", expected_execution_number=2,
                                       status_details={"took_s": 1})
            assert reply == "accepted" and body["execution_number"] == 3

    # another member completes it over the device HTTP API
    headers = {"X-Provision-Token": secrets["job-m3"]}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        pending = (await http.get("/jobs/pending")).json()["jobs"]
        assert [(e["job_id"], e["status"], e["execution_number"]) for e in pending] == [("fleet-upgrade", "QUEUED", 1)]
        execution = "/jobs/fleet-upgrade/execution"
        r = await http.put(execution, json={"status": "IN_PROGRESS", "expected_execution_number": 1})
        assert r.status_code == 200 and r.json()["execution_number"] == 2
        r = await http.put(execution, json={"status": "SUCCEEDED", "expected_execution_number": 1})
        assert r.status_code == 409
        r = await http.put(execution, json={"status": "SUCCEEDED", "expected_execution_number": 2})
        assert r.status_code == 200 and r.json()["status"] == "SUCCEEDED"
        assert (await http.get("/jobs/pending")).json()["jobs"] == []

    # a member that connects late is notified once it is listening
    async with device_client(stack, "job-m4", secrets["job-m4"]) as m4:
        await listen(stack, m4, "job-m4")
        note = await next_on(m4, f"{prefix('job-m4')}/jobs/notify")
        assert (note["job_id"], note["status"], note["execution_number"]) == ("fleet-upgrade", "QUEUED", 1)
        assert (await update(m4, "job-m4", "fleet-upgrade", status="SUCCEEDED"))[0] == "accepted"

    assert job(stack, "fleet-upgrade")["status"] == "IN_PROGRESS"  # job-m5 has not answered
    # the scheduler times the silent member out once the job expires, and that completes the job
    done = wait_for(lambda: job(stack, "fleet-upgrade")["status"] == "COMPLETED", timeout=EXPIRES_IN_S + 30,
                    interval=0.5)
    got = job(stack, "fleet-upgrade")
    assert done, got
    assert {e["device_id"]: e["status"] for e in got["executions"]} == {
        "job-m1": "SUCCEEDED", "job-m2": "SUCCEEDED", "job-m3": "SUCCEEDED", "job-m4": "SUCCEEDED",
        "job-m5": "TIMED_OUT"}
    listed = next(j for j in stack.http.get("/api/v1/customer/jobs").json() if j["job_id"] == "fleet-upgrade")
    assert (listed["total_executions"], listed["succeeded_count"], listed["failed_count"]) == (5, 4, 1)
