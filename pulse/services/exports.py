"""Export jobs (docs/exports.md): requested over the API, run by the scheduler, downloaded by link.

- `create` stores a PENDING job and estimates its rows; the scheduler's `ExportRunner.tick` claims
  jobs (crash-safe: see `pulse.storage.exports`), writes each file batch by batch into the blob
  store with its progress, marks it COMPLETED or FAILED and calls the job's `callback_url` once.
- `download_link` answers a user's download with a signed link valid for an hour; `open_signed`
  serves that link without a user token (the documented system redirects to a pre-signed S3 URL:
  the same seam, so an object store can sign its own links later).
- Files are kept 24 h after the job was created; then the tick removes them and a download is 410.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa

from pulse.config.settings import Settings
from pulse.domain import exports as rules
from pulse.domain.urls import public_url
from pulse.errors import BadRequest, Conflict, Gone
from pulse.integrations.channels.base import BlockedTarget, DeliveryContext, check_target
from pulse.integrations.http import RetryPolicy, Unavailable, send
from pulse.pipelines.exports import ALERT_SCHEMA, DEVICE_SCHEMA, Encoder, batch_of
from pulse.pipelines.telemetry import TENANT_EXPORT_SCHEMA, LakeReader, TelemetryScope
from pulse.services.context import ServiceContext
from pulse.services.downloads import DownloadFile, check_link, signed_url
from pulse.services.ports import Runtime
from pulse.storage import exports as store
from pulse.storage.blobs import BlobStore, blob_store
from pulse.storage.db import Database, utcnow

log = logging.getLogger(__name__)

LINK_TTL_S = 3600  # a signed download link works this long
LEASE = timedelta(minutes=10)  # renewed with every batch written; a job silent this long lost its worker
JOBS_PER_TICK = 10
PAGE_ROWS = 5_000  # devices and alerts read from the store per batch
LAKE_BATCH_ROWS = 50_000
CALLBACK_TIMEOUT_S = 10.0
CALLBACK_RETRY = RetryPolicy(attempts=2, base_delay_s=1.0, max_delay_s=5.0)  # one retry, then give up


# ---- the API --------------------------------------------------------------------------------------
def export_uuid(export_id: str) -> str:
    try:
        return str(uuid.UUID(export_id))
    except ValueError:
        raise BadRequest("Invalid export_id") from None


def stored_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters as a job keeps them: no null or empty keys; `time_range` one of the documented ranges."""
    time_range = filters.get("time_range")
    if time_range is not None and time_range not in rules.TIME_RANGES:
        raise BadRequest(f"Invalid time_range. Must be one of: {', '.join(rules.TIME_RANGES)}")
    return {k: v for k, v in filters.items() if v is not None and v != [] and v != ""}


async def create(ctx: ServiceContext, tenant_id: str, export_type: str, format: str, filters: dict[str, Any],
                 callback_url: str | None, requested_by: str) -> tuple[dict[str, Any], int]:
    """A PENDING job and the rows it is expected to hold."""
    filters = stored_filters(filters)
    now = utcnow()
    estimate = await count_rows(ctx.db, ctx.runtime, ctx.lake, tenant_id, export_type, filters, now)
    job = await store.create(ctx.db, tenant_id, export_type, format, filters, callback_url, requested_by, now)
    return job, estimate


async def get(ctx: ServiceContext, tenant_id: str, export_id: str) -> dict[str, Any]:
    return await store.get(ctx.db, tenant_id, export_uuid(export_id))


