"""Operator per-tenant telemetry retention: read, set, reset, validation, roles and the audit trail;
the retention pass then keeps the lake to the tenant's setting."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from pulse.pipelines.telemetry import LakeReader
from pulse.services.lake_lifecycle import expire_lake
from pulse.storage.tables import operator_audit_log
from tests.serve.helpers import telemetry

OPS = "/api/v1/operator/tenants"


async def put(api, tenant: str, days: int | None, role: str = "operator_admin"):
    return await api.request("PUT", f"{OPS}/{tenant}/telemetry-retention", tenant=None, role=role,
                             json={"retention_days": days})


async def test_a_tenant_gets_its_own_retention_and_can_go_back_to_the_default(api):
    default = api.services.settings.lake_retention_days
    r = await api.get(f"{OPS}/acme/telemetry-retention", tenant=None, role="operator")
    assert r.status_code == 200, r.text
    assert r.json() == {"tenant_id": "acme", "retention_days": default, "source": "default", "default_days": default}

    r = await put(api, "acme", 7)
    assert r.status_code == 200 and r.json()["retention_days"] == 7 and r.json()["source"] == "tenant"
    assert (await api.get(f"{OPS}/acme/telemetry-retention", tenant=None, role="operator")).json()["retention_days"] == 7
    assert (await api.get(f"{OPS}/globex/telemetry-retention", tenant=None, role="operator")).json()["source"] == "default"

    r = await put(api, "acme", None)
    assert r.json()["retention_days"] == default and r.json()["source"] == "default"


async def test_bad_values_unknown_tenants_and_roles_are_refused(api):
    for days in (0, -1, 3651, "many"):
        assert (await put(api, "acme", days)).status_code == 422
    r = await api.request("PUT", f"{OPS}/acme/telemetry-retention", tenant=None, role="operator_admin", json={})
    assert r.status_code == 422
    assert (await put(api, "nobody", 7)).status_code == 404
    assert (await api.get(f"{OPS}/nobody/telemetry-retention", tenant=None, role="operator")).status_code == 404
    assert (await put(api, "acme", 7, role="operator")).status_code == 403  # read-only operator
    r = await api.get(f"{OPS}/acme/telemetry-retention")  # a customer admin
    assert r.status_code == 403 and "detail" in r.json()


async def test_every_call_is_audited(api):
    await put(api, "acme", 5)
    await api.get(f"{OPS}/acme/telemetry-retention", tenant=None, role="operator")
    async with api.services.db.connect() as conn:
        access = [(r.method, r.path) for r in await conn.execute(
            sa.select(operator_audit_log).order_by(operator_audit_log.c.id))]
    assert access == [("PUT", f"{OPS}/acme/telemetry-retention"), ("GET", f"{OPS}/acme/telemetry-retention")]


async def test_the_retention_pass_applies_the_tenants_setting(api):
    for tenant in ("acme", "globex"):
        assert (await api.post("/api/v1/customer/devices", tenant=tenant, json={"device_id": "d1"})).status_code == 201
        await telemetry(api, "d1", 0, tenant=tenant, temp=20.0)
    await api.services.runtime.flush()
    await put(api, "acme", 5)
    ten_days_later = datetime.now(timezone.utc) + timedelta(days=10)

    assert await expire_lake(api.services.db, api.services.settings, ten_days_later) >= 1
    lake = LakeReader(api.services.settings.lake_dir)
    assert lake.history("acme", "d1") == []
    assert [r["value"] for r in lake.history("globex", "d1")] == [20.0]  # the 30-day default
