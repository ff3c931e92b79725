"""Device simulator: registers devices through the API and publishes realistic telemetry over MQTT."""
from __future__ import annotations

import asyncio
import json
import math
import random
import time
from datetime import datetime, timezone
from typing import Any

import aiomqtt
import httpx

from pulse.config.settings import Settings
from pulse.mqtt.endpoint import MqttEndpoint
from pulse.services.bootstrap import ensure_principal
from pulse.services.identity import issue_token


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
                     rate: float, seconds: float, stats: dict[str, int]) -> None:
    topic = f"tenant/{tenant}/device/{device_id}/telemetry"
    interval = 1.0 / rate
    async with aiomqtt.Client(host, port, username=f"{tenant}/{device_id}", password=secret, timeout=10) as client:
        await client.publish(f"tenant/{tenant}/device/{device_id}/heartbeat", b"{}", qos=1)
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
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def simulate(settings: Settings, *, tenant: str, devices: int, rate: float, seconds: float,
                   api: str | None = None, prefix: str = "sim") -> dict[str, Any]:
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
    started = time.monotonic()
    await asyncio.gather(*(run_device(host, port, tenant, d, secrets[d], i, rate, seconds, stats)
                           for i, d in enumerate(ids)))
    elapsed = time.monotonic() - started
    return {"tenant": tenant, "devices": devices, "published": stats["published"],
            "seconds": round(elapsed, 2), "msgs_per_s": round(stats["published"] / elapsed, 1)}
