"""The telemetry lake's files: Arrow rows (`rows`), the write-ahead log (`wal`),
hive-partitioned Parquet (`parquet`) and the crash-safe compaction and deletion of partitions
(`compaction`, docs/lake.md). Queries over it live in `pulse.pipelines.telemetry`.

Layout (DESIGN.md §4 "Telemetry lake")::

    <lake_dir>/telemetry/tenant_id=<t>/date=YYYY-MM-DD/part-<uuid>.parquet
    <lake_dir>/telemetry/tenant_id=<t>/date=YYYY-MM-DD/agg-<uuid>.parquet   (compacted parts only)

Part files hold `device_id, ts, metric, value, seq` sorted by (device_id, ts); `tenant_id` and
`date` live only in the path and come back as hive columns on read. The same
(device_id, metric, ts, seq) may appear twice (a crash between writing Parquet and dropping the
WAL segment replays it); queries de-duplicate, compaction removes them for good.
"""
