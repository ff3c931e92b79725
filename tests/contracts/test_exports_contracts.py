"""The export-job routes against the documented contract (shared/reference/api-contracts.md §4):
documented bodies in, documented statuses and keys out. The signed-file route is Pulse's stand-in
for the documented pre-signed S3 URL; it is reached through the download's redirect."""
from __future__ import annotations

from pulse.actors.scheduler import Scheduler
from pulse.serve.routes import exports
from tests.contracts.helpers import answers, assert_accounted_for, has_keys

EXPORTS = "/api/v1/customer/exports"
JOB_KEYS = ("export_id", "tenant_id", "export_type", "format", "filters", "status", "file_size_bytes", "row_count",
            "error", "download_url", "created_at", "started_at", "completed_at", "expires_at")
CHECKED = {("POST", EXPORTS), ("GET", EXPORTS), ("GET", EXPORTS + "/{export_id}"),
           ("GET", EXPORTS + "/{export_id}/download"), ("GET", "/api/v1/export-files/{tenant_id}/{export_id}")}


def test_every_export_route_is_checked():
    assert_accounted_for([exports.router], CHECKED, {})


async def test_documented_bodies_statuses_and_keys(api):
    assert (await api.post("/api/v1/customer/devices", json={"device_id": "d1"})).status_code == 201
    body = {"export_type": "devices", "format": "csv",
            "filters": {"time_range": "7d", "device_ids": ["d1"], "site_ids": None, "status": None},
            "callback_url": None}
    created = answers(await api.post(EXPORTS, json=body), 202, ("export_id", "status", "estimated_rows", "message"))
    assert created["status"] == "PENDING" and created["estimated_rows"] == 1
    job = answers(await api.get(f"{EXPORTS}/{created['export_id']}"), 200, JOB_KEYS)
    assert job["filters"] == {"time_range": "7d", "device_ids": ["d1"]} and job["download_url"] is None
    listing = answers(await api.get(EXPORTS, params={"limit": 20, "offset": 0}), 200, ("exports", "total"))
    has_keys(listing["exports"][0], JOB_KEYS)
    scheduler = Scheduler(api.services.settings, runtime=api.services.runtime)
    scheduler.db = api.services.db
    await scheduler.tick_exports()
    r = await api.get(f"{EXPORTS}/{created['export_id']}/download")
    assert r.status_code == 307 and r.headers["x-export-row-count"] == "1"
    file = await api.client.get(r.headers["location"])
    assert file.status_code == 200 and file.text.splitlines()[1].startswith('"d1",')
