"""Alert digest settings: one row per tenant; no row = digests disabled (GET answers the defaults)."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import tenant_id, timestamps

alert_digest_settings = sa.Table(
    "alert_digest_settings",
    metadata,
    tenant_id(owned=True, key=True),
    sa.Column("frequency", sa.String(16), nullable=False, server_default="disabled"),  # disabled | hourly | daily | weekly
    sa.Column("recipients", sa.JSON, nullable=False),  # e-mail addresses
    sa.Column("channel_id", sa.String(36), nullable=True),  # an email channel to send through; NULL = the default mailer
    sa.Column("send_at_hour", sa.Integer, nullable=False, server_default="8"),  # local hour, daily and weekly
    sa.Column("send_on_day", sa.String(3), nullable=False, server_default="mon"),  # weekly: mon..sun
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),  # IANA name
    sa.Column("last_sent_at", TS, nullable=True),
    *timestamps(),
)
