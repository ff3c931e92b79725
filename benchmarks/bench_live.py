"""Live push under load: N concurrent WebSocket subscribers while ingest runs.

    .venv/bin/python benchmarks/bench_live.py [--subscribers 200] [--devices 50] [--batches 200] [--batch 100]

One process, all on 127.0.0.1: the real app (`create_app`) served by uvicorn, a `LocalRuntime`
(the same shard, hub and fan-out classes a node runs under Ray, in-process), SQLite and the lake
in a temp dir. Ingest goes through `pulse.services.ingest.accept` (the pipeline the MQTT bridge
and HTTP ingest share: decode, device actors, lake WAL append = acknowledged, then live push).
Not measured here: the MQTT broker and Ray's actor calls (tests/e2e/test_live.py measures the
latency through a real node on Ray with the embedded broker).

Phases, same run:
1. baseline - ingest `batches` x `batch` messages with no subscriber: msg/s;
2. live     - `subscribers` WebSocket clients (each watches one device's telemetry), the
              same ingest; msg/s, events delivered to clients per second, latency now - acked_ms
              at the client (acknowledged -> received) p50/p99, events dropped;
3. memory   - RSS growth of the server process per connected subscriber.
The clients run in a second process (`--client-mode`), as they would on other machines.
Nothing asserts on time; the ratio with/without subscribers is the figure to read.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import uvicorn
from websockets.asyncio.client import connect

from pulse.actors.runtime import LocalRuntime
from pulse.broker.credentials import credentials_for
from pulse.config.settings import Settings
from pulse.domain.envelope import Limits
from pulse.domain.live import Watch
from pulse.mqtt.publisher import Downlink
from pulse.pipelines.telemetry import LakeReader
from pulse.serve.app import create_app
from pulse.services import devices as device_service
from pulse.services.context import ServiceContext
from pulse.services.identity import TokenDecoder, issue_token
from pulse.services.ingest import accept
from pulse.storage import tenants
from pulse.storage.db import Database

TENANT = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def build(tmp: Path) -> ServiceContext:
    settings = Settings(data_dir=tmp, mqtt_port=free_port(), live_max_subscribers=1000, live_max_per_tenant=1000,
                        lake_flush_interval_s=5.0)
    settings.ensure_dirs()
    db = Database(settings.db_url)
    await db.migrate()
    runtime = LocalRuntime(settings)
    await runtime.start()
    await tenants.ensure_tenant(db, TENANT)
    return ServiceContext(settings=settings, db=db, runtime=runtime, lake=LakeReader(settings.lake_dir),
                          downlink=Downlink(settings), credentials=credentials_for(settings),
                          decoder=TokenDecoder(settings))


def batches(devices: int, n_batches: int, size: int, start: datetime) -> list[list[tuple[str, bytes]]]:
    out, i = [], 0
    for _ in range(n_batches):
        batch = []
        for _ in range(size):
            d = i % devices
            body = {"version": "1", "ts": (start + timedelta(milliseconds=i)).isoformat(), "seq": i,
                    "metrics": {"temp": 20 + i % 7, "hum": 40 + i % 5}}
            batch.append((f"tenant/{TENANT}/device/dev-{d:04d}/telemetry", json.dumps(body).encode()))
            i += 1
        out.append(batch)
    return out


async def ingest(svc: ServiceContext, work: list[list[tuple[str, bytes]]]) -> float:
    """msg/s of `accept` over all batches, one after another (like one bridge)."""
    t0 = time.perf_counter()
    for batch in work:
        await accept(svc.runtime, svc.db, Limits(), batch)
    return sum(len(b) for b in work) / (time.perf_counter() - t0)


class Subscriber:
    def __init__(self) -> None:
        self.received = 0
        self.dropped = 0
        self.latencies: list[float] = []

    async def run(self, url: str, ready: asyncio.Event, connected: list[int]) -> None:
        async with connect(url) as ws:
            json.loads(await ws.recv())  # connected
            connected[0] += 1
            if connected[0] >= connected[1]:
                ready.set()
            async for raw in ws:
                now = time.time() * 1000
                event = json.loads(raw)
                if event["type"] == "telemetry":
                    self.received += 1
                    self.latencies.append(now - event["acked_ms"])
                elif event["type"] == "dropped":
                    self.dropped += event["count"]


async def clients(url: str, n: int, devices: int, expected: int, timeout_s: float) -> None:
    """Client process: N subscribers, `ready` on stdout, then the results as one JSON line."""
    subs = [Subscriber() for _ in range(n)]
    ready, connected = asyncio.Event(), [0, n]
    tasks = [asyncio.create_task(s.run(f"{url}{i % devices:04d}", ready, connected)) for i, s in enumerate(subs)]
    await asyncio.wait_for(ready.wait(), 120)
    print("ready", flush=True)
    deadline = time.monotonic() + timeout_s
    while sum(s.received + s.dropped for s in subs) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    print(json.dumps({"received": sum(s.received for s in subs), "dropped": sum(s.dropped for s in subs),
                      "latencies": [x for s in subs for x in s.latencies]}), flush=True)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    srv = task = None
    svc = await build(tmp)
    try:
        app = create_app()
        app.state.services = svc
        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        task = asyncio.create_task(srv.serve())
        while not srv.started:
            await asyncio.sleep(0.01)
        token = issue_token(svc.settings, "bench@bench", TENANT, "customer_admin")
        for d in range(args.devices):
            await device_service.create(svc, TENANT, {"device_id": f"dev-{d:04d}"})
        start = datetime.now(timezone.utc) - timedelta(hours=1)
        warm = batches(args.devices, 5, args.batch, start - timedelta(hours=1))
        await ingest(svc, warm)  # activate the actors, rules and WAL once
        base_work = batches(args.devices, args.batches, args.batch, start)
        base = await ingest(svc, base_work)
        print(f"baseline: {args.batches}x{args.batch} messages, no subscriber: {base:,.0f} msg/s")
        # a watch on 200 devices that get no traffic: the shards' per-message filter, nothing published
        idle = Watch({TENANT: frozenset(f"idle-{i}" for i in range(200))}, frozenset({TENANT}), frozenset({TENANT}))
        await svc.runtime.live_watch("bench-idle", idle)
        idle_rate = await ingest(svc, batches(args.devices, args.batches, args.batch, start + timedelta(minutes=5)))
        await svc.runtime.live_watch("bench-idle", Watch())
        print(f"watched tenant, these devices unwatched (status+alerts watched): {idle_rate:,.0f} msg/s = "
              f"{idle_rate / base:.2f}x the baseline")

        gc.collect()
        rss0 = rss_mib()
        live_work = batches(args.devices, args.batches, args.batch, start + timedelta(minutes=10))
        per_device = [sum(1 for i in range(args.subscribers) if i % args.devices == d) for d in range(args.devices)]
        expected = sum(per_device) * sum(len(b) for b in live_work) // args.devices
        url = f"ws://127.0.0.1:{port}/api/v1/customer/telemetry/stream?token={token}&device_id=dev-"
        # the clients run in their own process, as they would on other machines; each watches one
        # device (a device page), every device is watched by subscribers/devices clients
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client-mode", url, "--subscribers", str(args.subscribers),
            "--devices", str(args.devices), "--expected", str(expected), stdout=asyncio.subprocess.PIPE,
            limit=2**27)  # the latencies come back as one JSON line
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        assert line.strip() == b"ready", line
        await asyncio.sleep(0.5)
        gc.collect()
        rss1 = rss_mib()
        live = app.state.live
        print(f"{args.subscribers} subscribers connected: server RSS +{rss1 - rss0:.1f} MiB = "
              f"{(rss1 - rss0) * 1024 / args.subscribers:.0f} KiB per subscriber")
        t0 = time.perf_counter()
        with_subs = await ingest(svc, live_work)
        result = json.loads(await asyncio.wait_for(proc.stdout.readline(), 200))
        elapsed = time.perf_counter() - t0
        await proc.wait()
        received, dropped = result["received"], result["dropped"]
        lat = sorted(result["latencies"])
        rss2 = rss_mib()
        print(f"with {args.subscribers} subscribers: ingest {with_subs:,.0f} msg/s = "
              f"{with_subs / base:.2f}x the baseline (fan-out and socket writes share this process's loop)")
        print(f"delivered {received:,} of {expected:,} events in {elapsed:.1f} s = {received / elapsed:,.0f} events/s; "
              f"dropped (slow clients, drop-oldest) {dropped:,} = {dropped / max(expected, 1):.1%}; "
              f"hub dropped {live.hub_dropped}")
        if lat:
            p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
            print(f"latency acked -> client: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1]:.1f} ms "
                  f"(mean {statistics.fmean(lat):.1f} ms)")
        print(f"server RSS after the live phase: +{rss2 - rss0:.1f} MiB over no subscribers "
              f"(queues bounded at {svc.settings.live_queue_size} events per client)")
    finally:
        if srv is not None:
            srv.should_exit = True
            await task
        if getattr(svc, "runtime", None) is not None:
            live = getattr(app.state, "live", None)
            if live is not None:
                await live.close()
            await svc.runtime.stop()
        await svc.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--client-mode", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=int, default=0, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.client_mode:
        asyncio.run(clients(parsed.client_mode, parsed.subscribers, parsed.devices, parsed.expected, 180.0))
    else:
        asyncio.run(main(parsed))
