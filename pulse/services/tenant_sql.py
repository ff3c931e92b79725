"""Tenant SQL: a customer's own read-only query over its telemetry and a snapshot of its registry.

The store gives the registry snapshot, the lake writer the rows it has not flushed yet (so a query
sees every acknowledged message); `pulse.pipelines.sandbox` runs the query on a locked-down
DuckDB connection in a worker thread, bounded by the limits in the settings.
"""
from __future__ import annotations

import asyncio

from pulse.errors import RateLimited
from pulse.pipelines import sandbox
from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store


async def run(ctx: ServiceContext, tenant_id: str, sql: str, limit: int) -> sandbox.QueryResult:
    """At most `limit` rows of `sql`; refused statements, errors and exceeded limits raise PulseErrors.

    A query past the process's concurrency is refused at once (429), not queued: waiting queries
    would hold worker threads that other reads of the lake need."""
    if ctx.tenant_sql_slots.locked():
        raise RateLimited("too many SQL queries are running; try again shortly", retry_after_s=1.0)
    async with ctx.tenant_sql_slots:
        return await _run(ctx, tenant_id, sql, limit)


async def _run(ctx: ServiceContext, tenant_id: str, sql: str, limit: int) -> sandbox.QueryResult:
    extra = await ctx.runtime.pending_telemetry(tenant_id)  # before the lake's files are listed
    registry = sandbox.devices_table(await device_store.registry_snapshot(ctx.db, tenant_id))
    limits = sandbox.Limits(rows=limit, seconds=ctx.settings.tenant_sql_timeout_s,
                            memory_mb=ctx.settings.tenant_sql_memory_mb)
    return await asyncio.to_thread(sandbox.run_query, ctx.lake.lake_dir, tenant_id, registry, sql, limits,
                                   extra)
