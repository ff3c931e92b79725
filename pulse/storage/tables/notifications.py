"""Notification channels, the rules that route alert events to them, delivery jobs and their log.

A channel is a delivery target; `config` holds its plain settings with secret fields replaced by a
mask ("***" + last 4), `secrets` the real values as one Fernet token (pulse.storage.secrets).
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import flag, named_resource, optional_json, serial_id, tenant_id, timestamps, uuid_key

notification_channels = sa.Table(
    "notification_channels",
    metadata,
    *named_resource("channel_id"),
    sa.Column("channel_type", sa.String(16), nullable=False),  # webhook | email | slack | teams | pagerduty | mqtt
    flag("enabled", True),
    sa.Column("config", sa.JSON, nullable=False, default=dict),
    sa.Column("secrets", sa.Text, nullable=True),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=True),  # NULL = settings.notifier_rate_per_minute
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "name", name="uq_notification_channels_tenant_name"),
)

# Which channels an alert event goes to; evaluated by priority ascending (pulse.services.notifier.match_rules).
notification_routing_rules = sa.Table(
    "notification_routing_rules",
    metadata,
    uuid_key("rule_id"),
    tenant_id(owned=True),
    sa.Column("name", sa.String(200), nullable=True),
    flag("enabled", True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    flag("stop", False),
    sa.Column("channel_ids", sa.JSON, nullable=False),
    sa.Column("min_severity", sa.Integer, nullable=True),
    # match lists: NULL = any; a list matches when the alert's value is in it (tags: any shared tag)
    *(optional_json(name) for name in ("alert_types", "rule_ids", "device_ids", "group_ids", "tags", "site_ids")),
    sa.Column("events", sa.JSON, nullable=False),  # OPEN | ACKNOWLEDGED | CLOSED | ESCALATED
    optional_json("active_hours"),  # {start, end, timezone, days?}
    sa.Column("throttle_minutes", sa.Integer, nullable=False, server_default="0"),
    *timestamps(),
    sa.Index("ix_notification_routing_rules_tenant", "tenant_id", "priority"),
)

# One delivery of one alert event to one channel. `occurrence` tells repeated events apart
# (the escalation level for ESCALATED, else 0), so a retried enqueue never duplicates a delivery.
notification_jobs = sa.Table(
    "notification_jobs",
    metadata,
    serial_id("job_id"),
    tenant_id(),
    sa.Column("alert_id", sa.Integer, nullable=False),
    sa.Column("channel_id", sa.String(36), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("occurrence", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fingerprint", sa.String(300), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # PENDING | PROCESSING | COMPLETED | FAILED
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # PENDING: when it is due; PROCESSING: when the claim lapses (a crashed sender's job is retaken)
    sa.Column("next_attempt_at", TS, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("payload", sa.JSON, nullable=False),  # {"alert": snapshot at the event}
    *timestamps(),
    sa.Column("completed_at", TS, nullable=True),
    sa.UniqueConstraint("tenant_id", "alert_id", "channel_id", "event", "occurrence",
                        name="uq_notification_jobs_delivery"),
    sa.Index("ix_notification_jobs_due", "status", "next_attempt_at"),
    sa.Index("ix_notification_jobs_tenant", "tenant_id", "created_at"),
    sa.Index("ix_notification_jobs_throttle", "tenant_id", "channel_id", "fingerprint", "created_at"),
)

# Every send attempt (job deliveries and channel tests): the job log.
notification_log = sa.Table(
    "notification_log",
    metadata,
    serial_id(),
    tenant_id(),
    sa.Column("job_id", sa.Integer, nullable=True),  # NULL for a channel test
    sa.Column("channel_id", sa.String(36), nullable=False),
    sa.Column("alert_id", sa.Integer, nullable=True),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_notification_log_job", "job_id"),
    sa.Index("ix_notification_log_tenant", "tenant_id", "at"),
)
