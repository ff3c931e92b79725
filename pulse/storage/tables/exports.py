"""Export jobs: asynchronous exports of devices, alerts or telemetry, run by the scheduler."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, tenant_id, uuid_key

export_jobs = sa.Table(
    "export_jobs",
    metadata,
    uuid_key("export_id"),
    tenant_id(owned=True),
    sa.Column("export_type", sa.String(16), nullable=False),  # devices | alerts | telemetry
    sa.Column("format", sa.String(16), nullable=False),  # csv | json | parquet
    sa.Column("filters", sa.JSON, nullable=False),
    sa.Column("callback_url", sa.Text, nullable=True),
    sa.Column("requested_by", sa.String(320), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # PENDING | PROCESSING | COMPLETED | FAILED
    # progress of a running job: rows written so far of the rows the job's query counted at its start
    sa.Column("rows_done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_total", sa.BigInteger, nullable=True),
    sa.Column("row_count", sa.BigInteger, nullable=True),
    sa.Column("file_size_bytes", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("blob_key", sa.String(300), nullable=True),
    # a PROCESSING job whose lease ran out lost its worker (crash): the next tick runs it again
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_until", TS, nullable=True),
    created_at(),
    sa.Column("started_at", TS, nullable=True),
    sa.Column("completed_at", TS, nullable=True),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("file_removed_at", TS, nullable=True),  # the file expired and was deleted: download is 410
    sa.Index("ix_export_jobs_tenant_created", "tenant_id", "created_at"),
    sa.Index("ix_export_jobs_status", "status"),
    sa.Index("ix_export_jobs_expires", "expires_at"),
)
