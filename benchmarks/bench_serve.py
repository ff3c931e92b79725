"""Serve ingress: requests/s and latency of a real API route under concurrency.

Runs the Pulse app three ways in one run and loads each from a separate process
(32 concurrent clients, GET /api/v1/customer/devices: JWT check + SQL page):
  - baseline: the same app on bare uvicorn (LocalRuntime), no Serve;
  - Serve with max_ongoing_requests = 5 (the library default);
  - Serve with max_ongoing_requests = 64 (Pulse's default) and 128.
Prints req/s, p50/p99 and each Serve variant as a ratio of the uvicorn baseline.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 8] [--concurrency 32]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from pulse.node import wait_for_200

LOAD = textwrap.dedent("""
    import asyncio, json, sys, time, httpx
    url, token, seconds, conc = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    lat = []
    async def worker(client, deadline):
        while time.monotonic() < deadline:
            t = time.perf_counter()
            r = await client.get(url, headers={"Authorization": "Bearer " + token})
            r.raise_for_status()
            lat.append(time.perf_counter() - t)
    async def main():
        limits = httpx.Limits(max_connections=conc)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            await client.get(url, headers={"Authorization": "Bearer " + token})  # warm up
            deadline = time.monotonic() + seconds
            t0 = time.monotonic()
            await asyncio.gather(*(worker(client, deadline) for _ in range(conc)))
            took = time.monotonic() - t0
        lat.sort()
        print(json.dumps({"rps": len(lat) / took, "p50_ms": lat[len(lat) // 2] * 1000,
                          "p99_ms": lat[int(len(lat) * 0.99)] * 1000, "n": len(lat)}))
    asyncio.run(main())
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(url: str, token: str, seconds: float, concurrency: int) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, url, token, str(seconds), str(concurrency)],
                         capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout)


def seed(settings, devices: int = 50) -> str:
    """Tenant, admin token and a page of devices, straight into the store."""
    from pulse.services.identity import issue_token
    from pulse.services import bootstrap
    from pulse.storage import devices as device_store
    from pulse.storage.db import Database

    async def go() -> None:
        await bootstrap.ensure_principal(settings, "bench", "customer_admin", "admin@bench")
        db = Database(settings.db_url)
        for i in range(devices):
            await device_store.create(db, "bench", {"device_id": f"d{i:03d}"})
        await db.dispose()

    asyncio.run(go())
    return issue_token(settings, "admin@bench", "bench", "customer_admin")


def uvicorn_baseline(settings, token: str, seconds: float, concurrency: int) -> dict:
    """The same app and store on bare uvicorn in its own process."""
    port = free_port()
    code = textwrap.dedent(f"""
        import asyncio, uvicorn
        from pulse.mqtt.publisher import Downlink
        from pulse.actors.runtime import LocalRuntime
        from pulse.broker.credentials import EmbeddedCredentials
        from pulse.config.settings import Settings
        from pulse.serve.app import create_app
    from pulse.services.context import ServiceContext as Services
        from pulse.services.identity import TokenDecoder
        from pulse.storage.db import Database
        from pulse.pipelines.telemetry import LakeReader
        s = Settings(data_dir={str(settings.data_dir)!r})
        async def build():
            rt = LocalRuntime(s)
            await rt.start()
            return Services(s, Database(s.db_url), rt, LakeReader(s.lake_dir), Downlink(s), EmbeddedCredentials(),
                            TokenDecoder(s))
        uvicorn.run(create_app(build), host="127.0.0.1", port={port}, log_level="warning", access_log=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        url = f"http://127.0.0.1:{port}/api/v1/customer/devices"
        wait_for_200(f"http://127.0.0.1:{port}/healthz")
        return load(url, token, seconds, concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def serve_variant(settings, token: str, max_ongoing: int, seconds: float, concurrency: int) -> dict:
    from ray import serve

    from pulse.deployment import application

    settings.serve_max_ongoing_requests = max_ongoing
    serve.run(application(settings), name="pulse", route_prefix="/")
    wait_for_200(f"http://127.0.0.1:{settings.http_port}/healthz")
    return load(f"http://127.0.0.1:{settings.http_port}/api/v1/customer/devices", token, seconds, concurrency)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()

    import ray

    from pulse.config.settings import Settings
    from pulse.node import Node

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-serve-"))
    settings = Settings(data_dir=tmp / "data", http_port=free_port(), mqtt_port=free_port(), dashboard_enabled=False)
    settings.ensure_dirs()
    token = seed(settings)
    print(f"GET /api/v1/customer/devices (50 devices), {args.concurrency} concurrent clients, {args.seconds:g} s each")
    base = uvicorn_baseline(settings, token, args.seconds, args.concurrency)
    print(f"  uvicorn (baseline)          {base['rps']:7.0f} req/s  p50 {base['p50_ms']:6.1f} ms  p99 {base['p99_ms']:6.1f} ms")
    node = Node(settings)
    try:
        node.start()
        for mo in (5, 64, 128):
            r = serve_variant(settings, token, mo, args.seconds, args.concurrency)
            print(f"  Serve max_ongoing={mo:<4}      {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                  f"p99 {r['p99_ms']:6.1f} ms   = {r['rps'] / base['rps']:.2f}x uvicorn")
    finally:
        node.stop()
        if ray.is_initialized():
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
