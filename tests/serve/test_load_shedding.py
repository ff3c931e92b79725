"""Load shedding over real sockets (the app on uvicorn in the test's loop, a LocalRuntime): past
`api_max_in_flight` requests in progress, a request gets 503 with Retry-After and a JSON detail at
once; health checks, the console's files and the live streams (WebSocket, SSE) are never shed and
never count."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.serve.helpers import served

STREAM = "/api/v1/customer/telemetry/stream"
DEVICES = "/api/v1/customer/devices"


@pytest.fixture
async def server(api):
    """The app on a real port, at most one request in progress; yields host:port."""
    api.services.settings.api_max_in_flight = 1
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


async def test_no_limit_when_set_to_zero(api, server):
    api.services.settings.api_max_in_flight = 0
    host, headers = server, api.headers()
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        reader, writer = await hold_a_request(host, api.token())
        answers = await asyncio.gather(*(http.get(DEVICES, headers=headers) for _ in range(5)))
        assert [r.status_code for r in answers] == [200] * 5
        writer.close()
