"""The REST API at load: paced (open-loop) rates through Ray Serve, against bare uvicorn in the same run.

One private node (`pulse.node.Node`: Ray, embedded broker, actors, Serve on the shipped settings) is
seeded through the API itself: an alert rule, N devices (POST /devices), one telemetry envelope per
device over HTTP ingest, a fifth of them over the rule's threshold (so OPEN alerts exist). Then the
same app (`pulse.deployment.build_app`, same Ray actors and store) is also served by bare uvicorn
in a Ray actor of its own: no proxy hop, the anchor.

Each route is loaded at a ladder of fixed rates from a separate process (`paced_load.py`: requests
leave on schedule whatever the answers, latency from the due time), first on uvicorn, then on
Serve. A ladder stops one step after p99 first reaches 50 ms, except that the goal rate is always
run. Per rate it prints p50/p99 of the 2xx answers, the achieved 2xx rate, 503s (shed, and how fast)
and other errors, the generator's own CPU, and the CPU per answered request of the API process
(the uvicorn anchor's or the Serve replica's) and of the device shard.

Goals (issue 13), printed met / not met:
  - p99 < 50 ms at 200 req/s on list-devices and at 300 req/s on device detail, through Serve;
  - Serve's highest rate with p99 < 50 ms is >= 80 % of uvicorn's, on those two routes;
  - past capacity, load is shed (503 + Retry-After) and the accepted answers keep p99 < 100 ms.
A closed-loop phase (N concurrent clients, each waiting for its answer) follows, as before.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 5] [--devices 500] [--only list,detail]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pulse.node import wait_for_200

HERE = Path(__file__).parent
TENANT = "bench"
GOAL_P99_MS = 50.0
SHED_P99_MS = 100.0


@dataclass(frozen=True)
class Route:
    key: str
    label: str
    ladder: tuple[int, ...]  # req/s, ascending
    goal_rate: int | None  # the issue's goal for this route, if any


# Steps from the goal rates up are 25-50 req/s apart, because the 80 % goal compares the highest
# rates held: with 200 and 250 as neighbours, a server holding 240 and one holding 300 would read as
# 67 %, not 80 %.
ROUTES = (
    Route("list", "GET /devices?limit=50", (50, 100, 200, 225, 250, 275, 300, 350, 400, 600), 200),
    Route("detail", "GET /devices/{id}", (100, 200, 300, 350, 400, 450, 500, 600), 300),
    Route("latest", "GET /devices/{id}/telemetry/latest", (100, 200, 300, 350, 400), None),
    Route("alerts", "GET /alerts?limit=50", (50, 100, 200, 300), None),
)


def paths(key: str, devices: int) -> list[str]:
    """The request paths a route's load cycles through (ids spread over the whole fleet)."""
    base = "/api/v1/customer"
    ids = [device_id(i) for i in range(0, devices, max(1, devices // 100))]
    return {"list": [f"{base}/devices?limit=50"],
            "detail": [f"{base}/devices/{d}" for d in ids],
            "latest": [f"{base}/devices/{d}/telemetry/latest" for d in ids],
            "alerts": [f"{base}/alerts?limit=50"]}[key]


def device_id(i: int) -> str:
    return f"dev-{i:05d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- seeding, through the API ------------------------------------------------------------------
def admin_token(settings) -> str:
    from pulse.services import bootstrap
    from pulse.services.identity import issue_token

    asyncio.run(bootstrap.ensure_principal(settings, TENANT, "customer_admin", "admin@bench"))
    return issue_token(settings, "admin@bench", TENANT, "customer_admin")


async def post(http: httpx.AsyncClient, url: str, body: dict, headers: dict | None = None) -> httpx.Response:
    """POST, honouring a 503's Retry-After as a well-behaved client does (bounded)."""
    for _ in range(20):
        r = await http.post(url, json=body, headers=headers)
        if r.status_code != 503:
            break
        await asyncio.sleep(min(5.0, float(r.headers.get("retry-after", "1"))))
    r.raise_for_status()
    return r


async def seed(base: str, token: str, devices: int) -> int:
    """A rule, the devices and one envelope each; returns how many alerts should open."""
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        await post(http, "/api/v1/customer/alert-rules", {
            "name": "bench hot", "metric": "temp", "operator": "GT", "threshold": 90, "severity": "warning"})
        gate = asyncio.Semaphore(4)

        async def device(i: int) -> None:
            async with gate:
                d = await post(http, "/api/v1/customer/devices", {
                    "device_id": device_id(i), "name": f"sensor {i}", "site_id": f"site-{i % 20}",
                    "model": "TH-2", "metadata": {"floor": i % 7}})
                hot = i % 5 == 0
                body = {"version": "1", "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seq": 1,
                        "metrics": {"temp": 95.0 if hot else 21.5, "humidity": 40 + i % 30, "battery": 3.6}}
                await post(http, f"/ingest/v1/tenant/{TENANT}/device/{device_id(i)}/telemetry", body,
                           headers={"X-Provision-Token": d.json()["token"]})

        await asyncio.gather(*(device(i) for i in range(devices)))
    return len(range(0, devices, 5))


def wait_for_alerts(base: str, token: str, expected: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    total = 0
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/api/v1/customer/alerts", params={"limit": 1},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
        total = r.json().get("total", 0) if r.status_code == 200 else 0
        if total >= expected:
            break
        time.sleep(0.5)
    return total


# ---- the anchor: bare uvicorn serving the same app, in a process like a Serve replica ----------
class UvicornAnchor:
    """Bare uvicorn on `port` serving `pulse.deployment.build_app()` (settings from PULSE_* env)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: Any = None
        self.task: Any = None

    async def start(self) -> None:
        import uvicorn

        from pulse.deployment import build_app

        config = uvicorn.Config(build_app(), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.task = asyncio.get_running_loop().create_task(self.server.serve())

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 30)


def start_anchor(settings) -> tuple[Any, int]:
    import ray

    port = free_port()
    actor = ray.remote(UvicornAnchor).options(
        num_cpus=0, runtime_env={"env_vars": settings.env()}).remote(port)
    ray.get(actor.start.remote(), timeout=120)
    wait_for_200(f"http://127.0.0.1:{port}/healthz")
    return actor, port


# ---- load --------------------------------------------------------------------------------------
def paced(port: int, token: str, rate: int, seconds: float, req_paths: list[str]) -> dict:
    cmd = [sys.executable, str(HERE / "paced_load.py"), "--port", str(port), "--token", token,
           "--rate", str(rate), "--seconds", str(seconds)]
    for p in req_paths:
        cmd += ["--path", p]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout)


# ---- where the CPU goes: the API process and the device shard, per request ----------------------
PROCESSES = {"uvicorn": "UvicornAnchor", "Serve": "ServeReplica", "shard": "DeviceShard"}


def process_pids() -> dict[str, int]:
    """The uvicorn anchor, the Serve replica and the device shard among this script's descendants
    (the Ray workers of its private cluster)."""
    import psutil

    out: dict[str, int] = {}
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(p.cmdline()[:1])
            for key, marker in PROCESSES.items():
                if cmd.startswith("ray::") and marker in cmd:
                    out[key] = p.pid
    return out


def cpu_seconds(pid: int | None) -> float:
    import psutil

    if pid is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    return 0.0


def measured(server: str, run: Any) -> dict:
    """`run()`'s result with the CPU its API process (`server`) and the device shard spent per
    request answered (2xx or 503), in ms."""
    pids = process_pids()
    before = {k: cpu_seconds(pids.get(k)) for k in (server, "shard")}
    r = run()
    answered = max(1, r["ok"] + r["shed"])
    for key, name in ((server, "server_cpu_ms"), ("shard", "shard_cpu_ms")):
        r[name] = 1000 * (cpu_seconds(pids.get(key)) - before[key]) / answered
    return r


def ladder(port: int, token: str, route: Route, seconds: float, devices: int, server: str) -> list[dict]:
    """Up the rates; one step past the first p99 >= 50 ms (that step shows shedding), goal rate always."""
    results: list[dict] = []
    over = 0
    for rate in route.ladder:
        r = measured(server, lambda: paced(port, token, rate, seconds, paths(route.key, devices)))
        results.append(r)
        print_step(r)
        over += not holds(r)
        if over >= 2 and (route.goal_rate is None or rate >= route.goal_rate):
            break
        time.sleep(1.0)  # let a backlog drain before the next step
    return results


def holds(r: dict, p99_ms: float = GOAL_P99_MS) -> bool:
    """Every request answered 2xx at (at least 99 % of) the offered rate, with p99 under the bar."""
    return r["p99_ms"] is not None and r["p99_ms"] < p99_ms and r["ok"] >= 0.99 * r["sent"]


def fmt(v: float | None) -> str:
    return "     -" if v is None else f"{v:6.1f}"


def print_step(r: dict) -> None:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "0"
    print(f"    {r['rate']:5.0f} req/s: p50 {fmt(r['p50_ms'])} ms  p99 {fmt(r['p99_ms'])} ms  "
          f"achieved {r['achieved_rps']:5.0f}/s  503 {r['shed']:5d} (Retry-After {r['shed_with_retry_after']}, "
          f"p99 {fmt(r['shed_p99_ms']).strip()} ms)  errors {errors}  | generator CPU {r['gen_cpu_pct']:3.0f} %, "
          f"late <= {r['gen_late_max_ms']:.0f} ms | CPU per request: API process {r['server_cpu_ms']:.2f} ms, "
          f"device shard {r['shard_cpu_ms']:.2f} ms", flush=True)


def best_rate(results: list[dict]) -> int:
    """The highest offered rate that held (0 if none did)."""
    return max((int(r["rate"]) for r in results if holds(r)), default=0)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(route: Route, uv: list[dict], sv: list[dict]) -> list[bool]:
    u_best, s_best = best_rate(uv), best_rate(sv)
    print(f"  {route.label}: highest rate with p99 < {GOAL_P99_MS:.0f} ms: uvicorn {u_best} req/s, Serve {s_best} req/s"
          + (f" = {100 * s_best / u_best:.0f} % of uvicorn" if u_best else ""))
    goals = []
    if route.goal_rate is not None:
        at_goal = next((r for r in sv if r["rate"] == route.goal_rate), None)
        met = at_goal is not None and holds(at_goal)
        got = f"p99 {fmt(at_goal['p99_ms']).strip()} ms" if at_goal else "not run"
        print(f"    goal p99 < {GOAL_P99_MS:.0f} ms at {route.goal_rate} req/s through Serve: {got} -> {verdict(met)}")
        ratio_met = u_best > 0 and s_best >= 0.8 * u_best
        print(f"    goal Serve >= 80 % of uvicorn's rate: {verdict(ratio_met)}")
        goals += [met, ratio_met]
    for name, rs in (("uvicorn", uv), ("Serve", sv)):
        overload = [r for r in rs if r["shed"] > 0]
        if overload:
            r = overload[-1]
            fast = r["p99_ms"] is None or r["p99_ms"] < SHED_P99_MS
            with_header = r["shed_with_retry_after"] == r["shed"]
            # the goal is the shipped ingress's; the anchor's line is there to compare with
            outcome = verdict(fast and with_header) if name == "Serve" else f"(anchor: {'under' if fast else 'over'} 100 ms)"
            print(f"    {name} past capacity ({r['rate']:.0f} req/s): {r['shed']} shed with 503 "
                  f"({'all' if with_header else 'NOT all'} with Retry-After, p99 {fmt(r['shed_p99_ms']).strip()} ms), "
                  f"accepted p99 {fmt(r['p99_ms']).strip()} ms -> {outcome}")
            if name == "Serve":
                goals.append(fast and with_header)
    return goals


def closed_loop(port: int, token: str, seconds: float, concurrency: int) -> dict:
    """N clients, each sending its next request when the last is answered (the old benchmark)."""
    # reuses paced_load's HTTP client (cwd = benchmarks/); the child imports nothing of Pulse
    cmd = [sys.executable, "-c", CLOSED, str(port), token, str(seconds), str(concurrency)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout)


CLOSED = """
import asyncio, json, sys, time
from paced_load import Connections, requests_for, read_response, pct
port, token, seconds, conc = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lat = []
async def worker(pool, req, deadline):
    while time.monotonic() < deadline:
        t = time.perf_counter()
        conn = await pool.take()
        conn[1].write(req)
        status, headers = await read_response(conn[0])
        pool.give_back(conn, True)
        if status == 200:
            lat.append(time.perf_counter() - t)
async def main():
    pool = Connections("127.0.0.1", port, conc)
    req = requests_for("127.0.0.1", port, token, ["/api/v1/customer/devices?limit=50"])[0]
    t0 = time.monotonic()
    await asyncio.gather(*(worker(pool, req, t0 + seconds) for _ in range(conc)))
    took = time.monotonic() - t0
    pool.close()
    print(json.dumps({"rps": len(lat) / took, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}))
asyncio.run(main())
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0, help="per rate step")
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--only", default="list,detail,latest,alerts", help="comma-separated: list,detail,latest,alerts")
    ap.add_argument("--concurrency", type=int, default=32, help="closed-loop phase (0: skip it)")
    args = ap.parse_args()

    import ray

    from pulse.config.settings import Settings
    from pulse.node import Node

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-serve-"))
    settings = Settings(data_dir=tmp / "data", http_port=free_port(), mqtt_port=free_port(), dashboard_enabled=False)
    settings.ensure_dirs()
    token = admin_token(settings)
    node = Node(settings)
    anchor = None
    try:
        node.start()
        base = f"http://127.0.0.1:{settings.http_port}"
        t = time.monotonic()
        expected = asyncio.run(seed(base, token, args.devices))
        alerts = wait_for_alerts(base, token, expected)
        print(f"seeded through the API in {time.monotonic() - t:.1f} s: {args.devices} devices, one envelope each, "
              f"{alerts} OPEN alerts (expected {expected}); Serve replicas {settings.serve_replicas}, "
              f"max_ongoing_requests {settings.serve_max_ongoing_requests}")
        anchor, anchor_port = start_anchor(settings)
        goals: list[bool] = []
        for route in ROUTES:
            if route.key not in args.only.split(","):
                continue
            # the host is shared: its load average tells a reader how much else ran meanwhile
            print(f"{route.label}, paced, {args.seconds:g} s per rate (host load average {os.getloadavg()[0]:.1f})")
            print("  uvicorn (the anchor, same app and actors, no proxy)")
            uv = ladder(anchor_port, token, route, args.seconds, args.devices, "uvicorn")
            print("  Ray Serve (the shipped ingress)")
            sv = ladder(settings.http_port, token, route, args.seconds, args.devices, "Serve")
            goals += report(route, uv, sv)
        if args.concurrency:
            print(f"closed loop: GET /devices?limit=50, {args.concurrency} concurrent clients, {args.seconds:g} s")
            base_r = closed_loop(anchor_port, token, args.seconds, args.concurrency)
            serve_r = closed_loop(settings.http_port, token, args.seconds, args.concurrency)
            for name, r in (("uvicorn", base_r), ("Serve", serve_r)):
                print(f"  {name:8s} {r['rps']:6.0f} req/s  p50 {fmt(r['p50_ms'])} ms  p99 {fmt(r['p99_ms'])} ms"
                      + (f"  = {r['rps'] / base_r['rps']:.2f}x uvicorn" if name == "Serve" else ""))
        print(f"goals: {sum(goals)} of {len(goals)} met")
    finally:
        if anchor is not None:
            try:
                ray.get(anchor.stop.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        node.stop()
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
