"""Device owners over HTTP: replace semantics and transfers, validation (422), permissions (403),
other tenants' devices (404), and the Telemetron outbox rows an owner change writes."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables import outbox

DEVICES = "/api/v1/customer/devices"
INTEGRATION = "/api/v1/customer/integrations/telemetron"


def owners_url(device_id: str) -> str:
    return f"{DEVICES}/{device_id}/owners"


async def make_device(api, device_id: str = "d1", tenant: str = "acme") -> None:
    r = await api.post(DEVICES, tenant=tenant, json={"device_id": device_id, "model": "BX-2"})
    assert r.status_code == 201, r.text


async def put_owners(api, device_id: str, *owners: dict, tenant: str = "acme", role: str = "customer_admin"):
    return await api.request("PUT", owners_url(device_id), tenant=tenant, role=role, json={"owners": list(owners)})


async def outbox_ops(api, tenant: str = "acme") -> list[tuple[str, str]]:
    async with api.services.db.connect() as conn:
        rows = await conn.execute(sa.select(outbox.c.aggregate_id, outbox.c.operation)
                                  .where(outbox.c.tenant_id == tenant).order_by(outbox.c.id))
        return [tuple(r) for r in rows]


JANE = {"email": "Jane@Example.com ", "name": "Jane Doe", "phone": "+1 555 0100", "address": "1 Main St"}
JOE = {"email": "joe@example.com", "name": "Joe"}


async def test_owners_start_empty_and_put_replaces_the_set(api):
    await make_device(api)
    empty = await api.get(owners_url("d1"))
    assert empty.status_code == 200 and empty.json() == {"device_id": "d1", "owners": [], "total": 0}

    r = await put_owners(api, "d1", JANE, JOE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [o["email"] for o in body["owners"]] == ["jane@example.com", "joe@example.com"] and body["total"] == 2
    jane = body["owners"][0]
    assert jane["name"] == "Jane Doe" and jane["phone"] == "+1 555 0100" and jane["customer_id"] and jane["since"]
    assert (await api.get(owners_url("d1"))).json() == body

    transfer = (await put_owners(api, "d1", {"email": "ann@example.com", "name": "Ann"})).json()
    assert [o["email"] for o in transfer["owners"]] == ["ann@example.com"]
    assert (await put_owners(api, "d1")).json()["owners"] == []


async def test_a_customer_is_shared_by_email_and_keeps_what_a_put_leaves_out(api):
    await make_device(api, "d1")
    await make_device(api, "d2")
    first = (await put_owners(api, "d1", JANE)).json()["owners"][0]
    second = (await put_owners(api, "d2", {"email": "jane@example.com", "name": "Jane D."})).json()["owners"][0]
    assert second["customer_id"] == first["customer_id"]
    assert second["name"] == "Jane D." and second["phone"] == "+1 555 0100" and second["address"] == "1 Main St"
    cleared = (await put_owners(api, "d2", {"email": "jane@example.com", "name": "Jane D.", "phone": None})).json()
    assert cleared["owners"][0]["phone"] is None


async def test_a_kept_owner_keeps_its_since(api):
    await make_device(api)
    since = (await put_owners(api, "d1", JOE)).json()["owners"][0]["since"]
    again = (await put_owners(api, "d1", JANE, JOE)).json()["owners"]
    assert [o["email"] for o in again] == ["jane@example.com", "joe@example.com"] and again[1]["since"] == since


INVALID = [
    {"owners": [{"email": "not-an-email", "name": "X"}]},
    {"owners": [{"email": "a@example.com"}]},
    {"owners": [{"email": "a@example.com", "name": ""}]},
    {"owners": [{"email": "a@example.com", "name": "x" * 201}]},
    {"owners": [{"email": "a@example.com", "name": "A", "phone": "call me"}]},
    {"owners": [{"email": "a@example.com", "name": "A", "address": "x" * 501}]},
    {"owners": [{"email": "a@example.com", "name": "A", "role": "boss"}]},
    {"owners": [{"email": "a@example.com", "name": "A"}, {"email": "A@example.com", "name": "B"}]},
    {"owners": [{"email": f"u{i}@example.com", "name": "U"} for i in range(21)]},
    {"owners": "a@example.com"},
    {},
]


async def test_invalid_owner_bodies_are_422(api):
    await make_device(api)
    for body in INVALID:  # one app for all cases: the fixture is the slow part
        r = await api.request("PUT", owners_url("d1"), json=body)
        assert r.status_code == 422 and r.json()["detail"], body
    assert (await api.get(owners_url("d1"))).json()["total"] == 0


async def test_twenty_owners_are_allowed(api):
    await make_device(api)
    r = await put_owners(api, "d1", *({"email": f"u{i}@example.com", "name": "U"} for i in range(20)))
    assert r.status_code == 200 and r.json()["total"] == 20


async def test_unknown_and_other_tenants_devices_are_404(api):
    await make_device(api, "g1", tenant="globex")
    await put_owners(api, "g1", JOE, tenant="globex")
    assert (await api.get(owners_url("g1"))).status_code == 404
    assert (await put_owners(api, "g1", JANE)).status_code == 404
    assert (await api.get(owners_url("nope"))).status_code == 404
    assert (await put_owners(api, "nope", JANE)).status_code == 404
    assert [o["email"] for o in (await api.get(owners_url("g1"), tenant="globex")).json()["owners"]] == ["joe@example.com"]


async def test_viewers_read_but_cannot_change_owners(api):
    await make_device(api)
    await put_owners(api, "d1", JOE)
    assert (await api.get(owners_url("d1"), role="customer_viewer")).json()["total"] == 1
    assert (await put_owners(api, "d1", JANE, role="customer_viewer")).status_code == 403
    assert (await put_owners(api, "d1", JANE, role="operator")).status_code == 403
    assert (await api.client.get(owners_url("d1"))).status_code == 401


async def test_owner_changes_queue_telemetron_rows_only_with_an_integration(api):
    await make_device(api)
    await put_owners(api, "d1", JOE)
    assert await outbox_ops(api) == []
    r = await api.request("PUT", INTEGRATION, json={"base_url": "http://127.0.0.1:9/api/ext-v1",
                                                    "api_key": "tmk_test_0123456789"})
    assert r.status_code == 201
    assert await outbox_ops(api) == [("d1", "upsert_customer"), ("d1", "upsert_device"), ("d1", "assign")]  # snapshot
    await put_owners(api, "d1", JANE)
    assert (await outbox_ops(api))[3:] == [("d1", "upsert_customer"), ("d1", "upsert_device"), ("d1", "unassign"),
                                           ("d1", "assign")]
    assert (await api.request("PATCH", f"{DEVICES}/d1", json={"name": "Boiler"})).status_code == 200
    assert (await outbox_ops(api))[-1] == ("d1", "upsert_device")
    assert (await api.delete(f"{DEVICES}/d1")).status_code == 200
    assert (await outbox_ops(api))[-1] == ("d1", "unassign")
