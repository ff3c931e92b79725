"""A shard's socket lane without Ray: answers and errors as from the method itself, many requests on
one connection, only token holders and listed methods served, and a lost shard reported so the
caller can fall back to its Ray call."""
from __future__ import annotations

import asyncio

import pytest

from pulse.actors.lane import FRAME, LaneClient, LaneServer, LaneUnavailable, _frame
from pulse.errors import NotFound, RateLimited


class Target:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def echo(self, *args: object) -> tuple:
        return args

    async def missing(self, device_id: str) -> None:
        raise NotFound(f"device {device_id} not found")

    async def limited(self) -> None:
        raise RateLimited("slow down", 2.5)

    async def slow(self) -> str:
        await self.release.wait()
        return "slow"

    async def secret(self) -> str:
        return "not on the lane"


METHODS = ("echo", "missing", "limited", "slow")


@pytest.fixture
async def server():
    srv = LaneServer(Target(), METHODS)
    yield srv
    await srv.stop()


async def test_answers_and_errors_come_back_as_from_the_method(server: LaneServer) -> None:
    client = LaneClient()
    try:
        assert await client.call("s", server.address, "echo", ("t1", "d1", {"k": [1, 2]})) == ("t1", "d1", {"k": [1, 2]})
        with pytest.raises(NotFound, match="device d9 not found"):
            await client.call("s", server.address, "missing", ("d9",))
        with pytest.raises(RateLimited) as e:
            await client.call("s", server.address, "limited", ())
        assert e.value.retry_after_s == 2.5 and e.value.status_code == 429
        assert client.calls == 3 and server.served == 3
    finally:
        client.close()


async def test_a_slow_request_holds_up_no_other_on_the_same_connection(server: LaneServer) -> None:
    client = LaneClient()
    try:
        slow = asyncio.ensure_future(client.call("s", server.address, "slow", ()))
        fast = await asyncio.gather(*(client.call("s", server.address, "echo", (i,)) for i in range(50)))
        assert fast == [(i,) for i in range(50)] and not slow.done()
        server.target.release.set()
        assert await slow == "slow"
        assert [len(lanes) for lanes in client._lanes.values()] == [1]  # one connection carried all of them
    finally:
        client.close()


async def test_unlisted_methods_are_refused_so_the_caller_uses_ray(server: LaneServer) -> None:
    client = LaneClient()
    try:
        with pytest.raises(LaneUnavailable, match="secret is not served"):
            await client.call("s", server.address, "secret", ())
    finally:
        client.close()


async def test_a_caller_without_the_token_is_dropped(server: LaneServer) -> None:
    host, port, token = await server.address()
    reader, writer = await asyncio.open_connection(host, port)
    wrong = b"x" * len(token)
    writer.write(FRAME.pack(len(wrong)) + wrong + _frame((1, "echo", ("hi",))))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without an answer
    writer.close()
    assert server.served == 0


async def test_a_lost_shard_fails_requests_in_flight_and_the_next_connect(server: LaneServer) -> None:
    client = LaneClient()
    try:
        address = await server.address()
        slow = asyncio.ensure_future(client.call("s", server.address, "slow", ()))
        await asyncio.sleep(0.05)
        await server.stop()  # a stopped shard closes its connections
        with pytest.raises(LaneUnavailable, match="connection lost"):
            await asyncio.wait_for(slow, 5)

        async def gone():
            return address

        with pytest.raises(LaneUnavailable, match="unreachable"):
            await client.call("s", gone, "echo", ())
    finally:
        client.close()


async def test_a_failed_discovery_is_unavailable_not_an_error_of_the_request() -> None:
    async def dead():
        raise RuntimeError("actor died")

    with pytest.raises(LaneUnavailable, match="actor died"):
        await LaneClient().call("s", dead, "echo", ())
