"""Customer carrier API: integration CRUD (masking, one per carrier, validation), the tier gate,
permissions, tenancy, and a device's line against a live 1NCE simulator (link, status, usage,
actions, provisioning, plans, diagnostics, carrier outage, callbacks)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from pulse.simulators.onence import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, OneNceSim
from pulse.simulators.server import SimServer
from pulse.storage import carriers as store
from pulse.storage.tables import carrier_audit_log, carrier_callbacks, carrier_integrations, carrier_requests, tenants
from tests.integrations.carriers.helpers import INTEGRATIONS, fast_carrier_retries, line

SIM1, SIM2, SIM4 = "8988280666000000001", "8988280666000000002", "8988280666000000004"


@pytest.fixture
async def carrier_api(api):
    return fast_carrier_retries(api)


@pytest.fixture
def onence() -> AsyncIterator[SimServer]:
    with SimServer(OneNceSim(rate_limit_per_s=None)) as server:
        yield server


def onence_body(server: SimServer | None = None, **extra) -> dict:
    return {"carrier_name": "1nce", "display_name": "1NCE fleet",
            "api_base_url": server.base_url if server else "http://127.0.0.1:9/management-api",
            "api_key": DEMO_CLIENT_ID, "api_secret": DEMO_CLIENT_SECRET, **extra}


async def make_integration(api, server=None, tenant="acme", **extra) -> dict:
    r = await api.post(INTEGRATIONS, tenant=tenant, json=onence_body(server, **extra))
    assert r.status_code == 201, r.text
    return r.json()


async def make_device(api, device_id: str, tenant: str = "acme") -> None:
    r = await api.post("/api/v1/customer/devices", tenant=tenant, json={"device_id": device_id})
    assert r.status_code == 201, r.text


async def set_tier(api, tenant: str, tier: str) -> None:
    async with api.services.db.begin() as conn:
        await conn.execute(tenants.update().where(tenants.c.tenant_id == tenant).values(account_tier=tier))


# ---- integrations ------------------------------------------------------------------------------
async def test_integration_crud_masks_secrets_and_allows_one_per_carrier(carrier_api):
    api = carrier_api
    created = await make_integration(api, api_key="client-id-0000-7788", sync_interval_minutes=30)
    assert created["api_key_masked"] == "***7788"
    assert created["secrets_set"] == ["api_key", "api_secret"]
    assert created["sync_interval_minutes"] == 30 and created["enabled"] and created["linked_devices"] == 0
    assert not {"api_key", "api_secret", "secrets", "tenant_id"} & set(created)
    async with api.services.db.connect() as conn:
        stored = (await conn.execute(sa.select(carrier_integrations.c.secrets))).scalar_one()
    assert "client-id-0000-7788" not in stored and DEMO_CLIENT_SECRET not in stored  # encrypted at rest

    dup = await api.post(INTEGRATIONS, json=onence_body())
    assert dup.status_code == 409 and "one per carrier" in dup.json()["detail"]

    iid = created["id"]
    r = await api.request("PUT", f"{INTEGRATIONS}/{iid}", json={"sync_interval_minutes": 120,
                                                                 "api_key": created["api_key_masked"]})
    assert r.status_code == 200, r.text
    assert r.json()["sync_interval_minutes"] == 120 and r.json()["api_key_masked"] == "***7788"  # masked = kept
    r = await api.request("PUT", f"{INTEGRATIONS}/{iid}", json={"api_key": "another-client-id-9911", "enabled": False})
    assert r.json()["api_key_masked"] == "***9911" and r.json()["enabled"] is False
    listed = (await api.get(INTEGRATIONS)).json()
    assert listed["total"] == 1 and listed["integrations"][0]["id"] == iid
    assert (await api.get(INTEGRATIONS, params={"enabled": True})).json()["total"] == 0

    async with api.services.db.connect() as conn:
        audit = (await conn.execute(sa.select(carrier_audit_log).order_by(carrier_audit_log.c.id))).all()
    assert [a.action for a in audit] == ["integration.create", "integration.update", "integration.update"]
    assert audit[1].changes == {"sync_interval_minutes": {"from": 30, "to": 120}}
    assert audit[2].changes == {"enabled": {"from": True, "to": False}, "api_key": "changed"}

    assert (await api.delete(f"{INTEGRATIONS}/{iid}")).json() == {"deleted": True, "id": iid}
    assert (await api.get(f"{INTEGRATIONS}/{iid}")).status_code == 404


@pytest.mark.parametrize("body, where", [
    ({"sync_interval_minutes": 4}, "sync_interval_minutes"),
    ({"sync_interval_minutes": 1441}, "sync_interval_minutes"),
    ({"api_base_url": "ftp://carrier.example"}, "api_base_url"),
    ({"config": {"password": "x"}}, "config"),
])
async def test_integration_validation_is_422(carrier_api, body, where):
    r = await carrier_api.post(INTEGRATIONS, json=onence_body() | body)
    assert r.status_code == 422 and where in r.json()["detail"]


async def test_unknown_fields_are_ignored(carrier_api):
    """As in the documented system: a client sending a superset of the body still works."""
    created = await make_integration(carrier_api, surprise=1)
    assert "surprise" not in created and created["display_name"] == "1NCE fleet"


async def test_unknown_carrier_is_400_and_carrier_cannot_change(carrier_api):
    r = await carrier_api.post(INTEGRATIONS, json=onence_body() | {"carrier_name": "hologram"})
    assert r.status_code == 400 and "Unsupported carrier provider" in r.json()["detail"]
    iid = (await make_integration(carrier_api))["id"]
    r = await carrier_api.request("PUT", f"{INTEGRATIONS}/{iid}", json={"carrier_name": "thingspace"})
    assert r.status_code == 422 and "carrier_name" in r.json()["detail"]
    r = await carrier_api.request("PUT", f"{INTEGRATIONS}/{iid}", json={"sync_interval_minutes": None})
    assert r.status_code == 422
    r = await carrier_api.request("PUT", f"{INTEGRATIONS}/{iid}", json={})
    assert r.status_code == 422 and "nothing to update" in r.json()["detail"]


async def test_roles_permissions_and_tier_gate(carrier_api):
    api = carrier_api
    await make_device(api, "d1")
    iid = (await make_integration(api))["id"]
    assert (await api.client.get(INTEGRATIONS)).status_code == 401
    assert (await api.get(INTEGRATIONS, role="customer_viewer")).status_code == 200
    assert (await api.get(f"{INTEGRATIONS}/{iid}", role="customer_viewer")).status_code == 200
    writes = [("POST", INTEGRATIONS, onence_body()), ("PUT", f"{INTEGRATIONS}/{iid}", {"enabled": False}),
              ("DELETE", f"{INTEGRATIONS}/{iid}", None),
              ("POST", line("d1", "actions/suspend"), None),
              ("POST", line("d1", "link"), {"carrier_integration_id": iid, "carrier_device_id": SIM1}),
              ("POST", line("d1", "provision"), {"carrier_integration_id": iid, "iccid": SIM1})]
    for method, url, body in writes:
        r = await api.request(method, url, role="customer_viewer", json=body)
        assert r.status_code == 403 and "missing permission carrier." in r.json()["detail"], (method, url)
    r = await api.get(INTEGRATIONS, tenant=None, role="operator_admin")
    assert r.status_code == 403  # customer routes need a tenant user

    await set_tier(api, "acme", "free")
    for method, url, body in [("GET", INTEGRATIONS, None), ("GET", line("d1", "status"), None), *writes]:
        r = await api.request(method, url, json=body)
        assert r.status_code == 403, (method, url)
        assert "carrier_self_service" in r.json()["detail"] and "growth" in r.json()["detail"]
    await set_tier(api, "acme", "scale")
    assert (await api.get(INTEGRATIONS)).status_code == 200


async def test_other_tenants_integrations_and_devices_are_404(carrier_api):
    api = carrier_api
    iid = (await make_integration(api))["id"]
    await make_device(api, "g1", tenant="globex")
    await make_device(api, "a1")
    for method, url, body in [("GET", f"{INTEGRATIONS}/{iid}", None), ("PUT", f"{INTEGRATIONS}/{iid}", {"enabled": False}),
                              ("DELETE", f"{INTEGRATIONS}/{iid}", None), ("GET", f"{INTEGRATIONS}/{iid}/plans", None),
                              ("POST", line("g1", "link"), {"carrier_integration_id": iid, "carrier_device_id": SIM1}),
                              ("POST", line("g1", "provision"), {"carrier_integration_id": iid, "iccid": SIM1}),
                              ("GET", line("a1", "status"), None), ("POST", line("a1", "actions/suspend"), None)]:
        r = await api.request(method, url, tenant="globex", json=body)
        assert r.status_code == 404, (method, url, r.text)
    assert (await api.get(INTEGRATIONS, tenant="globex")).json()["total"] == 0
    assert (await api.get(f"{INTEGRATIONS}/{iid}")).status_code == 200  # untouched


async def test_line_validation(carrier_api):
    api = carrier_api
    await make_device(api, "d1")
    iid = (await make_integration(api))["id"]
    for iccid in ("12345678901234", "1" * 23, "89882806660000000ab"):
        r = await api.post(line("d1", "provision"), json={"carrier_integration_id": iid, "iccid": iccid})
        assert r.status_code == 422 and "ICCID" in r.json()["detail"], iccid
    r = await api.post(line("d1", "link"), json={"carrier_integration_id": iid, "carrier_device_id": "  "})
    assert r.status_code == 422
    # an explicit null plan_id crashed validation itself (a 500) before the ICCID was even looked at
    r = await api.post(line("d1", "provision"), json={"carrier_integration_id": iid, "iccid": "", "plan_id": None})
    assert r.status_code == 422 and r.json()["detail"].startswith("iccid:"), r.text
    r = await api.post(line("d1", "provision"), json={"carrier_integration_id": iid, "iccid": SIM1, "plan_id": ""})
    assert r.status_code == 422 and r.json()["detail"].startswith("plan_id:"), r.text
    r = await api.post(line("d1", "actions/explode"))
    assert r.status_code == 422 and "activate, suspend, restore, deactivate, reboot" in r.json()["detail"]
    r = await api.get(line("d1", "status"))
    assert r.status_code == 404 and "not linked" in r.json()["detail"]
    r = await api.get(line("nope", "status"))
    assert r.status_code == 404 and "device nope not found" in r.json()["detail"]
    r = await api.post(line("nope", "link"), json={"carrier_integration_id": iid, "carrier_device_id": SIM1})
    assert r.status_code == 404
    r = await api.post(line("d1", "link"), json={"carrier_integration_id": 999, "carrier_device_id": SIM1})
    assert r.status_code == 404 and "integration 999" in r.json()["detail"]


# ---- a line on a live carrier -------------------------------------------------------------------
async def test_link_status_usage_and_actions_on_1nce(carrier_api, onence):
    api = carrier_api
    await make_device(api, "pump-1")
    iid = (await make_integration(api, onence))["id"]
    r = await api.post(line("pump-1", "link"), json={"carrier_integration_id": iid, "carrier_device_id": SIM1})
    assert r.status_code == 200, r.text
    assert r.json()["sim_status"] == "active" and r.json()["iccid"] == SIM1

    status = (await api.get(line("pump-1", "status"), role="customer_viewer")).json()
    assert status["carrier_name"] == "1nce" and status["network_status"] == "ONLINE"
    assert status["data_used_pct"] is None  # not synced yet

    usage = (await api.get(line("pump-1", "usage"), params={"refresh": True})).json()
    assert usage["data_used_bytes"] > 0 and usage["data_limit_bytes"] == 500_000_000
    assert usage["data_used_pct"] == round(100 * usage["data_used_bytes"] / 500_000_000, 2)
    assert usage["usage_alert_threshold_pct"] == 80.0 and usage["over_usage_threshold"] is False
    assert [h["data_used_bytes"] for h in usage["history"]] == [usage["data_used_bytes"]]
    await api.get(line("pump-1", "usage"), params={"refresh": True})
    assert len((await api.get(line("pump-1", "usage"))).json()["history"]) == 2

    r = await api.post(line("pump-1", "actions/suspend"))
    assert r.status_code == 200 and r.json()["state"] == "succeeded" and r.json()["sim_status"] == "suspended"
    assert onence.sim.sims[SIM1].status == "Disabled"
    status = (await api.get(line("pump-1", "status"), params={"refresh": True})).json()
    assert status["sim_status"] == "suspended"
    assert [q["action"] for q in status["recent_requests"]] == ["suspend"] and status["pending_requests"] == []
    r = await api.post(line("pump-1", "actions/activate"))
    assert r.status_code == 200 and r.json()["sim_status"] == "active"
    r = await api.post(line("pump-1", "actions/reboot"))
    assert r.status_code == 200 and r.json()["state"] == "succeeded"

    r = await api.get(line("pump-1", "diagnostics"))
    assert r.status_code == 501 and "1nce does not support diagnostics" in r.json()["detail"]
    r = await api.get(f"{INTEGRATIONS}/{iid}/plans")
    assert r.status_code == 200 and r.json() == {"carrier_name": "1nce", "plans": []}


async def test_provision_claims_the_sim_and_links_it(carrier_api, onence):
    api = carrier_api
    await make_device(api, "spare")
    iid = (await make_integration(api, onence))["id"]
    assert onence.sim.sims[SIM4].status == "Disabled"
    r = await api.post(line("spare", "provision"), json={"carrier_integration_id": iid, "iccid": SIM4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provisioned"] is True and body["iccid"] == SIM4 and body["carrier_device_id"] == SIM4
    assert body["claim_result"]["sim_status"] == "active" and onence.sim.sims[SIM4].status == "Enabled"
    assert (await api.get(line("spare", "status"))).json()["carrier_device_id"] == SIM4
    # the same SIM cannot belong to two devices
    await make_device(api, "other")
    r = await api.post(line("other", "link"), json={"carrier_integration_id": iid, "carrier_device_id": SIM4})
    assert r.status_code == 409 and "already linked to device spare" in r.json()["detail"]
    r = await api.post(line("other", "provision"), json={"carrier_integration_id": iid, "iccid": "8988280666000000999"})
    assert r.status_code == 404 and "1nce refused the request" in r.json()["detail"]


async def test_carrier_refusals_and_outage_are_4xx_5xx_with_detail(carrier_api, onence):
    api = carrier_api
    await make_device(api, "d1")
    iid = (await make_integration(api, onence))["id"]
    r = await api.post(line("d1", "link"), json={"carrier_integration_id": iid, "carrier_device_id": "8988280666000000777"})
    assert r.status_code == 404 and "1nce" in r.json()["detail"]
    assert (await api.post(line("d1", "link"), json={"carrier_integration_id": iid,
                                                     "carrier_device_id": SIM2})).status_code == 200
    onence.stop()
    r = await api.post(line("d1", "actions/suspend"))
    assert r.status_code == 503 and "1nce is unavailable" in r.json()["detail"]
    r = await api.get(line("d1", "status"), params={"refresh": True})
    assert r.status_code == 503
    assert (await api.get(line("d1", "status"))).json()["sim_status"] == "active"  # stored data still served
    onence.start()
    r = await api.request("PUT", f"{INTEGRATIONS}/{iid}", json={"api_secret": "wrong-secret"})
    assert r.status_code == 200
    r = await api.post(line("d1", "actions/suspend"))
    assert r.status_code == 502 and "refused the integration's credentials" in r.json()["detail"]
    await api.request("PUT", f"{INTEGRATIONS}/{iid}", json={"enabled": False})
    r = await api.post(line("d1", "actions/suspend"))
    assert r.status_code == 409 and "disabled" in r.json()["detail"]
    async with api.services.db.connect() as conn:
        states = [(q.action, q.state) for q in await conn.execute(sa.select(carrier_requests).order_by(carrier_requests.c.id))]
    assert states == [("suspend", "failed"), ("suspend", "failed")]  # refusals are recorded too


async def test_deleting_an_integration_unlinks_its_devices(carrier_api, onence):
    api = carrier_api
    await make_device(api, "d1")
    iid = (await make_integration(api, onence))["id"]
    await api.post(line("d1", "link"), json={"carrier_integration_id": iid, "carrier_device_id": SIM1})
    await api.get(line("d1", "usage"), params={"refresh": True})
    assert (await api.get(f"{INTEGRATIONS}/{iid}")).json()["linked_devices"] == 1
    assert (await api.delete(f"{INTEGRATIONS}/{iid}")).json() == {"deleted": True, "id": iid}
    assert (await api.get(line("d1", "status"))).status_code == 404
    entries = await store.audit_entries(api.services.db, "acme")
    assert entries[0]["action"] == "integration.delete" and entries[0]["changes"]["unlinked_devices"] == ["d1"]
    assert (await api.get("/api/v1/customer/devices/d1")).status_code == 200  # the device itself stays


async def test_unlink_forgets_the_line(carrier_api, onence):
    api = carrier_api
    await make_device(api, "d1")
    iid = (await make_integration(api, onence))["id"]
    await api.post(line("d1", "link"), json={"carrier_integration_id": iid, "carrier_device_id": SIM1})
    assert (await api.delete(line("d1", "link"), role="customer_viewer")).status_code == 403
    assert (await api.delete(line("d1", "link"))).status_code == 204
    assert (await api.get(line("d1", "status"))).status_code == 404
    assert (await api.delete(line("d1", "link"))).status_code == 404


async def test_callbacks_are_recorded_and_refused_without_a_known_integration(carrier_api):
    api = carrier_api
    iid = (await make_integration(api))["id"]
    r = await api.client.post("/api/v1/carrier/callbacks/4242", json={"requestId": "x"})
    assert r.status_code == 404
    r = await api.client.post(f"/api/v1/carrier/callbacks/{iid}", content=b"{not json")
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]
    r = await api.client.post(f"/api/v1/carrier/callbacks/{iid}", json={"username": "u", "password": "p"})
    assert r.status_code == 404 and "takes no callbacks" in r.json()["detail"]  # 1NCE has none
    async with api.services.db.connect() as conn:
        rows = (await conn.execute(sa.select(carrier_callbacks).order_by(carrier_callbacks.c.id))).all()
    assert [(c.integration_id, c.outcome) for c in rows] == [(4242, "invalid"), (iid, "invalid"), (iid, "invalid")]
    assert rows[2].body == {"username": "***", "password": "***"} and rows[2].tenant_id == "acme"
