"""How a simulated device answers Pulse's downlinks in the device protocol (docs/device-protocol.md):
it acknowledges commands, installs OTA firmware and works through its jobs.

The agent does no MQTT itself: it gets each message addressed to its device and a `send(topic,
payload)` to answer with, so `pulse simulate` gives every device its own connection while the
fleet-operations benchmark multiplexes thousands of virtual devices over a few.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import httpx

Send = Callable[[str, bytes], Awaitable[None]]
# The topics a device listens on, under its own prefix.
SUBSCRIPTIONS = ("commands", "ota", "jobs/#")


@dataclass(frozen=True)
class AgentConfig:
    fail_rate: float = 0.0  # share of OTA installs and jobs that fail
    work_s: float = 0.5  # how long one install or one job takes
    download: bool = True  # fetch the image and check its SHA-256 (False: trust the instruction)


class DeviceAgent:
    def __init__(self, tenant_id: str, device_id: str, send: Send, config: AgentConfig = AgentConfig(),
                 http: httpx.AsyncClient | None = None, rng: random.Random | None = None) -> None:
        self.prefix = f"tenant/{tenant_id}/device/{device_id}/"
        self.send = send
        self.config = config
        self.http = http
        self.rng = rng or random.Random()
        self.fw_version: str | None = None
        self.stats: Counter[str] = Counter()
        self._ota: dict[int, dict[str, Any] | None] = {}  # campaign -> final report (None while installing)
        self._jobs: set[str] = set()  # jobs being worked on
        self._tasks: set[asyncio.Task] = set()

    async def handle(self, topic: str, payload: bytes) -> None:
        """One message from Pulse; work that takes time runs in the background."""
        suffix = topic[len(self.prefix):] if topic.startswith(self.prefix) else ""
        try:
            body = json.loads(payload)
        except ValueError:
            self.stats["bad_message"] += 1
            return
        if not isinstance(body, dict):
            return
        if suffix == "commands":
            await self._publish("commands/ack", {"command_id": body.get("command_id"), "status": "succeeded"})
            self.stats["commands"] += 1
        elif suffix == "ota":
            self._spawn(self._install(body))
        elif suffix == "jobs/notify":
            self._spawn(self._start_job(body))
        elif suffix.endswith("/update/accepted"):
            if body.get("status") == "IN_PROGRESS":
                self._spawn(self._finish_job(body["job_id"], body.get("execution_number")))
            else:
                self._jobs.discard(body.get("job_id", ""))
                self.stats[f"job_{str(body.get('status')).lower()}"] += 1
        elif suffix.endswith("/update/rejected"):
            self._jobs.discard(body.get("job_id", ""))
            self.stats["job_update_rejected"] += 1

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- OTA -------------------------------------------------------------------------------------
    async def _install(self, instruction: dict[str, Any]) -> None:
        campaign = instruction.get("campaign_id")
        if not isinstance(campaign, int):
            return
        if campaign in self._ota:  # sent again (a reconnect): re-report a result Pulse may have missed
            final = self._ota[campaign]
            if final is not None:
                await self._publish("ota/status", final)
            return
        self._ota[campaign] = None
        await self._publish("ota/status", {"campaign_id": campaign, "status": "DOWNLOADING", "progress_pct": 0})
        error = await self._fetch(instruction) if self.config.download else None
        if error is None:
            await self._publish("ota/status", {"campaign_id": campaign, "status": "INSTALLING", "progress_pct": 100})
            await asyncio.sleep(self.config.work_s)
            if self.rng.random() < self.config.fail_rate:
                error = "simulated install failure"
        final = {"campaign_id": campaign, "status": "FAILED" if error else "SUCCESS", "progress_pct": 100}
        if error:
            final["error"] = error
        else:
            self.fw_version = instruction.get("version")
            await self._publish("shadow/reported", {"reported": {"fw_version": self.fw_version}})
        self._ota[campaign] = final
        self.stats["ota_" + final["status"].lower()] += 1
        await self._publish("ota/status", final)

    async def _fetch(self, instruction: dict[str, Any]) -> str | None:
        """Download the image and check it; -> why it is unusable, or None."""
        if self.http is None:
            return "no HTTP client to download the image with"
        try:
            r = await self.http.get(str(instruction.get("url")), follow_redirects=True)
        except httpx.HTTPError as e:
            return f"download failed: {type(e).__name__}"
        if r.status_code != 200:
            return f"download failed: HTTP {r.status_code}"
        expected = instruction.get("checksum_sha256")
        if expected and hashlib.sha256(r.content).hexdigest() != str(expected).lower():
            return "checksum mismatch"
        size = instruction.get("file_size_bytes")
        if size is not None and size != len(r.content):
            return "size mismatch"
        return None

    # ---- jobs ------------------------------------------------------------------------------------
    async def _start_job(self, notice: dict[str, Any]) -> None:
        job_id = notice.get("job_id")
        if not isinstance(job_id, str) or job_id in self._jobs:
            return
        self._jobs.add(job_id)
        number = notice.get("execution_number")
        if notice.get("status") == "IN_PROGRESS":  # started before a reconnect: finish it
            await self._finish_job(job_id, number)
        else:
            await self._update(job_id, "IN_PROGRESS", number)

    async def _finish_job(self, job_id: str, number: int | None) -> None:
        await asyncio.sleep(self.config.work_s)
        failed = self.rng.random() < self.config.fail_rate
        await self._update(job_id, "FAILED" if failed else "SUCCEEDED", number,
                           {"reason": "simulated failure"} if failed else None)

    async def _update(self, job_id: str, status: str, number: int | None, details: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"status": status}
        if number is not None:
            body["expected_execution_number"] = number
        if details:
            body["status_details"] = details
        await self._publish(f"jobs/{job_id}/update", body)

    # ---- plumbing --------------------------------------------------------------------------------
    async def _publish(self, suffix: str, body: dict[str, Any]) -> None:
        await self.send(self.prefix + suffix, json.dumps(body).encode())

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
