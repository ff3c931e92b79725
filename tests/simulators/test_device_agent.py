"""The simulated device's answers in the device protocol: commands acked, firmware downloaded from a
real local HTTP server and checked, jobs worked through with their execution numbers."""
from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest

from pulse.simulators.device_agent import AgentConfig, DeviceAgent
from tests.integrations.helpers import Reply, http_targets  # noqa: F401

PREFIX = "tenant/acme/device/d1/"
IMAGE = b"firmware-image-" * 100


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def send(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic[len(PREFIX):], json.loads(payload)))

    def of(self, suffix: str) -> list[dict]:
        return [body for topic, body in self.sent if topic == suffix]


async def settled(agent: DeviceAgent) -> None:
    for _ in range(100):
        if not agent._tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("agent still busy")


async def agent_with(outbox: Outbox, **config) -> tuple[DeviceAgent, httpx.AsyncClient]:
    http = httpx.AsyncClient(timeout=5)
    return DeviceAgent("acme", "d1", outbox.send, AgentConfig(work_s=0.0, **config), http), http


def instruction(url: str, checksum: str, campaign: int = 7) -> bytes:
    return json.dumps({"campaign_id": campaign, "firmware_id": 3, "version": "2.0.0", "url": url,
                       "checksum_sha256": checksum, "file_size_bytes": len(IMAGE)}).encode()


async def test_ota_downloads_checks_installs_and_reports_success(http_targets):
    server = await http_targets(default=Reply(200, IMAGE))
    out = Outbox()
    agent, http = await agent_with(out)
    try:
        await agent.handle(PREFIX + "ota", instruction(server.url, hashlib.sha256(IMAGE).hexdigest()))
        await settled(agent)
        assert [s["status"] for s in out.of("ota/status")] == ["DOWNLOADING", "INSTALLING", "SUCCESS"]
        assert out.of("shadow/reported") == [{"reported": {"fw_version": "2.0.0"}}]
        assert agent.fw_version == "2.0.0" and len(server.requests) == 1
        # The same instruction again (after a reconnect): the result is reported again, nothing reinstalled.
        await agent.handle(PREFIX + "ota", instruction(server.url, hashlib.sha256(IMAGE).hexdigest()))
        await settled(agent)
        assert [s["status"] for s in out.of("ota/status")][-1] == "SUCCESS" and len(server.requests) == 1
    finally:
        await http.aclose()


@pytest.mark.parametrize("reply, error", [(Reply(200, b"tampered"), "checksum mismatch"),
                                          (Reply(404, b"gone"), "download failed: HTTP 404")])
async def test_a_bad_image_fails_the_install(http_targets, reply, error):
    server = await http_targets(default=reply)
    out = Outbox()
    agent, http = await agent_with(out)
    try:
        await agent.handle(PREFIX + "ota", instruction(server.url, hashlib.sha256(IMAGE).hexdigest()))
        await settled(agent)
        final = out.of("ota/status")[-1]
        assert (final["status"], final["error"]) == ("FAILED", error) and agent.fw_version is None
    finally:
        await http.aclose()


async def test_jobs_move_through_their_execution_numbers_and_commands_are_acked():
    out = Outbox()
    agent, http = await agent_with(out)
    try:
        notice = {"job_id": "j1", "document_type": "reboot", "document_params": {}, "status": "QUEUED",
                  "execution_number": 1}
        await agent.handle(PREFIX + "jobs/notify", json.dumps(notice).encode())
        await agent.handle(PREFIX + "jobs/notify", json.dumps(notice).encode())  # a duplicate is ignored
        await settled(agent)
        assert out.of("jobs/j1/update") == [{"status": "IN_PROGRESS", "expected_execution_number": 1}]
        accepted = {"job_id": "j1", "status": "IN_PROGRESS", "execution_number": 2}
        await agent.handle(PREFIX + "jobs/j1/update/accepted", json.dumps(accepted).encode())
        await settled(agent)
        assert out.of("jobs/j1/update")[-1] == {"status": "SUCCEEDED", "expected_execution_number": 2}
        done = {"job_id": "j1", "status": "SUCCEEDED", "execution_number": 3}
        await agent.handle(PREFIX + "jobs/j1/update/accepted", json.dumps(done).encode())
        await agent.handle(PREFIX + "commands", b'{"command_id": "c1", "type": "reboot", "params": {}}')
        assert out.of("commands/ack") == [{"command_id": "c1", "status": "succeeded"}]
        assert (agent.stats["job_succeeded"], agent.stats["commands"]) == (1, 1)
    finally:
        await http.aclose()


async def test_failing_agents_fail_their_jobs():
    out = Outbox()
    agent, http = await agent_with(out, fail_rate=1.0, download=False)
    try:
        await agent.handle(PREFIX + "jobs/notify", b'{"job_id": "j2", "status": "IN_PROGRESS", "execution_number": 4}')
        await agent.handle(PREFIX + "ota", b'{"campaign_id": 1, "version": "x", "url": "http://127.0.0.1:9/none"}')
        await settled(agent)
        assert out.of("jobs/j2/update") == [{"status": "FAILED", "expected_execution_number": 4,
                                             "status_details": {"reason": "simulated failure"}}]
        assert out.of("ota/status")[-1]["error"] == "simulated install failure"
    finally:
        await http.aclose()
