"""The delivery log under its documented names: a real alert's notification delivered to a webhook on
127.0.0.1 (failing once, then delivered), read back as delivery jobs, their attempts and the status feed."""
import asyncio
import pytest

from tests.integrations.helpers import HttpTarget
from tests.serve.helpers import telemetry

BASE = "/api/v1/customer"
RULE = {"name": "hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "critical"}


@pytest.fixture
async def delivered(api):
    """One OPEN notification whose first send got a 503 and whose retry was delivered: (channel id, target)."""
    target = await HttpTarget(503).start()
    try:
        ch = await api.post(f"{BASE}/notification-channels",
                            json={"name": "ops", "channel_type": "webhook", "config": {"url": target.url}})
        assert ch.status_code == 201, ch.text
        channel_id = ch.json()["channel_id"]
        r = await api.post(f"{BASE}/notification-routing-rules", json={"channel_ids": [channel_id], "events": ["OPEN"]})
        assert r.status_code == 201, r.text
        await api.post(f"{BASE}/devices", json={"device_id": "d1"})
        await api.post(f"{BASE}/alert-rules", json=RULE)
        api.services.settings.notifier_backoff_base_s = 0.05  # the retry is due at once
        await telemetry(api, "d1", 0, temp=35)
        await _settle(api)
        yield channel_id, target
    finally:
        await target.stop()


async def _settle(api):
    """Send until every job is done; the notifier's own loop sends too, on the real clock (a pinned
    future clock would let two senders take the same job)."""
    notifier = api.services.runtime.notifier_ref
    for _ in range(200):
        await notifier.run_due()
        jobs = (await api.get(f"{BASE}/delivery-jobs")).json()["jobs"]
        if jobs and all(j["status"] in ("COMPLETED", "FAILED") for j in jobs):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"jobs not settled: {jobs}")


async def test_delivery_jobs_show_the_notification_job_under_documented_names(api, delivered):
    channel_id, target = delivered
    assert len(target.requests) == 2
    page = (await api.get(f"{BASE}/delivery-jobs")).json()
    (job,) = page["jobs"]
    assert page["total"] == 1
    assert job["integration_id"] == channel_id and job["route_id"] is None
    assert job["status"] == "COMPLETED" and job["attempts"] == 2 and job["deliver_on_event"] == "OPEN"
    assert job["created_at"].endswith("Z") and job["updated_at"].endswith("Z")
    for iid in (channel_id, f"ch-{channel_id}"):
        assert (await api.get(f"{BASE}/delivery-jobs", params={"integration_id": iid})).json()["total"] == 1
    assert (await api.get(f"{BASE}/delivery-jobs", params={"status": "FAILED"})).json()["total"] == 0


async def test_attempts_of_a_job_are_its_send_log(api, delivered):
    job_id = (await api.get(f"{BASE}/delivery-jobs")).json()["jobs"][0]["job_id"]
    r = await api.get(f"{BASE}/delivery-jobs/{job_id}/attempts")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job_id"] == job_id
    first, second = body["attempts"]
    assert (first["attempt_no"], first["ok"], first["http_status"]) == (1, False, 503) and first["error"]
    assert (second["attempt_no"], second["ok"], second["http_status"]) == (2, True, 200)
    assert second["latency_ms"] >= 0 and second["started_at"] <= second["finished_at"]


async def test_delivery_status_lists_the_latest_attempts_newest_first(api, delivered):
    body = (await api.get(f"{BASE}/delivery-status")).json()
    assert body["tenant_id"] == "acme"
    assert [(a["attempt_no"], a["ok"]) for a in body["attempts"]] == [(2, True), (1, False)]
    assert {a["tenant_id"] for a in body["attempts"]} == {"acme"}
    assert len((await api.get(f"{BASE}/delivery-status", params={"limit": 1})).json()["attempts"]) == 1


async def test_another_tenant_sees_none_of_it(api, delivered):
    job_id = (await api.get(f"{BASE}/delivery-jobs")).json()["jobs"][0]["job_id"]
    r = await api.get(f"{BASE}/delivery-jobs/{job_id}/attempts", tenant="globex")
    assert r.status_code == 404 and r.json()["detail"] == "Delivery job not found"
    assert (await api.get(f"{BASE}/delivery-jobs", tenant="globex")).json()["total"] == 0
    assert (await api.get(f"{BASE}/delivery-status", tenant="globex")).json()["attempts"] == []


async def test_unknown_job_is_404(api):
    r = await api.get(f"{BASE}/delivery-jobs/999/attempts")
    assert r.status_code == 404 and r.json()["detail"] == "Delivery job not found"


@pytest.mark.parametrize("params", [{"integration_id": "ch-"}, {"integration_id": "abc"},
                                    {"integration_id": "ch-not-a-channel"}])
async def test_bad_integration_id_is_400(api, params):
    r = await api.get(f"{BASE}/delivery-jobs", params=params)
    assert r.status_code == 400 and r.json()["detail"] == "Invalid integration_id"


@pytest.mark.parametrize("url, params", [("/delivery-jobs", {"limit": 201}), ("/delivery-jobs", {"limit": 0}),
                                         ("/delivery-jobs", {"status": "DONE"}), ("/delivery-status", {"limit": 101})])
async def test_out_of_range_queries_are_422(api, url, params):
    r = await api.get(BASE + url, params=params)
    assert r.status_code == 422 and r.json()["detail"], r.text


async def test_reading_the_delivery_log_needs_notifications_read(api):
    r = await api.get(f"{BASE}/delivery-status", role="customer_viewer")
    assert r.status_code == 200
