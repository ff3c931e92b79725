"""What one device is made of: the modules in its slots, its sensors and its transports."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import device_fk, device_ref, flag, serial_id, timestamps


def _component_table(name: str, *items: sa.schema.SchemaItem) -> sa.Table:
    """A table of one device's components: each row has its own id and belongs to the device (goes
    with it); `items` are the component's own columns, indexes and constraints."""
    return sa.Table(name, metadata, serial_id(), *device_ref(), *items, device_fk())


def _link(name: str, target: str) -> sa.Column:
    """An optional reference (a template, a metric, a module): deleting the target clears it, keeps the row."""
    return sa.Column(name, sa.Integer, sa.ForeignKey(target, ondelete="SET NULL"), nullable=True)


device_modules = _component_table(
    "device_modules",
    sa.Column("slot_key", sa.String(64), nullable=False),
    sa.Column("bus_address", sa.String(64), nullable=True),
    _link("module_template_id", "device_templates.id"),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("serial_number", sa.String(200), nullable=True),
    sa.Column("metric_key_map", sa.JSON, nullable=False, default=dict),  # raw firmware key -> semantic key
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active | inactive | removed
    *timestamps(),
    sa.Index("ix_device_modules_device", "tenant_id", "device_id"),
)

device_sensors = _component_table(
    "device_sensors",
    sa.Column("metric_key", sa.String(128), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=True),
    _link("template_metric_id", "template_metrics.id"),
    _link("device_module_id", "device_modules.id"),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("min_range", sa.Float, nullable=True),
    sa.Column("max_range", sa.Float, nullable=True),
    sa.Column("precision_digits", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active | inactive | error
    sa.Column("source", sa.String(16), nullable=False),  # required | optional | unmodeled
    sa.Column("last_value", sa.Float, nullable=True),
    sa.Column("last_value_text", sa.String(256), nullable=True),
    sa.Column("last_seen_at", TS, nullable=True),
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "device_id", "metric_key", name="uq_device_sensors_metric"),
    sa.Index("ix_device_sensors_tenant_metric", "tenant_id", "metric_key"),
)

device_transports = _component_table(
    "device_transports",
    # mqtt_direct | http_api | lorawan | gateway_proxy | modbus_rtu
    sa.Column("ingestion_protocol", sa.String(32), nullable=False),
    sa.Column("physical_connectivity", sa.String(16), nullable=True),  # cellular | ethernet | wifi | satellite | lora | other
    sa.Column("protocol_config", sa.JSON, nullable=False, default=dict),
    sa.Column("connectivity_config", sa.JSON, nullable=False, default=dict),  # apn, sim_iccid, msisdn, …
    sa.Column("carrier_integration_id", sa.Integer, nullable=True),
    flag("is_primary", False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active | inactive | failover
    *timestamps(),
    sa.Index("ix_device_transports_device", "tenant_id", "device_id"),
    # at most one primary transport per device, even under concurrent writes
    sa.Index("uq_device_transports_primary", "tenant_id", "device_id", unique=True,
             sqlite_where=sa.text("is_primary"), postgresql_where=sa.text("is_primary")),
)
