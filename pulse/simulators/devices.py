"""Device simulator: registers devices through the API, publishes realistic telemetry over MQTT and answers
commands, OTA campaigns and jobs in the device protocol (`pulse.simulators.device_agent`)."""
from __future__ import annotations

import asyncio
import json
import math
import random
import time
from datetime import datetime, timezone
from typing import Any

from collections import Counter

import aiomqtt
import httpx

from pulse.config.settings import Settings
from pulse.mqtt.endpoint import MqttEndpoint
from pulse.services.bootstrap import ensure_principal
from pulse.services.identity import issue_token
from pulse.simulators.device_agent import SUBSCRIPTIONS, AgentConfig, DeviceAgent


async def register(api: str, token: str, tenant: str, ids: list[str]) -> dict[str, str]:
    """Create each device (or rotate the token of an existing one); returns device -> secret."""
    secrets: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        for device_id in ids:
            r = await http.post("/api/v1/customer/devices", json={"device_id": device_id, "site_id": "sim-site"})
            if r.status_code == 409:
                r = await http.post(f"/api/v1/customer/devices/{device_id}/tokens/rotate")
            r.raise_for_status()
            secrets[device_id] = r.json()["token"]
    return secrets


def reading(device_index: int, t: float) -> dict[str, float]:
    """A plausible sensor: daily temperature wave, noisy humidity, slowly draining battery."""
    phase = device_index * 0.7
    return {
        "temperature": round(21 + 4 * math.sin(t / 600 + phase) + random.gauss(0, 0.3), 2),
        "humidity": round(min(100.0, max(0.0, 45 + 10 * math.sin(t / 900 + phase) + random.gauss(0, 1))), 2),
        "battery": round(max(0.0, 100 - (t % 86400) / 864), 2),
        "rssi": float(random.randint(-95, -55)),
    }


async def run_device(host: str, port: int, tenant: str, device_id: str, secret: str, index: int,
                     rate: float, seconds: float, stats: dict[str, int], agent_config: AgentConfig,
                     http: httpx.AsyncClient, agents: list[DeviceAgent]) -> None:
    """Publish telemetry for `seconds` while answering commands, OTA instructions and jobs."""
    prefix = f"tenant/{tenant}/device/{device_id}/"
    offline = aiomqtt.Will(prefix + "presence", json.dumps({"connected": False}).encode(), qos=1)
    async with aiomqtt.Client(host, port, username=f"{tenant}/{device_id}", password=secret, timeout=10,
                              will=offline) as client:
        agent = DeviceAgent(tenant, device_id, lambda t, p: client.publish(t, p, qos=1), agent_config, http)
        agents.append(agent)
        for suffix in SUBSCRIPTIONS:
            await client.subscribe(prefix + suffix, qos=1)
        # Mosquitto cannot tell Pulse a device is listening: the device says so (docs/device-protocol.md).
        await client.publish(prefix + "presence", json.dumps({"connected": True}).encode(), qos=1)
        await client.publish(prefix + "heartbeat", b"{}", qos=1)
        listener = asyncio.create_task(_answer(client, agent))
        try:
            await _telemetry(client, prefix + "telemetry", index, rate, seconds, stats)
        finally:
            listener.cancel()
            await agent.close()


async def _answer(client: aiomqtt.Client, agent: DeviceAgent) -> None:
    async for message in client.messages:
        await agent.handle(str(message.topic), bytes(message.payload))


async def _telemetry(client: aiomqtt.Client, topic: str, index: int, rate: float, seconds: float,
                     stats: dict[str, int]) -> None:
    interval = 1.0 / rate
    deadline = time.monotonic() + seconds
    seq = 0
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        seq += 1
        body = {"version": "1", "ts": datetime.now(timezone.utc).isoformat(), "site_id": "sim-site",
                "seq": seq, "metrics": reading(index, time.time())}
        await client.publish(topic, json.dumps(body).encode(), qos=1)
        stats["published"] += 1
        next_at += interval
        await asyncio.sleep(max(0.0, min(next_at, deadline) - time.monotonic()))


