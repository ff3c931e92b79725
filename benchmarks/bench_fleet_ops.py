"""Fleet operations at scale: an OTA campaign and a job over 10,000 virtual devices.

    .venv/bin/python benchmarks/bench_fleet_ops.py [--devices 10000] [--rollout-rate 1000] [--fail 0.05]
                                                   [--offline 0.05] [--broker mosquitto|embedded]

A whole Pulse node (`pulse.node.Node`: Ray, broker, ingest bridge, device shards, scheduler, Serve)
on a temp data dir, with shipped settings except one wave tick per second. The fleet is virtual: one
service-account MQTT connection carries every device's traffic, and each device is a
`pulse.simulators.device_agent.DeviceAgent` that answers in the device protocol (OTA status
DOWNLOADING → INSTALLING → SUCCESS/FAILED, job updates IN_PROGRESS → SUCCEEDED/FAILED with their
execution numbers). `--fail` of them fail their install and their job; `--offline` of them are
disconnected while the rest work, then announce `presence {"connected": true}` and must get their
instruction and their job on reconnect. Images are not downloaded here (the agent trusts the
instruction; `pulse simulate` and the e2e tests download hosted images for real).

Figures, each against a baseline from the same run:
1. campaign time from start to COMPLETED vs the waves alone (ceil(online / rollout_rate) ticks of
   1 s), and the offline devices' catch-up after their reconnect;
2. telemetry ingest rate (a separate tenant, QoS 1, `--telemetry` messages) while the campaign's
   waves run, vs the same load with no campaign (goal: at least 90 %);
3. what the campaign state costs per device: in the store (database file growth, SQLite) and in
   the device shards (RSS growth: campaign state is kept in SQL, not in the actors);
4. a job to the same group: time to COMPLETED, with the offline devices reconnecting.
The load generator and the virtual fleet share this 2-core machine with Pulse, so the ratio in 2
is pessimistic: the fleet's own work (answering thousands of instructions) is counted against Pulse.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt  # noqa: E402
import httpx  # noqa: E402

from pulse.config.settings import Settings  # noqa: E402
from pulse.mqtt.endpoint import service_endpoint  # noqa: E402
from pulse.simulators.device_agent import AgentConfig, DeviceAgent  # noqa: E402
from pulse.storage.db import Database, utcnow  # noqa: E402
from pulse.storage.tables import device_group_members, devices  # noqa: E402

FLEET, LOAD = "demo", "load"  # the bootstrap tenant holds the fleet; telemetry load in its own tenant
LOAD_DEVICES = 100


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- set-up ----------------------------------------------------------------------------------------
def start_node(tmp: Path, broker: str) -> tuple[Any, Any, Settings, dict[str, Any]]:
    from pulse.broker.auth_plugin import SERVICE_USERNAME
    from pulse.broker.mosquitto import MosquittoProcess, write_mosquitto_config
    from pulse.node import Node

    # shipped settings, but for 1 s between waves (the default is 10 s, as in the documented worker)
    env: dict[str, Any] = dict(data_dir=tmp / "data", http_port=free_port(), dashboard_enabled=False,
                               ota_wave_interval_s=1.0)
    mosquitto = None
    if broker == "mosquitto":
        port, password = free_port(), secrets.token_urlsafe(16)
        mosquitto = MosquittoProcess(write_mosquitto_config(tmp / "mosq", port, SERVICE_USERNAME, password), port)
        mosquitto.start()
        env.update(mqtt_port=port, mqtt_url=f"mqtt://{SERVICE_USERNAME}:{password}@127.0.0.1:{port}")
    else:
        env["mqtt_port"] = free_port()
    settings = Settings(**env)
    node = Node(settings)
    info = node.start()
    return node, mosquitto, settings, info


async def provision(settings: Settings, ids: list[str], load_ids: list[str]) -> None:
    """Rows straight into the store (creating 10,000 devices over HTTP is not what is measured)."""
    from pulse.services.bootstrap import ensure_principal

    await ensure_principal(settings, LOAD, "customer_admin", "bench@load.local")
    db = Database(settings.db_url)
    try:
        now = utcnow()
        async with db.begin() as conn:
            rows = [{"tenant_id": FLEET, "device_id": d, "site_id": "field", "metadata": {}, "created_at": now,
                     "updated_at": now} for d in ids]
            rows += [{"tenant_id": LOAD, "device_id": d, "site_id": "load", "metadata": {}, "created_at": now, "updated_at": now}
                     for d in load_ids]
            for i in range(0, len(rows), 2000):
                await conn.execute(devices.insert(), rows[i:i + 2000])
    finally:
        await db.dispose()


async def add_members(settings: Settings, group_id: str, ids: list[str]) -> None:
    db = Database(settings.db_url)
    try:
        now = utcnow()
        async with db.begin() as conn:
            rows = [{"tenant_id": FLEET, "group_id": group_id, "device_id": d, "added_at": now} for d in ids]
            for i in range(0, len(rows), 2000):
                await conn.execute(device_group_members.insert(), rows[i:i + 2000])
    finally:
        await db.dispose()


# ---- the virtual fleet -----------------------------------------------------------------------------
class Fleet:
    """Every virtual device behind one service-account connection; offline ones drop what they get."""

    def __init__(self, client: aiomqtt.Client, ids: list[str], offline: set[str], fail: float, seed: int = 7) -> None:
        self.client = client
        self.offline = set(offline)
        self.dropped = 0
        rng = random.Random(seed)
        config = AgentConfig(fail_rate=0.0, work_s=0.2, download=False)
        failing = AgentConfig(fail_rate=1.0, work_s=0.2, download=False)
        failers = set(rng.sample(ids, int(len(ids) * fail)))
        self.agents = {d: DeviceAgent(FLEET, d, self.send, failing if d in failers else config) for d in ids}

    async def send(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)

    async def listen(self) -> None:
        for suffix in ("ota", "jobs/#"):
            await self.client.subscribe(f"tenant/{FLEET}/device/+/{suffix}", qos=1)
        async for message in self.client.messages:
            device = str(message.topic).split("/")[3]
            if device in self.offline:
                self.dropped += 1
                continue
            agent = self.agents.get(device)
            if agent is not None:
                await agent.handle(str(message.topic), bytes(message.payload))

    async def connect(self, ids: list[str] | set[str]) -> None:
        """Presence as a Mosquitto device announces it: connected and listening."""
        self.offline -= set(ids)
        body = json.dumps({"connected": True}).encode()
        await gather_bounded([self.client.publish(f"tenant/{FLEET}/device/{d}/presence", body, qos=1) for d in ids])

    def stats(self) -> Counter[str]:
        return sum((a.stats for a in self.agents.values()), Counter())


async def gather_bounded(coros: list, limit: int = 500) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


# ---- measurements ----------------------------------------------------------------------------------
async def bridge_accepted() -> int:
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("ingest-bridge")]
    stats = await asyncio.gather(*(ray.get_actor(n, namespace="pulse").stats.remote() for n in names))
    return sum(s["accepted"] for s in stats)


def _publish_load(endpoint: tuple[str, int, str, str], topics: list[str], messages: int, seq0: int,
                  connected: Any) -> None:
    """In a child process, so the virtual fleet's event loop does not slow the load down."""

    async def run() -> None:
        host, port, user, password = endpoint
        ts = datetime.now(timezone.utc).isoformat()
        async with aiomqtt.Client(host, port, username=user, password=password, max_inflight_messages=1000,
                                  identifier=f"bench-load-{os.getpid()}", timeout=30) as client:
            connected.set()
            sem = asyncio.Semaphore(200)

            async def one(i: int) -> None:
                body = {"version": "1", "ts": ts, "seq": seq0 + i, "metrics": {"t": float(i % 50), "h": 40.0}}
                async with sem:
                    await client.publish(topics[i % len(topics)], json.dumps(body).encode(), qos=1)

            await asyncio.gather(*(one(i) for i in range(messages)))

    asyncio.run(run())


