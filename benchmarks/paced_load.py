"""Open-loop (paced) HTTP load: requests leave on a fixed schedule whatever the server does.

Run as its own process by bench_serve.py, so its CPU is not the server's. A closed-loop client
waits for an answer before it asks again, so a slow server slows the client down and hides its
queue; here request i is due at t0 + i/rate and its latency is measured from that due time, so
time spent queueing anywhere (client pool, proxy, app) shows in p99.

Kept light on purpose (the generator must not be the bottleneck): raw HTTP/1.1 keep-alive over
asyncio streams, a connection reused as soon as its answer is read, a new one opened only when
every open one is busy (up to --max-conns). It prints its own CPU use so a reader can check.

    python benchmarks/paced_load.py --port 8000 --token T --rate 200 --seconds 5 --path /a --path /b

Prints one JSON object: sent, ok, shed (503), errors, p50/p99 of the answered-2xx latencies, p99
of the time to a 503, achieved rate of 2xx answers, and the generator's CPU and send lateness.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    ok: list[float] = field(default_factory=list)  # seconds from due time to a 2xx answer
    shed: list[float] = field(default_factory=list)  # ... to a 503
    retry_after: int = 0  # 503s that carried a Retry-After header
    errors: dict[str, int] = field(default_factory=dict)  # other status codes, timeouts, dropped connections
    late_max: float = 0.0  # how far behind its schedule the generator sent (its own bottleneck)
    last_answer: float = 0.0  # loop time of the last 2xx answer: the achieved rate is over the span to it

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Connections:
    """Idle keep-alive connections to one host:port, opened on demand up to `cap`."""

    def __init__(self, host: str, port: int, cap: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(cap)

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await self.slots.acquire()
        if self.idle:
            return self.idle.pop()
        try:
            return await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self.slots.release()
            raise

    def give_back(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], reusable: bool) -> None:
        if reusable:
            self.idle.append(conn)
        else:
            conn[1].close()
        self.slots.release()

    def close(self) -> None:
        for _, w in self.idle:
            w.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Status and headers; the body is read and dropped (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers


async def one(pool: Connections, request: bytes, due: float, timeout: float, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    conn = None
    try:
        async with asyncio.timeout(timeout):
            conn = await pool.take()
            conn[1].write(request)
            status, headers = await read_response(conn[0])
    except TimeoutError:
        tally.error("timeout")
        if conn is not None:
            pool.give_back(conn, reusable=False)
        return
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        tally.error("dropped")
        if conn is not None:
            pool.give_back(conn, reusable=False)
        return
    took = loop.time() - due
    pool.give_back(conn, reusable=headers.get("connection", "").lower() != "close")
    if 200 <= status < 300:
        tally.ok.append(took)
        tally.last_answer = loop.time()
    elif status == 503:
        tally.shed.append(took)
        tally.retry_after += "retry-after" in headers
    else:
        tally.error(str(status))


def requests_for(host: str, port: int, token: str, paths: list[str]) -> list[bytes]:
    return [(f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
             f"Accept: application/json\r\n\r\n").encode("latin-1") for p in paths]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000


async def run(args: argparse.Namespace) -> dict:
    pool = Connections(args.host, args.port, args.max_conns)
    reqs = requests_for(args.host, args.port, args.token, args.path)
    tally = Tally()
    loop = asyncio.get_running_loop()
    n = max(1, int(args.rate * args.seconds))
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    t0 = loop.time() + 0.1
    tasks = []
    for i in range(n):
        due = t0 + i / args.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tally.late_max = max(tally.late_max, loop.time() - due)
        tasks.append(asyncio.create_task(one(pool, reqs[i % len(reqs)], due, args.timeout, tally)))
    await asyncio.gather(*tasks)
    cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
    pool.close()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"rate": args.rate, "sent": n, "ok": len(tally.ok), "shed": len(tally.shed),
            "shed_with_retry_after": tally.retry_after, "errors": tally.errors,
            "p50_ms": pct(tally.ok, 0.50), "p99_ms": pct(tally.ok, 0.99), "shed_p99_ms": pct(tally.shed, 0.99),
            "achieved_rps": len(tally.ok) / max(args.seconds, tally.last_answer - t0), "gen_cpu_pct": 100 * cpu / wall,
            "gen_late_max_ms": tally.late_max * 1000}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--rate", type=float, required=True, help="requests per second, on a fixed schedule")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--path", action="append", required=True, help="repeatable: used in turn")
    ap.add_argument("--timeout", type=float, default=10.0, help="a request still unanswered then is an error")
    ap.add_argument("--max-conns", type=int, default=512)
    print(json.dumps(asyncio.run(run(ap.parse_args()))))


if __name__ == "__main__":
    main()
