"""Operator carrier management: cross-tenant list with filters and paging, create for a tenant,
update, delete with unlinking, roles, and the audit trail of every call and change."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage import carriers as store
from pulse.storage.tables import operator_audit_log

OPS = "/api/v1/operator/carrier-integrations"
DEAD_URL = "http://127.0.0.1:9"  # nothing is called: no public_base_url, no sync in these tests


def body(tenant: str, carrier: str = "1nce", **extra) -> dict:
    return {"tenant_id": tenant, "carrier_name": carrier, "api_base_url": DEAD_URL, "api_key": f"key-of-{tenant}-12345678",
            "account_id": f"{tenant}-account", **extra}


async def create(api, tenant: str, carrier: str = "1nce", **extra) -> dict:
    r = await api.post(OPS, tenant=None, role="operator_admin", json=body(tenant, carrier, **extra))
    assert r.status_code == 201, r.text
    return r.json()


async def test_operators_list_every_tenant_with_filters_and_paging(api):
    a1 = await create(api, "acme")
    await create(api, "acme", "thingspace", enabled=False)
    g1 = await create(api, "globex")
    assert a1["tenant_id"] == "acme" and a1["api_key_masked"] == "***5678" and "secrets" not in a1

    r = await api.get(OPS, tenant=None, role="operator")
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 3 and [i["tenant_id"] for i in page["integrations"]] == ["acme", "acme", "globex"]
    q = {"tenant_id": "globex"}
    assert [i["id"] for i in (await api.get(OPS, tenant=None, role="operator", params=q)).json()["integrations"]] == [g1["id"]]
    q = {"carrier_name": "thingspace"}
    assert (await api.get(OPS, tenant=None, role="operator", params=q)).json()["total"] == 1
    q = {"enabled": "true", "tenant_id": "acme"}
    assert [i["id"] for i in (await api.get(OPS, tenant=None, role="operator", params=q)).json()["integrations"]] == [a1["id"]]
    r = (await api.get(OPS, tenant=None, role="operator", params={"limit": 2, "offset": 2})).json()
    assert r["total"] == 3 and r["limit"] == 2 and r["offset"] == 2 and len(r["integrations"]) == 1
    assert (await api.get(OPS, tenant=None, role="operator", params={"limit": 0})).status_code == 422
    assert (await api.get(f"{OPS}/{g1['id']}", tenant=None, role="operator")).json()["tenant_id"] == "globex"


async def test_roles(api):
    iid = (await create(api, "acme"))["id"]
    assert (await api.client.get(OPS)).status_code == 401
    for role, tenant in (("customer_admin", "acme"), ("customer_viewer", "acme")):
        assert (await api.get(OPS, tenant=tenant, role=role)).status_code == 403
    r = await api.post(OPS, tenant=None, role="operator", json=body("globex"))
    assert r.status_code == 403 and "operator.write" in r.json()["detail"]
    assert (await api.request("PUT", f"{OPS}/{iid}", tenant=None, role="operator", json={"enabled": False})).status_code == 403
    assert (await api.delete(f"{OPS}/{iid}", tenant=None, role="operator")).status_code == 403


async def test_create_validates_tenant_and_carrier(api):
    r = await api.post(OPS, tenant=None, role="operator_admin", json=body("nobody"))
    assert r.status_code == 404 and "tenant nobody" in r.json()["detail"]
    r = await api.post(OPS, tenant=None, role="operator_admin", json=body("acme", "jasper"))
    assert r.status_code == 400 and "Unsupported carrier provider" in r.json()["detail"]
    r = await api.post(OPS, tenant=None, role="operator_admin", json={k: v for k, v in body("acme").items() if k != "tenant_id"})
    assert r.status_code == 422 and "tenant_id" in r.json()["detail"]
    await create(api, "acme")
    r = await api.post(OPS, tenant=None, role="operator_admin", json=body("acme"))
    assert r.status_code == 409
    assert (await api.request("PUT", f"{OPS}/999", tenant=None, role="operator_admin", json={"enabled": False})).status_code == 404


async def test_update_and_delete_any_tenant_unlink_devices_and_are_audited(api):
    iid = (await create(api, "globex"))["id"]
    await api.post("/api/v1/customer/devices", tenant="globex", json={"device_id": "g1"})
    await store.link_device(api.services.db, "globex", "g1", iid, "8988280666000000001", {"sim_status": "active"})
    assert (await api.get(f"/api/v1/customer/carrier/integrations/{iid}", tenant="globex")).json()["linked_devices"] == 1

    r = await api.request("PUT", f"{OPS}/{iid}", tenant=None, role="operator_admin",
                          json={"sync_interval_minutes": 15, "api_secret": "new-secret-value-1"})
    assert r.status_code == 200 and r.json()["sync_interval_minutes"] == 15 and r.json()["tenant_id"] == "globex"
    assert (await api.request("PUT", f"{OPS}/{iid}", tenant=None, role="operator_admin",
                              json={"sync_interval_minutes": 2})).status_code == 422
    assert (await api.delete(f"{OPS}/{iid}", tenant=None, role="operator_admin")).json() == {"deleted": True, "id": iid}
    assert (await api.get("/api/v1/customer/devices/g1/carrier/status", tenant="globex")).status_code == 404
    assert (await api.get(f"{OPS}/{iid}", tenant=None, role="operator")).status_code == 404

    changes = [(e["action"], e["user_id"], e["role"], e["changes"]) for e in
               reversed(await store.audit_entries(api.services.db, "globex"))]
    assert changes[0][:3] == ("integration.create", "operator_admin@None", "operator_admin")
    assert changes[1] == ("integration.update", "operator_admin@None", "operator_admin",
                          {"sync_interval_minutes": {"from": 60, "to": 15}, "api_secret": "changed"})
    assert changes[2][0] == "integration.delete" and changes[2][3]["unlinked_devices"] == ["g1"]
    async with api.services.db.connect() as conn:
        access = [(r.method, r.path) for r in await conn.execute(sa.select(operator_audit_log).order_by(operator_audit_log.c.id))]
    assert access == [("POST", OPS), ("PUT", f"{OPS}/{iid}"), ("PUT", f"{OPS}/{iid}"), ("DELETE", f"{OPS}/{iid}"),
                      ("GET", f"{OPS}/{iid}")]
