"""The control-plane schema (SQLAlchemy Core). Alembic migrations are generated from it.

Every tenant-scoped table carries `tenant_id`; device-scoped tables key on (tenant_id, device_id).
Timestamps are timezone-aware UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)



class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC on the way in and out; SQLite stores naive values and would lose the zone."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: Pulse stores timezone-aware UTC only")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


TS = UTCDateTime()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="ACTIVE"),
    sa.Column("account_tier", sa.String(32), nullable=False, server_default="growth"),
    sa.Column("created_at", TS, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_users_tenant", "tenant_id"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("site_id", sa.String(128), nullable=True),
    # ACTIVE | INACTIVE | SUSPENDED | REVOKED (decommissioned)
    sa.Column("status", sa.String(16), nullable=False, server_default="ACTIVE"),
    sa.Column("template_id", sa.Integer, nullable=True),
    sa.Column("parent_device_id", sa.String(128), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("manufacturer", sa.String(200), nullable=True),
    sa.Column("serial_number", sa.String(200), nullable=True),
    sa.Column("fw_version", sa.String(100), nullable=True),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("decommissioned_at", TS, nullable=True),
    sa.Index("ix_devices_tenant_site", "tenant_id", "site_id"),
)

device_tokens = sa.Table(
    "device_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    # SHA-256 of a 256-bit random secret: high entropy makes a slow hash unnecessary,
    # and broker auth must stay cheap (see docs/security.md).
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_device_tokens_device", "tenant_id", "device_id"),
)

# Write-behind snapshots of device actors (twin, latest values, rule state, presence).
device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("rule_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("rule_type", sa.String(32), nullable=False, server_default="threshold"),
    sa.Column("metric", sa.String(128), nullable=True),
    sa.Column("operator", sa.String(4), nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("severity", sa.Integer, nullable=False, server_default="3"),
    sa.Column("duration_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("device_ids", sa.JSON, nullable=True),
    sa.Column("auto_resolve", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("config", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # NULL = the tenant's default policy (pulse.storage.escalation.start); a referenced policy cannot be deleted
    sa.Column("escalation_policy_id", sa.String(36), nullable=True),
    sa.Index("ix_alert_rules_tenant", "tenant_id"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
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
    sa.Column("created_at", TS, nullable=False),
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
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # OPENED | RETRIGGERED | ACKNOWLEDGED | SILENCED | CLOSED | AUTO_CLOSED
    sa.Column("actor", sa.String(320), nullable=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("details", sa.JSON, nullable=False, default=dict),
    sa.Index("ix_alert_transitions_alert", "alert_id"),
)

quarantine_events = sa.Table(
    "quarantine_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ingested_at", TS, nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("device_id", sa.String(128), nullable=True),
    sa.Column("topic", sa.String(512), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("payload", sa.Text, nullable=True),  # first 4 KiB, for diagnosis
    sa.Index("ix_quarantine_tenant_time", "tenant_id", "ingested_at"),
)

quarantine_counters = sa.Table(
    "quarantine_counters_minute",
    metadata,
    sa.Column("bucket_minute", TS, primary_key=True),
    sa.Column("tenant_id", sa.String(64), primary_key=True),  # "" when the tenant is unknown
    sa.Column("reason", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

operator_audit_log = sa.Table(
    "operator_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("user_id", sa.String(320), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("tenant_filter", sa.String(64), nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
)


# ---- commands (cloud -> device) ----------------------------------------------------------------
device_commands = sa.Table(
    "device_commands",
    metadata,
    sa.Column("command_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("command_type", sa.String(128), nullable=False),
    sa.Column("params", sa.JSON, nullable=False, default=dict),
    # pending -> delivered -> succeeded | failed | rejected ; expired when expires_at passes first
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(320), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("published_at", TS, nullable=True),
    sa.Column("acked_at", TS, nullable=True),
    sa.Column("ack_details", sa.JSON, nullable=True),
    sa.Column("expires_at", TS, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_device_commands_device", "tenant_id", "device_id", "created_at"),
    sa.Index("ix_device_commands_open", "status", "expires_at"),
)


# ---- fleet: tags, groups, maintenance windows
device_tags = sa.Table(
    "device_tags",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_device_tags_tenant_tag", "tenant_id", "tag"),
)

device_groups = sa.Table(
    "device_groups",
    metadata,
    sa.Column("group_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    # NULL = static (explicit members); {"status", "tags", "site_id"} = dynamic (computed members)
    sa.Column("query", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

device_group_members = sa.Table(
    "device_group_members",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("group_id", sa.String(36), sa.ForeignKey("device_groups.group_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("added_at", TS, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_device_group_members_device", "tenant_id", "device_id"),
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("window_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("ends_at", TS, nullable=True),  # NULL = indefinite
    # NULL = one period [starts_at, ends_at); else weekly occurrences inside it (pulse.domain.maintenance)
    sa.Column("recurrence", sa.JSON(none_as_null=True), nullable=True),
    # {"device_ids", "group_ids", "site_ids", "tags"}: any match selects a device; all empty = tenant
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_maintenance_windows_tenant", "tenant_id", "starts_at"),
)


# ---- templates, modules, sensors, transports ---------------------------------------------------
# A template is a device model: its metrics, commands and expansion slots. tenant_id NULL marks a
# system template (seeded by migration 0003, read-only to tenants). Metrics, commands and slots
# carry no tenant_id: they belong to their template and are only reached through it.
device_templates = sa.Table(
    "device_templates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    # gateway | edge_device | standalone_sensor | controller | expansion_module
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("manufacturer", sa.String(200), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("firmware_version_pattern", sa.String(200), nullable=True),  # a regular expression
    sa.Column("is_locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.String(16), nullable=False),  # system | tenant
    # {ingestion_protocol, physical_connectivity, protocol_config, connectivity_config}
    sa.Column("transport_defaults", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("image_url", sa.String(1000), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "slug", name="uq_device_templates_tenant_slug"),
)

template_metrics = sa.Table(
    "template_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("device_templates.id", ondelete="CASCADE"), nullable=False),
    sa.Column("metric_key", sa.String(128), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("data_type", sa.String(16), nullable=False),  # float | integer | boolean | string | enum
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("min_value", sa.Float, nullable=True),
    sa.Column("max_value", sa.Float, nullable=True),
    sa.Column("precision_digits", sa.Integer, nullable=True),
    sa.Column("is_required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("enum_values", sa.JSON(none_as_null=True), nullable=True),
    sa.UniqueConstraint("template_id", "metric_key", name="uq_template_metrics_key"),
)

template_commands = sa.Table(
    "template_commands",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("device_templates.id", ondelete="CASCADE"), nullable=False),
    sa.Column("command_key", sa.String(128), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    # the JSON-Schema subset pulse.storage.templates.validate_params checks command params against
    sa.Column("parameters_schema", sa.JSON, nullable=False, default=dict),
    sa.Column("response_schema", sa.JSON(none_as_null=True), nullable=True),
    sa.UniqueConstraint("template_id", "command_key", name="uq_template_commands_key"),
)

template_slots = sa.Table(
    "template_slots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("device_templates.id", ondelete="CASCADE"), nullable=False),
    sa.Column("slot_key", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("slot_type", sa.String(16), nullable=False),  # expansion | sensor | accessory
    # analog | rs485 | i2c | spi | 1-wire | fsk | ble | lora | gpio | usb
    sa.Column("interface_type", sa.String(16), nullable=False),
    sa.Column("max_devices", sa.Integer, nullable=True),  # NULL = unbounded (a bus)
    sa.Column("compatible_templates", sa.JSON(none_as_null=True), nullable=True),  # template ids; NULL = any
    sa.Column("is_required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("template_id", "slot_key", name="uq_template_slots_key"),
)

device_modules = sa.Table(
    "device_modules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("slot_key", sa.String(64), nullable=False),
    sa.Column("bus_address", sa.String(64), nullable=True),
    sa.Column("module_template_id", sa.Integer, sa.ForeignKey("device_templates.id", ondelete="SET NULL"),
              nullable=True),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("serial_number", sa.String(200), nullable=True),
    sa.Column("metric_key_map", sa.JSON, nullable=False, default=dict),  # raw firmware key -> semantic key
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active | inactive | removed
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_device_modules_device", "tenant_id", "device_id"),
)

device_sensors = sa.Table(
    "device_sensors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("metric_key", sa.String(128), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("template_metric_id", sa.Integer, sa.ForeignKey("template_metrics.id", ondelete="SET NULL"),
              nullable=True),
    sa.Column("device_module_id", sa.Integer, sa.ForeignKey("device_modules.id", ondelete="SET NULL"),
              nullable=True),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("min_range", sa.Float, nullable=True),
    sa.Column("max_range", sa.Float, nullable=True),
    sa.Column("precision_digits", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active | inactive | error
    sa.Column("source", sa.String(16), nullable=False),  # required | optional | unmodeled
    sa.Column("last_value", sa.Float, nullable=True),
    sa.Column("last_value_text", sa.String(256), nullable=True),
    sa.Column("last_seen_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.UniqueConstraint("tenant_id", "device_id", "metric_key", name="uq_device_sensors_metric"),
    sa.Index("ix_device_sensors_tenant_metric", "tenant_id", "metric_key"),
)

device_transports = sa.Table(
    "device_transports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    # mqtt_direct | http_api | lorawan | gateway_proxy | modbus_rtu
    sa.Column("ingestion_protocol", sa.String(32), nullable=False),
    sa.Column("physical_connectivity", sa.String(16), nullable=True),  # cellular | ethernet | wifi | satellite | lora | other
    sa.Column("protocol_config", sa.JSON, nullable=False, default=dict),
    sa.Column("connectivity_config", sa.JSON, nullable=False, default=dict),  # apn, sim_iccid, msisdn, …
    sa.Column("carrier_integration_id", sa.Integer, nullable=True),
    sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active | inactive | failover
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_device_transports_device", "tenant_id", "device_id"),
    # at most one primary transport per device, even under concurrent writes
    sa.Index("uq_device_transports_primary", "tenant_id", "device_id", unique=True,
             sqlite_where=sa.text("is_primary"), postgresql_where=sa.text("is_primary")),
)


# ---- notification channels, routing, jobs
# A channel is a delivery target; `config` holds its plain settings with secret fields replaced by a
# mask ("***" + last 4), `secrets` the real values as one Fernet token (pulse.storage.secrets).
notification_channels = sa.Table(
    "notification_channels",
    metadata,
    sa.Column("channel_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("channel_type", sa.String(16), nullable=False),  # webhook | email | slack | teams | pagerduty | mqtt
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("config", sa.JSON, nullable=False, default=dict),
    sa.Column("secrets", sa.Text, nullable=True),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=True),  # NULL = settings.notifier_rate_per_minute
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "name", name="uq_notification_channels_tenant_name"),
)

# Which channels an alert event goes to; evaluated by priority ascending (pulse.services.notifier.match_rules).
notification_routing_rules = sa.Table(
    "notification_routing_rules",
    metadata,
    sa.Column("rule_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    sa.Column("stop", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("channel_ids", sa.JSON, nullable=False),
    sa.Column("min_severity", sa.Integer, nullable=True),
    # match lists: NULL = any; a list matches when the alert's value is in it (tags: any shared tag)
    sa.Column("alert_types", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("rule_ids", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("device_ids", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("group_ids", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("tags", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("site_ids", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("events", sa.JSON, nullable=False),  # OPEN | ACKNOWLEDGED | CLOSED | ESCALATED
    sa.Column("active_hours", sa.JSON(none_as_null=True), nullable=True),  # {start, end, timezone, days?}
    sa.Column("throttle_minutes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_notification_routing_rules_tenant", "tenant_id", "priority"),
)

# One delivery of one alert event to one channel. `occurrence` tells repeated events apart
# (the escalation level for ESCALATED, else 0), so a retried enqueue never duplicates a delivery.
notification_jobs = sa.Table(
    "notification_jobs",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
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
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
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
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
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


# ---- on-call schedules --------------------------------------------------------------------------
# A schedule's layers rotate participants through shifts on the schedule's wall clock; overrides put
# one person on call for a period, for the whole schedule or one layer (pulse.domain.oncall).
# Layers and overrides carry tenant_id too, so every query filters by tenant.
oncall_schedules = sa.Table(
    "oncall_schedules",
    metadata,
    sa.Column("schedule_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),  # IANA name
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

oncall_layers = sa.Table(
    "oncall_layers",
    metadata,
    sa.Column("layer_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("schedule_id", sa.String(36), sa.ForeignKey("oncall_schedules.schedule_id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("layer_order", sa.Integer, nullable=False),  # priority: lowest first
    sa.Column("rotation_type", sa.String(16), nullable=False),  # daily | weekly | custom
    sa.Column("shift_hours", sa.Integer, nullable=True),  # custom only
    sa.Column("handoff_time", sa.String(5), nullable=False),  # HH:MM, schedule-local
    sa.Column("handoff_day", sa.Integer, nullable=True),  # weekly only, 0 = Monday
    sa.Column("start_at", TS, nullable=False),  # participants[0]'s shift is in progress here
    sa.Column("end_at", TS, nullable=True),
    sa.Column("participants", sa.JSON, nullable=False),  # ordered user emails or ids
    sa.Column("restrictions", sa.JSON, nullable=False),  # [] = always; else local weekly windows
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("schedule_id", "layer_order"),
)

oncall_overrides = sa.Table(
    "oncall_overrides",
    metadata,
    sa.Column("override_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("schedule_id", sa.String(36), sa.ForeignKey("oncall_schedules.schedule_id", ondelete="CASCADE"),
              nullable=False),
    # NULL = the whole schedule; a layer's overrides go with the layer
    sa.Column("layer_id", sa.String(36), sa.ForeignKey("oncall_layers.layer_id", ondelete="CASCADE"), nullable=True),
    sa.Column("responder", sa.String(320), nullable=False),
    sa.Column("start_at", TS, nullable=False),
    sa.Column("end_at", TS, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(320), nullable=True),
    sa.Column("created_at", TS, nullable=False),  # the latest created wins where overrides overlap
    sa.Index("ix_oncall_overrides_schedule", "schedule_id", "end_at"),
)


# ---- escalation policies, digest settings --------------------------------------------------------
# A policy's levels are one JSON list [{delay_minutes, targets: [{type, id}]}], level 1 first: they
# are always read and written whole with the policy, and targets point at three different tables.
escalation_policies = sa.Table(
    "escalation_policies",
    metadata,
    sa.Column("policy_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("repeat", sa.Integer, nullable=False, server_default="0"),
    sa.Column("levels", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "name", name="uq_escalation_policies_tenant_name"),
    # at most one default policy per tenant, even under concurrent writes
    sa.Index("uq_escalation_policies_default", "tenant_id", unique=True,
             sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default")),
)

# One row per tenant; no row = digests disabled (GET answers the defaults).
alert_digest_settings = sa.Table(
    "alert_digest_settings",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("frequency", sa.String(16), nullable=False, server_default="disabled"),  # disabled | hourly | daily | weekly
    sa.Column("recipients", sa.JSON, nullable=False),  # e-mail addresses
    sa.Column("channel_id", sa.String(36), nullable=True),  # an email channel to send through; NULL = the default mailer
    sa.Column("send_at_hour", sa.Integer, nullable=False, server_default="8"),  # local hour, daily and weekly
    sa.Column("send_on_day", sa.String(3), nullable=False, server_default="mon"),  # weekly: mon..sun
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),  # IANA name
    sa.Column("last_sent_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)


# ---- carrier integrations (docs/carriers.md) ------------------------------------------------------
# One integration per (tenant, carrier). Credentials live in `secrets` (one Fernet token:
# api_key, api_secret, username, password, callback_username, callback_password); `config` holds
# only non-secret carrier extras. Deleting an integration unlinks its devices (FK cascade).
carrier_integrations = sa.Table(
    "carrier_integrations",
    metadata,
    sa.Column("integration_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("carrier_name", sa.String(32), nullable=False),  # a key of pulse.integrations.carriers.PROVIDERS
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("sync_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("sync_interval_minutes", sa.Integer, nullable=False, server_default="60"),
    sa.Column("api_base_url", sa.String(2000), nullable=False),
    sa.Column("account_id", sa.String(200), nullable=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("secrets", sa.Text, nullable=True),
    sa.Column("callback_url", sa.String(2000), nullable=True),  # set once registered with the carrier
    sa.Column("callback_error", sa.Text, nullable=True),
    sa.Column("last_sync_at", TS, nullable=True),
    sa.Column("last_sync_status", sa.String(16), nullable=True),  # success | partial | error
    sa.Column("last_sync_error", sa.Text, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "carrier_name", name="uq_carrier_integrations_tenant_carrier"),
)

# A device's SIM line: which integration and carrier id, plus the latest synced status and usage.
carrier_links = sa.Table(
    "carrier_links",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("integration_id", sa.Integer,
              sa.ForeignKey("carrier_integrations.integration_id", ondelete="CASCADE"), nullable=False),
    sa.Column("carrier_device_id", sa.String(64), nullable=False),
    sa.Column("iccid", sa.String(32), nullable=True),
    sa.Column("sim_status", sa.String(16), nullable=True),
    sa.Column("network_status", sa.String(32), nullable=True),
    sa.Column("network_type", sa.String(32), nullable=True),
    sa.Column("ip_address", sa.String(64), nullable=True),
    sa.Column("signal_strength", sa.Integer, nullable=True),
    sa.Column("msisdn", sa.String(32), nullable=True),
    sa.Column("plan", sa.String(200), nullable=True),
    sa.Column("last_connection", TS, nullable=True),
    sa.Column("data_used_bytes", sa.BigInteger, nullable=True),
    sa.Column("data_limit_bytes", sa.BigInteger, nullable=True),
    sa.Column("sms_count", sa.Integer, nullable=True),
    sa.Column("billing_cycle_start", TS, nullable=True),
    sa.Column("billing_cycle_end", TS, nullable=True),
    # the data-usage alert is open for this line (edge detection across syncs)
    sa.Column("usage_alert_active", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_synced_at", TS, nullable=True),
    sa.Column("last_sync_error", sa.Text, nullable=True),
    sa.Column("linked_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"], ondelete="CASCADE"
    ),
    # one SIM line belongs to one device
    sa.UniqueConstraint("integration_id", "carrier_device_id", name="uq_carrier_links_line"),
)

# Usage over time, one row per link per sync (or refresh): the usage chart.
carrier_usage_snapshots = sa.Table(
    "carrier_usage_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("taken_at", TS, nullable=False),
    sa.Column("data_used_bytes", sa.BigInteger, nullable=False),
    sa.Column("data_limit_bytes", sa.BigInteger, nullable=True),
    sa.Column("sms_count", sa.Integer, nullable=True),
    sa.ForeignKeyConstraint(
        ["tenant_id", "device_id"], ["carrier_links.tenant_id", "carrier_links.device_id"], ondelete="CASCADE"
    ),
    sa.Index("ix_carrier_usage_snapshots_device", "tenant_id", "device_id", "taken_at"),
)

# Every carrier action a user asked for; asynchronous ones stay pending under the carrier's
# request_id until a callback or the poller settles them (idempotent on (integration, request_id)).
carrier_requests = sa.Table(
    "carrier_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.Integer,
              sa.ForeignKey("carrier_integrations.integration_id", ondelete="CASCADE"), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("carrier_device_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # activate | suspend | restore | deactivate | reboot | provision
    sa.Column("request_id", sa.String(128), nullable=True),  # NULL when the carrier answered synchronously
    sa.Column("state", sa.String(16), nullable=False),  # pending | succeeded | failed
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("requested_by", sa.String(320), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("completed_at", TS, nullable=True),
    sa.UniqueConstraint("integration_id", "request_id", name="uq_carrier_requests_request"),
    sa.Index("ix_carrier_requests_state", "state", "created_at"),
    sa.Index("ix_carrier_requests_device", "tenant_id", "device_id", "created_at"),
)

# Every inbound callback, verified or not (credentials are stripped from the stored body).
carrier_callbacks = sa.Table(
    "carrier_callbacks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("integration_id", sa.Integer, nullable=True),  # as addressed: may name no integration
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # settled | duplicate | unmatched | recorded | rejected | invalid
    sa.Column("kind", sa.String(32), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("remote_ip", sa.String(64), nullable=True),
    sa.Column("body", sa.JSON, nullable=True),
    sa.Index("ix_carrier_callbacks_integration", "integration_id", "received_at"),
)

# Who changed what on carrier integrations and lines (customer and operator writes, actions).
carrier_audit_log = sa.Table(
    "carrier_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.Integer, nullable=True),
    sa.Column("device_id", sa.String(128), nullable=True),
    sa.Column("user_id", sa.String(320), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # integration.create|update|delete, device.link|provision|<action>
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Index("ix_carrier_audit_log_tenant", "tenant_id", "at"),
)


# ---- Telemetron: device owners, transactional outbox, integration (docs/telemetron.md) -----------
# End customers own devices; they are kept per tenant by e-mail (Telemetron's customer key too).
end_customers = sa.Table(
    "end_customers",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),  # trimmed, lower-case
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("phone", sa.String(40), nullable=True),
    sa.Column("address", sa.String(500), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "email", name="uq_end_customers_tenant_email"),
)

device_owners = sa.Table(
    "device_owners",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),  # order given by the last PUT
    sa.Column("created_at", TS, nullable=False),
    sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"],
                            name="fk_device_owners_device", ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["tenant_id", "customer_id"], ["end_customers.tenant_id", "end_customers.customer_id"],
                            name="fk_device_owners_customer", ondelete="CASCADE"),
    sa.Index("ix_device_owners_customer", "tenant_id", "customer_id"),
)

# Generic transactional outbox: rows are written in the transaction of the change they describe and
# delivered in `id` order per (topic, tenant_id, aggregate_id). SQLite AUTOINCREMENT so ids never repeat.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(32), nullable=False),  # "telemetron"
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("aggregate_id", sa.String(128), nullable=False),  # the ordering key: a device id for Telemetron
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="PENDING"),  # PENDING | DELIVERED | FAILED
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=True),  # set while a retryable failure backs off
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Index("ix_outbox_queue", "topic", "tenant_id", "status", "id"),
    sa.Index("ix_outbox_delivered", "status", "delivered_at"),
    sqlite_autoincrement=True,
)

# One per tenant; `secrets` is a Fernet token holding {"api_key"}.
telemetron_integrations = sa.Table(
    "telemetron_integrations",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("base_url", sa.String(2000), nullable=False),
    sa.Column("secrets", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("last_sync_at", TS, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Our end customer <-> Telemetron's customer id (Telemetron has no external-id field).
telemetron_customers = sa.Table(
    "telemetron_customers",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("telemetron_customer_id", sa.String(128), nullable=False),
    sa.Column("synced_at", TS, nullable=False),
    sa.ForeignKeyConstraint(["tenant_id", "customer_id"], ["end_customers.tenant_id", "end_customers.customer_id"],
                            name="fk_telemetron_customers_customer", ondelete="CASCADE"),
)
