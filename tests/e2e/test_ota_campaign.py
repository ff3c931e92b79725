"""OTA campaigns against a real node and broker (docs/ota.md): devices played by MQTT clients take the
`…/ota` instruction, download the hosted image over HTTP through its signed link, check its SHA-256 and
report DOWNLOADING, INSTALLING, SUCCESS or FAILED on `…/ota/status`; the scheduler's wave tick rolls
the campaign out (`ota_wave_interval_s` is 1 s in tests/e2e/conftest.py)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
from contextlib import AsyncExitStack

import httpx
import pytest
import ray

from tests.e2e.test_fleet_protocol import announce
from tests.e2e.test_node import device_client, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]

FIRMWARE = "/api/v1/customer/firmware"
CAMPAIGNS = "/api/v1/customer/ota/campaigns"
IMAGE = os.urandom(20_000) + b"\x00" * 64


class Device:
    """One device: subscribes to its OTA (and commands) topic, and works through every instruction
    it gets once (a repeat of one it is busy with or finished is ignored, as docs/ota.md asks)."""

    def __init__(self, stack, device_id: str, secret: str, outcome: str = "SUCCESS",
                 hold: asyncio.Event | None = None) -> None:
        self.stack, self.device_id, self.secret = stack, device_id, secret
        self.outcome, self.hold = outcome, hold
        self.instructions: list[dict] = []
        self.checksums_ok: list[bool] = []
        self.prefix = f"tenant/demo/device/{device_id}"

    async def run(self, ready: asyncio.Event) -> None:
        async with device_client(self.stack, self.device_id, self.secret) as mqtt:
            await mqtt.subscribe(f"{self.prefix}/ota", qos=1)
            await mqtt.subscribe(f"{self.prefix}/commands", qos=1)  # listening (docs/device-protocol.md)
            await announce(self.stack, mqtt, self.device_id)
            ready.set()
            handled: set[int] = set()
            async for msg in mqtt.messages:
                body = json.loads(msg.payload)
                self.instructions.append(body)
                if body["campaign_id"] not in handled:
                    handled.add(body["campaign_id"])
                    await self.update(mqtt, body)

    async def status(self, mqtt, campaign_id: int, status: str, **extra) -> None:
        await mqtt.publish(f"{self.prefix}/ota/status", json.dumps({"campaign_id": campaign_id, "status": status,
                                                                   **extra}), qos=1)

    async def update(self, mqtt, instruction: dict) -> None:
        cid = instruction["campaign_id"]
        await self.status(mqtt, cid, "DOWNLOADING", progress_pct=0)
        async with httpx.AsyncClient(timeout=30) as http:  # no user token: the signed link is enough
            image = await http.get(instruction["url"])
        ok = image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == instruction["checksum_sha256"]
        self.checksums_ok.append(ok)
        await self.status(mqtt, cid, "DOWNLOADING", progress_pct=100)
        await self.status(mqtt, cid, "INSTALLING", progress_pct=50)
        if self.hold is not None:
            await self.hold.wait()
        if ok and self.outcome == "SUCCESS":
            await self.status(mqtt, cid, "SUCCESS")
        else:
            await self.status(mqtt, cid, "FAILED", error="checksum mismatch" if not ok else "flash write failed")


async def online(stack, exit: AsyncExitStack, *devices: Device) -> None:
    """Run the devices in the background until the test ends; return once they are listening."""
    tasks = []
    for d in devices:
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(d.run(ready)))
        await asyncio.wait_for(ready.wait(), 15)

    async def stop() -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    exit.push_async_callback(stop)


def hosted_firmware(stack, version: str) -> dict:
    fw = stack.http.post(FIRMWARE, json={"version": version})
    assert fw.status_code == 201, fw.text
    r = stack.http.post(f"{FIRMWARE}/{fw.json()['id']}/image", content=IMAGE,
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    return r.json()


def start_campaign(stack, fw: dict, device_ids: list[str], **body) -> int:
    r = stack.http.post(CAMPAIGNS, json={"name": "e2e", "firmware_version_id": fw["id"], "device_ids": device_ids,
                                         **body})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert stack.http.post(f"{CAMPAIGNS}/{cid}/start").json()["status"] == "RUNNING"
    return cid


def campaign(stack, cid: int) -> dict:
    return stack.http.get(f"{CAMPAIGNS}/{cid}").json()


def device_statuses(stack, cid: int) -> dict[str, str]:
    return {d["device_id"]: d["status"] for d in stack.http.get(f"{CAMPAIGNS}/{cid}/devices").json()["devices"]}


def wave_ticks(stack) -> int:
    return ray.get(stack.node.scheduler.stats.remote(), timeout=30).get("ota_waves", 0)


def after_two_ticks(stack) -> None:
    """Until the scheduler ran its wave tick twice more (a wave it was going to send would be out)."""
    seen = wave_ticks(stack)
    assert wait_for(lambda: wave_ticks(stack) >= seen + 2, timeout=30, interval=0.2)


async def finished(stack, cid: int, status: str, timeout: float = 60) -> dict:
    """The campaign once it is in `status` (polled without blocking the devices' event loop)."""
    for _ in range(int(timeout / 0.2)):
        c = await asyncio.to_thread(campaign, stack, cid)
        if c["status"] == status:
            return c
        await asyncio.sleep(0.2)
    raise AssertionError(f"campaign {cid} is {c['status']}, not {status}: {c['status_breakdown']}")


async def test_a_campaign_rolls_out_in_waves_and_a_late_device_gets_it_on_reconnect(stack):
    ids = ["ota-1", "ota-2", "ota-3", "ota-late"]
    secrets = {d: stack.create_device(d) for d in ids}
    fw = hosted_firmware(stack, "5.1.0")
    players = [Device(stack, "ota-1", secrets["ota-1"]), Device(stack, "ota-2", secrets["ota-2"]),
               Device(stack, "ota-3", secrets["ota-3"], outcome="FAILED")]
    async with AsyncExitStack() as exit:
        await online(stack, exit, *players)
        cid = start_campaign(stack, fw, ids, rollout_rate=2, abort_threshold=1.0)
        # ota-late is offline when its wave (the second) sends its instruction
        assert await asyncio.to_thread(wait_for, lambda: device_statuses(stack, cid)["ota-late"] == "DOWNLOADING",
                                       30, 0.2)
        late = Device(stack, "ota-late", secrets["ota-late"])
        await online(stack, exit, late)  # reconnects: the instruction comes again
        done = await finished(stack, cid, "COMPLETED")
    assert (done["succeeded"], done["failed"]) == (3, 1) and done["waves"] == 2
    assert done["status_breakdown"] == {"SUCCESS": 3, "FAILED": 1}
    for d in [*players, late]:
        assert d.instructions and d.instructions[0]["version"] == "5.1.0" and all(d.checksums_ok), d.device_id
    rows = {r["device_id"]: r for r in stack.http.get(f"{CAMPAIGNS}/{cid}/devices").json()["devices"]}
    assert rows["ota-3"]["error_message"] == "flash write failed" and rows["ota-1"]["progress_pct"] == 100
    fw_versions = {d: stack.http.get(f"/api/v1/customer/devices/{d}").json().get("fw_version") for d in ids}
    assert fw_versions == {"ota-1": "5.1.0", "ota-2": "5.1.0", "ota-3": None, "ota-late": "5.1.0"}


async def test_pause_stops_new_waves_and_abort_skips_the_rest(stack):
    ids = ["pause-1", "pause-2", "pause-3"]
    for d in ids:
        stack.create_device(d)  # offline: nobody reports, so nothing finishes on its own
    fw = hosted_firmware(stack, "5.2.0")
    cid = start_campaign(stack, fw, ids, rollout_rate=1)
    assert stack.http.post(f"{CAMPAIGNS}/{cid}/pause").json()["status"] == "PAUSED"
    at_pause = device_statuses(stack, cid)
    assert list(at_pause.values()).count("PENDING") >= 1
    after_two_ticks(stack)
    assert device_statuses(stack, cid) == at_pause
    assert stack.http.post(f"{CAMPAIGNS}/{cid}/abort").json()["status"] == "ABORTED"
    after = device_statuses(stack, cid)
    assert after == {d: "SKIPPED" if s == "PENDING" else s for d, s in at_pause.items()}


async def test_a_failure_rate_above_the_threshold_aborts_on_its_own(stack):
    ids = ["fail-1", "fail-2", "fail-3"]
    secrets = {d: stack.create_device(d) for d in ids}
    fw = hosted_firmware(stack, "5.3.0")
    async with AsyncExitStack() as exit:
        await online(stack, exit, *(Device(stack, d, secrets[d], outcome="FAILED") for d in ids))
        cid = start_campaign(stack, fw, ids, rollout_rate=1, abort_threshold=0.0)
        done = await finished(stack, cid, "ABORTED")
    assert done["abort_reason"].startswith("failure rate 1.00") and done["failed"] >= 1
    assert "SKIPPED" in done["status_breakdown"]


async def test_canary_waits_for_its_first_wave(stack):
    ids = ["can-1", "can-2", "can-3", "can-4"]
    secrets = {d: stack.create_device(d) for d in ids}
    fw = hosted_firmware(stack, "5.4.0")
    release = asyncio.Event()
    slow = Device(stack, "can-2", secrets["can-2"], hold=release)  # a canary device that takes its time
    async with AsyncExitStack() as exit:
        await online(stack, exit, Device(stack, "can-1", secrets["can-1"]), slow,
                     Device(stack, "can-3", secrets["can-3"]), Device(stack, "can-4", secrets["can-4"]))
        cid = start_campaign(stack, fw, ids, rollout_strategy="canary", rollout_rate=2)
        assert await asyncio.to_thread(wait_for, lambda: device_statuses(stack, cid)["can-1"] == "SUCCESS", 30, 0.2)
        await asyncio.to_thread(after_two_ticks, stack)
        held = device_statuses(stack, cid)
        assert held["can-3"] == held["can-4"] == "PENDING" and held["can-2"] == "INSTALLING"
        release.set()
        done = await finished(stack, cid, "COMPLETED")
    assert done["succeeded"] == 4 and done["waves"] == 2
