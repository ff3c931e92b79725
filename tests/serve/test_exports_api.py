"""Export jobs end to end: data in through the ingest path, jobs run by the scheduler's tick, files
downloaded through the signed redirect and parsed; errors, expiry, crash recovery and the callback."""
import csv
import io
import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest

from pulse.actors.scheduler import Scheduler
from pulse.domain.signed_links import signature
from pulse.services import exports as export_service
from pulse.storage import exports as export_store
from pulse.storage.db import utcnow
from tests.integrations.helpers import HttpTarget
from tests.serve.helpers import telemetry

DEVICES = "/api/v1/customer/devices"
EXPORTS = "/api/v1/customer/exports"


@pytest.fixture
async def fleet(api):
    """d1 (site s1, tagged) and d2 (site s2); d1 sends temp+hum 3 times, d2 temp twice; half flushed to
    Parquet, half still in the lake writer's buffer; one alert open on d1."""
    for device, site in (("d1", "s1"), ("d2", "s2")):
        assert (await api.post(DEVICES, json={"device_id": device, "site_id": site, "name": device.upper()})).status_code == 201
    await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["roof", "north"]})
    await api.post("/api/v1/customer/alert-rules",
                   json={"name": "hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "major"})
    await telemetry(api, "d1", 0, seq=1, temp=20.5, hum=40)
    await telemetry(api, "d2", 5, seq=1, temp=10)
    await api.services.runtime.flush()
    await telemetry(api, "d1", 60, seq=2, temp=21, hum=41)
    await telemetry(api, "d1", 120, seq=3, temp=35, hum=42)  # opens the alert
    await telemetry(api, "d2", 65, seq=2, temp=11)
    await telemetry(api, "d1", 0, seq=1, temp=20.5, hum=40)  # a redelivered duplicate: exported once


@pytest.fixture
def scheduler(api) -> Scheduler:
    s = Scheduler(api.services.settings, runtime=api.services.runtime)
    s.db = api.services.db
    return s


async def create(api, **body):
    r = await api.post(EXPORTS, json=body)
    assert r.status_code == 202, r.text
    return r.json()


async def download(api, export_id: str):
    """The authenticated 307, then the signed link followed without any token."""
    r = await api.get(f"{EXPORTS}/{export_id}/download")
    assert r.status_code == 307, r.text
    link = r.headers["location"]
    assert link.startswith("/api/v1/export-files/acme/")
    file = await api.client.get(link)
    assert file.status_code == 200, file.text
    return r, file


def parse(fmt: str, content: bytes) -> list[dict]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(content.decode())))
    if fmt == "json":
        return json.loads(content)
    return pq.read_table(io.BytesIO(content)).to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
async def test_telemetry_export_runs_on_the_tick_and_downloads_through_the_signed_link(api, fleet, scheduler, fmt):
    created = await create(api, export_type="telemetry", format=fmt, filters={"time_range": "24h"})
    assert created["status"] == "PENDING" and created["estimated_rows"] == 8
    job = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
    assert job["status"] == "PENDING" and job["download_url"] is None and job["rows_done"] == 0
    r = await api.get(f"{EXPORTS}/{created['export_id']}/download")
    assert r.status_code == 409 and r.json()["detail"] == "Export is not ready. Current status: PENDING"

    assert await scheduler.tick_exports() == 1
    job = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
    assert job["status"] == "COMPLETED" and job["row_count"] == 8 and job["rows_done"] == job["rows_total"] == 8
    assert job["download_url"] == f"{EXPORTS}/{created['export_id']}/download"
    assert job["filters"] == {"time_range": "24h"} and job["error"] is None
    redirect, file = await download(api, created["export_id"])
    assert redirect.headers["x-export-row-count"] == "8"
    assert int(file.headers["content-length"]) == job["file_size_bytes"] == len(file.content)
    rows = parse(fmt, file.content)
    got = [(r["device_id"], r["metric"], float(r["value"])) for r in rows]
    assert got == [("d1", "hum", 40), ("d1", "temp", 20.5), ("d1", "hum", 41), ("d1", "temp", 21),
                   ("d1", "hum", 42), ("d1", "temp", 35), ("d2", "temp", 10), ("d2", "temp", 11)]
    assert list(rows[0]) == ["device_id", "ts", "metric", "value", "seq"]


