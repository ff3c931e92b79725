"""IoT jobs (docs/jobs.md): a job document sent to devices, and one execution per target device."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import device_fk, device_ref, optional_json, tenant_id, timestamps

jobs = sa.Table(
    "jobs",
    metadata,
    tenant_id(owned=True, key=True),
    sa.Column("job_id", sa.String(128), primary_key=True),
    sa.Column("document_type", sa.String(100), nullable=False),
    sa.Column("document_params", sa.JSON, nullable=False, default=dict),
    sa.Column("target_device_id", sa.String(128), nullable=True),
    sa.Column("target_group_id", sa.String(128), nullable=True),
    sa.Column("target_all", sa.Boolean, nullable=False, server_default=sa.false()),
    # IN_PROGRESS -> COMPLETED (no open execution left) | CANCELED (DELETE)
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("expires_at", TS, nullable=True),  # null: never expires
    sa.Column("created_by", sa.String(320), nullable=True),
    *timestamps(),
    sa.Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
    sa.Index("ix_jobs_expiry", "status", "expires_at"),  # the scheduler's sweep
)

job_executions = sa.Table(
    "job_executions",
    metadata,
    *device_ref(key=True),
    sa.Column("job_id", sa.String(128), primary_key=True),
    # QUEUED -> IN_PROGRESS -> SUCCEEDED | FAILED | REJECTED ; TIMED_OUT when the job expires first
    sa.Column("status", sa.String(16), nullable=False),
    optional_json("status_details"),
    sa.Column("queued_at", TS, nullable=False),
    sa.Column("started_at", TS, nullable=True),
    sa.Column("last_updated_at", TS, nullable=False),
    sa.Column("execution_number", sa.Integer, nullable=False),  # +1 per accepted change (optimistic lock)
    sa.ForeignKeyConstraint(["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.job_id"], ondelete="CASCADE"),
    device_fk(),
    sa.Index("ix_job_executions_job", "tenant_id", "job_id", "status"),
    sa.Index("ix_job_executions_device", "tenant_id", "device_id", "status"),
)
