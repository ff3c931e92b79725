"""The dashboards routes against the documented contract (shared/reference/api-contracts.md §3 "Dashboards"):
documented bodies in, documented statuses, details and keys out. Where Pulse is stricter or fixes the
documented system, GAPS says so."""
from __future__ import annotations

import pytest

from pulse.serve.routes import dashboards
from tests.contracts.helpers import answers, assert_accounted_for, has_keys

DASH = "/api/v1/customer/dashboards"
ONE = DASH + "/{dashboard_id}"
WIDGET = ONE + "/widgets/{widget_id}"
SUMMARY = ("id", "name", "description", "is_default", "is_shared", "is_owner", "widget_count", "created_at",
           "updated_at")
CREATED = ("id", "name", "description", "is_default", "is_shared", "is_owner", "widgets", "created_at")
DETAIL = ("id", "name", "description", "is_default", "is_shared", "is_owner", "layout", "widgets", "created_at",
          "updated_at")
WIDGET_KEYS = ("id", "widget_type", "title", "config", "position", "created_at", "updated_at")
CHECKED = {("GET", DASH), ("POST", DASH), ("GET", ONE), ("PUT", ONE), ("DELETE", ONE), ("PUT", ONE + "/share"),
           ("PUT", ONE + "/layout"), ("POST", ONE + "/widgets"), ("PUT", WIDGET), ("DELETE", WIDGET),
           ("POST", DASH + "/bootstrap")}
GAPS = [
    "another user's personal dashboard is 404 `Dashboard not found` on every route (documented: 404 on GET, "
    "403 on PUT/DELETE/share): it is invisible, as another tenant's is",
    "PUT …/layout: a widget id the dashboard does not have, or one listed twice, is 400 (documented: silently "
    "ignored); x, y, w, h must lie on the 12-column grid (documented: any int), else 422",
    "widget config is checked against the widget type (docs/dashboards.md), else 422 `config.<key>: …` "
    "(documented: any object); positions must lie on the grid",
    "GET /dashboards takes limit (default 100) and offset and answers them too; total counts every visible one",
    "POST /dashboards/bootstrap never makes an 'Operator Overview': operators do not use customer routes",
    "every route checks a permission: dashboards.read (GET) or dashboards.write (documented: role gate only)",
]


def _bearer(api, sub: str, tenant: str = "acme", role: str = "customer_admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(tenant, role, sub=sub)}"}


def test_every_dashboards_route_is_checked():
    assert_accounted_for([dashboards.router], CHECKED, {})


@pytest.mark.parametrize("gap", GAPS)
def test_deliberate_differences(gap):
    pytest.skip(gap)


async def _create(api, name: str = "Ops", **kw) -> dict:
    return answers(await api.post(DASH, json={"name": name, **kw}), 201, CREATED)


async def test_dashboards_documented_bodies_statuses_and_keys(api):
    created = await _create(api, "  Ops  ", description=" main ", is_default=True)
    assert (created["name"], created["description"], created["is_default"]) == ("Ops", "main", True)
    assert (created["is_shared"], created["is_owner"], created["widgets"]) == (False, True, [])
    other = await _create(api, "Second", is_default=True)

    listing = answers(await api.get(DASH), 200, ("dashboards", "total"))
    assert listing["total"] == 2
    has_keys(listing["dashboards"][0], SUMMARY)
    assert [d["id"] for d in listing["dashboards"]] == [other["id"], created["id"]]  # one default: the newer
    assert [d["is_default"] for d in listing["dashboards"]] == [True, False]

    detail = answers(await api.get(f"{DASH}/{created['id']}"), 200, DETAIL)
    assert detail["layout"] == [] and detail["widgets"] == []

    updated = answers(await api.request("PUT", f"{DASH}/{created['id']}", json={"name": "Renamed"}), 200,
                      ("id", "name", "description", "is_default", "updated_at"))
    assert (updated["name"], updated["description"]) == ("Renamed", "main")
    r = await api.request("PUT", f"{DASH}/{created['id']}", json={})
    assert r.status_code == 400 and r.json()["detail"] == "No fields to update"

    shared = answers(await api.request("PUT", f"{DASH}/{created['id']}/share", json={"shared": True}), 200,
                     ("id", "is_shared"))
    assert shared == {"id": created["id"], "is_shared": True}
    assert (await api.get(f"{DASH}/{created['id']}")).json()["is_owner"] is False

    assert (await api.delete(f"{DASH}/{created['id']}")).status_code == 204
    r = await api.get(f"{DASH}/{created['id']}")
    assert r.status_code == 404 and r.json()["detail"] == "Dashboard not found"
    assert (await api.delete(f"{DASH}/{created['id']}")).status_code == 404