async def test_telemetry_filters_narrow_devices_sites_and_metrics(api, fleet, scheduler):
    by_site = await create(api, export_type="telemetry", format="json", filters={"site_ids": ["s2"]})
    by_metric = await create(api, export_type="telemetry", format="json",
                             filters={"device_ids": ["d1"], "metric_names": ["hum"], "time_range": "6h"})
    nothing = await create(api, export_type="telemetry", format="json", filters={"site_ids": ["nowhere"]})
    assert (by_site["estimated_rows"], by_metric["estimated_rows"], nothing["estimated_rows"]) == (2, 3, 0)
    assert await scheduler.tick_exports() == 3
    _, f = await download(api, by_site["export_id"])
    assert [r["value"] for r in f.json()] == [10, 11]
    _, f = await download(api, by_metric["export_id"])
    assert [r["value"] for r in f.json()] == [40, 41, 42]
    _, f = await download(api, nothing["export_id"])
    assert f.json() == []


async def test_device_and_alert_exports(api, fleet, scheduler):
    devices = await create(api, export_type="devices", format="csv")
    active = await create(api, export_type="devices", format="json", filters={"status": "active", "site_ids": ["s1"]})
    alerts = await create(api, export_type="alerts", format="parquet", filters={"status": "OPEN", "time_range": "1h"})
    assert (devices["estimated_rows"], active["estimated_rows"], alerts["estimated_rows"]) == (2, 1, 1)
    assert await scheduler.tick_exports() == 3
    _, f = await download(api, devices["export_id"])
    rows = parse("csv", f.content)
    assert [(r["device_id"], r["name"], r["site_id"], r["status"]) for r in rows] == [
        ("d1", "D1", "s1", "ACTIVE"), ("d2", "D2", "s2", "ACTIVE")]
    assert rows[0]["tags"] == "north,roof" and list(rows[0]) == ["device_id", "name", "model", "status", "site_id",
                                                                "last_seen_at", "tags", "created_at"]
    _, f = await download(api, active["export_id"])
    assert [d["device_id"] for d in f.json()] == ["d1"]
    _, f = await download(api, alerts["export_id"])
    (alert,) = parse("parquet", f.content)
    assert alert["device_id"] == "d1" and alert["status"] == "OPEN" and alert["alert_type"] == "THRESHOLD"


async def test_progress_is_visible_while_the_job_runs(api, fleet, scheduler, monkeypatch):
    created = await create(api, export_type="telemetry", format="csv")
    seen = []
    real = export_store.progress

    async def observed(db, job, rows_done, lease_until, rows_total=None):
        ok = await real(db, job, rows_done, lease_until, rows_total)
        j = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
        seen.append((j["status"], j["rows_done"], j["rows_total"]))
        return ok

    monkeypatch.setattr(export_service, "LAKE_BATCH_ROWS", 3)
    monkeypatch.setattr(export_store, "progress", observed)
    await scheduler.tick_exports()
    assert seen == [("PROCESSING", 0, 8), ("PROCESSING", 3, 8), ("PROCESSING", 6, 8), ("PROCESSING", 8, 8)]


async def test_files_expire_after_24_hours(api, fleet, scheduler):
    created = await create(api, export_type="devices", format="csv")
    await scheduler.tick_exports()
    job = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
    assert job["expires_at"] > job["created_at"]
    await download(api, created["export_id"])
    await scheduler.tick_exports(now=utcnow() + timedelta(hours=23))
    await download(api, created["export_id"])  # still there
    await scheduler.tick_exports(now=utcnow() + timedelta(hours=25))
    r = await api.get(f"{EXPORTS}/{created['export_id']}/download")
    assert r.status_code == 410
    job = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
    assert job["status"] == "COMPLETED" and job["download_url"] is None
    assert not any((api.services.settings.data_dir / "blobs").rglob("*.csv"))


async def test_a_job_left_processing_by_a_crashed_worker_is_run_again(api, fleet, scheduler):
    created = await create(api, export_type="devices", format="json")
    now = utcnow()
    claimed = await export_store.claim(api.services.db, now, export_service.LEASE)  # ... and its worker dies
    assert claimed["export_id"] == created["export_id"]
    assert await scheduler.tick_exports(now=now) == 0  # the lease still holds
    assert await scheduler.tick_exports(now=now + export_service.LEASE + timedelta(seconds=1)) == 1
    job = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
    assert job["status"] == "COMPLETED" and job["row_count"] == 2
    _, f = await download(api, created["export_id"])
    assert len(f.json()) == 2
    # the dead worker's late writes change nothing
    assert not await export_store.complete(api.services.db, claimed, 99, 1, now)


async def test_a_job_that_keeps_killing_its_worker_fails(api, fleet, scheduler):
    created = await create(api, export_type="devices")
    now = utcnow()
    for attempt in range(export_store.MAX_ATTEMPTS):
        assert await export_store.claim(api.services.db, now, export_service.LEASE)
        now += export_service.LEASE + timedelta(seconds=1)
    await scheduler.tick_exports(now=now)
    job = (await api.get(f"{EXPORTS}/{created['export_id']}")).json()
    assert job["status"] == "FAILED" and "giving up" in job["error"]


