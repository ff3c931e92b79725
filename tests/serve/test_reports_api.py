"""Reports: the SLA summary from alerts and presence made through ingest and the actors, the daily
scheduler run, quick exports, and the runs each of them records."""
import csv
import io
from datetime import datetime, time, timedelta, timezone

import pytest

from pulse.actors.scheduler import Scheduler
from pulse.services import reports
from pulse.storage import reports as report_store
from tests.serve.helpers import send, telemetry
from tests.serve.resources import make_devices

RUNS = "/api/v1/customer/reports/runs"
SLA = "/api/v1/customer/reports/sla-summary"
ALERTS = "/api/v1/customer/alerts"
EXPORT = "/api/v1/customer/export"
RULE = {"name": "Too hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "major",
        "auto_resolve": False}


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


async def _message(api, device: str, kind: str, at: datetime, **metrics) -> None:
    body = {"version": "1", "ts": at.isoformat(), "metrics": metrics} if kind == "telemetry" else {"ts": at.isoformat()}
    await send(api, "acme", device, kind, body)


async def _alert_of(api, device: str, alert_type: str = "THRESHOLD") -> int:
    (a,) = (await api.get(ALERTS, params={"device_id": device, "alert_type": alert_type})).json()["alerts"]
    return a["alert_id"]


async def _tenant_act(api, method: str, alert_id: int, at: datetime) -> None:
    """What PATCH …/acknowledge|close does, at a chosen time: the tenant actor applies the transition."""
    await api.services.runtime.tenant_call("acme", method, alert_id, "customer_admin@acme", _ms(at))


@pytest.fixture
async def fleet(api):
    """d1 and d2 report, d3 never does; d1 goes silent for a while (NO_HEARTBEAT), d2 is silent at the end.

    Seconds after B: 0 both over threshold (an alert each); d1 acked at 60, closed at 180; d2 acked at
    120; d2 heartbeats at 100 and 170; the tick at 150 finds d1 silent 150 s; d1 heartbeats at 200;
    the tick at 215 finds it back. The report is taken at B+240."""
    await make_devices(api, "d1", "d2", "d3")
    await make_devices(api, "g1", tenant="globex")
    created = {d: datetime.fromisoformat((await api.get(f"/api/v1/customer/devices/{d}")).json()["created_at"])
               for d in ("d1", "d2")}
    await api.post("/api/v1/customer/alert-rules", json=RULE)
    b = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    at = lambda s: b + timedelta(seconds=s)  # noqa: E731
    await _message(api, "d1", "telemetry", at(0), temp=31)
    await _message(api, "d2", "telemetry", at(0), temp=31)
    x1, x2 = await _alert_of(api, "d1"), await _alert_of(api, "d2")
    await _tenant_act(api, "acknowledge", x1, at(60))
    await _message(api, "d2", "heartbeat", at(100))
    await _tenant_act(api, "acknowledge", x2, at(120))
    assert await api.services.runtime.tick(None, _ms(at(150))) == 1  # d1's NO_HEARTBEAT
    await _message(api, "d2", "heartbeat", at(170))
    await _tenant_act(api, "close", x1, at(180))
    await _message(api, "d1", "heartbeat", at(200))
    await api.services.runtime.tick(None, _ms(at(215)))
    await api.services.runtime.flush()  # presence is read from the actors' snapshots
    return b, created


async def test_sla_figures_match_hand_computed_values(api, fleet):
    b, created = fleet
    now = b + timedelta(seconds=240)
    r = await reports.compute_sla(api.services.db, api.services.settings, "acme", now - timedelta(days=1), now, now)
    # d1 was down from 60 (last message 0 + stale 60 s) to 200 (the heartbeat that closed NO_HEARTBEAT):
    # 140 s; d2 is STALE since 230 (last heard at 170): 10 s; d3 never reported and is not measured
    observed = sum((now - created[d]).total_seconds() for d in ("d1", "d2"))
    assert r["availability_pct"] == round(100 * (observed - 150) / observed, 2)
    assert (r["total_devices"], r["online_devices"], r["online_pct"]) == (3, 1, 33.33)
    assert (r["total_alerts"], r["unresolved_alerts"]) == (3, 1)  # two thresholds + d1's NO_HEARTBEAT; x2 acked
    assert r["mtta_minutes"] == 1.5  # (60 s + 120 s) / 2
    assert r["mttr_minutes"] == round((180 + 65) / 2 / 60, 2)  # x1 180 s, NO_HEARTBEAT 150 -> 215
    assert r["top_alerting_devices"] == [{"device_id": "d1", "count": 2}, {"device_id": "d2", "count": 1}]
    assert r["period_days"] == 1


