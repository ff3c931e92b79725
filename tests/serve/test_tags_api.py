"""Device tags, the tenant tag list, and the device list's tag/template filters."""
import pytest

from tests.serve.resources import DEVICES, make_devices

TAGS = "/api/v1/customer/tags"


async def test_put_replaces_the_set_and_get_returns_it_sorted(api):
    await make_devices(api, "d1")
    assert (await api.get(f"{DEVICES}/d1/tags")).json() == {"tenant_id": "acme", "device_id": "d1", "tags": []}
    r = await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["roof", "floor:2", "roof", "A.b-c_d"]})
    assert r.status_code == 200 and r.json()["tags"] == ["A.b-c_d", "floor:2", "roof"]
    r = await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["roof", "zone/north"]})
    assert r.json()["tags"] == ["roof", "zone/north"]
    assert (await api.get(f"{DEVICES}/d1/tags")).json()["tags"] == ["roof", "zone/north"]
    r = await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": []})
    assert r.status_code == 200 and r.json()["tags"] == []


async def test_add_and_remove_are_idempotent(api):
    await make_devices(api, "d1")
    for _ in range(2):
        r = await api.post(f"{DEVICES}/d1/tags/roof")
        assert r.status_code == 200 and r.json() == {"tenant_id": "acme", "device_id": "d1", "tags": ["roof"], "tag": "roof"}
    await api.post(f"{DEVICES}/d1/tags/basement")
    for _ in range(2):
        assert (await api.delete(f"{DEVICES}/d1/tags/roof")).json()["tag"] == "roof"
    assert (await api.get(f"{DEVICES}/d1/tags")).json()["tags"] == ["basement"]


async def test_tags_may_contain_slashes_in_the_path(api):
    await make_devices(api, "d1")
    assert (await api.post(f"{DEVICES}/d1/tags/zone/north")).json()["tags"] == ["zone/north"]
    assert (await api.post(f"{DEVICES}/d1/tags/zone%2Fsouth")).json()["tags"] == ["zone/north", "zone/south"]
    assert (await api.delete(f"{DEVICES}/d1/tags/zone/north")).json()["tag"] == "zone/north"
    assert (await api.get(f"{DEVICES}/d1/tags")).json()["tags"] == ["zone/south"]


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "semi;colon", "ümlaut", "a,b"])
async def test_invalid_tags_are_422(api, bad):
    await make_devices(api, "d1")
    assert (await api.post(f"{DEVICES}/d1/tags/{bad}")).status_code == 422
    r = await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["ok", bad]})
    assert r.status_code == 422 and r.json()["detail"]
    assert (await api.get(f"{DEVICES}/d1/tags")).json()["tags"] == []


async def test_put_body_is_validated(api):
    await make_devices(api, "d1")
    for body in ({}, {"tags": "roof"}, {"tags": [""]}, {"tags": [f"t{i}" for i in range(101)]}):
        assert (await api.request("PUT", f"{DEVICES}/d1/tags", json=body)).status_code == 422, body
    # Unknown fields are ignored, as in the documented system.
    assert (await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["a"], "extra": 1})).json()["tags"] == ["a"]


async def test_a_device_holds_at_most_100_tags(api):
    await make_devices(api, "d1")
    assert (await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": [f"t{i}" for i in range(100)]})).status_code == 200
    r = await api.post(f"{DEVICES}/d1/tags/one-more")
    assert r.status_code == 409 and "100" in r.json()["detail"]
    assert (await api.post(f"{DEVICES}/d1/tags/t5")).status_code == 200  # already there: still fine


async def test_unknown_device_is_404(api):
    for method in ("GET", "PUT"):
        r = await api.request(method, f"{DEVICES}/nope/tags", json={"tags": ["a"]})
        assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert (await api.post(f"{DEVICES}/nope/tags/a")).status_code == 404
    assert (await api.delete(f"{DEVICES}/nope/tags/a")).status_code == 404


async def test_tenant_tag_list_counts_devices_and_paginates(api):
    await make_devices(api, "d1", "d2", "d3")
    await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["alpha", "beta"]})
    await api.request("PUT", f"{DEVICES}/d2/tags", json={"tags": ["beta", "gamma"]})
    await api.request("PUT", f"{DEVICES}/d3/tags", json={"tags": ["beta"]})
    await make_devices(api, "g1", tenant="globex")
    await api.request("PUT", f"{DEVICES}/g1/tags", tenant="globex", json={"tags": ["alpha", "secret"]})
    r = (await api.get(TAGS)).json()
    assert r["tags"] == [{"tag": "alpha", "device_count": 1}, {"tag": "beta", "device_count": 3},
                         {"tag": "gamma", "device_count": 1}]
    assert r["total"] == 3
    r = (await api.get(TAGS, params={"limit": 1, "offset": 1})).json()
    assert r["tags"] == [{"tag": "beta", "device_count": 3}] and r["total"] == 3 and r["limit"] == 1
    assert (await api.get(TAGS, role="customer_viewer")).status_code == 200


