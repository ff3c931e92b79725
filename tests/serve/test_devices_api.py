"""Device registry and token routes through the real app on a LocalRuntime."""
import jwt
import pytest

from pulse.services.identity import issue_token
from pulse.storage import tokens
from tests.serve.helpers import telemetry

BASE = "/api/v1/customer/devices"
ALERTS = "/api/v1/customer/alerts"


async def test_create_returns_device_and_its_first_token_once(api):
    r = await api.post(BASE, json={"device_id": "dev-001", "site_id": "site-1", "name": "Pump"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["device_id"] == "dev-001" and body["status"] == "ACTIVE" and body["site_id"] == "site-1"
    assert len(body["token"]) >= 40 and body["token_id"]
    tokens = (await api.get(f"{BASE}/dev-001/tokens")).json()["tokens"]
    assert [t["token_id"] for t in tokens] == [body["token_id"]]
    assert "token" not in tokens[0] and "token_hash" not in tokens[0]


async def test_duplicate_device_is_409_and_bad_ids_are_422(api):
    assert (await api.post(BASE, json={"device_id": "d1"})).status_code == 201
    r = await api.post(BASE, json={"device_id": "d1"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    for bad in ({"device_id": "has space"}, {"device_id": ""}, {}):
        r = await api.post(BASE, json=bad)
        assert r.status_code == 422 and r.json()["detail"]
    # Unknown fields are ignored, as in the documented system (its clients send plan_id, imei, ...).
    r = await api.post(BASE, json={"device_id": "d2", "bogus": 1})
    assert r.status_code == 201 and "bogus" not in r.json()


async def test_list_paginates_filters_and_sorts_stably(api):
    for i in range(7):
        await api.post(BASE, json={"device_id": f"d{i}", "site_id": "a" if i % 2 else "b", "name": f"n{i % 3}"})
    r = (await api.get(BASE, params={"limit": 3, "offset": 3})).json()
    assert r["total"] == 7 and r["limit"] == 3 and r["offset"] == 3
    assert [d["device_id"] for d in r["devices"]] == ["d3", "d4", "d5"]
    r = (await api.get(BASE, params={"site_id": "a"})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d1", "d3", "d5"]
    r = (await api.get(BASE, params={"sort": "-name", "limit": 3})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d2", "d5", "d1"]
    r = (await api.get(BASE, params={"search": "D6"})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d6"]
    assert (await api.get(BASE, params={"limit": 5000})).status_code == 422
    assert (await api.get(BASE, params={"sort": "password"})).status_code == 422


async def test_detail_patch_decommission_delete(api):
    await api.post(BASE, json={"device_id": "d1"})
    r = await api.patch(f"{BASE}/d1", json={"name": "Boiler", "metadata": {"floor": 2}})
    assert r.status_code == 200 and r.json()["name"] == "Boiler" and r.json()["metadata"] == {"floor": 2}
    detail = (await api.get(f"{BASE}/d1")).json()
    assert detail["name"] == "Boiler" and detail["presence"]["status"] == "OFFLINE"
    assert (await api.patch(f"{BASE}/d1", json={})).status_code == 422
    assert (await api.patch(f"{BASE}/d1", json={"status": "REVOKED"})).status_code == 422
    r = await api.patch(f"{BASE}/d1/decommission", json={})
    assert r.status_code == 200 and r.json()["status"] == "REVOKED" and r.json()["decommissioned_at"]
    assert (await api.delete(f"{BASE}/d1")).json() == {"device_id": "d1", "status": "deleted"}
    assert (await api.get(f"{BASE}/d1")).status_code == 404
    assert (await api.delete(f"{BASE}/d1")).status_code == 404


async def test_summary_counts_registry_status_and_connectivity(api):
    for i in range(3):
        await api.post(BASE, json={"device_id": f"d{i}"})
    await api.patch(f"{BASE}/d2/decommission", json={})
    s = (await api.get(f"{BASE}/summary")).json()
    assert s["total"] == 3 and s["by_status"] == {"ACTIVE": 2, "REVOKED": 1}
    assert s["connectivity"] == {"ONLINE": 0, "STALE": 0, "OFFLINE": 2}


async def test_rotate_revokes_old_tokens_and_revoke_works_once(api):
    first = (await api.post(BASE, json={"device_id": "d1"})).json()["token_id"]
    r = await api.post(f"{BASE}/d1/tokens/rotate")
    assert r.status_code == 201 and set(r.json()) == {"token", "token_id", "client_id", "password", "broker_url"}
    assert r.json()["password"] == r.json()["token"] and r.json()["client_id"] == "acme/d1"
    new = r.json()["token_id"]
    tokens = {t["token_id"]: t for t in (await api.get(f"{BASE}/d1/tokens")).json()["tokens"]}
    assert tokens[first]["active"] is False and tokens[new]["active"] is True
    assert (await api.delete(f"{BASE}/d1/tokens/{new}")).status_code == 204
    assert (await api.delete(f"{BASE}/d1/tokens/{new}")).status_code == 404


async def test_token_secret_verifies_against_the_store(api):
    secret = (await api.post(BASE, json={"device_id": "d1"})).json()["token"]
    db = api.services.db
    assert await tokens.verify(db, "acme", "d1", secret)
    assert not await tokens.verify(db, "acme", "d1", secret + "x")
    assert not await tokens.verify(db, "globex", "d1", secret)
    await api.patch(f"{BASE}/d1/decommission", json={})
    assert not await tokens.verify(db, "acme", "d1", secret)


@pytest.mark.parametrize("method,path,body", [
    ("GET", BASE, None), ("POST", BASE, {"device_id": "x"}), ("GET", f"{BASE}/summary", None),
    ("GET", f"{BASE}/d1", None), ("GET", f"{BASE}/d1/tokens", None),
])
async def test_requests_without_a_token_are_401(api, method, path, body):
    r = await api.client.request(method, path, json=body)
    assert r.status_code == 401 and r.json()["detail"]
    r = await api.client.request(method, path, json=body, headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401


async def test_expired_and_foreign_tokens_are_401(api):
    expired = issue_token(api.services.settings, "u", "acme", "customer_admin", ttl_s=-10)
    r = await api.client.get(BASE, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    forged = jwt.encode({"sub": "u", "tenant_id": "acme", "role": "customer_admin"}, "a-different-secret-of-a-proper-length-000", algorithm="HS256")
    assert (await api.client.get(BASE, headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_session_cookie_is_accepted(api):
    api.client.cookies.set("pulse_session", api.token())
    try:
        assert (await api.client.get(BASE)).status_code == 200
    finally:
        api.client.cookies.clear()


@pytest.mark.parametrize("method,path,body", [
    ("GET", "", None), ("PATCH", "", {"name": "x"}), ("PATCH", "/decommission", {}), ("DELETE", "", None),
    ("GET", "/tokens", None), ("POST", "/tokens/rotate", None), ("GET", "/telemetry/latest", None),
    ("GET", "/telemetry/history", None), ("GET", "/telemetry", None), ("GET", "/telemetry/metrics", None),
    ("GET", "/twin", None), ("PATCH", "/twin/desired", {"a": 1}), ("GET", "/twin/delta", None),
])
async def test_another_tenants_device_is_404(api, method, path, body):
    await api.post(BASE, json={"device_id": "d1"})
    r = await api.request(method, f"{BASE}/d1{path}", tenant="globex", json=body)
    assert r.status_code == 404, (method, path, r.text)
    assert (await api.get(f"{BASE}/d1")).status_code == 200  # still there for its owner


@pytest.mark.parametrize("method,path,body", [
    ("POST", BASE, {"device_id": "x"}), ("PATCH", f"{BASE}/d1", {"name": "x"}),
    ("PATCH", f"{BASE}/d1/decommission", {}), ("DELETE", f"{BASE}/d1", None),
    ("POST", f"{BASE}/d1/tokens/rotate", None), ("DELETE", f"{BASE}/d1/tokens/abc", None),
    ("PATCH", f"{BASE}/d1/twin/desired", {"a": 1}),
])
async def test_viewers_cannot_write(api, method, path, body):
    await api.post(BASE, json={"device_id": "d1"})
    r = await api.request(method, path, role="customer_viewer", json=body)
    assert r.status_code == 403 and "permission" in r.json()["detail"]
    assert (await api.get(BASE, role="customer_viewer")).status_code == 200


async def test_operator_tokens_cannot_use_customer_routes(api):
    r = await api.get(BASE, tenant=None, role="operator")
    assert r.status_code == 403


async def test_decommissioning_or_deleting_a_device_closes_its_alerts_saying_why_and_who(api):
    for d in ("d1", "d2", "d3"):
        await api.post(BASE, json={"device_id": d})
    await api.post("/api/v1/customer/alert-rules", json={"name": "hot", "metric": "temp", "operator": "GT",
                                                         "threshold": 30, "severity": "major"})
    for i, d in enumerate(("d1", "d2", "d3")):
        await telemetry(api, d, i, temp=99)
    assert (await api.patch(f"{BASE}/d1/decommission", json={"reason": "replaced"})).status_code == 200
    assert (await api.delete(f"{BASE}/d2")).json() == {"device_id": "d2", "status": "deleted"}
    alerts = {a["device_id"]: a for a in (await api.get(ALERTS, params={"status": "all"})).json()["alerts"]}
    assert {d: a["status"] for d, a in alerts.items()} == {"d1": "CLOSED", "d2": "CLOSED", "d3": "OPEN"}
    assert alerts["d1"]["closed_by"] == alerts["d2"]["closed_by"] == "customer_admin@acme"
    last = {d: (await api.get(f"{ALERTS}/{alerts[d]['alert_id']}")).json()["transitions"][-1] for d in ("d1", "d2")}
    assert last["d1"]["action"] == "DEVICE_DECOMMISSIONED" and last["d1"]["details"] == {"reason": "replaced"}
    assert last["d2"]["action"] == "DEVICE_DELETED"


async def test_patch_with_empty_strings_and_null_not_null_fields(api):
    """The fuzzer's PATCH (every text field empty, status null) reached the NOT NULL column: a 500."""
    assert (await api.post("/api/v1/customer/devices", json={"device_id": "d1", "name": "pump"})).status_code == 201
    r = await api.patch("/api/v1/customer/devices/d1", json={
        "name": "", "model": "", "manufacturer": "", "serial_number": "", "fw_version": "", "notes": "",
        "status": None})
    assert r.status_code == 422 and "status cannot be null" in r.json()["detail"], r.text
    r = await api.patch("/api/v1/customer/devices/d1", json={"metadata": None})
    assert r.status_code == 422 and "metadata cannot be null" in r.json()["detail"], r.text
    r = await api.patch("/api/v1/customer/devices/d1", json={"name": "", "model": "", "notes": ""})
    assert r.status_code == 200 and r.json()["name"] == "" and r.json()["status"] == "ACTIVE"