async def test_widgets_documented_bodies_statuses_and_keys(api):
    board = await _create(api)
    url = f"{DASH}/{board['id']}/widgets"
    chart = answers(await api.post(url, json={"widget_type": "line_chart", "title": "Temp",
                                              "config": {"metric": "temp", "time_range": "7d"}}), 201, WIDGET_KEYS)
    assert chart["position"] == {"x": 0, "y": 0, "w": 2, "h": 2}
    assert chart["config"]["aggregation"] == "avg" and chart["config"]["time_range"] == "7d"  # normalized
    count = answers(await api.post(url, json={"widget_type": "device_count"}), 201, WIDGET_KEYS)

    changed = answers(await api.request("PUT", f"{url}/{chart['id']}", json={
        "title": "T", "config": {"metric": "hum"}, "position": {"x": 6, "y": 1, "w": 6, "h": 4}}), 200, WIDGET_KEYS)
    assert (changed["title"], changed["config"]["metric"], changed["position"]["x"]) == ("T", "hum", 6)
    assert changed["widget_type"] == "line_chart"
    r = await api.request("PUT", f"{url}/{chart['id']}", json={})
    assert r.status_code == 400 and r.json()["detail"] == "No fields to update"
    r = await api.request("PUT", f"{url}/999", json={"title": "x"})
    assert r.status_code == 404 and r.json()["detail"] == "Widget not found"

    layout = [{"widget_id": count["id"], "x": 0, "y": 0, "w": 3, "h": 2},
              {"widget_id": chart["id"], "x": 3, "y": 0, "w": 9, "h": 5}]
    saved = answers(await api.request("PUT", f"{DASH}/{board['id']}/layout", json={"layout": layout}), 200, ("ok",))
    assert saved == {"ok": True}
    detail = (await api.get(f"{DASH}/{board['id']}")).json()
    assert detail["layout"] == layout
    has_keys(detail["widgets"][0], WIDGET_KEYS)
    assert {w["id"]: w["position"] for w in detail["widgets"]}[chart["id"]] == {"x": 3, "y": 0, "w": 9, "h": 5}
    assert (await api.get(DASH)).json()["dashboards"][0]["widget_count"] == 2

    assert (await api.delete(f"{url}/{count['id']}")).status_code == 204
    r = await api.delete(f"{url}/{count['id']}")
    assert r.status_code == 404 and r.json()["detail"] == "Widget not found"


async def test_invalid_widget_type_is_the_documented_400(api):
    board = await _create(api)
    r = await api.post(f"{DASH}/{board['id']}/widgets", json={"widget_type": "clock"})
    assert r.status_code == 400 and r.json()["detail"].startswith("Invalid widget_type. Must be one of: kpi_tile,")


@pytest.mark.parametrize("widget,field", [
    ({"widget_type": "kpi_tile", "config": {"kpi": "metric"}}, "config"),
    ({"widget_type": "line_chart", "config": {"metric": "t", "aggregation": "median"}}, "config.aggregation"),
    ({"widget_type": "line_chart", "config": {"metric": "t", "time_range": "2y"}}, "config.time_range"),
    ({"widget_type": "fleet_status", "config": {"colour": "red"}}, "config.colour"),
    ({"widget_type": "table", "position": {"x": 10, "y": 0, "w": 4, "h": 2}}, "position"),
    ({"widget_type": "table", "position": {"x": 0, "y": -1, "w": 4, "h": 2}}, "position.y"),
    ({"widget_type": "table", "title": "x" * 101}, "title"),
])
async def test_bad_widgets_are_422_naming_the_field(api, widget, field):
    board = await _create(api)
    r = await api.post(f"{DASH}/{board['id']}/widgets", json=widget)
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), r.text


async def test_widget_update_checks_config_against_the_widgets_type(api):
    board = await _create(api)
    url = f"{DASH}/{board['id']}/widgets"
    feed = (await api.post(url, json={"widget_type": "alert_feed"})).json()
    r = await api.request("PUT", f"{url}/{feed['id']}", json={"config": {"metric": "temp"}})
    assert r.status_code == 422 and r.json()["detail"].startswith("config.metric:")