async def test_deleting_a_device_drops_its_tags(api):
    await make_devices(api, "d1", "d2")
    for d in ("d1", "d2"):
        await api.post(f"{DEVICES}/{d}/tags/roof")
    assert (await api.delete(f"{DEVICES}/d1")).status_code == 200
    assert (await api.get(TAGS)).json()["tags"] == [{"tag": "roof", "device_count": 1}]
    await make_devices(api, "d1")  # same id again starts without tags
    assert (await api.get(f"{DEVICES}/d1/tags")).json()["tags"] == []


async def test_device_list_filters_by_every_given_tag(api):
    await make_devices(api, "d1", "d2", "d3", "d4")
    await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["roof", "zone/north"]})
    await api.request("PUT", f"{DEVICES}/d2/tags", json={"tags": ["roof"]})
    await api.request("PUT", f"{DEVICES}/d4/tags", json={"tags": ["roof", "zone/north", "x"]})

    async def ids(**params):
        r = await api.get(DEVICES, params=params)
        assert r.status_code == 200, r.text
        return [d["device_id"] for d in r.json()["devices"]], r.json()["total"]

    assert await ids(tag="roof") == (["d1", "d2", "d4"], 3)
    assert await ids(tag=["roof", "zone/north"]) == (["d1", "d4"], 2)
    assert await ids(tag=["roof", "zone/north"], limit=1, offset=1) == (["d4"], 2)
    assert await ids(tag=["roof"], search="d2") == (["d2"], 1)
    assert await ids(tag="nobody") == ([], 0)
    assert (await api.get(DEVICES, params={"tag": "bad tag"})).status_code == 422
    assert (await api.get(DEVICES, params={"tag": [f"t{i}" for i in range(21)]})).status_code == 422


async def test_device_list_filters_by_template(api):
    first, second = [t["id"] for t in (await api.get("/api/v1/customer/templates")).json()["templates"][:2]]
    await make_devices(api, "d1", "d2", template_id=first)
    await make_devices(api, "d3", template_id=second)
    await make_devices(api, "d4")
    r = (await api.get(DEVICES, params={"template_id": first})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d1", "d2"] and r["total"] == 2
    assert (await api.get(DEVICES, params={"template_id": "x"})).status_code == 422


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/tags", None), ("PUT", "/tags", {"tags": ["a"]}), ("POST", "/tags/a", None), ("DELETE", "/tags/a", None),
])
async def test_another_tenants_device_is_404(api, method, path, body):
    await make_devices(api, "d1")
    await api.post(f"{DEVICES}/d1/tags/a")
    r = await api.request(method, f"{DEVICES}/d1{path}", tenant="globex", json=body)
    assert r.status_code == 404, (method, path, r.text)
    assert (await api.get(f"{DEVICES}/d1/tags")).json()["tags"] == ["a"]
    assert (await api.get(TAGS, tenant="globex")).json()["tags"] == []


@pytest.mark.parametrize("method,path,body", [
    ("PUT", "/tags", {"tags": ["b"]}), ("POST", "/tags/b", None), ("DELETE", "/tags/a", None),
])
async def test_viewers_cannot_write_tags(api, method, path, body):
    await make_devices(api, "d1")
    await api.post(f"{DEVICES}/d1/tags/a")
    r = await api.request(method, f"{DEVICES}/d1{path}", role="customer_viewer", json=body)
    assert r.status_code == 403 and "devices.tags.write" in r.json()["detail"]
    r = await api.get(f"{DEVICES}/d1/tags", role="customer_viewer")
    assert r.status_code == 200 and r.json()["tags"] == ["a"]
