"""Live push over WebSocket and SSE: telemetry, alert changes and device status of the caller's
tenant (protocol in docs/live.md, compatible with the documented telemetry stream)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from pulse.domain.live import ALERTS, STATUS, TELEMETRY, Subscription, iso_ms, parse_channels, parse_csv
from pulse.domain.permissions import Principal
from pulse.errors import Forbidden, Invalid, NotFound, PulseError, Unauthorized
from pulse.serve.auth import check_customer, customer, same_origin, stream_token
from pulse.serve.live import LiveClient, LiveFanout, TooManyStreams
from pulse.serve.schemas.live import StreamAction, StreamStatus
from pulse.services import live as live_service
from pulse.services.context import ServiceContext

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])
STREAM = "/api/v1/customer/telemetry/stream"
CHANNEL_PERMISSION = {TELEMETRY: "telemetry.read", ALERTS: "alerts.read", STATUS: "devices.read"}
# WebSocket close codes (documented: 4001, 4003, 4029; Pulse adds 4004, 4008, 4400)
CLOSE = {Unauthorized: 4001, Forbidden: 4003, TooManyStreams: 4029, NotFound: 4004, Invalid: 4400}
SLOW_CLIENT = 4008


def fanout(request_or_ws: Request | WebSocket) -> LiveFanout:
    """This process's fan-out, made on first use (its services exist by then)."""
    state = request_or_ws.app.state
    live: LiveFanout | None = getattr(state, "live", None)
    if live is None:
        svc: ServiceContext = state.services
        live = state.live = LiveFanout(svc.settings, svc.runtime)
    return live


def _permissions(channels: set[str]) -> list[str]:
    return sorted(CHANNEL_PERMISSION[c] for c in channels)


async def _subscription(svc: ServiceContext, tenant_id: str, device_id: str | None, metric: str | None,
                        group_id: str | None, channels: str | None) -> Subscription:
    try:
        sub = Subscription(tenant_id, parse_channels(channels), parse_csv(device_id), metrics=parse_csv(metric))
    except ValueError as e:
        raise Invalid(str(e)) from None
    for gid in parse_csv(group_id):
        sub.groups[gid] = await live_service.group_devices(svc, tenant_id, gid)
    return sub


def _close_code(e: PulseError) -> int:
    return next((code for kind, code in CLOSE.items() if isinstance(e, kind)), 4400)


# ---- WebSocket ------------------------------------------------------------------------------------
@router.websocket(STREAM)
async def telemetry_stream(websocket: WebSocket, device_id: str | None = None, metric: str | None = None,
                           group_id: str | None = None, channels: str | None = None) -> None:
    svc: ServiceContext = websocket.app.state.services
    if not same_origin(websocket, svc.settings.live_allowed_origins):
        await websocket.close(code=4003, reason="cross-origin WebSocket refused")  # before accept: HTTP 403
        return
    await websocket.accept()
    live = fanout(websocket)
    try:
        p = svc.decoder.decode(stream_token(websocket))
        sub = await _subscription(svc, p.tenant_id or "", device_id, metric, group_id, channels)
        await check_customer(svc, p, _permissions(sub.channels))
        client = await live.connect(sub)
    except PulseError as e:
        await websocket.close(code=_close_code(e), reason=e.detail[:120])
        return
    try:
        await websocket.send_json({"type": "connected", "tenant_id": sub.tenant_id, "filters": sub.filters()})
        await _serve_ws(websocket, svc, p, live, client)
    finally:
        await live.disconnect(client)


async def _serve_ws(websocket: WebSocket, svc: ServiceContext, p: Principal, live: LiveFanout,
                    client: LiveClient) -> None:
    """Reader (actions) and writer (events) side by side; whichever ends first ends the stream."""
    reader = asyncio.create_task(_read_actions(websocket, svc, p, live, client))
    writer = asyncio.create_task(_write_events(websocket, svc, client))
    done, pending = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, WebSocketDisconnect):
            # a send on a socket the client just closed lands here too: the stream ends either way
            log.info("live stream of tenant %s ended: %r", p.tenant_id, error)


async def _write_events(websocket: WebSocket, svc: ServiceContext, client: LiveClient) -> None:
    s = svc.settings
    while True:
        events = await client.next_batch(s.live_keepalive_s)
        if not events:
            events = [{"type": "ping", "ts": iso_ms(int(time.time() * 1000))}]
        for event in events:
            try:
                await asyncio.wait_for(websocket.send_text(json.dumps(event)), s.live_send_timeout_s)
            except asyncio.TimeoutError:
                # a client that does not read at all: its socket buffers are full; let it go
                await websocket.close(code=SLOW_CLIENT, reason="client too slow")
                return


async def _read_actions(websocket: WebSocket, svc: ServiceContext, p: Principal, live: LiveFanout,
                        client: LiveClient) -> None:
    while True:
        raw = await websocket.receive_text()
        try:
            reply = await _apply_action(svc, p, client.subscription, raw)
        except PulseError as e:
            reply = {"type": "error", "message": e.detail}
        else:
            await live.resubscribed(client)
        await websocket.send_json(reply)


