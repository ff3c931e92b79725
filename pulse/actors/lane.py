"""A shard's lane: requests to a shard over one plain socket per caller, instead of a Ray actor call.

A small Ray actor call costs this 2-core box ~1 ms of CPU in the caller and ~1.2 ms in the shard
(measured with a 3-argument call and a 600-byte answer); the same round trip over an asyncio socket
costs ~0.05 ms on each side. Device detail makes one such call per request, so at a few hundred
requests a second Ray's overhead was most of the shard's CPU and a quarter of the API replica's
(bench_serve.py, docs/operations.md).

The shard opens its lane on first ask (`LaneServer`, via the Ray call `lane_address`) and answers
length-prefixed pickled frames `(request id, method, args)` with `(request id, ok, value or
exception)`, each request on its own task so a slow one holds up no other. A caller must first send
the shard's token, which only the Ray call hands out: the lane is as trusted as Ray itself, and a
caller that reached another process on the same port (a restarted shard) is refused, not misrouted.
Only the methods the shard lists are served.

`LaneClient` keeps one connection per shard and event loop. When it cannot reach the shard, or the
connection drops with requests in flight, it raises `LaneUnavailable` and the caller falls back to
the Ray call, which waits for Ray to restart the shard: the shards' calls are safe to repeat, as
with Ray's own retries (`RETRY_ON_RESTART`).
"""
from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import pickle
import secrets
import struct
import weakref
from typing import Any, Awaitable, Callable, Collection

log = logging.getLogger(__name__)
FRAME = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024  # a cross-shard ingest batch is a few MB; anything near this is corrupt
Address = tuple[str, int, bytes]  # host, port, token


class LaneUnavailable(Exception):
    """The lane cannot carry this request (shard unreachable, connection lost): use the Ray call."""


async def _read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes:
    (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
    if size > limit:
        raise ConnectionError(f"lane frame of {size} bytes")
    return await reader.readexactly(size)


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(data)) + data


class LaneServer:
    """Serves `target`'s `methods` (async) to token-holding callers, on `host` and a free port."""

    def __init__(self, target: Any, methods: Collection[str], host: str = "127.0.0.1") -> None:
        self.target = target
        self.methods = frozenset(methods)
        self.host = host
        self.token = secrets.token_bytes(16)
        self.served = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def address(self) -> Address:
        if self._server is None:
            self._server = await asyncio.start_server(self._connection, self.host, 0)
        return self.host, self._server.sockets[0].getsockname()[1], self.token

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._writers):  # callers see the lane closed and fall back to Ray
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if not hmac.compare_digest(await _read_frame(reader, len(self.token)), self.token):
                return
            while True:
                rid, method, args = pickle.loads(await _read_frame(reader))
                task = asyncio.create_task(self._answer(writer, rid, method, args))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the caller went away
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, rid: int, method: str, args: tuple) -> None:
        try:
            if method not in self.methods:
                raise LaneUnavailable(f"{method} is not served on the lane")
            out: tuple = (rid, True, await getattr(self.target, method)(*args))
        except Exception as e:  # noqa: BLE001 - the caller gets the error, as with a Ray call
            out = (rid, False, e)
        self.served += 1
        try:
            data = _frame(out)
        except Exception as e:  # noqa: BLE001 - an answer that does not pickle is the caller's error
            data = _frame((rid, False, RuntimeError(f"{method}: answer not transferable: {e!r}")))
        if not writer.is_closing():
            writer.write(data)


class _Lane:
    """One connection: requests written as they come, answers matched by id on a reader task."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count()
        self.closed = False
        self.reader = asyncio.create_task(self._read(reader))

    async def call(self, method: str, args: tuple) -> Any:
        if self.closed:
            raise LaneUnavailable("lane closed")
        rid = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        try:
            self.writer.write(_frame((rid, method, args)))
            ok, value = await fut
        finally:
            self.pending.pop(rid, None)
        if not ok:
            raise value
        return value

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                rid, ok, value = pickle.loads(await _read_frame(reader))
                fut = self.pending.get(rid)
                if fut is not None and not fut.done():
                    fut.set_result((ok, value))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception:  # noqa: BLE001 - a frame that does not unpickle: drop the connection
            log.exception("lane answer unreadable")
        finally:
            self.close()

    def close(self) -> None:
        self.closed = True
        self.writer.close()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(LaneUnavailable("lane connection lost"))


class LaneClient:
    """Connections to shards' lanes, opened on first use, one per shard and event loop.

    Not pickled with its owner (a runtime travels to other processes as actor handles only)."""

    def __init__(self) -> None:
        # per event loop: a connection belongs to the loop that opened it (and goes with it)
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, _Lane]] = weakref.WeakKeyDictionary()
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, asyncio.Future]] = \
            weakref.WeakKeyDictionary()
        self.calls = 0

    def __reduce__(self) -> tuple:
        return LaneClient, ()

    async def call(self, key: Any, discover: Callable[[], Awaitable[Address]], method: str, args: tuple) -> Any:
        """`method(*args)` on the shard known as `key`; `discover` asks the shard (Ray) for its address."""
        lane = await self._lane(key, discover)
        self.calls += 1
        return await lane.call(method, args)

    async def _lane(self, key: Any, discover: Callable[[], Awaitable[Address]]) -> _Lane:
        loop = asyncio.get_running_loop()
        lanes = self._lanes.setdefault(loop, {})
        lane = lanes.get(key)
        if lane is not None and not lane.closed:
            return lane
        opening = self._opening.setdefault(loop, {})
        if key not in opening:  # one connect per shard, however many requests wait for it
            opening[key] = asyncio.ensure_future(self._open(discover))
            opening[key].add_done_callback(lambda _: opening.pop(key, None))
        lane = lanes[key] = await asyncio.shield(opening[key])
        return lane

    async def _open(self, discover: Callable[[], Awaitable[Address]]) -> _Lane:
        try:
            host, port, token = await discover()
            reader, writer = await asyncio.open_connection(host, port)
        except Exception as e:  # noqa: BLE001 - whatever it is, the Ray call will tell
            raise LaneUnavailable(f"lane unreachable: {e}") from e
        writer.write(FRAME.pack(len(token)) + token)
        return _Lane(reader, writer)

    def close(self) -> None:
        for lanes in self._lanes.values():
            for lane in lanes.values():
                lane.close()
        self._lanes.clear()