async def telemetry_rate(endpoint: tuple[str, int, str, str], load_ids: list[str], messages: int, seq0: int) -> float:
    """`messages` telemetry envelopes (QoS 1) from a child process, timed until the bridges accepted them all."""
    before = await bridge_accepted()
    topics = [f"tenant/{LOAD}/device/{d}/telemetry" for d in load_ids]
    ctx = multiprocessing.get_context("spawn")
    connected = ctx.Event()
    child = ctx.Process(target=_publish_load, args=(endpoint, topics, messages, seq0, connected))
    child.start()
    await asyncio.to_thread(connected.wait, 60)  # the clock starts once the publisher is connected
    started = time.monotonic()
    deadline = time.monotonic() + 120
    while await bridge_accepted() - before < messages and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    await asyncio.to_thread(child.join, 30)
    return messages / elapsed


def cpu_seconds() -> tuple[float, float]:
    """CPU time so far of this process (the virtual fleet) and of everything it started (Pulse, the broker)."""
    import psutil

    me = psutil.Process()
    own = sum(me.cpu_times()[:2])
    others = 0.0
    for p in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            others += sum(p.cpu_times()[:2])
    return own, others


def shard_rss() -> int:
    import psutil

    total = 0
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any("DeviceShard" in part for part in (p.info["cmdline"] or [])):
                total += p.memory_info().rss
    return total


