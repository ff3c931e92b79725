"""`pulse.integrations.http.send`: what is retried, against a real server on 127.0.0.1.

A request whose outcome is unknown (timed out after it was sent, 5xx) is repeated only when
repeating it is harmless: an idempotent method, a call declared idempotent, or one carrying an
Idempotency-Key. A request the server certainly did not act on (refused connection, 429) is
retried whatever it is."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from pulse.integrations.http import RetryPolicy, Unavailable, send

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)


class SlowThenOk:
    """Answers its first request after `delay_s` (past the client's timeout), later ones at once."""

    def __init__(self, delay_s: float = 0.5, first_status: int = 200) -> None:
        self.delay_s, self.first_status, self.requests = delay_s, first_status, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        self.requests += 1
        status = 200
        if self.requests == 1:
            await asyncio.sleep(self.delay_s)
            status = self.first_status
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def slow() -> AsyncIterator[tuple[SlowThenOk, str]]:
    target = SlowThenOk()
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    yield target, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    server.close()


async def test_a_post_that_timed_out_is_not_sent_again(slow):
    target, url = slow
    async with httpx.AsyncClient(timeout=0.2) as client:
        with pytest.raises(Unavailable, match="ReadTimeout"):
            await send(client, "POST", url, FAST, json={"action": "activate"})
    assert target.requests == 1


@pytest.mark.parametrize("method,kwargs", [
    ("GET", {}), ("PUT", {"json": {}}), ("POST", {"headers": {"Idempotency-Key": "k1"}}),
    ("POST", {"idempotent": True})])
async def test_idempotent_requests_are_retried_after_a_timeout(slow, method, kwargs):
    target, url = slow
    async with httpx.AsyncClient(timeout=0.2) as client:
        assert (await send(client, method, url, FAST, **kwargs)).status_code == 200
    assert target.requests == 2


async def test_a_post_is_retried_after_429_but_not_after_a_500():
    for status in (429, 500):
        target = SlowThenOk(delay_s=0, first_status=status)
        server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
        async with httpx.AsyncClient(timeout=1) as client:
            if status == 429:
                assert (await send(client, "POST", url, FAST, json={})).status_code == 200
            else:
                with pytest.raises(Unavailable, match="not repeated") as e:
                    await send(client, "POST", url, FAST, json={})
                assert e.value.status == 500
        server.close()
        assert target.requests == (2 if status == 429 else 1)


async def test_a_refused_connection_is_retried_for_any_method():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with httpx.AsyncClient(timeout=1) as client:
        with pytest.raises(Unavailable, match="3 attempts"):
            await send(client, "POST", f"http://127.0.0.1:{port}/x", FAST, json={})
