"""Device groups: static membership, dynamic (query) groups, counts, and the device list's group filter."""
import pytest

from tests.serve.resources import DEVICES, make_devices

GROUPS = "/api/v1/customer/device-groups"


async def make_group(api, name, tenant="acme", **fields) -> dict:
    r = await api.post(GROUPS, tenant=tenant, json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def member_ids(api, group_id, **params) -> list[str]:
    r = await api.get(f"{GROUPS}/{group_id}/devices", params=params)
    assert r.status_code == 200, r.text
    return [d["device_id"] for d in r.json()["devices"]]


async def test_create_static_group_and_manage_members_idempotently(api):
    await make_devices(api, "d1", "d2", "d3")
    g = await make_group(api, "boilers", description="all boilers")
    assert g["kind"] == "static" and g["query"] is None and g["device_count"] == 0
    assert g["description"] == "all boilers" and g["group_id"]
    for d in ("d3", "d1", "d1"):
        assert (await api.request("PUT", f"{GROUPS}/{g['group_id']}/devices/{d}")).json()["action"] == "added"
    assert await member_ids(api, g["group_id"]) == ["d1", "d3"]
    for _ in range(2):
        assert (await api.delete(f"{GROUPS}/{g['group_id']}/devices/d1")).json()["action"] == "removed"
    assert (await api.delete(f"{GROUPS}/{g['group_id']}/devices/d2")).json()["action"] == "removed"  # never a member
    assert await member_ids(api, g["group_id"]) == ["d3"]


async def test_members_are_paginated_by_device_id(api):
    await make_devices(api, *[f"d{i}" for i in range(7)])
    g = await make_group(api, "all")
    for i in (6, 2, 4, 0, 5):
        await api.request("PUT", f"{GROUPS}/{g['group_id']}/devices/d{i}")
    r = (await api.get(f"{GROUPS}/{g['group_id']}/devices", params={"limit": 2, "offset": 2})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d4", "d5"]
    assert r["total"] == 5 and r["limit"] == 2 and r["offset"] == 2
    assert (await api.get(f"{GROUPS}/{g['group_id']}/devices", params={"limit": 0})).status_code == 422


async def test_dynamic_group_members_follow_the_registry_and_tags(api):
    await make_devices(api, "d1", "d2", "d3", site_id="plant-a")
    await make_devices(api, "d4", site_id="plant-b")
    for d in ("d1", "d2", "d4"):
        await api.post(f"{DEVICES}/{d}/tags/pump")
    await api.post(f"{DEVICES}/d2/tags/critical")
    g = await make_group(api, "plant-a pumps", query={"site_id": "plant-a", "tags": ["pump"], "status": "ACTIVE"})
    assert g["kind"] == "dynamic" and g["device_count"] == 2
    assert g["query"] == {"site_id": "plant-a", "tags": ["pump"], "status": "ACTIVE"}
    assert await member_ids(api, g["group_id"]) == ["d1", "d2"]

    await api.post(f"{DEVICES}/d3/tags/pump")  # joins
    await api.patch(f"{DEVICES}/d1", json={"status": "SUSPENDED"})  # leaves
    assert await member_ids(api, g["group_id"]) == ["d2", "d3"]

    r = await api.patch(f"{GROUPS}/{g['group_id']}", json={"query": {"tags": ["pump", "critical", "pump"]}})
    assert r.status_code == 200 and r.json()["device_count"] == 1
    assert r.json()["query"] == {"tags": ["critical", "pump"]}
    assert await member_ids(api, g["group_id"]) == ["d2"]


async def test_dynamic_group_membership_cannot_be_edited(api):
    await make_devices(api, "d1")
    g = await make_group(api, "active", query={"status": "ACTIVE"})
    for method in ("PUT", "DELETE"):
        r = await api.request(method, f"{GROUPS}/{g['group_id']}/devices/d1")
        assert r.status_code == 409 and "dynamic" in r.json()["detail"]


async def test_a_group_keeps_its_kind(api):
    static = await make_group(api, "s")
    dynamic = await make_group(api, "d", query={"status": "ACTIVE"})
    r = await api.patch(f"{GROUPS}/{static['group_id']}", json={"query": {"status": "ACTIVE"}})
    assert r.status_code == 409
    assert (await api.patch(f"{GROUPS}/{dynamic['group_id']}", json={"query": None})).status_code == 409
    r = await api.patch(f"{GROUPS}/{static['group_id']}", json={"query": None, "description": "x"})
    assert r.status_code == 200 and r.json()["kind"] == "static" and r.json()["description"] == "x"


async def test_list_sorts_by_name_counts_members_and_paginates(api):
    await make_devices(api, "d1", "d2", "d3")
    await api.request("PUT", f"{DEVICES}/d3/tags", json={"tags": ["roof"]})
    b = await make_group(api, "beta")
    for d in ("d1", "d2"):
        await api.request("PUT", f"{GROUPS}/{b['group_id']}/devices/{d}")
    await make_group(api, "gamma", query={"tags": ["roof"]})
    await make_group(api, "alpha")
    await make_group(api, "other", tenant="globex")
    r = (await api.get(GROUPS)).json()
    assert [(g["name"], g["kind"], g["device_count"]) for g in r["groups"]] == [
        ("alpha", "static", 0), ("beta", "static", 2), ("gamma", "dynamic", 1)]
    assert r["total"] == 3
    r = (await api.get(GROUPS, params={"limit": 1, "offset": 2})).json()
    assert [g["name"] for g in r["groups"]] == ["gamma"] and r["total"] == 3
    assert (await api.get(GROUPS, role="customer_viewer")).status_code == 200


async def test_names_are_unique_per_tenant(api):
    g = await make_group(api, "boilers")
    r = await api.post(GROUPS, json={"name": "boilers"})
    assert r.status_code == 409 and "boilers" in r.json()["detail"]
    await make_group(api, "boilers", tenant="globex")  # another tenant may use it
    other = await make_group(api, "chillers")
    r = await api.patch(f"{GROUPS}/{other['group_id']}", json={"name": "boilers"})
    assert r.status_code == 409
    r = await api.patch(f"{GROUPS}/{g['group_id']}", json={"name": "boilers"})  # its own name
    assert r.status_code == 200


@pytest.mark.parametrize("body", [
    {}, {"name": ""}, {"name": "x" * 201}, {"name": "x", "query": {}},
    {"name": "x", "query": {"status": "ONLINE"}}, {"name": "x", "query": {"tags": ["bad tag"]}},
    {"name": "x", "query": {"site_id": "has space"}}, {"name": "x", "query": {"model": "x"}},
    {"name": "x", "query": {"tags": []}},
])
async def test_invalid_group_bodies_are_422(api, body):
    r = await api.post(GROUPS, json=body)
    assert r.status_code == 422 and r.json()["detail"]


async def test_patch_needs_a_change_and_name_cannot_be_null(api):
    g = await make_group(api, "g")
    assert (await api.patch(f"{GROUPS}/{g['group_id']}", json={})).status_code == 422
    assert (await api.patch(f"{GROUPS}/{g['group_id']}", json={"name": None})).status_code == 422


async def test_delete_removes_group_and_memberships_and_device_delete_leaves_groups(api):
    await make_devices(api, "d1", "d2")
    g = await make_group(api, "g")
    for d in ("d1", "d2"):
        await api.request("PUT", f"{GROUPS}/{g['group_id']}/devices/{d}")
    assert (await api.delete(f"{DEVICES}/d1")).status_code == 200
    assert await member_ids(api, g["group_id"]) == ["d2"]
    assert (await api.get(GROUPS)).json()["groups"][0]["device_count"] == 1
    assert (await api.delete(f"{GROUPS}/{g['group_id']}")).json() == {"group_id": g["group_id"], "deleted": True}
    assert (await api.delete(f"{GROUPS}/{g['group_id']}")).status_code == 404
    assert (await api.get(f"{GROUPS}/{g['group_id']}/devices")).status_code == 404
    assert (await api.get(GROUPS)).json()["total"] == 0
    assert (await api.get(f"{DEVICES}/d2")).status_code == 200


async def test_unknown_group_or_device_is_404(api):
    await make_devices(api, "d1")
    g = await make_group(api, "g")
    for method in ("PUT", "DELETE"):
        r = await api.request(method, f"{GROUPS}/nope/devices/d1")
        assert r.status_code == 404 and "group" in r.json()["detail"]
        r = await api.request(method, f"{GROUPS}/{g['group_id']}/devices/nope")
        assert r.status_code == 404 and "device" in r.json()["detail"]
    assert (await api.patch(f"{GROUPS}/nope", json={"name": "x"})).status_code == 404


async def test_device_list_filters_by_static_or_dynamic_group(api):
    await make_devices(api, "d1", "d2", "d3", "d4")
    await api.patch(f"{DEVICES}/d4", json={"status": "INACTIVE"})
    static = await make_group(api, "s")
    for d in ("d1", "d3", "d4"):
        await api.request("PUT", f"{GROUPS}/{static['group_id']}/devices/{d}")
    dynamic = await make_group(api, "inactive", query={"status": "INACTIVE"})

    async def ids(**params):
        r = await api.get(DEVICES, params=params)
        assert r.status_code == 200, r.text
        return [d["device_id"] for d in r.json()["devices"]], r.json()["total"]

    assert await ids(group_id=static["group_id"]) == (["d1", "d3", "d4"], 3)
    assert await ids(group_id=static["group_id"], status="ACTIVE", sort="-device_id") == (["d3", "d1"], 2)
    assert await ids(group_id=dynamic["group_id"]) == (["d4"], 1)
    r = await api.get(DEVICES, params={"group_id": "nope"})
    assert r.status_code == 404 and "group" in r.json()["detail"]


@pytest.mark.parametrize("method,path,body", [
    ("PATCH", "", {"name": "mine"}), ("DELETE", "", None), ("GET", "/devices", None),
    ("PUT", "/devices/g1", None), ("DELETE", "/devices/g1", None),
])
async def test_another_tenants_group_is_404(api, method, path, body):
    await make_devices(api, "a1")
    await make_devices(api, "g1", tenant="globex")
    g = await make_group(api, "acme group")
    await api.request("PUT", f"{GROUPS}/{g['group_id']}/devices/a1")
    r = await api.request(method, f"{GROUPS}/{g['group_id']}{path}", tenant="globex", json=body)
    assert r.status_code == 404, (method, path, r.text)
    assert (await api.get(GROUPS, tenant="globex")).json()["groups"] == []
    r = await api.get(DEVICES, tenant="globex", params={"group_id": g["group_id"]})
    assert r.status_code == 404
    assert await member_ids(api, g["group_id"]) == ["a1"]
    assert (await api.get(GROUPS)).json()["groups"][0]["name"] == "acme group"


async def test_a_group_cannot_take_another_tenants_device(api):
    await make_devices(api, "a1")
    g = await make_group(api, "globex group", tenant="globex")
    r = await api.request("PUT", f"{GROUPS}/{g['group_id']}/devices/a1", tenant="globex")
    assert r.status_code == 404 and "device" in r.json()["detail"]


@pytest.mark.parametrize("method,path,body", [
    ("POST", "", {"name": "x"}), ("PATCH", "/{gid}", {"name": "y"}), ("DELETE", "/{gid}", None),
    ("PUT", "/{gid}/devices/d1", None), ("DELETE", "/{gid}/devices/d1", None),
])
async def test_viewers_cannot_write_groups(api, method, path, body):
    await make_devices(api, "d1")
    g = await make_group(api, "g")
    r = await api.request(method, GROUPS + path.format(gid=g["group_id"]), role="customer_viewer", json=body)
    assert r.status_code == 403 and "devices.groups.write" in r.json()["detail"]
    assert (await api.get(f"{GROUPS}/{g['group_id']}/devices", role="customer_viewer")).status_code == 200