async def test_the_route_reports_and_records_a_run_per_tenant(api):
    await make_devices(api, "d1", "d2")
    await api.post("/api/v1/customer/alert-rules", json=RULE)
    await telemetry(api, "d1", 0, temp=31)  # an hour ago (helpers.T0)
    aid = await _alert_of(api, "d1")
    assert (await api.patch(f"{ALERTS}/{aid}/acknowledge")).status_code == 200
    r = await api.get(SLA, params={"days": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"period_days", "total_devices", "online_devices", "online_pct", "total_alerts", "unresolved_alerts",
            "mttr_minutes", "top_alerting_devices", "availability_pct", "mtta_minutes"} <= body.keys()
    assert (body["period_days"], body["total_devices"], body["total_alerts"], body["unresolved_alerts"]) == (7, 2, 1, 1)
    assert body["mttr_minutes"] is None and body["mtta_minutes"] >= 59  # acknowledged now, opened an hour ago
    assert body["top_alerting_devices"] == [{"device_id": "d1", "count": 1}]
    (run,) = (await api.get(RUNS)).json()["runs"]
    assert (run["report_type"], run["status"], run["triggered_by"], run["row_count"]) == (
        "sla_summary", "COMPLETED", "user:customer_admin@acme", 1)
    assert run["parameters"]["total_alerts"] == 1 and run["completed_at"]
    other = (await api.get(SLA, tenant="globex")).json()
    assert (other["total_devices"], other["total_alerts"], other["availability_pct"]) == (0, 0, None)
    assert [x["report_type"] for x in (await api.get(RUNS, tenant="globex")).json()["runs"]] == ["sla_summary"]
    assert (await api.get(RUNS)).json()["total"] == 1  # globex's run is not acme's


async def test_the_scheduler_makes_yesterdays_report_once_per_tenant(api):
    await make_devices(api, "d1")
    scheduler = Scheduler(api.services.settings, api.services.runtime)
    scheduler.db = api.services.db
    assert await scheduler.tick_sla_reports() == 2  # acme and globex
    assert await scheduler.tick_sla_reports() == 0  # not twice a day
    (run,) = (await api.get(RUNS, params={"report_type": "sla_summary"})).json()["runs"]
    assert (run["triggered_by"], run["status"], run["parameters"]["period_days"]) == ("scheduler", "COMPLETED", 1)
    today = datetime.now(timezone.utc).date()
    assert run["parameters"]["period_end"].startswith(today.isoformat())
    assert run["parameters"]["total_devices"] == 1
    assert len((await api.get(RUNS, tenant="globex")).json()["runs"]) == 1


async def test_a_scheduled_run_its_process_lost_is_made_again(api):
    """A crash between start and finish leaves a RUNNING run holding its day's schedule key."""
    today = datetime.now(timezone.utc).date()
    later = datetime.combine(today + timedelta(days=2), time(12), tzinfo=timezone.utc)
    day = (later.date() - timedelta(days=1)).isoformat()
    stuck = await report_store.start_run(api.services.db, "acme", "sla_summary", "scheduler", schedule_key=day)
    db, settings = api.services.db, api.services.settings
    assert await reports.daily_sla_reports(db, settings, datetime.now(timezone.utc)) == 2  # yesterday's
    status = {r["run_id"]: r["status"] for r in (await api.get(RUNS)).json()["runs"]}
    assert status[stuck] == "RUNNING"  # a run that just started is left alone

    assert await reports.daily_sla_reports(db, settings, later) == 2  # acme's day made again, and globex's
    runs = (await api.get(RUNS)).json()["runs"]
    assert {r["run_id"]: r["status"] for r in runs}[stuck] == "FAILED"
    assert sum(r["status"] == "COMPLETED" and r["parameters"]["period_end"].startswith(later.date().isoformat())
               for r in runs) == 1


async def test_device_export_csv_and_json(api):
    await make_devices(api, "d1", site_id="plant-a", name="Boiler", model="B-1")
    await make_devices(api, "d2")
    await api.post("/api/v1/customer/devices/d1/tags/hot")
    await api.post("/api/v1/customer/devices/d1/tags/zone-2")
    await make_devices(api, "g1", tenant="globex")
    now = datetime.now(timezone.utc)  # not the module's T0: the suite may have run for minutes since
    await send(api, "acme", "d2", "telemetry", {"version": "1", "ts": (now - timedelta(seconds=5)).isoformat(),
                                                "metrics": {"temp": 20}})  # d2 heard from 5 s ago: ONLINE
    await api.services.runtime.flush()
    r = await api.get(f"{EXPORT}/devices")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="devices-{datetime.now(timezone.utc):%Y%m%d}.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["device_id", "name", "model", "status", "site_id", "last_seen_at", "tags"]
    assert [(x["device_id"], x["name"], x["model"], x["status"], x["site_id"], x["tags"]) for x in rows] == [
        ("d1", "Boiler", "B-1", "OFFLINE", "plant-a", "hot,zone-2"), ("d2", "", "", "ONLINE", "", "")]
    assert rows[1]["last_seen_at"]
    r = await api.get(f"{EXPORT}/devices", params={"format": "JSON", "status": "online"})
    assert r.status_code == 200 and r.json()["count"] == 1 and r.json()["devices"][0]["device_id"] == "d2"
    r = await api.get(f"{EXPORT}/devices", params={"format": "json", "site_id": "plant-a"})
    assert [d["tags"] for d in r.json()["devices"]] == [["hot", "zone-2"]]
    runs = (await api.get(RUNS)).json()["runs"]
    assert [(x["report_type"], x["row_count"]) for x in runs] == [("device_export", 1), ("device_export", 1),
                                                                  ("device_export", 2)]
    assert runs[1]["parameters"] == {"format": "json", "status": "ONLINE", "site_id": None}
    assert (await api.get(f"{EXPORT}/devices", params={"format": "json"}, tenant="globex")).json()["count"] == 1


async def test_alert_export_filters_by_status_and_days(api):
    await make_devices(api, "d1", "d2")
    await api.post("/api/v1/customer/alert-rules", json=RULE)
    await telemetry(api, "d1", 0, temp=31)
    await telemetry(api, "d2", 0, temp=35)
    aid = await _alert_of(api, "d1")
    await api.patch(f"{ALERTS}/{aid}/close")
    r = await api.get(f"{EXPORT}/alerts")
    assert r.status_code == 200 and r.headers["content-disposition"].endswith(
        f'alerts-{datetime.now(timezone.utc):%Y%m%d}.csv"')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["alert_id", "device_id", "alert_type", "severity", "status", "created_at",
                             "acknowledged_at", "closed_at", "summary"]
    assert sorted((x["device_id"], x["status"], bool(x["closed_at"])) for x in rows) == [
        ("d1", "CLOSED", True), ("d2", "OPEN", False)]
    r = await api.get(f"{EXPORT}/alerts", params={"format": "json", "status": "open", "days": 1})
    assert r.json()["count"] == 1 and r.json()["alerts"][0]["device_id"] == "d2"
    empty = await api.get(f"{EXPORT}/alerts", tenant="globex")
    assert empty.status_code == 200 and empty.text.strip() == ",".join(reports.ALERT_COLUMNS)
    assert [x["report_type"] for x in (await api.get(RUNS)).json()["runs"]] == ["alert_export", "alert_export"]


@pytest.mark.parametrize("url, params, status, detail", [
    (f"{EXPORT}/devices", {"format": "xml"}, 400, "Invalid format"),
    (f"{EXPORT}/devices", {"status": "SLEEPING"}, 400, "Invalid status"),
    (f"{EXPORT}/alerts", {"format": "parquet"}, 400, "Invalid format"),
    (f"{EXPORT}/alerts", {"status": "RESOLVED"}, 400, "Invalid status"),
    (f"{EXPORT}/alerts", {"days": 0}, 422, None),
    (f"{EXPORT}/alerts", {"days": 366}, 422, None),
    (SLA, {"days": 0}, 422, None),
    (SLA, {"days": 366}, 422, None),
    (SLA, {"days": "month"}, 422, None),
    (RUNS, {"limit": 201}, 422, None),
    (RUNS, {"limit": 0}, 422, None),
    (RUNS, {"report_type": "weekly"}, 422, None),
])
async def test_bad_parameters_are_client_errors_and_record_nothing(api, url, params, status, detail):
    r = await api.get(url, params=params)
    assert r.status_code == status and r.json()["detail"]
    if detail:
        assert r.json()["detail"] == detail
    assert (await api.get(RUNS)).json()["runs"] == []


async def test_permissions(api):
    for url in (SLA, RUNS, f"{EXPORT}/devices", f"{EXPORT}/alerts"):
        assert (await api.get(url, role="customer_viewer")).status_code == 200
        assert (await api.get(url, role="operator", tenant=None)).status_code == 403
        assert (await api.client.get(url)).status_code == 401
