"""On-call schedules over HTTP: CRUD of schedules, layers and overrides, who is on call now and when,
tenancy, permissions, validation, and `responders_now` for escalation."""
from datetime import datetime, timedelta, timezone

import pytest

from pulse.errors import NotFound
from pulse.storage import oncall

SCHEDULES = "/api/v1/customer/oncall-schedules"
UTC = timezone.utc
T = datetime(2030, 6, 3, 9, tzinfo=UTC)  # a Monday


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


async def make_schedule(api, name="primary", tenant="acme", **fields) -> dict:
    r = await api.post(SCHEDULES, tenant=tenant, json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def make_layer(api, sid, tenant="acme", **fields) -> dict:
    body = {"name": "l", "rotation_type": "daily", "start_at": iso(T), "participants": ["ann@acme.io", "bob@acme.io"],
            **fields}
    r = await api.post(f"{SCHEDULES}/{sid}/layers", tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def make_override(api, sid, tenant="acme", **fields) -> dict:
    body = {"responder": "zed@acme.io", "start_at": iso(T + timedelta(hours=2)),
            "end_at": iso(T + timedelta(hours=4)), **fields}
    r = await api.post(f"{SCHEDULES}/{sid}/overrides", tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def current(api, sid, at: datetime, **kw) -> dict:
    r = await api.get(f"{SCHEDULES}/{sid}/current", params={"at": iso(at)}, **kw)
    assert r.status_code == 200, r.text
    return r.json()


# ---- schedules -------------------------------------------------------------------------------------
async def test_create_get_update_delete_schedule(api):
    s = await make_schedule(api, "ops", description="24/7 ops", timezone="Europe/Berlin")
    assert s["schedule_id"] and s["name"] == "ops" and s["description"] == "24/7 ops"
    assert s["timezone"] == "Europe/Berlin" and s["layers"] == []
    url = f"{SCHEDULES}/{s['schedule_id']}"
    assert (await api.get(url)).json()["name"] == "ops"
    r = await api.request("PUT", url, json={"description": "nights only"})  # partial
    assert r.status_code == 200 and r.json()["description"] == "nights only" and r.json()["timezone"] == "Europe/Berlin"
    r = await api.request("PUT", url, json={"name": "ops-eu", "timezone": "UTC", "description": None})
    assert (r.json()["name"], r.json()["timezone"], r.json()["description"]) == ("ops-eu", "UTC", None)
    assert (await api.delete(url)).status_code == 204
    assert (await api.delete(url)).status_code == 404
    assert (await api.get(url)).status_code == 404


async def test_schedule_timezone_defaults_to_utc(api):
    assert (await make_schedule(api))["timezone"] == "UTC"


async def test_list_sorts_by_name_with_layers_and_paginates(api):
    for name in ("gamma", "alpha", "delta", "beta"):
        s = await make_schedule(api, name)
        if name == "beta":
            await make_layer(api, s["schedule_id"], name="second", order=7)
            await make_layer(api, s["schedule_id"], name="first", order=3)
    await make_schedule(api, "theirs", tenant="globex")
    r = (await api.get(SCHEDULES)).json()
    assert [s["name"] for s in r["schedules"]] == ["alpha", "beta", "delta", "gamma"] and r["total"] == 4
    assert [layer["name"] for layer in r["schedules"][1]["layers"]] == ["first", "second"]
    r = (await api.get(SCHEDULES, params={"limit": 2, "offset": 1})).json()
    assert [s["name"] for s in r["schedules"]] == ["beta", "delta"]
    assert (r["total"], r["limit"], r["offset"]) == (4, 2, 1)
    assert (await api.get(SCHEDULES, params={"limit": 0})).status_code == 422
    assert (await api.get(SCHEDULES, params={"limit": 1001})).status_code == 422


async def test_schedule_names_are_unique_per_tenant(api):
    await make_schedule(api, "ops")
    r = await api.post(SCHEDULES, json={"name": "ops"})
    assert r.status_code == 409 and "ops" in r.json()["detail"]
    await make_schedule(api, "ops", tenant="globex")
    other = await make_schedule(api, "dev")
    r = await api.request("PUT", f"{SCHEDULES}/{other['schedule_id']}", json={"name": "ops"})
    assert r.status_code == 409
    r = await api.request("PUT", f"{SCHEDULES}/{other['schedule_id']}", json={"name": "dev"})
    assert r.status_code == 200


async def test_documented_schedule_body_creates_its_layers(api):
    """The documented body: layers inside the schedule, `responders`, `handoff_hour`, `layer_order`,
    `shift_duration_hours`; unknown fields ignored. The documented keys come back."""
    layer = {"name": "Primary", "rotation_type": "weekly", "shift_duration_hours": 168, "handoff_day": 0,
             "handoff_hour": 8, "responders": ["ann@acme.io", "bob@acme.io"], "layer_order": 0, "bogus": 1}
    daily = {**layer, "name": "Backup", "rotation_type": "daily", "shift_duration_hours": 24, "layer_order": 1}
    s = await make_schedule(api, "doc", layers=[layer, daily], bogus=True)
    got = [(lv["name"], lv["participants"], lv["handoff_time"], lv["handoff_day"], lv["order"], lv["shift_hours"])
           for lv in s["layers"]]
    assert got == [("Primary", ["ann@acme.io", "bob@acme.io"], "08:00", 0, 0, None),
                   ("Backup", ["ann@acme.io", "bob@acme.io"], "08:00", None, 1, None)]
    first = s["layers"][0]
    assert (first["responders"], first["handoff_hour"], first["layer_order"], first["shift_duration_hours"]) == (
        ["ann@acme.io", "bob@acme.io"], 8, 0, 168)
    r = await api.post(SCHEDULES, json={"name": "bad", "layers": [{**layer, "responders": ["two words"]}]})
    assert r.status_code == 422 and "participants" in r.text
    r = await api.post(SCHEDULES, json={"name": "dup", "layers": [layer, layer]})  # the store refuses the 2nd
    assert r.status_code == 409, r.text
    assert [x["name"] for x in (await api.get(SCHEDULES)).json()["schedules"]] == ["doc"]  # nothing left behind
    r = await api.request("PUT", f"{SCHEDULES}/{s['schedule_id']}", json={"layers": []})
    assert r.status_code == 422 and "layers" in r.text


@pytest.mark.parametrize("body,where", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), 
    ({"name": "x", "timezone": "Europe/Atlantis"}, "time zone"), ({"name": "x", "timezone": "localtime"}, "time zone"),
    ({"name": "x", "timezone": "+02:00"}, "time zone"), ({"name": "x", "timezone": None}, "timezone"),
])
async def test_invalid_schedules_are_422(api, body, where):
    r = await api.post(SCHEDULES, json=body)
    assert r.status_code == 422 and where in r.text, r.text


async def test_invalid_schedule_updates_are_422(api):
    url = f"{SCHEDULES}/{(await make_schedule(api))['schedule_id']}"
    for body, where in (({}, "nothing"), ({"timezone": "Nowhere/City"}, "time zone"), ({"timezone": None}, "timezone"),
                        ({"name": None}, "name"), ({"layers": []}, "layers")):
        r = await api.request("PUT", url, json=body)
        assert r.status_code == 422 and where in r.json()["detail"], (body, r.text)


# ---- layers ----------------------------------------------------------------------------------------
async def test_layer_defaults_come_from_start_at_in_the_schedule_zone(api):
    s = await make_schedule(api, timezone="America/New_York")
    sid = s["schedule_id"]
    first = await make_layer(api, sid, rotation_type="weekly", start_at="2030-06-05T13:30:00Z")  # Wed 09:30 EDT
    assert (first["handoff_time"], first["handoff_day"], first["order"]) == ("09:30", 2, 0)
    assert first["shift_hours"] is None and first["restrictions"] == [] and first["end_at"] is None
    assert first["participants"] == ["ann@acme.io", "bob@acme.io"] and "tenant_id" not in first
    second = await make_layer(api, sid, handoff_time="08:00")
    assert (second["handoff_time"], second["handoff_day"], second["order"]) == ("08:00", None, 1)
    layers = (await api.get(f"{SCHEDULES}/{sid}")).json()["layers"]
    assert [layer["layer_id"] for layer in layers] == [first["layer_id"], second["layer_id"]]


async def test_update_layer_is_partial_and_checked_as_a_whole(api):
    sid = (await make_schedule(api))["schedule_id"]
    layer = await make_layer(api, sid, rotation_type="custom", shift_hours=12, handoff_time="08:00")
    url = f"{SCHEDULES}/{sid}/layers/{layer['layer_id']}"
    r = await api.request("PUT", url, json={"participants": ["cy@acme.io"], "name": "nights"})
    assert r.status_code == 200, r.text
    assert (r.json()["participants"], r.json()["name"], r.json()["shift_hours"]) == (["cy@acme.io"], "nights", 12)
    r = await api.request("PUT", url, json={"rotation_type": "weekly"})  # drops shift_hours, day from start_at
    assert r.status_code == 200, r.text
    assert (r.json()["shift_hours"], r.json()["handoff_day"], r.json()["handoff_time"]) == (None, 0, "08:00")
    r = await api.request("PUT", url, json={"shift_hours": 6})
    assert r.status_code == 422 and "shift_hours" in r.json()["detail"]
    r = await api.request("PUT", url, json={"end_at": iso(T - timedelta(days=1))})
    assert r.status_code == 422 and "end_at" in r.json()["detail"]
    for field in ("name", "order", "rotation_type", "handoff_time", "start_at", "participants", "restrictions"):
        r = await api.request("PUT", url, json={field: None})
        assert r.status_code == 422 and field in r.json()["detail"], field
    assert (await api.request("PUT", url, json={})).status_code == 422
    r = await api.request("PUT", url, json={"restrictions": [
        {"days_of_week": [4, 0, 0], "start_time": "09:00", "end_time": "24:00"}]})
    assert r.json()["restrictions"] == [{"days_of_week": [0, 4], "start_time": "09:00", "end_time": "24:00"}]


async def test_layer_orders_are_unique_per_schedule(api):
    sid = (await make_schedule(api))["schedule_id"]
    await make_layer(api, sid, order=0)
    other = await make_layer(api, sid, order=5)
    r = await api.post(f"{SCHEDULES}/{sid}/layers", json={"name": "dup", "order": 0, "rotation_type": "daily",
                                                           "start_at": iso(T), "participants": ["a"]})
    assert r.status_code == 409 and "order 0" in r.json()["detail"]
    url = f"{SCHEDULES}/{sid}/layers/{other['layer_id']}"
    assert (await api.request("PUT", url, json={"order": 0})).status_code == 409
    assert (await api.request("PUT", url, json={"order": 5, "name": "same"})).status_code == 200
    sid2 = (await make_schedule(api, "other"))["schedule_id"]
    await make_layer(api, sid2, order=0)  # another schedule may use it


async def test_a_schedule_holds_at_most_20_layers(api):
    sid = (await make_schedule(api))["schedule_id"]
    for _ in range(20):
        await make_layer(api, sid)
    r = await api.post(f"{SCHEDULES}/{sid}/layers", json={"name": "l", "rotation_type": "daily",
                                                           "start_at": iso(T), "participants": ["a"]})
    assert r.status_code == 409 and "20" in r.json()["detail"]


@pytest.mark.parametrize("fields,where", [
    ({"participants": []}, "participants"), ({"participants": ["has space"]}, "participants"),
    ({"participants": ["a"] * 101}, "participants"), ({"participants": ["../x"]}, "participants"),
    ({"handoff_time": "25:00"}, "handoff_time"), ({"handoff_time": "9:00"}, "handoff_time"),
    ({"rotation_type": "hourly"}, "rotation_type"), ({"rotation_type": "custom"}, "shift_hours"),
    ({"rotation_type": "custom", "shift_hours": 0}, "shift_hours"),
    ({"rotation_type": "custom", "shift_hours": 721}, "shift_hours"), ({"shift_hours": 12}, "shift_hours"),
    ({"handoff_day": 2}, "handoff_day"), ({"rotation_type": "weekly", "handoff_day": 7}, "handoff_day"),
    ({"start_at": "2030-06-03T09:00:00"}, "timezone"), ({"end_at": iso(T)}, "end_at"),
    ({"order": -1}, "order"), ({"name": ""}, "name"),
    ({"restrictions": [{"days_of_week": [7], "start_time": "09:00", "end_time": "17:00"}]}, "days"),
    ({"restrictions": [{"days_of_week": [1], "start_time": "09:00", "end_time": "09:00"}]}, "end_time"),
    ({"restrictions": [{"days_of_week": [1], "start_time": "09:00", "end_time": "24:30"}]}, "end_time"),
])
async def test_invalid_layers_are_422(api, fields, where):
    sid = (await make_schedule(api))["schedule_id"]
    body = {"name": "l", "rotation_type": "daily", "start_at": iso(T), "participants": ["a@x.io"], **fields}
    r = await api.post(f"{SCHEDULES}/{sid}/layers", json=body)
    assert r.status_code == 422 and where in r.text, r.text


async def test_delete_layer_takes_its_overrides_but_not_the_schedules(api):
    sid = (await make_schedule(api))["schedule_id"]
    layer = await make_layer(api, sid)
    await make_override(api, sid, layer_id=layer["layer_id"], responder="layer-cover")
    await make_override(api, sid, responder="schedule-cover")
    url = f"{SCHEDULES}/{sid}/layers/{layer['layer_id']}"
    assert (await api.delete(url)).status_code == 204
    assert (await api.delete(url)).status_code == 404
    assert (await api.request("PUT", url, json={"name": "x"})).status_code == 404
    r = (await api.get(f"{SCHEDULES}/{sid}/overrides")).json()
    assert [o["responder"] for o in r["overrides"]] == ["schedule-cover"]
    assert (await api.get(f"{SCHEDULES}/{sid}")).json()["layers"] == []


async def test_layer_of_another_schedule_is_404(api):
    a = (await make_schedule(api, "a"))["schedule_id"]
    b = (await make_schedule(api, "b"))["schedule_id"]
    layer = await make_layer(api, a)
    wrong = f"{SCHEDULES}/{b}/layers/{layer['layer_id']}"
    assert (await api.request("PUT", wrong, json={"name": "x"})).status_code == 404
    assert (await api.delete(wrong)).status_code == 404
    r = await api.post(f"{SCHEDULES}/{b}/overrides", json={"responder": "z", "layer_id": layer["layer_id"],
                                                           "start_at": iso(T), "end_at": iso(T + timedelta(hours=1))})
    assert r.status_code == 422 and "layer_id" in r.json()["detail"]


# ---- overrides -------------------------------------------------------------------------------------
async def test_overrides_are_listed_by_start_filtered_and_paginated(api):
    sid = (await make_schedule(api))["schedule_id"]
    for day in (3, 1, 2):
        await make_override(api, sid, responder=f"p{day}", start_at=iso(T + timedelta(days=day)),
                            end_at=iso(T + timedelta(days=day, hours=6)), reason="swap")
    r = (await api.get(f"{SCHEDULES}/{sid}/overrides")).json()
    assert [o["responder"] for o in r["overrides"]] == ["p1", "p2", "p3"] and r["total"] == 3
    o = r["overrides"][0]
    assert o["override_id"] and o["layer_id"] is None and o["reason"] == "swap"
    assert o["created_by"] == "customer_admin@acme" and o["start_at"].startswith("2030-06-04T09:00")
    r = (await api.get(f"{SCHEDULES}/{sid}/overrides", params={"limit": 1, "offset": 1})).json()
    assert [o["responder"] for o in r["overrides"]] == ["p2"] and r["total"] == 3
    params = {"start": iso(T + timedelta(days=2, hours=3)), "end": iso(T + timedelta(days=3))}
    r = (await api.get(f"{SCHEDULES}/{sid}/overrides", params=params)).json()
    assert [o["responder"] for o in r["overrides"]] == ["p2"]  # ends after start, starts before end
    r = (await api.get(f"{SCHEDULES}/{sid}/overrides", params={"start": iso(T + timedelta(days=2, hours=6))})).json()
    assert [o["responder"] for o in r["overrides"]] == ["p3"]
    assert (await api.get(f"{SCHEDULES}/{sid}/overrides", params={"start": "2030-06-03T00:00:00"})).status_code == 422


async def test_delete_override(api):
    sid = (await make_schedule(api))["schedule_id"]
    o = await make_override(api, sid)
    url = f"{SCHEDULES}/{sid}/overrides/{o['override_id']}"
    assert (await api.delete(url)).status_code == 204
    assert (await api.delete(url)).status_code == 404
    assert (await api.get(f"{SCHEDULES}/{sid}/overrides")).json()["total"] == 0


@pytest.mark.parametrize("fields,where", [
    ({"end_at": iso(T + timedelta(hours=2))}, "end_at"), ({"end_at": iso(T)}, "end_at"),
    ({"start_at": "2030-06-03T11:00:00"}, "timezone"), ({"responder": ""}, "responder"),
    ({"responder": "two words"}, "responder"), ({"layer_id": "nope"}, "layer_id"),
])
async def test_invalid_overrides_are_422(api, fields, where):
    sid = (await make_schedule(api))["schedule_id"]
    body = {"responder": "z@x.io", "start_at": iso(T + timedelta(hours=2)), "end_at": iso(T + timedelta(hours=4)),
            **fields}
    r = await api.post(f"{SCHEDULES}/{sid}/overrides", json=body)
    assert r.status_code == 422 and where in r.text, r.text


# ---- who is on call --------------------------------------------------------------------------------
async def test_current_gives_each_layer_and_the_final_answer(api):
    sid = (await make_schedule(api, timezone="Europe/Berlin"))["schedule_id"]
    business = [{"days_of_week": [0, 1, 2, 3, 4], "start_time": "09:00", "end_time": "17:00"}]
    primary = await make_layer(api, sid, name="primary", start_at="2030-06-03T07:00:00Z",  # Monday 09:00 CEST
                               participants=["ann", "bob"], restrictions=business)
    backup = await make_layer(api, sid, name="backup", rotation_type="weekly", participants=["cy"],
                              start_at="2030-06-03T07:00:00Z")
    c = await current(api, sid, datetime(2030, 6, 4, 10, tzinfo=UTC))  # Tuesday 12:00 CEST
    assert c["responders"] == ["bob"] and c["timezone"] == "Europe/Berlin"
    assert c["on_call"]["source"] == "layer" and c["on_call"]["layer_id"] == primary["layer_id"]
    assert c["on_call"]["start"].startswith("2030-06-04T07:00") and c["on_call"]["end"].startswith("2030-06-04T15:00")
    assert [(x["name"], x["on_call"]["responder"]) for x in c["layers"]] == [("primary", "bob"), ("backup", "cy")]
    c = await current(api, sid, datetime(2030, 6, 4, 20, tzinfo=UTC))  # after hours: the backup layer
    assert c["responders"] == ["cy"] and c["on_call"]["layer_id"] == backup["layer_id"]
    assert c["layers"][0]["on_call"] is None
    c = await current(api, sid, datetime(2030, 6, 1, tzinfo=UTC))  # before both layers start
    assert c["responders"] == [] and c["on_call"] is None and c["overrides"] == []


async def test_override_wins_and_the_latest_created_wins_among_overlaps(api):
    sid = (await make_schedule(api))["schedule_id"]
    await make_layer(api, sid, participants=["ann"])
    first = await make_override(api, sid, responder="zed", start_at=iso(T + timedelta(hours=1)),
                                end_at=iso(T + timedelta(hours=5)))
    second = await make_override(api, sid, responder="yan", start_at=iso(T + timedelta(hours=2)),
                                 end_at=iso(T + timedelta(hours=3)))
    c = await current(api, sid, T + timedelta(hours=2, minutes=30))
    assert c["responders"] == ["yan"] and c["on_call"]["override_id"] == second["override_id"]
    assert {o["override_id"] for o in c["overrides"]} == {first["override_id"], second["override_id"]}
    assert c["layers"][0]["on_call"]["responder"] == "ann"  # the layer's own rotation, without overrides
    assert (await current(api, sid, T + timedelta(hours=4)))["responders"] == ["zed"]
    assert (await current(api, sid, T + timedelta(hours=5)))["responders"] == ["ann"]


async def test_current_defaults_to_now_and_refuses_naive_instants(api):
    sid = (await make_schedule(api))["schedule_id"]
    await make_layer(api, sid, participants=["ann"], start_at=iso(datetime.now(UTC) - timedelta(days=1)))
    r = await api.get(f"{SCHEDULES}/{sid}/current")
    assert r.status_code == 200 and r.json()["responders"] == ["ann"]
    assert abs(datetime.fromisoformat(r.json()["at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert (await api.get(f"{SCHEDULES}/{sid}/current", params={"at": "2030-06-03T09:00:00"})).status_code == 422


async def test_timeline_per_layer_and_final_across_a_dst_change(api):
    sid = (await make_schedule(api, timezone="America/New_York"))["schedule_id"]
    await make_layer(api, sid, name="day", participants=["ann", "bob"], start_at="2030-03-08T14:00:00Z")  # 09:00 EST
    o = await make_override(api, sid, responder="zed", start_at="2030-03-10T18:00:00Z", end_at="2030-03-10T20:00:00Z")
    r = await api.get(f"{SCHEDULES}/{sid}/timeline", params={"start": "2030-03-09T14:00:00Z",
                                                             "end": "2030-03-11T13:00:00Z"})
    assert r.status_code == 200, r.text
    t = r.json()
    shifts = t["layers"][0]["shifts"]  # 2030-03-10 02:00 EST -> 03:00 EDT: that day lasts 23 hours
    assert [(s["responder"], s["start"][:16], s["end"][:16]) for s in shifts] == [
        ("bob", "2030-03-09T14:00", "2030-03-10T13:00"), ("ann", "2030-03-10T13:00", "2030-03-11T13:00")]
    assert [(f["responder"], f["source"], f["start"][:16], f["end"][:16]) for f in t["final"]] == [
        ("bob", "layer", "2030-03-09T14:00", "2030-03-10T13:00"),
        ("ann", "layer", "2030-03-10T13:00", "2030-03-10T18:00"),
        ("zed", "override", "2030-03-10T18:00", "2030-03-10T20:00"),
        ("ann", "layer", "2030-03-10T20:00", "2030-03-11T13:00")]
    assert t["final"][2]["override_id"] == o["override_id"]
    assert [x["override_id"] for x in t["overrides"]] == [o["override_id"]]


async def test_timeline_range_defaults_to_14_days_and_is_capped_at_60(api):
    sid = (await make_schedule(api))["schedule_id"]
    r = await api.get(f"{SCHEDULES}/{sid}/timeline", params={"start": iso(T)})
    assert r.status_code == 200 and r.json()["end"].startswith("2030-06-17T09:00") and r.json()["final"] == []
    url = f"{SCHEDULES}/{sid}/timeline"
    for params, where in (({"start": iso(T), "end": iso(T + timedelta(days=60, seconds=1))}, "60 days"),
                          ({"start": iso(T), "end": iso(T)}, "after"),
                          ({"start": iso(T), "end": iso(T - timedelta(days=1))}, "after"),
                          ({"start": "2030-06-03T09:00:00"}, "timezone")):
        r = await api.get(url, params=params)
        assert r.status_code == 422 and where in r.text, (params, r.text)
    assert (await api.get(url, params={"start": iso(T), "end": iso(T + timedelta(days=60))})).status_code == 200


async def test_changing_the_schedule_zone_moves_handoffs_to_its_wall_clock(api):
    sid = (await make_schedule(api))["schedule_id"]
    await make_layer(api, sid, participants=["ann", "bob"], handoff_time="09:00", start_at=iso(T))
    at = T + timedelta(days=1, hours=-1)  # Tuesday 08:00 UTC: still ann's shift in UTC
    assert (await current(api, sid, at))["responders"] == ["ann"]
    await api.request("PUT", f"{SCHEDULES}/{sid}", json={"timezone": "Europe/Berlin"})  # 08:00 UTC = 10:00 CEST
    assert (await current(api, sid, at))["responders"] == ["bob"]


async def test_responders_now_for_escalation(api):
    db = api.services.db
    sid = (await make_schedule(api))["schedule_id"]
    assert await oncall.responders_now(db, "acme", sid, T) == []
    await make_layer(api, sid, participants=["ann@acme.io", "bob@acme.io"])
    assert await oncall.responders_now(db, "acme", sid, T + timedelta(days=1)) == ["bob@acme.io"]
    await make_override(api, sid, responder="zed@acme.io")
    assert await oncall.responders_now(db, "acme", sid, T + timedelta(hours=3)) == ["zed@acme.io"]
    with pytest.raises(NotFound):
        await oncall.responders_now(db, "globex", sid, T)
    with pytest.raises(ValueError, match="naive"):
        await oncall.responders_now(db, "acme", sid, datetime(2030, 6, 3))
    await api.delete(f"{SCHEDULES}/{sid}")
    with pytest.raises(NotFound):
        await oncall.responders_now(db, "acme", sid, T)


# ---- tenancy and permissions -----------------------------------------------------------------------
ROUTES = [
    ("GET", "/{sid}", None), ("PUT", "/{sid}", {"name": "mine"}), ("DELETE", "/{sid}", None),
    ("POST", "/{sid}/layers", {"name": "l", "rotation_type": "daily", "start_at": iso(T), "participants": ["a"]}),
    ("PUT", "/{sid}/layers/{lid}", {"name": "mine"}), ("DELETE", "/{sid}/layers/{lid}", None),
    ("GET", "/{sid}/overrides", None),
    ("POST", "/{sid}/overrides", {"responder": "z", "start_at": iso(T), "end_at": iso(T + timedelta(hours=1))}),
    ("DELETE", "/{sid}/overrides/{oid}", None), ("GET", "/{sid}/current", None), ("GET", "/{sid}/timeline", None),
]


async def acme_fixture(api) -> dict[str, str]:
    sid = (await make_schedule(api))["schedule_id"]
    lid = (await make_layer(api, sid))["layer_id"]
    return {"sid": sid, "lid": lid, "oid": (await make_override(api, sid))["override_id"]}


@pytest.mark.parametrize("method,path,body", ROUTES)
async def test_another_tenants_schedule_is_404(api, method, path, body):
    ids = await acme_fixture(api)
    r = await api.request(method, SCHEDULES + path.format(**ids), tenant="globex", json=body)
    assert r.status_code == 404, r.text
    assert (await api.get(SCHEDULES, tenant="globex")).json()["schedules"] == []
    s = (await api.get(f"{SCHEDULES}/{ids['sid']}")).json()
    assert s["name"] == "primary" and [x["name"] for x in s["layers"]] == ["l"]
    assert (await api.get(f"{SCHEDULES}/{ids['sid']}/overrides")).json()["total"] == 1


WRITES = [
    ("POST", "", {"name": "x"}, "oncall.create"), ("PUT", "/{sid}", {"name": "y"}, "oncall.update"),
    ("DELETE", "/{sid}", None, "oncall.delete"),
    ("POST", "/{sid}/layers", ROUTES[3][2], "oncall.layers.write"),
    ("PUT", "/{sid}/layers/{lid}", {"name": "y"}, "oncall.layers.write"),
    ("DELETE", "/{sid}/layers/{lid}", None, "oncall.layers.write"),
    ("POST", "/{sid}/overrides", ROUTES[7][2], "oncall.overrides.write"),
    ("DELETE", "/{sid}/overrides/{oid}", None, "oncall.overrides.write"),
]


@pytest.mark.parametrize("method,path,body,permission", WRITES)
async def test_viewers_cannot_write_schedules(api, method, path, body, permission):
    ids = await acme_fixture(api)
    r = await api.request(method, SCHEDULES + path.format(**ids), role="customer_viewer", json=body)
    assert r.status_code == 403 and permission in r.json()["detail"]


async def test_viewers_read_every_view(api):
    ids = await acme_fixture(api)
    for method, path, _ in ROUTES:
        if method == "GET":
            r = await api.get(SCHEDULES + path.format(**ids), role="customer_viewer")
            assert r.status_code == 200, (path, r.text)
    assert (await api.get(SCHEDULES, role="customer_viewer")).json()["total"] == 1
    assert (await api.get(SCHEDULES, tenant=None, role="operator")).status_code == 403
    assert (await api.client.get(SCHEDULES)).status_code == 401
