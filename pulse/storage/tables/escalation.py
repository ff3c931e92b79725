"""Escalation policies: who is notified, level by level, while an alert stays unacknowledged.

A policy's levels are one JSON list [{delay_minutes, targets: [{type, id}]}], level 1 first: they
are always read and written whole with the policy, and targets point at three different tables.
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import metadata
from pulse.storage.tables.columns import flag, named_resource, timestamps

escalation_policies = sa.Table(
    "escalation_policies",
    metadata,
    *named_resource("policy_id", described=True),
    flag("is_default", False),
    sa.Column("repeat", sa.Integer, nullable=False, server_default="0"),
    sa.Column("levels", sa.JSON, nullable=False),
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "name", name="uq_escalation_policies_tenant_name"),
    # at most one default policy per tenant, even under concurrent writes
    sa.Index("uq_escalation_policies_default", "tenant_id", unique=True,
             sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default")),
)
