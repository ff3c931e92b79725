"""Alert rules, the alerts they open and each alert's lifecycle transitions."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, device_ref, flag, named_resource, serial_id, tenant_id, timestamps

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    *named_resource("rule_id", described=True),
    sa.Column("rule_type", sa.String(32), nullable=False, server_default="threshold"),
    sa.Column("metric", sa.String(128), nullable=True),
    sa.Column("operator", sa.String(4), nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("severity", sa.Integer, nullable=False, server_default="3"),
    sa.Column("duration_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("device_ids", sa.JSON, nullable=True),
    flag("auto_resolve", True),
    flag("enabled", True),
    sa.Column("config", sa.JSON, nullable=False, default=dict),
    *timestamps(),
    # NULL = the tenant's default policy (pulse.storage.escalation.start); a referenced policy cannot be deleted
    sa.Column("escalation_policy_id", sa.String(36), nullable=True),
    sa.Index("ix_alert_rules_tenant", "tenant_id"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    serial_id("alert_id"),
    *device_ref(),
    sa.Column("rule_id", sa.String(36), nullable=True),
    sa.Column("alert_type", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.String(300), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # OPEN | ACKNOWLEDGED | CLOSED
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("metric", sa.String(128), nullable=True),
    sa.Column("trigger_value", sa.Float, nullable=True),
    sa.Column("triggered_at", TS, nullable=False),
    sa.Column("last_triggered_at", TS, nullable=False),
    sa.Column("trigger_count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("details", sa.JSON, nullable=False, default=dict),
    sa.Column("acknowledged_by", sa.String(320), nullable=True),
    sa.Column("acknowledged_at", TS, nullable=True),
    sa.Column("closed_by", sa.String(320), nullable=True),
    sa.Column("closed_at", TS, nullable=True),
    sa.Column("silenced_until", TS, nullable=True),
    created_at(),
    # escalation timer (pulse.storage.escalation): the level counts steps notified; a NULL
    # next_escalation_at = not escalating (no policy, chain done, acknowledged or closed)
    sa.Column("escalation_policy_id", sa.String(36), nullable=True),
    sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_escalation_at", TS, nullable=True),
    sa.Column("last_escalated_at", TS, nullable=True),
    sa.Index("ix_alerts_tenant_status", "tenant_id", "status"),
    sa.Index("ix_alerts_tenant_fingerprint", "tenant_id", "fingerprint"),
    sa.Index("ix_alerts_next_escalation", "next_escalation_at",
             sqlite_where=sa.text("next_escalation_at IS NOT NULL"),
             postgresql_where=sa.text("next_escalation_at IS NOT NULL")),
)

alert_transitions = sa.Table(
    "alert_transitions",
    metadata,
    serial_id(),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False),
    tenant_id(),
    sa.Column("action", sa.String(32), nullable=False),  # OPENED | RETRIGGERED | ACKNOWLEDGED | SILENCED | CLOSED | AUTO_CLOSED
    sa.Column("actor", sa.String(320), nullable=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("details", sa.JSON, nullable=False, default=dict),
    sa.Index("ix_alert_transitions_alert", "alert_id"),
)
