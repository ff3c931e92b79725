"""Analytics over a tenant-day: Pulse's lake and code paths against the documented system's PostgreSQL.

    .venv/bin/python benchmarks/bench_analytics.py [--devices 1000] [--metrics 10] [--minutes 1440]
                                                   [--pg-url postgresql://pulse:pulse@127.0.0.1:5432/postgres]
                                                   [--only 2,3]

The same rows (one message per device per minute, `--metrics` values each) are loaded
(a) into PostgreSQL as the documented system stores them: `telemetry(time, tenant_id, device_id,
    site_id, msg_type, seq, metrics JSONB)`, one row per message, COPY, then an index on
    (tenant_id, device_id, time) and ANALYZE; plus `device_state(tenant_id, device_id, state JSONB)`
    with each device's latest metrics, as the documented system keeps them;
(b) into Pulse's lake through its own writer: Arrow batches in the lake's schema appended to a
    `LakeWriter` (WAL + fsync per batch, flushes to Parquet), stopped, then the tenant-day compacted
    by `pulse.pipelines.lake_lifecycle.compact_day` (the nightly task) into one sorted file.

Then each figure, Pulse (its pipeline/service functions) against SQL on the same rows:
1. hourly avg of one metric over all devices — `pipelines.analytics.rollup` (what /analytics/query
   calls) vs `date_trunc('hour')` + `avg((metrics->>m)::float8)`; goal >= 10x;
2. latest value per device x metric — production answers from the device actors' memory with one
   `DeviceShard.call_many(..., "latest_values")` per device shard (what `GET /telemetry/latest`
   runs; the service then shapes the values, not timed): measured in process on one `DeviceShard`
   holding all the devices (no Ray hop), and the
   lake-side alternative `LakeReader.recent` per device; vs a LATERAL index lookup per device on
   `telemetry` and a read of `device_state`; goal >= 10x;
3. one device's day, ordered — `LakeReader.history` of the compacted day (the device's row groups
   read with pyarrow, no de-duplicating scan) vs PostgreSQL's index scan; goal <= 2x;
4. export of the tenant-day — `LakeReader.tenant_export` + `pipelines.exports.Encoder` (what the
   export job runs) to CSV and to Parquet files vs `COPY (SELECT ...) TO STDOUT (FORMAT csv)`;
   compared in metric values/s (a Pulse row is one value, a PostgreSQL row one message);
5. backtest of one threshold rule over the day — `pipelines.backtest.run` vs a plain Polars
   read + filter of the rows it needs; goal <= 1.5x.
Nothing asserts on time. The benchmark creates and drops its own database `pulse_bench_<pid>` and
a private temp dir (also on Ctrl-C / SIGTERM); it connects to PostgreSQL on loopback only.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

from bench_rules import seed_devices  # noqa: E402  (the registry rows DeviceShard activates from)
from pulse.actors.host import DeviceShard  # noqa: E402
from pulse.actors.lake_writer import LakeWriter  # noqa: E402
from pulse.domain.latest import unpack  # noqa: E402
from pulse.domain.messages import Telemetry  # noqa: E402
from pulse.domain.rules import Condition, Rule  # noqa: E402
from pulse.pipelines import analytics, backtest  # noqa: E402
from pulse.pipelines.exports import Encoder  # noqa: E402
from pulse.pipelines.lake_lifecycle import compact_day  # noqa: E402
from pulse.pipelines.telemetry import TENANT_EXPORT_SCHEMA, LakeReader, TelemetryScope  # noqa: E402
from pulse.services.exports import LAKE_BATCH_ROWS  # noqa: E402
from pulse.storage.lake.compaction import lifecycle_lock, settle  # noqa: E402
from pulse.storage.lake.parquet import part_files, partition_dir  # noqa: E402
from pulse.storage.lake.rows import TELEMETRY_SCHEMA  # noqa: E402

TENANT = "bench"  # the tenant `seed_devices` provisions
DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)
END = DAY + timedelta(days=1)
APPEND_MSGS = 1000  # messages per LakeWriter.append (an ingest batch)
BLOCK_MINUTES = 30  # minutes of messages generated at a time (bounds memory)
DEFAULT_PG_URL = os.environ.get("PULSE_BENCH_PG_URL", "postgresql://pulse:pulse@127.0.0.1:5432/postgres")
THRESHOLD = 97.0


class Data:
    """The tenant-day: message i of block b is device i % devices at minute b*BLOCK + i // devices
    (arrival order, time-major); values are deterministic per block."""

    def __init__(self, devices: int, metrics: int, minutes: int) -> None:
        self.devices, self.metrics, self.minutes = devices, metrics, minutes
        self.device_ids = [f"d{i:05d}" for i in range(devices)]
        self.metric_names = [f"metric_{k}" for k in range(metrics)]

    @property
    def messages(self) -> int:
        return self.devices * self.minutes

    @property
    def values(self) -> int:
        return self.messages * self.metrics

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(device index, ts ms, values[msg, metric]) per block of minutes."""
        base = int(DAY.timestamp() * 1000)
        for b, lo in enumerate(range(0, self.minutes, BLOCK_MINUTES)):
            minutes = np.arange(lo, min(self.minutes, lo + BLOCK_MINUTES))
            device = np.tile(np.arange(self.devices), len(minutes))
            ts = base + np.repeat(minutes, self.devices).astype(np.int64) * 60_000
            values = np.round(np.random.default_rng(b).normal(50, 16, (len(ts), self.metrics)), 2)
            yield device, ts, values

    def last_minute(self) -> tuple[int, np.ndarray]:
        """(ts ms, values[device, metric]) of the day's last message of every device."""
        *_, (_, ts, values) = self.blocks()
        return int(ts[-1]), values[-self.devices:]


