"""Load shedding: when `Admission` takes a request (a fake clock), and over real sockets (the app on
uvicorn in the test's loop, a LocalRuntime): a refused request gets 503 with Retry-After and a JSON
detail at once; health checks, the console's files and the live streams (WebSocket, SSE) are never
shed and never count."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from pulse.config.settings import Settings
from pulse.serve.shedding import Admission, Limits
from tests.serve.helpers import served

STREAM = "/api/v1/customer/telemetry/stream"
DEVICES = "/api/v1/customer/devices"


LIMITS = Limits(steady=2, burst=8, target_s=0.030)


class Clocks:
    """Wall and CPU time, moved by the test."""

    def __init__(self) -> None:
        self.wall, self.cpu = 100.0, 5.0

    def admission(self) -> Admission:
        return Admission(clock=lambda: self.wall, cpu_clock=lambda: self.cpu)


def take(admission: Admission, n: int) -> None:
    """n requests taken at once."""
    assert all(admission.admit(LIMITS) for _ in range(n))


def serve(admission: Admission, clocks: Clocks, seconds: float, cpu_s: float, wall_s: float = 0.005) -> None:
    """`seconds` of requests one after the other beside those in progress, each costing cpu_s."""
    for _ in range(round(seconds / wall_s)):
        assert admission.admit(LIMITS)
        clocks.wall += wall_s
        clocks.cpu += cpu_s
        admission.done()


def test_up_to_the_steady_bound_every_request_is_taken_then_none_until_the_cost_is_measured():
    admission = Clocks().admission()
    take(admission, 2)
    assert not admission.admit(LIMITS)
    assert admission.in_flight == 2


def test_past_the_steady_bound_cheap_requests_are_taken_up_to_the_target_wait():
    clocks = Clocks()
    admission = clocks.admission()
    serve(admission, clocks, 0.2, cpu_s=0.0055)  # 5.5 ms of CPU each: five fit in 30 ms
    take(admission, 5)
    assert not admission.admit(LIMITS)  # a sixth would finish after 33 ms


def test_dear_requests_are_refused_sooner_and_the_burst_bound_holds_for_free_ones():
    clocks = Clocks()
    admission = clocks.admission()
    serve(admission, clocks, 0.2, cpu_s=0.015)
    take(admission, 2)
    assert not admission.admit(LIMITS)  # a third would finish after 45 ms
    admission.done()
    admission.done()
    serve(admission, clocks, 0.2, cpu_s=0.0)  # waiting on I/O only: no wait, up to the burst bound
    take(admission, 8)
    assert not admission.admit(LIMITS)


def test_a_pause_where_nothing_finishes_keeps_the_estimate():
    clocks = Clocks()
    admission = clocks.admission()
    serve(admission, clocks, 0.2, cpu_s=0.002)
    take(admission, 2)
    clocks.wall += 0.5  # a GC, or the host busy elsewhere: the requests piled up meanwhile get in
    take(admission, 6)


def test_zero_means_no_limit_and_a_burst_bound_at_the_steady_one_is_a_plain_count():
    clocks = Clocks()
    unlimited = Limits(steady=0, burst=0, target_s=0.030)
    admission = clocks.admission()
    assert all(admission.admit(unlimited) for _ in range(50))
    plain = Limits(steady=2, burst=2, target_s=0.030)
    counted = clocks.admission()
    serve(counted, clocks, 0.2, cpu_s=0.0)
    assert counted.admit(plain) and counted.admit(plain)
    assert not counted.admit(plain)


@pytest.fixture
async def server(api):
    """The app on a real port, at most one request in progress; yields host:port."""
    api.services.settings.api_max_in_flight = 1
    api.services.settings.api_max_in_flight_burst = 1
    async with served(api) as (host, _):
        yield host


async def hold_a_request(host: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A POST whose body has not fully arrived: it stays in progress until the rest is sent."""
    h, port = host.split(":")
    reader, writer = await asyncio.open_connection(h, int(port))
    body = json.dumps({"device_id": "held-1"}).encode()
    writer.write(f"POST {DEVICES} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:5])
    await writer.drain()
    return reader, writer


async def until_shed(http: httpx.AsyncClient, headers: dict) -> httpx.Response:
    """The held request reaches the app asynchronously: ask until the limit is seen (bounded)."""
    for _ in range(200):
        r = await http.get(DEVICES, headers=headers)
        if r.status_code == 503:
            return r
        await asyncio.sleep(0.01)
    return r


async def test_past_the_limit_requests_get_503_with_retry_after_and_health_and_streams_are_not_shed(api, server):
    host, headers = server, api.headers()
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        assert (await http.get(DEVICES, headers=headers)).status_code == 200
        reader, writer = await hold_a_request(host, api.token())

        shed = await until_shed(http, headers)
        assert shed.status_code == 503
        assert int(shed.headers["retry-after"]) >= 1
        assert shed.headers["content-type"] == "application/json"
        assert "busy" in shed.json()["detail"]

        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/")).status_code == 200  # the console's page and files
        assert (await http.get("/console/js/api.js")).status_code == 200
        async with http.stream("GET", STREAM + "/sse", headers=headers) as sse:
            assert sse.status_code == 200
        async with connect(f"ws://{host}{STREAM}?token={api.token()}") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connected"

        writer.write(json.dumps({"device_id": "held-1"}).encode()[5:])  # the held request completes
        await writer.drain()
        assert b" 201 " in await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert (await http.get(DEVICES, headers=headers)).json()["total"] == 1


async def test_open_live_streams_do_not_count_against_the_limit(api, server):
    host, headers = server, api.headers()
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        async with http.stream("GET", STREAM + "/sse", headers=headers) as sse, \
                connect(f"ws://{host}{STREAM}?token={api.token()}") as ws:
            assert sse.status_code == 200
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connected"
            for _ in range(3):  # one at a time: each is the only request in progress
                assert (await http.get(DEVICES, headers=headers)).status_code == 200


async def test_past_the_steady_bound_a_request_waiting_on_its_client_does_not_block_others(api, server):
    settings = api.services.settings
    settings.api_max_in_flight_burst, settings.api_queue_target_ms = 3, 1000.0  # the test's client shares the CPU
    host, headers = server, api.headers()
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.3
        while loop.time() < until:  # a few windows measured: the CPU per request is known
            assert (await http.get(DEVICES, headers=headers)).status_code == 200
        reader, writer = await hold_a_request(host, api.token())
        try:
            for _ in range(5):  # each is taken beside the held one, which costs no CPU
                assert (await http.get(DEVICES, headers=headers)).status_code == 200
        finally:
            writer.close()


async def test_no_limit_when_set_to_zero(api, server):
    api.services.settings.api_max_in_flight = 0
    host, headers = server, api.headers()
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        reader, writer = await hold_a_request(host, api.token())
        answers = await asyncio.gather(*(http.get(DEVICES, headers=headers) for _ in range(5)))
        assert [r.status_code for r in answers] == [200] * 5
        writer.close()


def test_the_proxy_counts_its_replicas_steady_bounds_only(tmp_path):
    settings = Settings(data_dir=tmp_path, api_max_in_flight=8, api_max_in_flight_burst=24, api_queue_target_ms=30)
    assert Limits.of(settings, scale=2) == Limits(steady=16, burst=48, target_s=0.03)
    assert Limits.of(settings, scale=2, burst=False) == Limits(steady=16, burst=16, target_s=0.03)
