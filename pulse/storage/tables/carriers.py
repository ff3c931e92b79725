"""Carrier integrations (docs/carriers.md): SIM lines linked to devices, their usage, the actions
asked of a carrier, its callbacks, and who changed what.

One integration per (tenant, carrier). Credentials live in `secrets` (one Fernet token: api_key,
api_secret, username, password, callback_username, callback_password); `config` holds only
non-secret carrier extras. Deleting an integration unlinks its devices (FK cascade).
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import (acting_user, created_at, device_fk, device_id, device_ref, flag, serial_id,
                                         tenant_id, timestamps)


def _integration_id() -> sa.Column:
    """The owning integration; what hangs off it goes with it."""
    return sa.Column("integration_id", sa.Integer,
                     sa.ForeignKey("carrier_integrations.integration_id", ondelete="CASCADE"), nullable=False)


carrier_integrations = sa.Table(
    "carrier_integrations",
    metadata,
    serial_id("integration_id"),
    tenant_id(owned=True),
    sa.Column("carrier_name", sa.String(32), nullable=False),  # a key of pulse.integrations.carriers.PROVIDERS
    sa.Column("display_name", sa.String(200), nullable=False),
    flag("enabled", True),
    flag("sync_enabled", True),
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
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "carrier_name", name="uq_carrier_integrations_tenant_carrier"),
)

# A device's SIM line: which integration and carrier id, plus the latest synced status and usage.
carrier_links = sa.Table(
    "carrier_links",
    metadata,
    *device_ref(key=True),
    _integration_id(),
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
    flag("usage_alert_active", False),
    sa.Column("last_synced_at", TS, nullable=True),
    sa.Column("last_sync_error", sa.Text, nullable=True),
    sa.Column("linked_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    device_fk(),
    # one SIM line belongs to one device
    sa.UniqueConstraint("integration_id", "carrier_device_id", name="uq_carrier_links_line"),
)

# Usage over time, one row per link per sync (or refresh): the usage chart.
carrier_usage_snapshots = sa.Table(
    "carrier_usage_snapshots",
    metadata,
    serial_id(),
    *device_ref(),
    sa.Column("taken_at", TS, nullable=False),
    sa.Column("data_used_bytes", sa.BigInteger, nullable=False),
    sa.Column("data_limit_bytes", sa.BigInteger, nullable=True),
    sa.Column("sms_count", sa.Integer, nullable=True),
    device_fk("carrier_links"),
    sa.Index("ix_carrier_usage_snapshots_device", "tenant_id", "device_id", "taken_at"),
)

# Every carrier action a user asked for; asynchronous ones stay pending under the carrier's
# request_id until a callback or the poller settles them (idempotent on (integration, request_id)).
carrier_requests = sa.Table(
    "carrier_requests",
    metadata,
    serial_id(),
    tenant_id(),
    _integration_id(),
    device_id(),
    sa.Column("carrier_device_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # activate | suspend | restore | deactivate | reboot | provision
    sa.Column("request_id", sa.String(128), nullable=True),  # NULL when the carrier answered synchronously
    sa.Column("state", sa.String(16), nullable=False),  # pending | succeeded | failed | sent
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("requested_by", sa.String(320), nullable=True),
    created_at(),
    sa.Column("completed_at", TS, nullable=True),
    sa.UniqueConstraint("integration_id", "request_id", name="uq_carrier_requests_request"),
    sa.Index("ix_carrier_requests_state", "state", "created_at"),
    sa.Index("ix_carrier_requests_device", "tenant_id", "device_id", "created_at"),
)

# Every inbound callback, verified or not (credentials are stripped from the stored body).
carrier_callbacks = sa.Table(
    "carrier_callbacks",
    metadata,
    serial_id(),
    sa.Column("integration_id", sa.Integer, nullable=True),  # as addressed: may name no integration
    tenant_id(optional=True),
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
    serial_id(),
    sa.Column("at", TS, nullable=False),
    tenant_id(),
    sa.Column("integration_id", sa.Integer, nullable=True),
    device_id(optional=True),
    *acting_user(),
    sa.Column("action", sa.String(32), nullable=False),  # integration.create|update|delete, device.link|provision|<action>
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Index("ix_carrier_audit_log_tenant", "tenant_id", "at"),
)
