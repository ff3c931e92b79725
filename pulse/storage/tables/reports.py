"""Report runs: every SLA report and quick export, on demand or by the scheduler (docs/reports.md)."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, serial_id, tenant_id

report_runs = sa.Table(
    "report_runs",
    metadata,
    serial_id("run_id"),
    tenant_id(owned=True),
    sa.Column("report_type", sa.String(32), nullable=False),  # sla_summary | device_export | alert_export
    sa.Column("status", sa.String(16), nullable=False),  # RUNNING | COMPLETED | FAILED
    sa.Column("triggered_by", sa.String(330), nullable=False),  # user:<sub> | scheduler
    sa.Column("parameters", sa.JSON, nullable=False, default=dict),
    sa.Column("row_count", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # a scheduled run's day (YYYY-MM-DD): unique per tenant and type, so a day's report is made once
    # however many schedulers tick; NULL for on-demand runs (NULLs never collide)
    sa.Column("schedule_key", sa.String(16), nullable=True),
    created_at(),
    sa.Column("completed_at", TS, nullable=True),
    sa.UniqueConstraint("tenant_id", "report_type", "schedule_key"),
    sa.Index("ix_report_runs_tenant_run", "tenant_id", "run_id"),
)