def db_bytes(settings: Settings) -> int | None:
    """Pages in use by the SQLite store (after a WAL checkpoint); None on another database."""
    import sqlite3

    url = settings.db_url
    if not url.startswith("sqlite"):
        return None
    with contextlib.closing(sqlite3.connect(url.split("///", 1)[1], timeout=30)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages,), (free,), (size,) = (conn.execute(f"PRAGMA {p}").fetchone()
                                      for p in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size


async def wait_for(http: httpx.AsyncClient, path: str, done: set[str], timeout: float) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    while True:
        body = (await http.get(path)).json()
        if body.get("status") in done or time.monotonic() - started > timeout:
            return body, time.monotonic() - started
        await asyncio.sleep(0.2)


async def wait_online_done(fleet: Fleet, online: int, key: str, timeout: float) -> float:
    """Until every online device has reported a final result (its own count, not Pulse's)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        s = fleet.stats()
        if s[f"{key}_success" if key == "ota" else "job_succeeded"] + s[f"{key}_failed"] >= online:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


# ---- the run ---------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, settings: Settings, token: str) -> None:
    ids = [f"fd-{i:05d}" for i in range(args.devices)]
    load_ids = [f"ld-{i:03d}" for i in range(LOAD_DEVICES)]
    offline = set(random.Random(3).sample(ids, int(len(ids) * args.offline)))
    online = [d for d in ids if d not in offline]
    await provision(settings, ids, load_ids)
    api = f"http://127.0.0.1:{settings.http_port}"
    endpoint = service_endpoint(settings)
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http, \
            aiomqtt.Client(endpoint.host, endpoint.port, username=endpoint.username, password=endpoint.password,
                           identifier=f"bench-fleet-{os.getpid()}", max_inflight_messages=1000,
                           timeout=30) as fleet_client:
        load = (endpoint.host, endpoint.port, endpoint.username or "", endpoint.password or "")
        group = (await http.post("/api/v1/customer/device-groups", json={"name": "bench-fleet"})).json()["group_id"]
        await add_members(settings, group, ids)
        fleet = Fleet(fleet_client, ids, offline, args.fail)
        listener = asyncio.create_task(fleet.listen())
        await fleet.connect(online)
        log(f"{len(ids):,} devices ({len(online):,} online, {len(offline):,} offline, {args.fail:.0%} failing), "
            f"{LOAD_DEVICES} telemetry devices in tenant {LOAD!r}; broker {args.broker}")

        await telemetry_rate(load, load_ids, args.telemetry // 5, 0)  # warm-up: activation, first files
        base = await telemetry_rate(load, load_ids, args.telemetry, 10**6)
        log(f"telemetry alone: {base:,.0f} msg/s")

        fw = await http.post("/api/v1/customer/firmware", json={
            "version": "2.0.0", "file_url": "https://firmware.example/fw-2.0.0.bin",
            "checksum_sha256": "ab" * 32, "file_size_bytes": 1 << 20})
        fw.raise_for_status()
        db_before, rss_before = db_bytes(settings), shard_rss()
        r = await http.post("/api/v1/customer/ota/campaigns", json={
            "name": "bench", "firmware_version_id": fw.json()["id"], "target_group_id": group,
            "rollout_strategy": "linear", "rollout_rate": args.rollout_rate, "abort_threshold": 0.5})
        r.raise_for_status()
        campaign = r.json()["id"]
        db_after = db_bytes(settings)
        started = time.monotonic()
        (await http.post(f"/api/v1/customer/ota/campaigns/{campaign}/start")).raise_for_status()
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        during = await telemetry_rate(load, load_ids, args.telemetry, 2 * 10**6)
        (fleet_cpu, pulse_cpu), wall = (b - a for a, b in zip(cpu0, cpu_seconds())), time.monotonic() - wall0
        log(f"telemetry during the campaign's waves: {during:,.0f} msg/s; CPU meanwhile (100 % = one core of "
            f"{os.cpu_count()}): the virtual fleet {100 * fleet_cpu / wall:.0f} %, Pulse, the broker and the "
            f"load generator {100 * pulse_cpu / wall:.0f} %")
        await wait_online_done(fleet, len(online), "ota", 600)
        rss_mid = shard_rss()
        waves = math.ceil(len(ids) / args.rollout_rate)
        log(f"campaign: the {len(online):,} online devices finished {time.monotonic() - started:.1f} s after start; "
            f"the waves alone take {waves} ticks of 1 s = {waves} s")
        reconnect = time.monotonic()
        await fleet.connect(offline)
        body, _ = await wait_for(http, f"/api/v1/customer/ota/campaigns/{campaign}", {"COMPLETED", "ABORTED"}, 600)
        total_s = time.monotonic() - started
        log(f"campaign {body.get('status')} {total_s:.1f} s after start ({time.monotonic() - reconnect:.1f} s after "
            f"the {len(offline):,} offline devices reconnected): {body.get('status_breakdown')}, "
            f"succeeded {body.get('succeeded')}, failed {body.get('failed')}")
        if db_before is not None and db_after is not None:
            log(f"campaign state in the store: {(db_after - db_before) / len(ids):,.0f} B/device "
                f"(SQLite pages in use, before and after creating the campaign with its {len(ids):,} device rows)")
        log(f"device shards' RSS: {(rss_mid - rss_before) / len(ids):+,.0f} B/device during the campaign "
            f"(actors hold no campaign state; this is the presence and activation of {len(ids):,} actors)")
        after = await telemetry_rate(load, load_ids, args.telemetry, 3 * 10**6)
        alone = (base + after) / 2
        log(f"telemetry alone again: {after:,.0f} msg/s; during the waves = {during / alone:.0%} of alone "
            f"(the mean of before and after; goal >= 90 %)")

        fleet.offline |= offline  # off again, to come back during the job
        started = time.monotonic()
        r = await http.post("/api/v1/customer/jobs", json={"document_type": "reboot", "target_group_id": group})
        r.raise_for_status()
        job = r.json()["job_id"]
        job_online_s = await wait_online_done(fleet, len(online), "job", 600)
        await fleet.connect(offline)
        body, _ = await wait_for(http, f"/api/v1/customer/jobs/{job}", {"COMPLETED", "CANCELED"}, 600)
        counts = Counter(e["status"] for e in body.get("executions", []))
        log(f"job over {len(ids):,} devices: online ones done in {job_online_s:.1f} s; {body.get('status')} "
            f"{time.monotonic() - started:.1f} s after creation: {dict(counts)}")
        log(f"fleet answered: {dict(fleet.stats())}; messages to offline devices dropped: {fleet.dropped:,}")
        await asyncio.gather(*(agent.close() for agent in fleet.agents.values()))
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await listener


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--rollout-rate", type=int, default=1000)
    p.add_argument("--fail", type=float, default=0.05)
    p.add_argument("--offline", type=float, default=0.05)
    p.add_argument("--telemetry", type=int, default=40_000, help="messages per telemetry phase")
    p.add_argument("--broker", choices=["mosquitto", "embedded"],
                   default="mosquitto" if shutil.which("mosquitto") else "embedded")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    node = mosquitto = None
    try:
        node, mosquitto, settings, info = start_node(tmp, args.broker)
        asyncio.run(run(args, settings, info["token"]))
    finally:
        if node is not None:
            node.stop()
        if mosquitto is not None:
            mosquitto.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