@pytest.mark.parametrize("item,status", [
    ({"x": 0, "y": 0, "w": 13, "h": 2}, 422),
    ({"x": 11, "y": 0, "w": 2, "h": 2}, 422),
    ({"x": 0, "y": 0, "w": 0, "h": 2}, 422),
    ({"x": 0, "y": 0, "w": 2}, 422),
])
async def test_layout_outside_the_grid_is_422(api, item, status):
    board = await _create(api)
    widget = (await api.post(f"{DASH}/{board['id']}/widgets", json={"widget_type": "gauge",
                                                                     "config": {"metric": "t"}})).json()
    r = await api.request("PUT", f"{DASH}/{board['id']}/layout", json={"layout": [{"widget_id": widget["id"], **item}]})
    assert r.status_code == status, r.text


async def test_layout_with_a_widget_of_another_dashboard_is_400_and_changes_nothing(api):
    a, b = await _create(api, "A"), await _create(api, "B")
    mine = (await api.post(f"{DASH}/{a['id']}/widgets", json={"widget_type": "device_count"})).json()
    theirs = (await api.post(f"{DASH}/{b['id']}/widgets", json={"widget_type": "device_count"})).json()
    layout = [{"widget_id": mine["id"], "x": 4, "y": 0, "w": 2, "h": 2},
              {"widget_id": theirs["id"], "x": 0, "y": 0, "w": 2, "h": 2}]
    r = await api.request("PUT", f"{DASH}/{a['id']}/layout", json={"layout": layout})
    assert r.status_code == 400 and str(theirs["id"]) in r.json()["detail"]
    assert (await api.get(f"{DASH}/{a['id']}")).json()["widgets"][0]["position"]["x"] == 0
    twice = [layout[0], layout[0]]
    assert (await api.request("PUT", f"{DASH}/{a['id']}/layout", json={"layout": twice})).status_code == 400


async def test_limits_are_the_documented_400s(api):
    for i in range(20):
        await _create(api, f"d{i}")
    r = await api.post(DASH, json={"name": "one too many"})
    assert r.status_code == 400 and r.json()["detail"] == "Maximum 20 dashboards per user"
    board = (await api.get(DASH)).json()["dashboards"][0]
    for _ in range(30):
        assert (await api.post(f"{DASH}/{board['id']}/widgets", json={"widget_type": "device_count"})).status_code == 201
    r = await api.post(f"{DASH}/{board['id']}/widgets", json={"widget_type": "device_count"})
    assert r.status_code == 400 and r.json()["detail"] == "Maximum 30 widgets per dashboard"


async def test_taking_a_shared_dashboard_back_counts_against_the_limit(api):
    shared = await _create(api, "shared")
    assert (await api.request("PUT", f"{DASH}/{shared['id']}/share", json={"shared": True})).status_code == 200
    for i in range(20):
        await _create(api, f"d{i}")
    r = await api.request("PUT", f"{DASH}/{shared['id']}/share", json={"shared": False})
    assert r.status_code == 400 and r.json()["detail"] == "Maximum 20 dashboards per user"
    assert (await api.get(f"{DASH}/{shared['id']}")).json()["is_shared"] is True


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101},
                                  {"name": "ok", "description": "x" * 501}, {"name": "ok", "is_default": "maybe"}])
async def test_bad_dashboard_bodies_are_422(api, body):
    r = await api.post(DASH, json=body)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


@pytest.mark.parametrize("path", ["/0", "/abc", "/2147483648", "/1/widgets/0"])
async def test_bad_ids_are_422(api, path):
    r = await api.request("DELETE", DASH + path)
    assert r.status_code == 422


async def test_another_tenants_dashboard_is_404_everywhere(api):
    board = await _create(api)
    widget = (await api.post(f"{DASH}/{board['id']}/widgets", json={"widget_type": "device_count"})).json()
    await _assert_invisible(api, board["id"], widget["id"], _bearer(api, "customer_admin@acme", tenant="globex"))
    assert (await api.get(DASH, tenant="globex")).json()["total"] == 0


async def test_a_personal_dashboard_is_invisible_to_another_user_of_the_tenant(api):
    alice, bob = _bearer(api, "alice"), _bearer(api, "bob")
    board = answers(await api.post(DASH, json={"name": "Alice's"}, headers=alice), 201, CREATED)
    widget = (await api.post(f"{DASH}/{board['id']}/widgets", json={"widget_type": "table"}, headers=alice)).json()
    assert (await api.get(DASH, headers=bob)).json() == {"dashboards": [], "total": 0, "limit": 100, "offset": 0}
    await _assert_invisible(api, board["id"], widget["id"], bob)
    assert (await api.get(f"{DASH}/{board['id']}", headers=alice)).status_code == 200  # untouched

    await api.request("PUT", f"{DASH}/{board['id']}/share", json={"shared": True}, headers=alice)
    seen = (await api.get(DASH, headers=bob)).json()["dashboards"]
    assert [(d["id"], d["is_shared"], d["is_owner"]) for d in seen] == [(board["id"], True, False)]
    # shared = the tenant's: bob may edit it, and taking it back makes it his own, invisible to alice
    assert (await api.request("PUT", f"{DASH}/{board['id']}", json={"name": "Ours"}, headers=bob)).status_code == 200
    await api.request("PUT", f"{DASH}/{board['id']}/share", json={"shared": False}, headers=bob)
    assert (await api.get(f"{DASH}/{board['id']}", headers=bob)).json()["is_owner"] is True
    assert (await api.get(f"{DASH}/{board['id']}", headers=alice)).status_code == 404


