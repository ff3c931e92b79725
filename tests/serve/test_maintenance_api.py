"""Maintenance windows: CRUD, validation, the active_at/device_id filters, and the suppression check
alerting uses (`active_windows_for`, `in_maintenance`)."""
from datetime import datetime, timedelta, timezone

import pytest

from pulse.storage import maintenance
from tests.serve.resources import DEVICES, make_devices

GROUPS = "/api/v1/customer/device-groups"
WINDOWS = "/api/v1/customer/maintenance-windows"
UTC = timezone.utc
T = datetime(2030, 6, 3, 12, tzinfo=UTC)  # a Monday


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


async def make_window(api, tenant="acme", **fields) -> dict:
    body = {"name": "w", "starts_at": iso(T), "ends_at": iso(T + timedelta(hours=2)), **fields}
    r = await api.post(WINDOWS, tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_list_patch_delete(api):
    w = await make_window(api, name="firmware rollout", scope={"site_ids": ["plant-a"], "tags": ["pump"]})
    assert w["window_id"] and w["enabled"] is True and w["recurrence"] is None
    assert w["starts_at"].startswith("2030-06-03T12:00:00") and w["ends_at"].startswith("2030-06-03T14:00:00")
    assert w["scope"] == {"device_ids": [], "group_ids": [], "site_ids": ["plant-a"], "tags": ["pump"]}
    assert w["active"] is False
    assert w["next_occurrence"]["starts_at"].startswith("2030-06-03T12:00")
    r = (await api.get(WINDOWS)).json()
    assert [x["window_id"] for x in r["windows"]] == [w["window_id"]] and r["total"] == 1
    r = await api.patch(f"{WINDOWS}/{w['window_id']}", json={"name": "renamed", "enabled": False, "ends_at": None})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed" and r.json()["enabled"] is False and r.json()["ends_at"] is None
    assert r.json()["next_occurrence"] is None  # disabled
    assert (await api.delete(f"{WINDOWS}/{w['window_id']}")).json() == {"window_id": w["window_id"], "deleted": True}
    assert (await api.delete(f"{WINDOWS}/{w['window_id']}")).status_code == 404
    assert (await api.get(WINDOWS)).json()["total"] == 0


async def test_window_covering_now_is_active_and_starts_at_defaults_to_now(api):
    r = await api.post(WINDOWS, json={"name": "now", "ends_at": iso(datetime.now(UTC) + timedelta(hours=1))})
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["active"] is True
    assert abs(datetime.fromisoformat(w["starts_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert w["scope"] == {"device_ids": [], "group_ids": [], "site_ids": [], "tags": []}  # whole tenant


async def test_recurring_window_in_a_time_zone(api):
    rec = {"days_of_week": [6, 6, 0], "start_time": "02:30", "duration_minutes": 60, "timezone": "Europe/Berlin"}
    w = await make_window(api, starts_at="2024-01-01T00:00:00Z", ends_at=None, recurrence=rec)
    assert w["recurrence"] == {**rec, "days_of_week": [0, 6]}
    # Sunday 2024-03-31 02:30 does not exist in Berlin: that occurrence runs 03:30-04:30 CEST
    for at, active in (("2024-03-31T01:15:00Z", False), ("2024-03-31T01:45:00Z", True),
                       ("2024-04-01T00:45:00Z", True), ("2024-04-02T00:45:00Z", False)):
        r = (await api.get(WINDOWS, params={"active_at": at})).json()
        assert r["total"] == (1 if active else 0), at
        if active:
            assert r["windows"][0]["active"] is True
    r = (await api.get(WINDOWS, params={"active_at": "2024-03-31T00:00:00Z"})).json()
    assert r["total"] == 0


@pytest.mark.parametrize("body,where", [
    ({"name": "w", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
    ({"name": "w", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
    ({"name": "w", "starts_at": "2030-01-01T00:00:00"}, "timezone"),
    ({"name": ""}, "name"),
    ({"name": "w", "recurring": {"dow": [1], "start_hour": 25, "end_hour": 4}}, "recurring"),
    ({"name": "w", "device_types": ["meter"]}, "device_types"),
    ({"name": "w", "site_ids": ["s1"], "scope": {"tags": ["a"]}}, "site_ids"),
    ({"name": "w", "recurrence": {"days_of_week": [7], "start_time": "02:00", "duration_minutes": 5}}, "days"),
    ({"name": "w", "recurrence": {"days_of_week": [], "start_time": "02:00", "duration_minutes": 5}}, "days_of_week"),
    ({"name": "w", "recurrence": {"days_of_week": [1], "start_time": "25:00", "duration_minutes": 5}}, "start_time"),
    ({"name": "w", "recurrence": {"days_of_week": [1], "start_time": "02:00", "duration_minutes": 0}}, "duration"),
    ({"name": "w", "recurrence": {"days_of_week": [1], "start_time": "02:00", "duration_minutes": 10081}}, "duration"),
    ({"name": "w", "recurrence": {"days_of_week": [1], "start_time": "02:00", "duration_minutes": 5,
                                  "timezone": "Europe/Atlantis"}}, "time zone"),
    ({"name": "w", "scope": {"tags": ["bad tag"]}}, "tag"),
    ({"name": "w", "scope": {"sites": ["a"]}}, "sites"),
])
async def test_invalid_windows_are_422(api, body, where):
    r = await api.post(WINDOWS, json=body)
    assert r.status_code == 422, r.text
    assert where in r.text


async def test_documented_site_ids_scope_the_window_and_unknown_fields_are_ignored(api):
    r = await api.post(WINDOWS, json={"name": "w", "starts_at": iso(T), "site_ids": ["s1"], "bogus": 1})
    assert r.status_code == 201 and r.json()["scope"]["site_ids"] == ["s1"] and "bogus" not in r.json()


async def test_documented_recurring_is_the_same_weekly_recurrence(api):
    """dow 0 = Sunday and whole UTC hours; an end before the start runs past midnight."""
    r = await api.post(WINDOWS, json={"name": "w", "starts_at": iso(T), "recurring": {"dow": [0, 1], "start_hour": 22,
                                                                                        "end_hour": 2}})
    assert r.status_code == 201, r.text
    assert r.json()["recurrence"] == {"days_of_week": [0, 6], "start_time": "22:00", "duration_minutes": 240,
                                      "timezone": "UTC"}


async def test_patch_is_checked_against_the_stored_window(api):
    w = await make_window(api)
    url = f"{WINDOWS}/{w['window_id']}"
    r = await api.patch(url, json={"ends_at": iso(T - timedelta(hours=1))})
    assert r.status_code == 422 and "ends_at" in r.json()["detail"]
    r = await api.patch(url, json={"starts_at": iso(T + timedelta(hours=3))})
    assert r.status_code == 422
    for field in ("name", "enabled", "starts_at", "scope"):
        r = await api.patch(url, json={field: None})
        assert r.status_code == 422 and field in r.json()["detail"]
    assert (await api.patch(url, json={})).status_code == 422
    rec = {"days_of_week": [0], "start_time": "13:00", "duration_minutes": 30}
    r = await api.patch(url, json={"recurrence": rec, "ends_at": None})
    assert r.status_code == 200 and r.json()["recurrence"] == {**rec, "timezone": "UTC"}
    assert r.json()["next_occurrence"]["starts_at"].startswith("2030-06-03T13:00")
    r = await api.patch(url, json={"recurrence": None})
    assert r.status_code == 200 and r.json()["recurrence"] is None
    r = await api.patch(url, json={"scope": {"tags": ["a"]}})
    assert r.json()["scope"] == {"device_ids": [], "group_ids": [], "site_ids": [], "tags": ["a"]}


async def test_scope_must_name_this_tenants_groups_and_devices(api):
    await make_devices(api, "d1")
    await make_devices(api, "g1", tenant="globex")
    theirs = (await api.post(GROUPS, tenant="globex", json={"name": "g"})).json()["group_id"]
    for scope, detail in (({"group_ids": [theirs]}, "group"), ({"group_ids": ["nope"]}, "group"),
                          ({"device_ids": ["d1", "g1"]}, "g1")):
        r = await api.post(WINDOWS, json={"name": "w", "scope": scope})
        assert r.status_code == 422 and detail in r.json()["detail"], r.text
    w = await make_window(api, scope={"device_ids": ["d1"]})
    r = await api.patch(f"{WINDOWS}/{w['window_id']}", json={"scope": {"group_ids": [theirs]}})
    assert r.status_code == 422


async def test_list_paginates_by_start(api):
    made = [await make_window(api, name=f"w{i}", starts_at=iso(T + timedelta(days=i)), ends_at=None)
            for i in (3, 0, 2, 1)]
    r = (await api.get(WINDOWS, params={"limit": 2, "offset": 1})).json()
    assert [w["name"] for w in r["windows"]] == ["w1", "w2"] and r["total"] == 4 and r["offset"] == 1
    await api.patch(f"{WINDOWS}/{made[0]['window_id']}", json={"enabled": False})
    r = (await api.get(WINDOWS, params={"enabled": "false"})).json()
    assert [w["name"] for w in r["windows"]] == ["w3"]
    r = (await api.get(WINDOWS, params={"active_at": iso(T + timedelta(days=2, hours=1)), "limit": 1, "offset": 1})).json()
    assert [w["name"] for w in r["windows"]] == ["w1"] and r["total"] == 3  # w0, w1, w2 (w3 disabled)
    assert (await api.get(WINDOWS, params={"active_at": "2030-06-03T12:00:00"})).status_code == 422


async def scoped_fleet(api):
    """d-site at plant-a, d-tag tagged pump, d-static in a static group, d-dyn in a dynamic group, d-none."""
    await make_devices(api, "d-site", site_id="plant-a")
    await make_devices(api, "d-tag", "d-static", "d-dyn", "d-none", "d-id")
    await api.post(f"{DEVICES}/d-tag/tags/pump")
    await api.post(f"{DEVICES}/d-dyn/tags/rooftop")
    static = (await api.post(GROUPS, json={"name": "static"})).json()["group_id"]
    await api.request("PUT", f"{GROUPS}/{static}/devices/d-static")
    dynamic = (await api.post(GROUPS, json={"name": "dyn", "query": {"tags": ["rooftop"]}})).json()["group_id"]
    return static, dynamic


async def test_active_windows_for_resolves_id_site_tag_and_groups(api):
    static, dynamic = await scoped_fleet(api)
    db, at = api.services.db, T + timedelta(minutes=30)
    selectors = {"d-id": {"device_ids": ["d-id"]}, "d-site": {"site_ids": ["plant-a"]}, "d-tag": {"tags": ["pump"]},
                 "d-static": {"group_ids": [static]}, "d-dyn": {"group_ids": [dynamic]}}
    ids = {d: (await make_window(api, name=d, scope=s))["window_id"] for d, s in selectors.items()}
    for device, wid in ids.items():
        found = await maintenance.active_windows_for(db, "acme", device, at)
        assert [w["window_id"] for w in found] == [wid], device
        assert await maintenance.in_maintenance(db, "acme", device, at)
    assert not await maintenance.in_maintenance(db, "acme", "d-none", at)
    assert not await maintenance.in_maintenance(db, "acme", "d-tag", T - timedelta(seconds=1))
    assert not await maintenance.in_maintenance(db, "acme", "d-tag", T + timedelta(hours=2))

    await api.delete(f"{DEVICES}/d-dyn/tags/rooftop")  # leaves the dynamic group, and so the window
    assert not await maintenance.in_maintenance(db, "acme", "d-dyn", at)
    await api.delete(f"{GROUPS}/{static}")  # a window naming only a deleted group matches nothing
    assert not await maintenance.in_maintenance(db, "acme", "d-static", at)
    assert not await maintenance.in_maintenance(db, "acme", "d-none", at)


async def test_a_window_scope_needs_every_key_it_sets(api):
    """One scope reading (pulse.domain.scopes): site and tag together cover only pumps at plant-a."""
    await scoped_fleet(api)
    await make_devices(api, "d-pump-a", site_id="plant-a")
    await api.post(f"{DEVICES}/d-pump-a/tags/pump")
    db, at = api.services.db, T + timedelta(minutes=30)
    await make_window(api, scope={"site_ids": ["plant-a"], "tags": ["pump"]})
    assert await maintenance.in_maintenance(db, "acme", "d-pump-a", at)
    assert not await maintenance.in_maintenance(db, "acme", "d-site", at)  # plant-a, no pump tag
    assert not await maintenance.in_maintenance(db, "acme", "d-tag", at)  # a pump elsewhere


async def test_tenant_wide_disabled_and_foreign_windows(api):
    await make_devices(api, "d1")
    await make_devices(api, "d1", tenant="globex")
    db, at = api.services.db, T + timedelta(minutes=30)
    await make_window(api, tenant="globex")  # whole globex tenant
    assert not await maintenance.in_maintenance(db, "acme", "d1", at)
    assert await maintenance.in_maintenance(db, "globex", "d1", at)
    w = await make_window(api)  # whole acme tenant
    assert await maintenance.in_maintenance(db, "acme", "d1", at)
    assert await maintenance.in_maintenance(db, "acme", "not-registered", at)  # tenant-wide covers any device
    await api.patch(f"{WINDOWS}/{w['window_id']}", json={"enabled": False})
    assert not await maintenance.in_maintenance(db, "acme", "d1", at)
    with pytest.raises(ValueError, match="naive"):
        await maintenance.in_maintenance(db, "globex", "d1", datetime(2030, 6, 3, 12, 30))


async def test_list_filters_by_device_and_instant(api):
    static, _ = await scoped_fleet(api)
    tag_w = await make_window(api, name="tag", scope={"tags": ["pump"]})
    later = await make_window(api, name="later", starts_at=iso(T + timedelta(days=1)), ends_at=None,
                              scope={"group_ids": [static]})
    everyone = await make_window(api, name="everyone", starts_at=iso(T - timedelta(days=1)), ends_at=iso(T))

    async def names(**params):
        r = await api.get(WINDOWS, params=params)
        assert r.status_code == 200, r.text
        return [w["name"] for w in r.json()["windows"]]

    assert await names(device_id="d-tag") == ["everyone", "tag"]
    assert await names(device_id="d-static") == ["everyone", "later"]
    assert await names(device_id="d-tag", active_at=iso(T + timedelta(minutes=5))) == ["tag"]
    assert await names(device_id="d-static", active_at=iso(T + timedelta(minutes=5))) == []
    assert await names(active_at=iso(T - timedelta(hours=1))) == ["everyone"]
    assert await names(active_at=iso(T + timedelta(days=2))) == ["later"]
    assert tag_w and later and everyone
    r = await api.get(WINDOWS, params={"device_id": "nope"})
    assert r.status_code == 404


@pytest.mark.parametrize("method,path,body", [
    ("PATCH", "/{wid}", {"name": "mine"}), ("DELETE", "/{wid}", None),
])
async def test_another_tenants_window_is_404(api, method, path, body):
    w = await make_window(api)
    r = await api.request(method, WINDOWS + path.format(wid=w["window_id"]), tenant="globex", json=body)
    assert r.status_code == 404, r.text
    assert (await api.get(WINDOWS, tenant="globex")).json()["windows"] == []
    await make_devices(api, "a1")
    assert (await api.get(WINDOWS, tenant="globex", params={"device_id": "a1"})).status_code == 404
    assert (await api.get(WINDOWS)).json()["windows"][0]["name"] == "w"


@pytest.mark.parametrize("method,path,body,permission", [
    ("POST", "", {"name": "x"}, "maintenance.create"), ("PATCH", "/{wid}", {"name": "y"}, "maintenance.update"),
    ("DELETE", "/{wid}", None, "maintenance.delete"),
])
async def test_viewers_cannot_write_windows(api, method, path, body, permission):
    w = await make_window(api)
    r = await api.request(method, WINDOWS + path.format(wid=w["window_id"]), role="customer_viewer", json=body)
    assert r.status_code == 403 and permission in r.json()["detail"]
    r = await api.get(WINDOWS, role="customer_viewer")
    assert r.status_code == 200 and r.json()["total"] == 1
