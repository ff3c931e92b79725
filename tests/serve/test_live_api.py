"""Live push through the real app (served by uvicorn in the test's loop, so WebSocket and SSE run
over real sockets) on a LocalRuntime: auth, Origin, tenant isolation, groups, alerts, status, and
a slow client's bounded queue."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pulse.domain.envelope import Limits
from pulse.services.ingest import accept
from tests.serve.helpers import send, served, telemetry

STREAM = "/api/v1/customer/telemetry/stream"
RULE = {"name": "Too hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "major",
        "auto_resolve": False}


@pytest.fixture
async def server(api):
    """The app on a real port; yields host:port. Both tenants have a device `d1` (and acme a `d2`)."""
    for tenant, devices in (("acme", ("d1", "d2")), ("globex", ("d1",))):
        for d in devices:
            r = await api.post("/api/v1/customer/devices", json={"device_id": d}, tenant=tenant)
            assert r.status_code == 201, r.text
    async with served(api) as (host, app):
        yield host, app


def ws_url(host: str, **query: str) -> str:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return f"ws://{host}{STREAM}" + (f"?{qs}" if qs else "")


async def recv(ws, timeout: float = 3.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, kind: str, timeout: float = 3.0) -> dict:
    """The next event of `kind`, skipping pings."""
    while True:
        event = await recv(ws, timeout)
        if event["type"] == kind:
            return event


async def nothing_of(ws, kind: str, wait: float = 0.5) -> None:
    try:
        while True:
            event = await recv(ws, wait)
            assert event["type"] != kind, f"unexpected {event}"
    except asyncio.TimeoutError:
        pass


async def settle(app) -> None:
    """Subscriptions reach the hub and the shards synchronously on LocalRuntime; one loop turn for the pump."""
    await asyncio.sleep(0.05)


async def test_websocket_needs_a_valid_customer_token(api, server):
    host, _ = server
    for url, code in ((ws_url(host), 4001), (ws_url(host, token="garbage"), 4001),
                      (ws_url(host, token=api.token(None, "operator")), 4003)):
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd.code == code


async def test_cross_site_origin_is_refused_and_same_origin_cookie_works(api, server):
    host, app = server
    cookie = {"Cookie": f"pulse_session={api.token()}"}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(host), additional_headers=cookie, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with connect(ws_url(host), additional_headers=cookie, origin=f"http://{host}") as ws:
        hello = await recv(ws)
        assert hello["type"] == "connected" and hello["tenant_id"] == "acme"
        await settle(app)
        await telemetry(api, "d1", 1, temp=20.5)
        event = await recv_until(ws, "telemetry")
        assert (event["device_id"], event["metrics"], event["tenant_id"]) == ("d1", {"temp": 20.5}, "acme")
        assert event["acked_ms"] >= event["ts_ms"]


async def test_a_tenant_never_receives_another_tenants_events(api, server):
    host, app = server
    channels = "telemetry,alerts,status"
    async with connect(ws_url(host, token=api.token("acme"), channels=channels)) as acme, \
            connect(ws_url(host, token=api.token("globex"), channels=channels)) as globex:
        assert (await recv(acme))["tenant_id"] == "acme" and (await recv(globex))["tenant_id"] == "globex"
        await settle(app)
        await api.post("/api/v1/customer/alert-rules", json=RULE, tenant="globex")
        now = datetime.now(timezone.utc).isoformat()
        # the same device id in both tenants; globex gets telemetry, a status change and an alert
        await send(api, "globex", "d1", "telemetry", {"version": "1", "ts": now, "metrics": {"temp": 99}})
        kinds = set()
        while kinds != {"telemetry", "status", "alert"}:
            event = await recv(globex)
            assert event["tenant_id"] == "globex"
            kinds.add(event["type"])
        await send(api, "acme", "d1", "telemetry", {"version": "1", "ts": now, "metrics": {"temp": 1}})
        event = await recv_until(acme, "telemetry")
        assert event["tenant_id"] == "acme" and event["metrics"] == {"temp": 1}
        # nothing of globex's ever reached acme, nor acme's globex
        for ws, other in ((acme, "globex"), (globex, "acme")):
            try:
                while True:
                    assert (await recv(ws, 0.3))["tenant_id"] != other
            except asyncio.TimeoutError:
                pass


async def test_device_and_metric_filters_and_actions(api, server):
    host, app = server
    async with connect(ws_url(host, token=api.token(), device_id="d2", metric="hum")) as ws:
        hello = await recv(ws)
        assert hello["filters"]["device_ids"] == ["d2"] and hello["filters"]["metric_names"] == ["hum"]
        await settle(app)
        await telemetry(api, "d1", 1, hum=50)
        await telemetry(api, "d2", 1, temp=20, hum=40)
        event = await recv_until(ws, "telemetry")
        assert event["device_id"] == "d2" and event["metrics"] == {"hum": 40}
        await ws.send(json.dumps({"action": "subscribe", "device_id": "d1"}))
        assert await recv_until(ws, "subscribed") == {"type": "subscribed", "device_id": "d1"}
        await ws.send(json.dumps({"action": "set_metrics", "metrics": []}))
        assert (await recv_until(ws, "metrics_updated"))["metrics"] == []
        await telemetry(api, "d1", 2, temp=21)
        assert (await recv_until(ws, "telemetry"))["metrics"] == {"temp": 21}
        await ws.send(json.dumps({"action": "dance"}))
        assert await recv_until(ws, "error") == {"type": "error", "message": "Unknown action: dance"}


async def test_group_subscription_streams_its_members_only(api, server):
    host, app = server
    gid = (await api.post("/api/v1/customer/device-groups", json={"name": "floor 1"})).json()["group_id"]
    assert (await api.request("PUT", f"/api/v1/customer/device-groups/{gid}/devices/d2")).status_code == 200
    async with connect(ws_url(host, token=api.token(), group_id=gid)) as ws:
        assert (await recv(ws))["filters"]["group_ids"] == [gid]
        await settle(app)
        await telemetry(api, "d1", 1, temp=1)
        await telemetry(api, "d2", 1, temp=2)
        event = await recv_until(ws, "telemetry")
        assert event["device_id"] == "d2"
        await nothing_of(ws, "telemetry", 0.3)
    other = (await api.post("/api/v1/customer/device-groups", json={"name": "theirs"}, tenant="globex")).json()
    async with connect(ws_url(host, token=api.token(), group_id=other["group_id"])) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd.code == 4004  # another tenant's group does not exist for acme


async def test_alert_changes_and_status_changes_are_pushed(api, server):
    host, app = server
    await api.post("/api/v1/customer/alert-rules", json=RULE)
    async with connect(ws_url(host, token=api.token(), channels="alerts,status")) as ws:
        await recv(ws)
        await settle(app)
        now = datetime.now(timezone.utc).isoformat()
        await send(api, "acme", "d1", "heartbeat", {"ts": now})
        status = await recv_until(ws, "status")
        assert (status["device_id"], status["status"], status["previous"]) == ("d1", "ONLINE", "OFFLINE")
        await send(api, "acme", "d1", "telemetry", {"version": "1", "ts": now, "metrics": {"temp": 40}})
        opened = await recv_until(ws, "alert")
        assert (opened["action"], opened["status"], opened["device_id"]) == ("OPEN", "OPEN", "d1")
        r = await api.patch(f"/api/v1/customer/alerts/{opened['alert_id']}/acknowledge")
        assert r.status_code == 200
        acked = await recv_until(ws, "alert")
        assert (acked["alert_id"], acked["status"]) == (opened["alert_id"], "ACKNOWLEDGED")
        # a second heartbeat changes nothing: no status event
        await send(api, "acme", "d1", "heartbeat", {"ts": now})
        await nothing_of(ws, "status", 0.3)


async def test_channel_permission_is_checked(api, server):
    host, _ = server
    async with connect(ws_url(host, token=api.token(), channels="telemetry,bogus")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd.code == 4400


async def test_slow_client_loses_oldest_events_and_memory_stays_bounded(api, server):
    host, app = server
    api.services.settings.live_queue_size = 10
    async with connect(ws_url(host, token=api.token(), device_id="d1")) as ws:
        await recv(ws)
        await settle(app)
        # one batch of 100 messages: the hub hands them over at once, faster than any socket
        items = [("tenant/acme/device/d1/telemetry",
                  json.dumps({"version": "1", "ts": f"2026-01-01T00:00:{i // 10:02d}.{i % 10}00+00:00",
                              "metrics": {"n": i}}).encode()) for i in range(100)]
        await accept(api.services.runtime, api.services.db, Limits(), items)
        client = next(iter(app.state.live.clients["acme"]))
        assert len(client.queue) <= 10
        dropped = await recv_until(ws, "dropped")
        assert dropped["count"] == 90
        got = [(await recv_until(ws, "telemetry"))["metrics"]["n"] for _ in range(10)]
        assert got == list(range(90, 100))  # the newest ten, in order


async def test_sse_needs_auth_and_streams_events(api, server):
    host, app = server
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=5) as http:
        assert (await http.get(STREAM + "/sse")).status_code == 401
        bad = await http.get(STREAM + "/sse", params={"channels": "nope"}, headers=api.headers())
        assert bad.status_code == 422 and "nope" in bad.json()["detail"]
        async with http.stream("GET", STREAM + "/sse", params={"device_id": "d1"}, headers=api.headers()) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            frames = []

            async def next_data() -> dict:
                async for line in lines:
                    if line.startswith("data: "):
                        return json.loads(line[6:])
                raise AssertionError("stream ended")

            assert (await asyncio.wait_for(next_data(), 3))["type"] == "connected"
            await settle(app)
            await telemetry(api, "d1", 1, temp=7)
            await telemetry(api, "d1", 2, temp=8, tenant="globex")
            frames.append(await asyncio.wait_for(next_data(), 3))
            assert frames[0]["type"] == "telemetry" and frames[0]["tenant_id"] == "acme"
        status = (await http.get("/api/v1/telemetry/stream/status")).json()
        assert set(status) == {"total_connections", "max_per_tenant"}


async def test_connection_caps(api, server):
    host, app = server
    api.services.settings.live_max_per_tenant = 1
    async with connect(ws_url(host, token=api.token())) as first:
        await recv(first)
        async with connect(ws_url(host, token=api.token())) as second:
            with pytest.raises(ConnectionClosed) as closed:
                await recv(second)
            assert closed.value.rcvd.code == 4029
        async with connect(ws_url(host, token=api.token("globex"))) as other_tenant:
            assert (await recv(other_tenant))["type"] == "connected"


async def test_nothing_is_published_once_the_last_client_left(api, server):
    host, app = server
    runtime = api.services.runtime
    shards = runtime.device_refs + runtime.tenant_refs
    async with connect(ws_url(host, token=api.token(), channels="telemetry,alerts")) as ws:
        await recv(ws)
        await settle(app)
        assert all(s.watch for s in shards)
    for _ in range(50):  # the server notices the close
        if not any(s.watch for s in shards):
            break
        await asyncio.sleep(0.05)
    assert not any(s.watch for s in shards)
    published = runtime.live_ref.published
    await telemetry(api, "d1", 1, temp=1)
    assert runtime.live_ref.published == published


async def test_the_timer_sweep_pushes_a_device_going_stale_by_silence(api, server):
    host, app = server
    s = api.services.settings
    async with connect(ws_url(host, token=api.token(), channels="status")) as ws:
        await recv(ws)
        await settle(app)
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        await send(api, "acme", "d1", "heartbeat", {"ts": datetime.now(timezone.utc).isoformat()})
        assert (await recv_until(ws, "status"))["status"] == "ONLINE"
        await api.services.runtime.tick(None, now_ms + 1000)  # still ONLINE: nothing
        await nothing_of(ws, "status", 0.2)
        await api.services.runtime.tick(None, now_ms + (s.stale_after_s + 5) * 1000)
        stale = await recv_until(ws, "status")
        assert (stale["device_id"], stale["status"], stale["previous"]) == ("d1", "STALE", "ONLINE")
        await api.services.runtime.tick(None, now_ms + (s.offline_after_s + 5) * 1000)
        assert (await recv_until(ws, "status"))["status"] == "OFFLINE"


async def test_an_sse_client_that_leaves_gives_its_slot_back(api, server):
    host, app = server
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=5) as http:
        for _ in range(3):  # gone before reading a frame
            async with http.stream("GET", STREAM + "/sse", headers=api.headers()) as r:
                assert r.status_code == 200
        deadline = asyncio.get_running_loop().time() + 5
        while (await http.get("/api/v1/telemetry/stream/status")).json()["total_connections"]:
            assert asyncio.get_running_loop().time() < deadline, "a stream's slot was never released"
            await asyncio.sleep(0.1)
