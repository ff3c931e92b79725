"""Rejected messages become quarantine events, visible per tenant and (audited) to operators."""
import sqlalchemy as sa

from pulse.storage.tables import operator_audit_log
from tests.serve.helpers import send, telemetry


async def test_rejections_are_listed_with_reason_counts(api):
    await api.post("/api/v1/customer/devices", json={"device_id": "d1"})
    await send(api, "acme", "d1", "telemetry", b"{broken")
    await send(api, "acme", "d1", "telemetry", {"version": "9", "metrics": {"a": 1}})
    await telemetry(api, "ghost", 0, temp=1)  # not registered
    await send(api, "globex", "d1", "telemetry", b"{broken")
    r = (await api.get("/api/v1/customer/quarantine")).json()
    assert r["total"] == 3
    assert r["counts_by_reason"] == {"INVALID_JSON": 1, "UNSUPPORTED_ENVELOPE_VERSION": 1, "UNREGISTERED_DEVICE": 1}
    assert {e["tenant_id"] for e in r["events"]} == {"acme"}
    r = (await api.get("/api/v1/customer/quarantine", params={"reason": "INVALID_JSON"})).json()
    assert r["total"] == 1 and r["events"][0]["payload"] == "{broken"


async def test_decommissioned_device_messages_are_quarantined(api):
    await api.post("/api/v1/customer/devices", json={"device_id": "d1"})
    await telemetry(api, "d1", 0, temp=1)
    await api.patch("/api/v1/customer/devices/d1/decommission", json={})
    await telemetry(api, "d1", 10, temp=2)
    r = (await api.get("/api/v1/customer/quarantine")).json()
    assert [e["reason"] for e in r["events"]] == ["DEVICE_REVOKED"]


async def test_operator_view_is_cross_tenant_audited_and_denied_to_customers(api):
    await send(api, "acme", "d1", "telemetry", b"{broken")
    await send(api, "globex", "d1", "telemetry", b"{broken")
    r = await api.get("/api/v1/operator/quarantine", tenant=None, role="operator")
    assert r.status_code == 200 and r.json()["total"] == 2 and r.json()["counts_by_reason"] == {"INVALID_JSON": 2}
    r = await api.get("/api/v1/operator/quarantine", params={"tenant_id": "globex"}, tenant=None, role="operator")
    assert r.json()["total"] == 1
    assert (await api.get("/api/v1/operator/quarantine")).status_code == 403
    async with api.services.db.connect() as conn:
        rows = (await conn.execute(sa.select(operator_audit_log))).all()
    assert [(r.role, r.tenant_filter) for r in rows] == [("operator", None), ("operator", "globex")]
