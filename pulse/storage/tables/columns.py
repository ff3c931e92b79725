"""Builders for the columns and keys many tables repeat: the tenant and device keys, surrogate ids,
the head of a tenant's named resource, the actor of an audit log, flags, nullable JSON and the
created/updated stamps.

One definition each, so every `tenant_id` has the same type and every device reference the same
cascade. Each call makes new objects: a Column or constraint belongs to exactly one table.
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS


def _key_or_nullable(key: bool, optional: bool) -> dict:
    # a primary-key column is NOT NULL by itself; any other column says which it is
    return {"primary_key": True} if key else {"nullable": optional}


def tenant_id(*, owned: bool = False, key: bool = False, optional: bool = False) -> sa.Column:
    """`owned`: the row goes with its tenant (FK to tenants, ON DELETE CASCADE)."""
    fk = (sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"),) if owned else ()
    return sa.Column("tenant_id", sa.String(64), *fk, **_key_or_nullable(key, optional))


def device_id(*, key: bool = False, optional: bool = False) -> sa.Column:
    return sa.Column("device_id", sa.String(128), **_key_or_nullable(key, optional))


def device_ref(*, key: bool = False) -> tuple[sa.Column, sa.Column]:
    """(tenant_id, device_id): one device, the pair every device-scoped table keys on."""
    return tenant_id(key=key), device_id(key=key)


def tenant_scoped_fk(column: str, parent: str, **kw) -> sa.ForeignKeyConstraint:
    """(tenant_id, column) -> the same pair of `parent`; the row goes with its parent."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column], [f"{parent}.tenant_id", f"{parent}.{column}"], ondelete="CASCADE", **kw
    )


def device_fk(parent: str = "devices", **kw) -> sa.ForeignKeyConstraint:
    return tenant_scoped_fk("device_id", parent, **kw)


def serial_id(name: str = "id") -> sa.Column:
    return sa.Column(name, sa.Integer, primary_key=True, autoincrement=True)


def uuid_key(name: str) -> sa.Column:
    return sa.Column(name, sa.String(36), primary_key=True)


def named_resource(key: str, *, described: bool = False) -> tuple[sa.Column, ...]:
    """The head of a tenant's named resource: its UUID key, the owning tenant, the name and, if
    `described`, a free-text description."""
    head = (uuid_key(key), tenant_id(owned=True), sa.Column("name", sa.String(200), nullable=False))
    return (*head, description()) if described else head


def description() -> sa.Column:
    return sa.Column("description", sa.Text, nullable=True)


def acting_user() -> tuple[sa.Column, sa.Column]:
    """Who did it, for an audit log: the user id and the role acted in (kept, as roles change)."""
    return sa.Column("user_id", sa.String(320), nullable=False), sa.Column("role", sa.String(32), nullable=False)


def flag(name: str, default: bool) -> sa.Column:
    # server defaults as sa.true()/sa.false() render right on both SQLite and PostgreSQL
    return sa.Column(name, sa.Boolean, nullable=False, server_default=sa.true() if default else sa.false())


def created_at() -> sa.Column:
    return sa.Column("created_at", TS, nullable=False)


def timestamps() -> tuple[sa.Column, sa.Column]:
    """created_at and updated_at, both required."""
    return created_at(), sa.Column("updated_at", TS, nullable=False)


def optional_json(name: str) -> sa.Column:
    """A JSON column where Python None is SQL NULL (not the JSON `null`), so `IS NULL` finds it."""
    return sa.Column(name, sa.JSON(none_as_null=True), nullable=True)