async def list_jobs(ctx: ServiceContext, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    return await store.list_jobs(ctx.db, tenant_id, limit, offset)


def download_path(export_id: str) -> str:
    return f"/api/v1/customer/exports/{export_id}/download"


def _resource(tenant_id: str, export_id: str) -> str:
    return f"exports/{tenant_id}/{export_id}"


def _expired(job: dict[str, Any], now: datetime) -> bool:
    return job["file_removed_at"] is not None or now >= job["expires_at"]


def download_url(job: dict[str, Any]) -> str | None:
    """The job's download route while its file can be downloaded (COMPLETED, not expired), else None."""
    if job["status"] != rules.COMPLETED or _expired(job, utcnow()):
        return None
    return download_path(job["export_id"])


def _available(job: dict[str, Any], blobs: BlobStore, now: datetime) -> None:
    """409 unless the job is COMPLETED; 410 once its file expired or is gone."""
    if job["status"] != rules.COMPLETED:
        raise Conflict(f"Export is not ready. Current status: {job['status']}")
    if _expired(job, now) or not blobs.exists(job["blob_key"]):
        raise Gone("Export file has expired")


async def download_link(ctx: ServiceContext, tenant_id: str, export_id: str) -> tuple[str, int]:
    """(a signed link to the file valid for LINK_TTL_S, the file's row count)."""
    job = await get(ctx, tenant_id, export_id)
    _available(job, blob_store(ctx.settings), utcnow())
    url = signed_url(ctx.settings, _resource(tenant_id, job["export_id"]),
                     f"/api/v1/export-files/{tenant_id}/{job['export_id']}", int(time.time()) + LINK_TTL_S)
    return url, job["row_count"]


async def open_signed(ctx: ServiceContext, tenant_id: str, export_id: str, expires: int,
                      given: str) -> DownloadFile:
    """The file a signed link names; 403 when the signature is wrong or the link expired."""
    check_link(ctx.settings, _resource(tenant_id, export_id), expires, given)
    job = await get(ctx, tenant_id, export_id)
    blobs = blob_store(ctx.settings)
    _available(job, blobs, utcnow())
    try:
        file = blobs.open(job["blob_key"])
    except FileNotFoundError:  # removed between the check and the open
        raise Gone("Export file has expired") from None
    return DownloadFile(file, job["file_size_bytes"], f"export-{export_id}.{job['format']}",
                        rules.MEDIA_TYPES[job["format"]])


# ---- rows of a job ----------------------------------------------------------------------------------
def _telemetry_scope(filters: dict[str, Any], device_ids: list[str] | None, now: datetime) -> TelemetryScope:
    return TelemetryScope(rules.range_start(filters.get("time_range"), "telemetry", now), now, device_ids,
                          filters.get("metric_names") or None)


async def count_rows(db: Database, runtime: Runtime, lake: LakeReader, tenant_id: str, export_type: str,
                     filters: dict[str, Any], now: datetime) -> int:
    """Rows an export of `export_type` with `filters`, as of `now`, holds."""
    since = rules.range_start(filters.get("time_range"), export_type, now)
    if export_type == "devices":
        return await store.count_devices(db, tenant_id, filters)
    if export_type == "alerts":
        return await store.count_alerts(db, tenant_id, filters, since)
    scope = _telemetry_scope(filters, await store.device_ids_in_scope(db, tenant_id, filters), now)
    extra = await runtime.pending_telemetry(tenant_id)  # before the lake read: see LakeReader
    return await asyncio.to_thread(lake.tenant_count, tenant_id, scope, extra)


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


class LostClaim(Exception):
    """The job's lease ran out and another attempt took it over: this one stops, writing nothing."""


# ---- the scheduled task -----------------------------------------------------------------------------
class ExportRunner:
    """One scheduler tick's worth of export work: remove expired files, then run due jobs."""

    def __init__(self, settings: Settings, db: Database, runtime: Runtime) -> None:
        self.settings, self.db, self.runtime = settings, db, runtime
        self.lake = LakeReader(settings.lake_dir)
        self.blobs = blob_store(settings)

    async def tick(self, now: datetime | None = None) -> int:
        """Jobs finished (completed or failed) in this tick; `now` (default: the clock) drives expiry
        and leases, so tests can move time."""
        now = now or utcnow()
        await self.remove_expired(now)
        done = 0
        for _ in range(JOBS_PER_TICK):
            job = await store.claim(self.db, now, LEASE)
            if job is None:
                break
            done += await self.run(job, now)
        return done

    async def remove_expired(self, now: datetime) -> int:
        expired = await store.expired_files(self.db, now)
        for _, key in expired:
            await asyncio.to_thread(self.blobs.delete, key)
        if expired:
            await store.mark_removed(self.db, [export_id for export_id, _ in expired], now)
        return len(expired)

    async def run(self, job: dict[str, Any], now: datetime) -> int:
        """Write the job's file; 1 when the job ended here (COMPLETED or FAILED), 0 when its claim was lost."""
        try:
            rows = await self._write(job, now)
            ended = await store.complete(self.db, job, rows, self.blobs.size(job["blob_key"]), utcnow())
        except LostClaim:
            return 0
        except Exception as e:  # recorded on the job for its owner to see; the tick goes on
            log.exception("export %s failed", job["export_id"])
            ended = await store.fail(self.db, job, f"{type(e).__name__}: {e}", utcnow())
        if ended:
            await self._callback(await store.get(self.db, job["tenant_id"], job["export_id"]))
        return int(ended)

    async def _write(self, job: dict[str, Any], now: datetime) -> int:
        """Encode the job's rows batch by batch into its blob; rows written."""
        total = await count_rows(self.db, self.runtime, self.lake, job["tenant_id"], job["export_type"],
                                 job["filters"], job["created_at"])
        await self._progress(job, 0, now, total)
        schema, batches = self._source(job)
        encoder, rows = Encoder(job["format"], schema), 0
        with self.blobs.writer(job["blob_key"]) as out:
            async for batch in batches:
                out.write(await asyncio.to_thread(encoder.encode, batch))
                rows += batch.num_rows
                await self._progress(job, rows, utcnow())
            out.write(encoder.finish())
        return rows

    async def _progress(self, job: dict[str, Any], rows: int, now: datetime, total: int | None = None) -> None:
        if not await store.progress(self.db, job, rows, now + LEASE, total):
            raise LostClaim(job["export_id"])

    def _source(self, job: dict[str, Any]) -> tuple[pa.Schema, AsyncIterator[pa.RecordBatch]]:
        """The schema and batches of the rows a job exports (as of the job's creation)."""
        kind = job["export_type"]
        if kind == "devices":
            return DEVICE_SCHEMA, self._device_batches(job)
        if kind == "alerts":
            return ALERT_SCHEMA, self._alert_batches(job)
        return TENANT_EXPORT_SCHEMA, self._telemetry_batches(job)

    async def _device_batches(self, job: dict[str, Any]) -> AsyncIterator[pa.RecordBatch]:
        after = None
        while page := await store.device_page(self.db, job["tenant_id"], job["filters"], after, PAGE_ROWS):
            yield batch_of(page, DEVICE_SCHEMA)
            after = page[-1]["device_id"]

    async def _alert_batches(self, job: dict[str, Any]) -> AsyncIterator[pa.RecordBatch]:
        since = rules.range_start(job["filters"].get("time_range"), "alerts", job["created_at"])
        after = None
        while page := await store.alert_page(self.db, job["tenant_id"], job["filters"], since, after, PAGE_ROWS):
            yield batch_of(page, ALERT_SCHEMA)
            after = page[-1]["alert_id"]

    async def _telemetry_batches(self, job: dict[str, Any]) -> AsyncIterator[pa.RecordBatch]:
        tenant_id = job["tenant_id"]
        devices = await store.device_ids_in_scope(self.db, tenant_id, job["filters"])
        scope = _telemetry_scope(job["filters"], devices, job["created_at"])
        extra = await self.runtime.pending_telemetry(tenant_id)
        reader = await asyncio.to_thread(self.lake.tenant_export, tenant_id, scope, extra, LAKE_BATCH_ROWS)
        while (batch := await asyncio.to_thread(_next_batch, reader)) is not None:
            yield batch

    async def _callback(self, job: dict[str, Any]) -> None:
        """POST {export_id, status, download_url, row_count} to the job's callback URL, once (one retry
        if it could not be reached); a failure is logged, never retried by later ticks."""
        url = job["callback_url"]
        if not url:
            return
        completed = job["status"] == rules.COMPLETED
        link = public_url(self.settings.public_base_url, download_path(job["export_id"])) if completed else None
        body = {"export_id": job["export_id"], "status": job["status"], "row_count": job["row_count"],
                "download_url": link}
        try:
            async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S) as http:
                parts = urlsplit(url)
                await check_target(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                                   DeliveryContext(http, None, CALLBACK_TIMEOUT_S,
                                                   self.settings.notifier_block_private_targets))
                response = await send(http, "POST", url, CALLBACK_RETRY, idempotent=True, json=body)
            if response.status_code >= 300:
                log.warning("export %s: callback answered HTTP %s", job["export_id"], response.status_code)
        except (BlockedTarget, Unavailable, httpx.HTTPError, OSError) as e:
            log.warning("export %s: callback failed: %s", job["export_id"], e)
