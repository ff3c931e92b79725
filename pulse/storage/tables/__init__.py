"""The control-plane schema (SQLAlchemy Core), one module per area; Alembic migrations follow it.

Every tenant-scoped table carries `tenant_id`; device-scoped tables key on (tenant_id, device_id).
Timestamps are timezone-aware UTC. Importing this package registers every table in `metadata`,
which is what the migrations and the no-drift test (tests/storage/test_migrations.py) compare to.
"""
from pulse.storage.tables.base import TS, UTCDateTime, metadata
from pulse.storage.tables.tenants import tenants, users
from pulse.storage.tables.devices import device_state, device_tokens, devices
from pulse.storage.tables.alerts import alert_rules, alert_transitions, alerts
from pulse.storage.tables.quarantine import quarantine_counters, quarantine_events
from pulse.storage.tables.audit import audit_log, operator_audit_log
from pulse.storage.tables.commands import device_commands
from pulse.storage.tables.fleet import device_group_members, device_groups, device_tags
from pulse.storage.tables.maintenance import maintenance_windows
from pulse.storage.tables.templates import device_templates, template_commands, template_metrics, template_slots
from pulse.storage.tables.components import device_modules, device_sensors, device_transports
from pulse.storage.tables.notifications import (notification_channels, notification_jobs, notification_log,
                                                notification_routing_rules)
from pulse.storage.tables.oncall import oncall_layers, oncall_overrides, oncall_schedules
from pulse.storage.tables.escalation import escalation_policies
from pulse.storage.tables.digest import alert_digest_settings
from pulse.storage.tables.carriers import (carrier_audit_log, carrier_callbacks, carrier_integrations, carrier_links,
                                           carrier_requests, carrier_usage_snapshots)
from pulse.storage.tables.owners import device_owners, end_customers
from pulse.storage.tables.outbox import outbox
from pulse.storage.tables.telemetron import telemetron_customers, telemetron_integrations
from pulse.storage.tables.exports import export_jobs
from pulse.storage.tables.reports import report_runs
from pulse.storage.tables.firmware import firmware_versions
from pulse.storage.tables.jobs import job_executions, jobs
from pulse.storage.tables.ota import ota_campaigns, ota_device_status
from pulse.storage.tables.dashboards import dashboard_widgets, dashboards

__all__ = [
    "TS", "UTCDateTime", "metadata",
    "tenants", "users",
    "device_state", "device_tokens", "devices",
    "alert_rules", "alert_transitions", "alerts",
    "quarantine_counters", "quarantine_events",
    "audit_log", "operator_audit_log",
    "device_commands",
    "device_group_members", "device_groups", "device_tags",
    "maintenance_windows",
    "device_templates", "template_commands", "template_metrics", "template_slots",
    "device_modules", "device_sensors", "device_transports",
    "notification_channels", "notification_jobs", "notification_log", "notification_routing_rules",
    "oncall_layers", "oncall_overrides", "oncall_schedules",
    "escalation_policies",
    "alert_digest_settings",
    "carrier_audit_log", "carrier_callbacks", "carrier_integrations", "carrier_links", "carrier_requests",
    "carrier_usage_snapshots",
    "device_owners", "end_customers",
    "outbox",
    "telemetron_customers", "telemetron_integrations",
    "export_jobs",
    "report_runs",
    "firmware_versions",
    "job_executions", "jobs",
    "ota_campaigns", "ota_device_status",
    "dashboard_widgets", "dashboards",
]
