"""Device templates (device models): their metrics, commands and expansion slots.

tenant_id NULL marks a system template (seeded by migration 0003, read-only to tenants). Metrics,
commands and slots carry no tenant_id: they belong to their template and are only reached through it.
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import metadata
from pulse.storage.tables.columns import description, flag, optional_json, serial_id, tenant_id, timestamps


def _template_part(key: str, length: int) -> tuple[sa.Column, ...]:
    """The head of a template's metric, command or slot: its id, the owning template (the part goes
    with it), the key it is known by within the template, and a display name."""
    return (
        serial_id(),
        sa.Column("template_id", sa.Integer, sa.ForeignKey("device_templates.id", ondelete="CASCADE"), nullable=False),
        sa.Column(key, sa.String(length), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
    )


device_templates = sa.Table(
    "device_templates",
    metadata,
    serial_id(),
    tenant_id(owned=True, optional=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False),
    description(),
    # gateway | edge_device | standalone_sensor | controller | expansion_module
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("manufacturer", sa.String(200), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("firmware_version_pattern", sa.String(200), nullable=True),  # a regular expression
    flag("is_locked", False),
    sa.Column("source", sa.String(16), nullable=False),  # system | tenant
    # {ingestion_protocol, physical_connectivity, protocol_config, connectivity_config}
    optional_json("transport_defaults"),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("image_url", sa.String(1000), nullable=True),
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "slug", name="uq_device_templates_tenant_slug"),
)

template_metrics = sa.Table(
    "template_metrics",
    metadata,
    *_template_part("metric_key", 128),
    sa.Column("data_type", sa.String(16), nullable=False),  # float | integer | boolean | string | enum
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("min_value", sa.Float, nullable=True),
    sa.Column("max_value", sa.Float, nullable=True),
    sa.Column("precision_digits", sa.Integer, nullable=True),
    flag("is_required", False),
    optional_json("enum_values"),
    sa.UniqueConstraint("template_id", "metric_key", name="uq_template_metrics_key"),
)

template_commands = sa.Table(
    "template_commands",
    metadata,
    *_template_part("command_key", 128),
    description(),
    # the JSON-Schema subset pulse.domain.command_params.validate_params checks command params against
    sa.Column("parameters_schema", sa.JSON, nullable=False, default=dict),
    optional_json("response_schema"),
    sa.UniqueConstraint("template_id", "command_key", name="uq_template_commands_key"),
)

template_slots = sa.Table(
    "template_slots",
    metadata,
    *_template_part("slot_key", 64),
    sa.Column("slot_type", sa.String(16), nullable=False),  # expansion | sensor | accessory
    # analog | rs485 | i2c | spi | 1-wire | fsk | ble | lora | gpio | usb
    sa.Column("interface_type", sa.String(16), nullable=False),
    sa.Column("max_devices", sa.Integer, nullable=True),  # NULL = unbounded (a bus)
    optional_json("compatible_templates"),  # template ids; NULL = any
    flag("is_required", False),
    sa.UniqueConstraint("template_id", "slot_key", name="uq_template_slots_key"),
)