async def _assert_invisible(api, dashboard_id: int, widget_id: int, headers: dict[str, str]) -> None:
    one, widget = f"{DASH}/{dashboard_id}", f"{DASH}/{dashboard_id}/widgets/{widget_id}"
    layout = {"layout": [{"widget_id": widget_id, "x": 0, "y": 0, "w": 2, "h": 2}]}
    for method, url, body in [("GET", one, None), ("PUT", one, {"name": "x"}), ("PUT", one + "/share", {"shared": True}),
                              ("PUT", one + "/layout", layout), ("POST", one + "/widgets", {"widget_type": "table"}),
                              ("PUT", widget, {"title": "x"}), ("DELETE", widget, None), ("DELETE", one, None)]:
        r = await api.request(method, url, json=body, headers=headers)
        assert r.status_code == 404 and r.json()["detail"] == "Dashboard not found", (method, url, r.text)


async def test_bootstrap_is_idempotent(api):
    first = answers(await api.post(f"{DASH}/bootstrap"), 201, ("id", "created"))
    assert first["created"] is True
    again = answers(await api.post(f"{DASH}/bootstrap"), 201, ("id", "created"))
    assert again == {"id": first["id"], "created": False}
    listing = (await api.get(DASH)).json()
    assert listing["total"] == 1
    board = (await api.get(f"{DASH}/{first['id']}")).json()
    assert (board["name"], board["is_default"]) == ("Fleet Overview", True)
    assert sorted(w["widget_type"] for w in board["widgets"]) == sorted(
        ["fleet_status", "device_count", "kpi_tile", "kpi_tile", "alert_feed", "table", "health_score"])


async def test_bootstrap_concurrently_creates_one(api):
    import asyncio

    results = await asyncio.gather(*[api.post(f"{DASH}/bootstrap") for _ in range(4)])
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.json()["created"] for r in results) == 1
    assert (await api.get(DASH)).json()["total"] == 1


async def test_bootstrap_returns_a_shared_dashboard_to_another_user(api):
    alice, bob = _bearer(api, "alice"), _bearer(api, "bob")
    made = (await api.post(f"{DASH}/bootstrap", headers=alice)).json()
    assert (await api.post(f"{DASH}/bootstrap", headers=bob)).json()["created"] is True  # alice's is personal
    await api.request("PUT", f"{DASH}/{made['id']}/share", json={"shared": True}, headers=alice)
    carol = (await api.post(f"{DASH}/bootstrap", headers=_bearer(api, "carol"))).json()
    assert carol == {"id": made["id"], "created": False}


async def test_a_viewer_reads_but_may_not_write(api):
    board = await _create(api)
    await api.request("PUT", f"{DASH}/{board['id']}/share", json={"shared": True})
    viewer = _bearer(api, "viewer", role="customer_viewer")
    assert (await api.get(DASH, headers=viewer)).json()["total"] == 1
    assert (await api.get(f"{DASH}/{board['id']}", headers=viewer)).status_code == 200
    for method, url, body in [("POST", DASH, {"name": "x"}), ("POST", f"{DASH}/bootstrap", None),
                              ("PUT", f"{DASH}/{board['id']}", {"name": "x"}),
                              ("POST", f"{DASH}/{board['id']}/widgets", {"widget_type": "table"}),
                              ("DELETE", f"{DASH}/{board['id']}", None)]:
        r = await api.request(method, url, json=body, headers=viewer)
        assert r.status_code == 403 and r.json()["detail"] == "missing permission dashboards.write", (method, url)


async def test_no_token_is_401(api):
    r = await api.client.get(DASH)
    assert r.status_code == 401


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": -6227020799}, {"offset": -1}])
async def test_list_bounds_are_422(api, params):
    assert (await api.get(DASH, params=params)).status_code == 422
