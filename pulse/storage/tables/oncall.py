"""On-call schedules, their rotation layers and overrides.

A schedule's layers rotate participants through shifts on the schedule's wall clock; overrides put
one person on call for a period, for the whole schedule or one layer (pulse.domain.oncall).
Layers and overrides carry tenant_id too, so every query filters by tenant.
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, named_resource, tenant_id, timestamps, uuid_key


def _schedule_part(key: str) -> tuple[sa.Column, ...]:
    """The head of a layer or override: its UUID key, the tenant, and the owning schedule (the part
    goes with it)."""
    return (
        uuid_key(key),
        tenant_id(),
        sa.Column("schedule_id", sa.String(36), sa.ForeignKey("oncall_schedules.schedule_id", ondelete="CASCADE"),
                  nullable=False),
    )


oncall_schedules = sa.Table(
    "oncall_schedules",
    metadata,
    *named_resource("schedule_id", described=True),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),  # IANA name
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "name"),
)

oncall_layers = sa.Table(
    "oncall_layers",
    metadata,
    *_schedule_part("layer_id"),
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
    *timestamps(),
    sa.UniqueConstraint("schedule_id", "layer_order"),
)

oncall_overrides = sa.Table(
    "oncall_overrides",
    metadata,
    *_schedule_part("override_id"),
    # NULL = the whole schedule; a layer's overrides go with the layer
    sa.Column("layer_id", sa.String(36), sa.ForeignKey("oncall_layers.layer_id", ondelete="CASCADE"), nullable=True),
    sa.Column("responder", sa.String(320), nullable=False),
    sa.Column("start_at", TS, nullable=False),
    sa.Column("end_at", TS, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(320), nullable=True),
    created_at(),  # the latest created wins where overrides overlap
    sa.Index("ix_oncall_overrides_schedule", "schedule_id", "end_at"),
)