async def test_the_callback_url_gets_the_outcome(api, fleet, scheduler):
    target = await HttpTarget().start()
    try:
        created = await create(api, export_type="devices", format="csv", callback_url=target.url)
        await scheduler.tick_exports()
        (req,) = await target.wait_for(1)
        assert req.method == "POST" and req.path == "/hook"
        assert req.json() == {"export_id": created["export_id"], "status": "COMPLETED", "row_count": 2,
                              "download_url": f"{EXPORTS}/{created['export_id']}/download"}
    finally:
        await target.stop()


async def test_a_callback_that_cannot_be_reached_does_not_fail_the_job(api, fleet, scheduler):
    target = HttpTarget()  # never started: connection refused
    created = await create(api, export_type="devices", callback_url=target.url)
    assert await scheduler.tick_exports() == 1
    assert (await api.get(f"{EXPORTS}/{created['export_id']}")).json()["status"] == "COMPLETED"


async def test_list_is_newest_first_with_filters_as_objects(api, fleet):
    first = await create(api, export_type="devices")
    second = await create(api, export_type="alerts", filters={"alert_types": ["THRESHOLD"], "device_ids": None})
    r = (await api.get(EXPORTS)).json()
    assert r["total"] == 2 and [e["export_id"] for e in r["exports"]] == [second["export_id"], first["export_id"]]
    assert r["exports"][0]["filters"] == {"alert_types": ["THRESHOLD"]} and r["limit"] == 20
    assert set(r["exports"][0]) == {"export_id", "tenant_id", "export_type", "format", "filters", "status",
                                    "file_size_bytes", "row_count", "error", "download_url", "created_at",
                                    "started_at", "completed_at", "expires_at", "rows_done", "rows_total"}
    assert (await api.get(EXPORTS, params={"limit": 1, "offset": 1})).json()["exports"][0]["export_id"] == first["export_id"]
    assert (await api.get(EXPORTS, params={"limit": 101})).status_code == 422
    assert (await api.get(EXPORTS, tenant="globex")).json()["total"] == 0


async def test_errors(api, fleet, scheduler):
    assert (await api.post(EXPORTS, json={"export_type": "telemetry", "filters": {"time_range": "2d"}})).status_code == 400
    assert (await api.post(EXPORTS, json={"export_type": "things"})).status_code == 422
    assert (await api.post(EXPORTS, json={"export_type": "devices", "format": "xml"})).status_code == 422
    assert (await api.post(EXPORTS, json={"export_type": "devices", "callback_url": "file:///etc/passwd"})).status_code == 422
    r = await api.get(f"{EXPORTS}/not-a-uuid")
    assert r.status_code == 400 and r.json()["detail"] == "Invalid export_id"
    assert (await api.get(f"{EXPORTS}/not-a-uuid/download")).status_code == 400
    r = await api.get(f"{EXPORTS}/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["detail"] == "Export job not found"
    created = await create(api, export_type="devices")
    await scheduler.tick_exports()
    for path in ("", "/download"):  # another tenant's job does not exist for it
        assert (await api.get(f"{EXPORTS}/{created['export_id']}{path}", tenant="globex")).status_code == 404
    viewer = await api.post(EXPORTS, json={"export_type": "devices"}, role="customer_viewer")
    assert viewer.status_code == 403
    assert (await api.get(f"{EXPORTS}/{created['export_id']}", role="customer_viewer")).status_code == 200


async def test_signed_links_cannot_be_forged_reused_for_another_file_or_used_late(api, fleet, scheduler):
    a = await create(api, export_type="devices")
    b = await create(api, export_type="devices")
    await scheduler.tick_exports()
    link = (await api.get(f"{EXPORTS}/{a['export_id']}/download")).headers["location"]
    parts = urlsplit(link)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    files = "/api/v1/export-files/acme"
    assert (await api.client.get(f"{files}/{b['export_id']}", params=q)).status_code == 403
    assert (await api.client.get(f"/api/v1/export-files/globex/{a['export_id']}", params=q)).status_code == 403
    assert (await api.client.get(parts.path, params={**q, "expires": int(q["expires"]) + 1})).status_code == 403
    assert (await api.client.get(parts.path, params={**q, "signature": "0" * 64})).status_code == 403
    assert (await api.client.get(parts.path, params={**q, "signature": "nope"})).status_code == 422
    assert (await api.client.get(parts.path, params=q)).status_code == 200
    late = int(time.time()) - 1
    resource = f"exports/acme/{a['export_id']}"
    stale = {"expires": late, "signature": signature(api.services.settings.resolved_download_url_secret(), resource, late)}
    r = await api.client.get(parts.path, params=stale)
    assert r.status_code == 403 and r.json()["detail"] == "Invalid or expired download link"
