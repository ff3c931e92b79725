"""Telemetry lake micro-benchmarks: ingest cost of the WAL, point-read cost of the layout.

    python benchmarks/bench_lake.py

Prints
1. envelope -> Arrow conversion rate (`telemetry_table`, the ingest hot path);
2. rows/s of `Wal.append` (+fsync) in batches of 500 messages x 10 metrics, against plain
   `pq.write_table` of the same batches (and with an fsync, the like-for-like durable write);
3. `LakeReader.history` latency for one device-day, part files sorted by (device_id, ts) vs in
   arrival order, in one compacted file and in 24 flush-sized files; DuckDB vs Polars.
Numbers are noisy on a shared 2-core machine: compare ratios within one run.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

from pulse.domain.messages import Telemetry  # noqa: E402
from pulse.pipelines.telemetry import LakeReader  # noqa: E402
from pulse.storage.lake.parquet import ROW_GROUP_ROWS, write_parquet  # noqa: E402
from pulse.storage.lake.rows import TELEMETRY_SCHEMA, telemetry_table  # noqa: E402
from pulse.storage.lake.wal import Wal  # noqa: E402

MSGS_PER_BATCH, METRICS = 500, 10
WAL_BATCHES = 200  # 1M rows
DEVICES, SAMPLES_PER_DAY = 1000, 288  # 5-minute samples: 2.88M rows per tenant-day
DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)
TENANT, DEVICE = "acme", "dev-00421"


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time in ms after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def envelope_batch(offset: int) -> list[Telemetry]:
    base = int(DAY.timestamp() * 1000)
    return [
        Telemetry(
            TENANT,
            f"dev-{(offset + i) % DEVICES:05d}",
            base + (offset + i) * 10,
            {f"metric_{k}": float(i * k % 97) for k in range(METRICS)},
            offset + i,
        )
        for i in range(MSGS_PER_BATCH)
    ]


def bench_ingest(tmp: Path) -> None:
    msgs = envelope_batch(0)
    conv_ms = timed(lambda: telemetry_table(msgs), 50)
    msg_rate = MSGS_PER_BATCH / conv_ms * 1000
    print(f"telemetry_table: {msg_rate:,.0f} msg/s ({msg_rate * METRICS:,.0f} rows/s)")

    batch = telemetry_table(msgs)
    rows = batch.num_rows * WAL_BATCHES
    wal_rate = {}
    for compression in ("lz4", None):
        wal = Wal(tmp / f"wal-{compression}", compression=compression)
        t0 = time.perf_counter()
        for _ in range(WAL_BATCHES):
            wal.append(batch)
        wal_rate[compression] = rows / (time.perf_counter() - t0)
        size = wal.size_bytes
        wal.close()
        label = compression or "uncompressed"
        print(f"Wal.append+fsync ({label}): {wal_rate[compression]:,.0f} rows/s, {size / rows:.0f} B/row")

    for fsync in (False, True):
        out = tmp / f"pq-{fsync}"
        out.mkdir()
        t0 = time.perf_counter()
        for i in range(WAL_BATCHES):
            path = out / f"{i}.parquet"
            pq.write_table(batch, path)
            if fsync:
                fd = os.open(path, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
        rate = rows / (time.perf_counter() - t0)
        label = "pq.write_table+fsync" if fsync else "pq.write_table (no fsync)"
        print(f"{label}: {rate:,.0f} rows/s -> WAL(lz4)/parquet ratio {wal_rate['lz4'] / rate:.2f}x")


def day_slice(part: int, parts: int) -> pa.Table:
    """Rows of one tenant-day in arrival order (time-major, devices interleaved)."""
    per = SAMPLES_PER_DAY // parts
    samples = np.arange(part * per, (part + 1) * per)
    ts = np.repeat(int(DAY.timestamp() * 1000) + samples * 300_000, DEVICES * METRICS)
    device = np.tile(np.repeat(np.arange(DEVICES), METRICS), per)
    metric = np.tile(np.arange(METRICS), DEVICES * per)
    names = pa.array([f"dev-{i:05d}" for i in range(DEVICES)])
    metrics = pa.array([f"metric_{k}" for k in range(METRICS)])
    n = len(ts)
    return pa.table(
        {
            "tenant_id": pa.array(np.full(n, TENANT, dtype=object), pa.string()),
            "device_id": names.take(device),
            "ts": pa.array(ts).view(pa.timestamp("ms", tz="UTC")),
            "metric": metrics.take(metric),
            "value": np.random.default_rng(part).random(n),
            "seq": pa.array(np.arange(n), pa.int64()),
        },
        schema=TELEMETRY_SCHEMA,
    )


def write_unsorted(lake: Path, table: pa.Table) -> None:
    """Same layout and row-group size as `write_parquet`, rows left in arrival order."""
    directory = lake / "telemetry" / f"tenant_id={TENANT}" / f"date={DAY.date().isoformat()}"
    directory.mkdir(parents=True, exist_ok=True)
    cols = ["device_id", "ts", "metric", "value", "seq"]
    path = directory / f"part-{time.perf_counter_ns()}.parquet"
    pq.write_table(table.select(cols), path, row_group_size=ROW_GROUP_ROWS, compression="zstd")


def polars_history(lake: Path) -> Callable[[], object]:
    files = sorted(str(p) for p in (lake / "telemetry" / f"tenant_id={TENANT}").glob("date=*/part-*.parquet"))
    start, end = DAY, DAY + timedelta(days=1)

    def run() -> object:
        return (
            pl.scan_parquet(files, hive_partitioning=True, hive_schema={"tenant_id": pl.String, "date": pl.Date})
            .filter((pl.col("tenant_id") == TENANT) & (pl.col("device_id") == DEVICE))
            .filter(pl.col("ts").is_between(start, end, closed="left"))
            .group_by("ts", "metric", "seq")
            .agg(pl.col("value").max())
            .sort("ts", "metric")
            .head(10_000)
            .collect()
            .to_dicts()
        )

    return run


def bench_reads(tmp: Path) -> None:
    print(f"\nhistory of one device-day ({SAMPLES_PER_DAY * METRICS:,} rows) in a tenant-day of "
          f"{DEVICES * SAMPLES_PER_DAY * METRICS:,} rows, row groups of {ROW_GROUP_ROWS:,}:")
    for parts in (1, 24):
        slices = [day_slice(p, parts) for p in range(parts)]
        lakes = {"sorted": tmp / f"sorted-{parts}", "arrival order": tmp / f"unsorted-{parts}"}
        for t in slices:
            write_parquet(lakes["sorted"], t)
            write_unsorted(lakes["arrival order"], t)
        latency = {}
        for label, lake in lakes.items():
            reader = LakeReader(lake)
            run = partial(reader.history, TENANT, DEVICE, start=DAY, end=DAY + timedelta(days=1), limit=10_000)
            assert len(run()) == SAMPLES_PER_DAY * METRICS
            latency[label] = timed(run, 9)
        polars_ms = timed(polars_history(lakes["sorted"]), 9)
        print(f"  {parts:2d} file(s): sorted {latency['sorted']:6.1f} ms | arrival order {latency['arrival order']:6.1f} ms "
              f"({latency['arrival order'] / latency['sorted']:.1f}x) | Polars on sorted {polars_ms:6.1f} ms")
        if parts == 1:
            reader = LakeReader(lakes["sorted"])
            print(f"  recent(limit=100) {timed(lambda: reader.recent(TENANT, DEVICE, 100), 9):.1f} ms | "
                  f"metrics() {timed(lambda: reader.metrics(TENANT, DEVICE), 9):.1f} ms (sorted, 1 file)")


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        bench_ingest(Path(tmp))
        bench_reads(Path(tmp))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
