"""First start: schema, the demo tenant and its admin user. Idempotent: every start runs it."""
from __future__ import annotations

import secrets
from typing import Any

from pulse.config.settings import Settings
from pulse.services.identity import issue_token
from pulse.storage import tenants
from pulse.storage.db import Database


def _admin_password(settings: Settings) -> str:
    """Configured, else generated once into the data dir (mode 0600)."""
    if settings.bootstrap_admin_password:
        return settings.bootstrap_admin_password
    path = settings.data_dir / "admin_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


async def first_start(settings: Settings) -> dict[str, Any]:
    settings.ensure_dirs()
    db = Database(settings.db_url)
    try:
        await db.migrate()
        tenant = settings.bootstrap_tenant
        created = await tenants.ensure_tenant(db, tenant, name="Demo")
        password = _admin_password(settings)
        await tenants.ensure_user(db, tenant, settings.bootstrap_admin_email, "customer_admin",
                                  password if created else None)
    finally:
        await db.dispose()
    token = issue_token(settings, settings.bootstrap_admin_email, tenant, "customer_admin")
    return {"tenant": tenant, "email": settings.bootstrap_admin_email, "password": password,
            "token": token, "created": created}


async def ensure_principal(settings: Settings, tenant_id: str | None, role: str, sub: str) -> None:
    """`pulse token`: the tenant (and user) exist afterwards, so the token works at once."""
    db = Database(settings.db_url)
    try:
        await db.migrate()
        if tenant_id:
            await tenants.ensure_tenant(db, tenant_id)
        await tenants.ensure_user(db, tenant_id, sub, role)
    finally:
        await db.dispose()