async def start_campaign(http: httpx.AsyncClient, version: str, group_id: str, devices: int) -> int:
    """A hosted firmware image (random bytes) and a linear campaign over the group, started."""
    r = await http.post("/api/v1/customer/firmware", json={"version": version, "description": "pulse simulate"})
    r.raise_for_status()
    firmware_id = r.json()["id"]
    r = await http.post(f"/api/v1/customer/firmware/{firmware_id}/image", content=random.randbytes(64 * 1024),
                        headers={"Content-Type": "application/octet-stream"})
    r.raise_for_status()
    r = await http.post("/api/v1/customer/ota/campaigns", json={
        "name": f"simulate {version}", "firmware_version_id": firmware_id, "target_group_id": group_id,
        "rollout_strategy": "linear", "rollout_rate": -(-devices // 3), "abort_threshold": 0.5})  # 3 waves
    r.raise_for_status()
    campaign_id = r.json()["id"]
    (await http.post(f"/api/v1/customer/ota/campaigns/{campaign_id}/start")).raise_for_status()
    return campaign_id


async def make_group(http: httpx.AsyncClient, ids: list[str], name: str) -> str:
    r = await http.post("/api/v1/customer/device-groups", json={"name": name})
    r.raise_for_status()
    group_id = r.json()["group_id"]
    for device_id in ids:
        (await http.put(f"/api/v1/customer/device-groups/{group_id}/devices/{device_id}")).raise_for_status()
    return group_id


async def simulate(settings: Settings, *, tenant: str, devices: int, rate: float, seconds: float,
                   api: str | None = None, prefix: str = "sim", ota: str | None = None, job: str | None = None,
                   fail_rate: float = 0.0) -> dict[str, Any]:
    """Devices publish telemetry and answer commands, OTA and jobs; with `ota` (a firmware version) a
    campaign over them is started once they are connected, with `job` (a document type) a job."""
    api = api or f"http://{settings.http_host}:{settings.http_port}"
    sub = f"simulator@{tenant}.local"
    await ensure_principal(settings, tenant, "customer_admin", sub)
    token = issue_token(settings, sub, tenant, "customer_admin")
    ids = [f"{prefix}-{i:05d}" for i in range(devices)]
    secrets = await register(api, token, tenant, ids)
    host, port = settings.mqtt_host, settings.mqtt_port
    if settings.mqtt_url:
        endpoint = MqttEndpoint.parse(settings.mqtt_url)
        host, port = endpoint.host, endpoint.port
    stats = {"published": 0}
    agents: list[DeviceAgent] = []
    config = AgentConfig(fail_rate=fail_rate, work_s=min(2.0, seconds / 10))
    report: dict[str, Any] = {"tenant": tenant, "devices": devices}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        fleet = asyncio.gather(*(run_device(host, port, tenant, d, secrets[d], i, rate, seconds, stats, config, http,
                                            agents) for i, d in enumerate(ids)))
        if ota or job:
            await asyncio.sleep(min(2.0, seconds / 4))  # connected and subscribed first
            group_id = await make_group(http, ids, f"{prefix}-{int(time.time())}")
            if ota:
                report["campaign_id"] = await start_campaign(http, ota, group_id, devices)
            if job:
                r = await http.post("/api/v1/customer/jobs", json={"document_type": job, "target_group_id": group_id})
                r.raise_for_status()
                report["job_id"] = r.json()["job_id"]
        await fleet
        if "campaign_id" in report:
            c = (await http.get(f"/api/v1/customer/ota/campaigns/{report['campaign_id']}")).json()
            report["campaign"] = {k: c.get(k) for k in ("status", "total_devices", "succeeded", "failed",
                                                        "status_breakdown")}
        if "job_id" in report:
            j = (await http.get(f"/api/v1/customer/jobs/{report['job_id']}")).json()
            report["job"] = {"status": j.get("status"),
                             "executions": dict(Counter(e["status"] for e in j.get("executions", [])))}
    elapsed = time.monotonic() - started
    answered: Counter[str] = sum((a.stats for a in agents), Counter())
    return {**report, "published": stats["published"], "seconds": round(elapsed, 2),
            "msgs_per_s": round(stats["published"] / elapsed, 1), "answered": dict(answered)}