async def _apply_action(svc: ServiceContext, p: Principal, sub: Subscription, raw: str) -> dict[str, Any]:
    """One client message changes the subscription; returns the documented reply."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise Invalid("messages must be JSON objects") from None
    name = body.get("action") if isinstance(body, dict) else None
    if name not in ("subscribe", "unsubscribe", "set_metrics", "clear_filters"):
        raise Invalid(f"Unknown action: {name}")
    try:
        action = StreamAction.model_validate(body)
    except ValidationError as e:
        raise Invalid.first_of(e.errors()) from None
    if name == "set_metrics":
        sub.metrics = set(action.metrics or [])
        return {"type": "metrics_updated", "metrics": sorted(sub.metrics)}
    if name == "clear_filters":
        sub.device_ids.clear()
        sub.groups.clear()
        sub.metrics.clear()
        return {"type": "filters_cleared"}
    if name == "subscribe":
        return await _subscribe(svc, p, sub, action)
    return _unsubscribe(sub, action)


async def _subscribe(svc: ServiceContext, p: Principal, sub: Subscription, a: StreamAction) -> dict[str, Any]:
    if a.channel is not None:
        await check_customer(svc, p, [CHANNEL_PERMISSION[a.channel]])
        sub.channels.add(a.channel)
        return {"type": "subscribed", "channel": a.channel}
    if a.group_id is not None:
        sub.groups[a.group_id] = await live_service.group_devices(svc, sub.tenant_id, a.group_id)
        return {"type": "subscribed", "group_id": a.group_id, "device_count": len(sub.groups[a.group_id])}
    if a.device_ids is not None:
        sub.device_ids.update(a.device_ids)
        return {"type": "subscribed", "device_ids": a.device_ids}
    if a.device_id is not None:
        sub.device_ids.add(a.device_id)
        return {"type": "subscribed", "device_id": a.device_id}
    raise Invalid("subscribe needs device_id, device_ids, group_id or channel")


def _unsubscribe(sub: Subscription, a: StreamAction) -> dict[str, Any]:
    if a.channel is not None:
        sub.channels.discard(a.channel)
        return {"type": "unsubscribed", "channel": a.channel}
    if a.group_id is not None:
        sub.groups.pop(a.group_id, None)
        return {"type": "unsubscribed", "group_id": a.group_id}
    if a.device_id is not None:
        sub.device_ids.discard(a.device_id)
        return {"type": "unsubscribed", "device_id": a.device_id}
    raise Invalid("unsubscribe needs device_id, group_id or channel")


# ---- SSE ------------------------------------------------------------------------------------------
@router.get(STREAM + "/sse", response_model=None, response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}})
async def telemetry_stream_sse(request: Request, device_id: str | None = Query(None, max_length=20_000),
                               metric: str | None = Query(None, max_length=5_000),
                               group_id: str | None = Query(None, max_length=2_000),
                               channels: str | None = Query(None, max_length=100),
                               p: Principal = Depends(customer("telemetry.read"))) -> StreamingResponse:
    """The same events as the WebSocket, filters fixed by the query (normal HTTP auth: Bearer or cookie)."""
    svc: ServiceContext = request.app.state.services
    sub = await _subscription(svc, p.tenant_id or "", device_id, metric, group_id, channels)
    await check_customer(svc, p, _permissions(sub.channels))
    live = fanout(request)
    client = await live.connect(sub)
    first_id = _last_event_id(request)
    return _SseResponse(_sse_frames(svc, client, first_id), lambda: live.disconnect(client),
                        media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class _SseResponse(StreamingResponse):
    """Releases the stream's slot however the response ends: a client gone before the first frame
    never starts the frames' generator, so a `finally` in it would leak the slot."""

    def __init__(self, frames: AsyncIterator[str], release: Callable[[], Awaitable[None]], **kw: Any) -> None:
        super().__init__(frames, **kw)
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


def _last_event_id(request: Request) -> int:
    """`Last-Event-ID` only seeds the counter (no replay), as documented."""
    try:
        return int(request.headers.get("last-event-id", "0")) + 1
    except ValueError:
        return 1


async def _sse_frames(svc: ServiceContext, client: LiveClient, n: int) -> AsyncIterator[str]:
    sub = client.subscription
    yield f"id: {n}\ndata: {json.dumps({'type': 'connected', 'tenant_id': sub.tenant_id, 'filters': sub.filters()})}\n\n"
    while True:
        events = await client.next_batch(svc.settings.live_keepalive_s)
        if not events:
            yield f": keepalive {iso_ms(int(time.time() * 1000))}\n\n"
            continue
        frames = []
        for event in events:
            n += 1
            frames.append(f"id: {n}\ndata: {json.dumps(event)}\n\n")
        yield "".join(frames)


@router.get("/api/v1/telemetry/stream/status", response_model=StreamStatus)
async def stream_status(request: Request) -> StreamStatus:
    """Open streams in this API process (documented: no auth; counts only)."""
    live = getattr(request.app.state, "live", None)
    return StreamStatus(total_connections=live.total if live else 0,
                        max_per_tenant=request.app.state.services.settings.live_max_per_tenant)