def lake_batch(data: Data, device: np.ndarray, ts: np.ndarray, values: np.ndarray) -> pa.Table:
    """Messages as the lake writer receives them (`rows.telemetry_table`'s output): one row per metric."""
    n, m = values.shape
    ids = pa.array(data.device_ids).take(pa.array(np.repeat(device, m)))
    return pa.table({
        "tenant_id": pa.array([TENANT] * (n * m), pa.string()),
        "device_id": ids,
        "ts": pa.array(np.repeat(ts, m)).view(pa.timestamp("ms", tz="UTC")),
        "metric": pa.array(data.metric_names * n, pa.string()),
        "value": values.reshape(-1),
        "seq": pa.array(np.repeat(ts // 60_000, m), pa.int64()),
    }, schema=TELEMETRY_SCHEMA)


async def load_lake(data: Data, tmp: Path) -> Path:
    lake = tmp / "lake"
    writer = LakeWriter(str(lake), str(tmp / "wal"))
    await writer.start()
    t0 = time.perf_counter()
    for device, ts, values in data.blocks():
        for lo in range(0, len(ts), APPEND_MSGS):
            await writer.append(lake_batch(data, device[lo:lo + APPEND_MSGS], ts[lo:lo + APPEND_MSGS],
                                           values[lo:lo + APPEND_MSGS]))
    await writer.stop()  # flushes the rest
    stats = await writer.stats()
    t1 = time.perf_counter()
    directory = partition_dir(lake, TENANT, DAY.date())
    with lifecycle_lock(lake) as held:
        assert held
        compact_day(lake, TENANT, DAY.date(), grace_s=0)
        settle(directory, 0)  # the grace period is over: drop the inputs as the next pass would
    files = part_files(lake, TENANT, [DAY.date()])
    print(f"lake: {stats['rows_appended']:,} rows appended (WAL+fsync per {APPEND_MSGS} messages) and "
          f"flushed to {stats['files_written']} part files in {t1 - t0:.1f} s; compacted to {len(files)} file "
          f"({Path(files[0]).stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t1:.1f} s", flush=True)
    return lake


def pg_records(data: Data) -> Iterator[list[tuple[Any, ...]]]:
    template = "{" + ",".join(f'"{name}":%r' for name in data.metric_names) + "}"
    for device, ts, values in data.blocks():
        times = [DAY + timedelta(milliseconds=int(t) - int(DAY.timestamp() * 1000)) for t in ts]
        yield [(at, TENANT, data.device_ids[d], "site-1", "telemetry", int(t) // 60_000, template % tuple(row))
               for at, d, t, row in zip(times, device.tolist(), ts.tolist(), values.tolist())]


async def load_pg(conn: asyncpg.Connection, data: Data) -> None:
    await conn.execute(
        "CREATE TABLE telemetry (time timestamptz NOT NULL, tenant_id text NOT NULL, device_id text NOT NULL, "
        "site_id text, msg_type text, seq bigint, metrics jsonb);"
        "CREATE TABLE device_state (tenant_id text, device_id text, state jsonb, PRIMARY KEY (tenant_id, device_id))")
    t0 = time.perf_counter()
    for records in pg_records(data):
        await conn.copy_records_to_table("telemetry", records=records)
    t1 = time.perf_counter()
    await conn.execute("CREATE INDEX telemetry_tenant_device_time ON telemetry (tenant_id, device_id, time)")
    await conn.execute("ANALYZE telemetry")
    t2 = time.perf_counter()
    await conn.execute("INSERT INTO device_state SELECT DISTINCT ON (tenant_id, device_id) tenant_id, device_id, "
                       "metrics FROM telemetry ORDER BY tenant_id, device_id, time DESC")
    await conn.execute("ANALYZE device_state")
    size = await conn.fetchval("SELECT pg_total_relation_size('telemetry')")
    print(f"postgres: {data.messages:,} messages COPY'd in {t1 - t0:.1f} s, index + ANALYZE {t2 - t1:.1f} s, "
          f"{size / 2**20:.0f} MiB with the index", flush=True)


# ---- timing and printing --------------------------------------------------------------------------------
async def timed(fn: Callable[[], Awaitable[Any]], repeat: int, warmup: bool = True) -> float:
    """Median wall seconds of `repeat` calls (after one warm-up call)."""
    if warmup:
        await fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def report(name: str, pulse_s: float, base_s: float, goal: str, met: bool | None, note: str = "") -> None:
    """Times, the speed-up (baseline time / Pulse time) and the goal."""
    verdict = "no goal, rate reported" if met is None else ("goal MET" if met else "goal MISSED")
    print(f"  {name:<46} Pulse {_fmt(pulse_s)} | PostgreSQL {_fmt(base_s)} | "
          f"Pulse {base_s / pulse_s:6.2f}x as fast | goal {goal}: {verdict}{note}", flush=True)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def thread(fn: Callable[..., Any], *args: Any) -> Callable[[], Awaitable[Any]]:
    """A blocking Pulse call run as the services run it (`asyncio.to_thread`)."""
    return lambda: asyncio.to_thread(fn, *args)


# ---- the figures ----------------------------------------------------------------------------------------
async def rollup(conn: asyncpg.Connection, data: Data, lake: Path, repeat: int) -> None:
    labels = dict.fromkeys(data.device_ids, "all")  # the service's labels without group_by
    args = (str(lake), TENANT, "metric_0", labels, DAY, END, timedelta(hours=1), ("avg",))
    sql = ("SELECT date_trunc('hour', time) AS h, avg((metrics->>'metric_0')::float8) FROM telemetry "
           "WHERE tenant_id = $1 AND time >= $2 AND time < $3 GROUP BY h ORDER BY h")
    ours = await asyncio.to_thread(analytics.rollup, *args)
    theirs = await conn.fetch(sql, TENANT, DAY, END)
    same = len(ours) == len(theirs) and all(abs(a[2][0] - b[1]) < 1e-6 for a, b in zip(ours, theirs))
    pulse_s = await timed(thread(analytics.rollup, *args), repeat)
    base_s = await timed(lambda: conn.fetch(sql, TENANT, DAY, END), repeat)
    report(f"1. hourly avg, {len(ours)} buckets{'' if same else ' (ANSWERS DIFFER)'}", pulse_s, base_s,
           ">= 10x", base_s / pulse_s >= 10)


async def actor_shard(data: Data, tmp: Path) -> DeviceShard:
    """A DeviceShard whose actors saw each device's last message of the day (latest values in memory)."""
    db_url = f"sqlite+aiosqlite:///{tmp}/registry.db"
    await seed_devices(db_url, data.devices)
    shard = DeviceShard(0, db_url, snapshot_interval_s=3600)
    await shard._activate({(TENANT, d) for d in data.device_ids})
    shard.rules[TENANT] = []
    ts, values = data.last_minute()
    msgs = [Telemetry(TENANT, d, ts, dict(zip(data.metric_names, row)), ts // 60_000)
            for d, row in zip(data.device_ids, values.tolist())]
    for lo in range(0, len(msgs), APPEND_MSGS):
        await shard.handle_batch(msgs[lo:lo + APPEND_MSGS])
    return shard


async def latest(conn: asyncpg.Connection, data: Data, lake: Path, tmp: Path, repeat: int) -> None:
    shard = await actor_shard(data, tmp)
    reader = LakeReader(lake)

    async def actors() -> list[Any]:
        answers = await shard.call_many(TENANT, data.device_ids, "latest_values")
        return [answers[d] for d in data.device_ids]

    def lake_side() -> list[Any]:
        return [reader.recent(TENANT, d, data.metrics) for d in data.device_ids]

    lateral = ("SELECT d.device_id, t.time, t.metrics FROM unnest($2::text[]) AS d(device_id) CROSS JOIN LATERAL "
               "(SELECT time, metrics FROM telemetry WHERE tenant_id = $1 AND device_id = d.device_id "
               "ORDER BY time DESC LIMIT 1) t")
    state_sql = "SELECT device_id, state FROM device_state WHERE tenant_id = $1"
    ours = [unpack(packed) for packed in await actors()]  # the check only: the service unpacks, untimed
    theirs = await conn.fetch(lateral, TENANT, data.device_ids)
    same = all(v[0] == float(json.loads(r["metrics"])[m]) for values, r in zip(ours, theirs)
               for m, v in values.items())
    actor_s = await timed(actors, repeat)
    lake_s = await timed(thread(lake_side), 1, warmup=False)
    lateral_s = await timed(lambda: conn.fetch(lateral, TENANT, data.device_ids), repeat)
    state_s = await timed(lambda: conn.fetch(state_sql, TENANT), repeat)
    tag = "" if same else " (ANSWERS DIFFER)"
    report(f"2. latest, one call_many on the shard{tag}", actor_s, lateral_s, ">= 10x", actor_s * 10 <= lateral_s,
           "  [vs LATERAL index lookup per device on telemetry]")
    report("   latest, one call_many on the shard", actor_s, state_s, ">= 10x", actor_s * 10 <= state_s,
           "  [vs SELECT from device_state (the documented latest row)]")
    report("   latest, lake: LakeReader.recent per device", lake_s, lateral_s, ">= 10x", lake_s * 10 <= lateral_s,
           "  [alternative, not what the API uses; run once]")
    await shard.db.dispose()


async def point_query(conn: asyncpg.Connection, data: Data, lake: Path, repeat: int) -> None:
    reader = LakeReader(lake)
    limit = data.minutes * data.metrics
    picks = [data.device_ids[(i * 7919) % data.devices] for i in range(repeat + 1)]
    sql = ("SELECT time, seq, metrics FROM telemetry WHERE tenant_id = $1 AND device_id = $2 "
           "AND time >= $3 AND time < $4 ORDER BY time")
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, TENANT, picks[0], DAY, END))
    rows = len(reader.history(TENANT, picks[0], start=DAY, end=END, limit=limit))
    ours, theirs = itertools.cycle(picks), itertools.cycle(picks)
    pulse_s = await timed(lambda: asyncio.to_thread(reader.history, TENANT, next(ours), start=DAY, end=END,
                                                    limit=limit), repeat)
    base_s = await timed(lambda: conn.fetch(sql, TENANT, next(theirs), DAY, END), repeat)
    scan = "index scan" if "Index" in plan else "NO INDEX SCAN"
    report(f"3. one device's day ({rows:,} rows), PG {scan}", pulse_s, base_s, "within 2x", pulse_s <= 2 * base_s)


def export_file(lake: Path, fmt: str, out: Path) -> int:
    """The export job's work for a tenant-day: the lake stream encoded batch by batch into a file."""
    reader = LakeReader(lake).tenant_export(TENANT, TelemetryScope(DAY, END), None, LAKE_BATCH_ROWS)
    encoder, rows = Encoder(fmt, TENANT_EXPORT_SCHEMA), 0
    with open(out, "wb") as f:
        for batch in reader:
            f.write(encoder.encode(batch))
            rows += batch.num_rows
        f.write(encoder.finish())
    return rows


async def export(conn: asyncpg.Connection, data: Data, lake: Path, tmp: Path) -> None:
    sql = ("SELECT time, device_id, seq, metrics FROM telemetry WHERE tenant_id = $1 AND time >= $2 AND time < $3 "
           "ORDER BY device_id, time")
    out = tmp / "pg-export.csv"
    t0 = time.perf_counter()
    await conn.copy_from_query(sql, TENANT, DAY, END, output=str(out), format="csv")
    base_s = time.perf_counter() - t0
    base_mib = out.stat().st_size / 2**20
    out.unlink()
    print(f"  (PostgreSQL COPY TO STDOUT csv: {data.messages / base_s:,.0f} messages/s = "
          f"{data.values / base_s:,.0f} values/s, {base_mib:.0f} MiB)")
    for fmt in ("csv", "parquet"):
        path = tmp / f"pulse-export.{fmt}"
        t0 = time.perf_counter()
        rows = await asyncio.to_thread(export_file, lake, fmt, path)
        pulse_s = time.perf_counter() - t0
        mib = path.stat().st_size / 2**20
        path.unlink()
        report(f"4. export {fmt}: {rows / pulse_s:,.0f} values/s, {mib:.0f} MiB", pulse_s, base_s, "-", None,
               f"  [rows {rows:,} vs {data.values:,} values]" if rows != data.values else "")


async def backtest_figure(data: Data, lake: Path) -> None:
    rule = Rule("bt", TENANT, "hot", (Condition("metric_0", "GT", THRESHOLD),))
    files = part_files(lake, TENANT, [DAY.date()])

    def plain() -> pl.DataFrame:
        return (pl.scan_parquet(files).filter(pl.col("ts") >= DAY, pl.col("ts") < END,
                                              pl.col("metric") == "metric_0").collect())

    result = await asyncio.to_thread(backtest.run, lake, TENANT, rule, DAY, END)  # also the warm-up
    await asyncio.to_thread(plain)
    # alternated, so a burst of other work on the host hits both sides alike; the ratio is the
    # median of the pairs' ratios
    pairs = []
    for _ in range(7):
        base = await timed(thread(plain), 1, warmup=False)
        pairs.append((base, await timed(thread(backtest.run, lake, TENANT, rule, DAY, END), 1, warmup=False)))
    base_s = statistics.median(b for b, _ in pairs)
    pulse_s = statistics.median(p for _, p in pairs)
    ratio = statistics.median(p / b for b, p in pairs)
    print(f"  5. backtest: {result.rows_scanned:,} rows of metric_0, {len(result.alerts):,} alerts; "
          f"Polars read+filter {_fmt(base_s)} (baseline, not PostgreSQL)")
    print(f"     backtest.run {_fmt(pulse_s)} = {ratio:.2f}x the plain read (median of 7 alternated pairs; "
          f"pairs {min(p / b for b, p in pairs):.2f}x-{max(p / b for b, p in pairs):.2f}x) | goal <= 1.5x: "
          f"{'goal MET' if ratio <= 1.5 else 'goal MISSED'}", flush=True)


# ---- set-up and clean-up --------------------------------------------------------------------------------
def pg_database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--pg-url must be on loopback, not {parts.hostname}")
    return urlunsplit(parts._replace(path=f"/{name}"))


async def run(args: argparse.Namespace, tmp: Path) -> None:
    data = Data(args.devices, args.metrics, args.minutes)
    print(f"tenant-day: {data.devices:,} devices x {data.minutes:,} minutes = {data.messages:,} messages, "
          f"{data.values:,} metric values", flush=True)
    name = f"pulse_bench_{os.getpid()}"
    admin = await asyncpg.connect(args.pg_url)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        conn = await asyncpg.connect(pg_database_url(args.pg_url, name))
        try:
            await load_pg(conn, data)
            lake = await load_lake(data, tmp)
            print(f"\nfigures (median of {args.repeat} after a warm-up unless noted; 'as fast' = PostgreSQL time / "
                  "Pulse time):")
            figures = {1: lambda: rollup(conn, data, lake, args.repeat),
                       2: lambda: latest(conn, data, lake, tmp, args.repeat),
                       3: lambda: point_query(conn, data, lake, max(args.repeat, 9)),
                       4: lambda: export(conn, data, lake, tmp),
                       5: lambda: backtest_figure(data, lake)}
            for number in args.only:
                await figures[number]()
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def figure_numbers(text: str) -> list[int]:
    numbers = sorted({int(n) for n in text.split(",") if n.strip().isdigit()})
    if not numbers or not set(numbers) <= {1, 2, 3, 4, 5}:
        raise argparse.ArgumentTypeError("figures are 1..5, e.g. 2,3")
    return numbers


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: the finally blocks drop the database and temp dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of the fast figures (median)")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL, help="an admin URL on loopback (env PULSE_BENCH_PG_URL)")
    ap.add_argument("--only", type=figure_numbers, default=[1, 2, 3, 4, 5],
                    help="comma-separated figures to run, e.g. 2,3 (the load runs either way)")
    args = ap.parse_args()
    if not 1 <= args.minutes <= 1440:
        raise SystemExit("--minutes must be within one day (1..1440)")
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-analytics-"))
    started = time.perf_counter()
    try:
        asyncio.run(run(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
