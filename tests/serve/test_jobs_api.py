"""IoT jobs over the customer API (docs/jobs.md): a job per target kind with one execution per device,
the documented errors, list/get/cancel, tenant isolation and permissions; the device side over the
ingest pipeline the MQTT bridges use (updates answered accepted/rejected, notify on reconnect); and the
expiry sweep, called as the scheduler calls it."""
import json
from datetime import timedelta

import pytest

from pulse.actors.scheduler import Scheduler
from pulse.storage.db import utcnow
from tests.serve.helpers import send
from tests.serve.resources import make_devices

JOBS = "/api/v1/customer/jobs"
GROUPS = "/api/v1/customer/device-groups"
LIST_KEYS = {"job_id", "document_type", "document_params", "status", "target_device_id", "target_group_id",
             "target_all", "expires_at", "created_by", "created_at", "updated_at", "total_executions",
             "succeeded_count", "failed_count"}
EXECUTION_KEYS = {"device_id", "status", "status_details", "queued_at", "started_at", "last_updated_at",
                  "execution_number"}


class Sent:
    """Records what the services hand to the downlink (the MQTT messages Pulse would publish)."""

    def __init__(self) -> None:
        self.messages = []

    async def publish(self, messages, wait_s: float = 0.0) -> None:
        self.messages.extend(messages)

    async def close(self) -> None:
        pass

    def take(self) -> list[tuple[str, dict]]:
        out, self.messages = [(m.topic, json.loads(m.payload)) for m in self.messages], []
        return out


@pytest.fixture
async def sent(api):
    real, api.services.downlink = api.services.downlink, Sent()
    yield api.services.downlink
    api.services.downlink = real


@pytest.fixture
async def fleet(api):
    await make_devices(api, "d1", "d2", "d3")
    await make_devices(api, "g1", tenant="globex")


async def create(api, status=201, **body) -> dict:
    r = await api.post(JOBS, json={"document_type": "reboot", **body})
    assert r.status_code == status, r.text
    return r.json()


async def group(api, name: str, *members: str, query: dict | None = None) -> str:
    r = await api.post(GROUPS, json={"name": name, **({"query": query} if query else {})})
    assert r.status_code == 201, r.text
    gid = r.json()["group_id"]
    for d in members:
        assert (await api.request("PUT", f"{GROUPS}/{gid}/devices/{d}")).status_code == 200
    return gid


async def job(api, job_id: str) -> dict:
    r = await api.get(f"{JOBS}/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def update(api, device: str, job_id: str, **body) -> tuple[str, dict]:
    """An execution update as a device publishes it; Pulse's reply (topic suffix, body)."""
    result, rejections = await send(api, "acme", device, f"jobs/{job_id}/update", body)
    assert rejections == []
    (reply,) = result.publishes
    return reply.topic.rsplit("/", 1)[1], json.loads(reply.payload)


# ---- create ---------------------------------------------------------------------------------------------------
async def test_a_job_to_one_device_queues_one_execution_and_notifies_it(api, fleet, sent):
    created = await create(api, job_id="fw-check", document_params={"url": "https://x/doc"}, target_device_id="d2")
    assert created["job_id"] == "fw-check" and created["status"] == "IN_PROGRESS"
    assert created["execution_count"] == 1 and created["expires_at"] is not None
    (topic, body), = sent.take()
    assert topic == "tenant/acme/device/d2/jobs/notify"
    assert body["job_id"] == "fw-check" and body["document_type"] == "reboot"
    assert body["document_params"] == {"url": "https://x/doc"} and body["status"] == "QUEUED"
    assert body["execution_number"] == 1 and body["queued_at"] and body["expires_at"]
    got = await job(api, "fw-check")
    assert got["tenant_id"] == "acme" and got["target_device_id"] == "d2" and got["created_by"] == "customer_admin@acme"
    (e,) = got["executions"]
    assert set(e) == EXECUTION_KEYS and e["device_id"] == "d2" and e["status"] == "QUEUED"
    assert e["execution_number"] == 1 and e["started_at"] is None and e["status_details"] is None


async def test_a_job_to_all_goes_to_every_active_device_of_the_tenant_only(api, fleet, sent):
    await api.patch("/api/v1/customer/devices/d3/decommission")
    created = await create(api, target_all=True)
    assert created["execution_count"] == 2
    assert sorted(t for t, _ in sent.take()) == [f"tenant/acme/device/{d}/jobs/notify" for d in ("d1", "d2")]
    assert [e["device_id"] for e in (await job(api, created["job_id"]))["executions"]] == ["d1", "d2"]


async def test_a_job_to_a_static_or_dynamic_group_goes_to_its_current_members(api, fleet, sent):
    static = await group(api, "pair", "d1", "d3")
    created = await create(api, target_group_id=static)
    assert created["execution_count"] == 2 and created["job_id"]  # a generated id
    assert [e["device_id"] for e in (await job(api, created["job_id"]))["executions"]] == ["d1", "d3"]
    await api.request("PUT", "/api/v1/customer/devices/d2/tags", json={"tags": ["roof"]})
    dynamic = await group(api, "roof", query={"tags": ["roof"]})
    by_query = await create(api, target_group_id=dynamic)
    assert by_query["execution_count"] == 1
    assert [e["device_id"] for e in (await job(api, by_query["job_id"]))["executions"]] == ["d2"]


async def test_documented_target_errors(api, fleet):
    detail = "Exactly one of target_device_id, target_group_id, target_all must be set"
    for body in ({}, {"target_device_id": "d1", "target_all": True},
                 {"target_device_id": "d1", "target_group_id": "x"}):
        r = await api.post(JOBS, json={"document_type": "x", **body})
        assert r.status_code == 400 and r.json()["detail"] == detail
    r = await api.post(JOBS, json={"document_type": "x", "target_device_id": "g1"})  # globex's device
    assert r.status_code == 404 and r.json()["detail"] == "Device not found"
    r = await api.post(JOBS, json={"document_type": "x", "target_group_id": await group(api, "empty")})
    assert r.status_code == 400 and r.json()["detail"] == "Group has no members"
    r = await api.post(JOBS, json={"document_type": "x", "target_group_id": "no-such-group"})
    assert r.status_code == 404 and r.json()["detail"] == "Group not found"
    r = await api.post(JOBS, tenant="globex", json={"document_type": "x", "target_all": True})
    assert r.status_code == 201  # globex has g1
    await api.request("DELETE", "/api/v1/customer/devices/g1", tenant="globex")
    r = await api.post(JOBS, tenant="globex", json={"document_type": "x", "target_all": True})
    assert r.status_code == 400 and r.json()["detail"] == "No devices in tenant"


async def test_a_job_id_twice_is_409_and_per_tenant(api, fleet):
    await create(api, job_id="once", target_device_id="d1")
    r = await api.post(JOBS, json={"job_id": "once", "document_type": "x", "target_all": True})
    assert r.status_code == 409 and r.json()["detail"] == "Job already exists"
    assert (await api.post(JOBS, tenant="globex", json={"job_id": "once", "document_type": "x",
                                                        "target_all": True})).status_code == 201


@pytest.mark.parametrize("body,field", [({"document_type": ""}, "document_type"),
                                        ({"document_type": "x" * 101}, "document_type"),
                                        ({"job_id": "a/b"}, "job_id"), ({"job_id": "+"}, "job_id"),
                                        ({"job_id": "x" * 129}, "job_id"),
                                        ({"expires_in_hours": 0}, "expires_in_hours"),
                                        ({"expires_in_hours": 721}, "expires_in_hours"),
                                        ({"document_params": {"blob": "x" * 9000}}, "document_params"),
                                        ({"expires_in_hours": 2, "expires_in_seconds": 60}, "body")])
async def test_invalid_bodies_are_422_naming_the_field(api, fleet, body, field):
    r = await api.post(JOBS, json={"document_type": "x", "target_all": True, **body})
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), r.text


async def test_expiry_default_explicit_null_and_seconds(api, fleet):
    before = utcnow()
    default = await create(api, target_device_id="d1")
    assert "expires_at" in default
    listed = {j["job_id"]: j for j in (await api.get(JOBS)).json()}
    expires = listed[default["job_id"]]["expires_at"]
    assert expires.startswith((before + timedelta(hours=24)).strftime("%Y-%m-%dT%H"))
    assert (await create(api, target_device_id="d1", expires_in_hours=None))["expires_at"] is None
    short = await create(api, target_device_id="d1", expires_in_seconds=30)
    assert short["expires_at"] is not None


# ---- list, get, cancel ------------------------------------------------------------------------------------------
async def test_list_is_a_bare_array_newest_first_with_counts_and_a_free_text_status_filter(api, fleet):
    first = await create(api, job_id="j-1", target_all=True)
    await create(api, job_id="j-2", target_device_id="d1")
    await update(api, "d1", "j-1", status="SUCCEEDED")
    await update(api, "d2", "j-1", status="FAILED")
    r = await api.get(JOBS)
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert [j["job_id"] for j in r.json()] == ["j-2", "j-1"] and set(r.json()[0]) == LIST_KEYS
    j1 = r.json()[1]
    assert (j1["total_executions"], j1["succeeded_count"], j1["failed_count"]) == (3, 1, 1)
    assert j1["document_params"] == {} and j1["target_all"] is True and first["job_id"] == "j-1"
    assert [j["job_id"] for j in (await api.get(JOBS, params={"limit": 1, "offset": 1})).json()] == ["j-1"]
    assert len((await api.get(JOBS, params={"status": "IN_PROGRESS"})).json()) == 2
    assert (await api.get(JOBS, params={"status": "whatever"})).json() == []
    assert (await api.get(JOBS, params={"limit": 201})).status_code == 422


async def test_cancel_rejects_queued_executions_and_leaves_running_ones(api, fleet):
    await create(api, job_id="stop-me", target_all=True)
    await update(api, "d1", "stop-me", status="IN_PROGRESS")
    r = await api.request("DELETE", f"{JOBS}/stop-me", json={"reason": "wrong build"})
    assert r.status_code == 200 and r.json() == {"job_id": "stop-me", "status": "CANCELED"}
    got = await job(api, "stop-me")
    by_device = {e["device_id"]: e for e in got["executions"]}
    assert got["status"] == "CANCELED" and by_device["d1"]["status"] == "IN_PROGRESS"
    assert by_device["d2"]["status"] == "REJECTED" and by_device["d2"]["status_details"] == {"reason": "wrong build"}
    r = await api.delete(f"{JOBS}/stop-me")
    assert r.status_code == 400 and r.json()["detail"] == "Cannot cancel job in status CANCELED"
    # the running one may still finish; the job stays CANCELED
    assert (await update(api, "d1", "stop-me", status="SUCCEEDED"))[0] == "accepted"
    assert (await job(api, "stop-me"))["status"] == "CANCELED"


async def test_cancel_without_a_body_uses_the_default_reason_and_a_completed_job_cannot_be_canceled(api, fleet):
    await create(api, job_id="c1", target_device_id="d1")
    assert (await api.delete(f"{JOBS}/c1")).status_code == 200
    assert (await job(api, "c1"))["executions"][0]["status_details"] == {"reason": "canceled by operator"}
    await create(api, job_id="c2", target_device_id="d1")
    await update(api, "d1", "c2", status="SUCCEEDED")
    r = await api.delete(f"{JOBS}/c2")
    assert r.status_code == 400 and r.json()["detail"] == "Cannot cancel job in status COMPLETED"


async def test_another_tenants_job_is_404_and_missing_ones_too(api, fleet):
    await create(api, job_id="mine", target_device_id="d1")
    for method in ("GET", "DELETE"):
        r = await api.request(method, f"{JOBS}/mine", tenant="globex")
        assert r.status_code == 404 and r.json()["detail"] == "Job not found"
    assert (await api.get(JOBS, tenant="globex")).json() == []
    assert (await api.get(f"{JOBS}/nope")).status_code == 404


async def test_viewers_read_only_and_writes_are_audited(api, fleet):
    await create(api, job_id="audited", target_device_id="d1")
    assert (await api.get(JOBS, role="customer_viewer")).status_code == 200
    assert (await api.get(f"{JOBS}/audited", role="customer_viewer")).status_code == 200
    r = await api.post(JOBS, role="customer_viewer", json={"document_type": "x", "target_all": True})
    assert r.status_code == 403 and r.json()["detail"] == "missing permission jobs.write"
    assert (await api.delete(f"{JOBS}/audited", role="customer_viewer")).status_code == 403
    assert (await api.get(JOBS, role="operator")).status_code == 403
    assert (await api.delete(f"{JOBS}/audited")).status_code == 200
    events = (await api.get("/api/v1/customer/audit-log", params={"entity_type": "job"})).json()["events"]
    assert sorted((e["action"], e["entity_id"]) for e in events) == [("create", "audited"), ("delete", "audited")]


# ---- the device side over MQTT (the pipeline the bridges use) ----------------------------------------------------
async def test_updates_are_accepted_in_order_and_complete_the_job(api, fleet):
    await create(api, job_id="run", target_device_id="d1")
    assert await update(api, "d1", "run", status="in_progress") == (
        "accepted", {"job_id": "run", "status": "IN_PROGRESS", "execution_number": 2})
    reply, body = await update(api, "d1", "run", status="SUCCEEDED", expected_execution_number=2,
                               status_details={"took_s": 3})
    assert reply == "accepted" and body["execution_number"] == 3
    got = await job(api, "run")
    (e,) = got["executions"]
    assert got["status"] == "COMPLETED" and e["status"] == "SUCCEEDED" and e["status_details"] == {"took_s": 3}
    assert e["started_at"] and e["last_updated_at"] >= e["started_at"]


async def test_refused_updates_are_answered_on_rejected_with_a_code(api, fleet):
    await create(api, job_id="r", target_all=True)
    await update(api, "d1", "r", status="IN_PROGRESS")
    assert await update(api, "d1", "r", status="SUCCEEDED", expected_execution_number=1) == (
        "rejected", {"job_id": "r", "code": "VERSION_MISMATCH", "detail": "execution_number is 2, not 1",
                     "execution_number": 2})
    await update(api, "d1", "r", status="FAILED")
    reply, body = await update(api, "d1", "r", status="SUCCEEDED")
    assert reply == "rejected" and body["code"] == "INVALID_TRANSITION" and body["execution_number"] == 3
    reply, body = await update(api, "d1", "unknown-job", status="SUCCEEDED")
    assert reply == "rejected" and body["code"] == "NOT_FOUND" and body["execution_number"] is None
    reply, body = await update(api, "d2", "r", status="QUEUED")
    assert reply == "rejected" and body["code"] == "INVALID_TRANSITION"
    assert (await job(api, "r"))["status"] == "IN_PROGRESS"  # d2 and d3 are still open


async def test_a_listening_device_is_notified_of_its_open_executions(api, fleet):
    await create(api, job_id="a", target_device_id="d1")
    await create(api, job_id="b", target_all=True)
    await create(api, job_id="done", target_device_id="d1")
    await update(api, "d1", "done", status="SUCCEEDED")
    await update(api, "d1", "b", status="IN_PROGRESS")
    result, _ = await send(api, "acme", "d1", "presence", {"connected": True})
    notes = [(m.topic, json.loads(m.payload)) for m in result.publishes if m.topic.endswith("/jobs/notify")]
    assert [(b["job_id"], b["status"], b["execution_number"]) for _, b in notes] == [("a", "QUEUED", 1),
                                                                                   ("b", "IN_PROGRESS", 2)]
    assert all(t == "tenant/acme/device/d1/jobs/notify" for t, _ in notes)
    result, _ = await send(api, "acme", "d1", "presence", {"connected": True, "subscribed": False})
    assert result.publishes == []  # connected but not listening yet


# ---- expiry ----------------------------------------------------------------------------------------------------
async def test_the_expiry_tick_times_out_open_executions_and_completes_the_job(api, fleet):
    await create(api, job_id="exp", target_all=True, expires_in_seconds=60)
    await create(api, job_id="keep", target_device_id="d1", expires_in_hours=None)
    await update(api, "d1", "exp", status="SUCCEEDED")
    await update(api, "d2", "exp", status="IN_PROGRESS")
    scheduler = Scheduler(api.services.settings)
    assert "expire_jobs" in scheduler._every()
    scheduler.db = api.services.db
    assert await scheduler.tick_expire_jobs() == 0  # not yet
    assert await scheduler.tick_expire_jobs(utcnow() + timedelta(seconds=61)) == 2
    got = await job(api, "exp")
    assert got["status"] == "COMPLETED"
    assert [(e["device_id"], e["status"], e["execution_number"]) for e in got["executions"]] == [
        ("d1", "SUCCEEDED", 2), ("d2", "TIMED_OUT", 3), ("d3", "TIMED_OUT", 2)]
    listed = {j["job_id"]: j for j in (await api.get(JOBS)).json()}
    assert listed["exp"]["failed_count"] == 2 and listed["keep"]["status"] == "IN_PROGRESS"
    assert await scheduler.tick_expire_jobs(utcnow() + timedelta(days=365)) == 0  # nothing expires twice
    reply, body = await update(api, "d2", "exp", status="SUCCEEDED")
    assert reply == "rejected" and body["code"] == "INVALID_TRANSITION"


async def test_the_running_executions_of_a_canceled_job_time_out_too(api, fleet):
    await create(api, job_id="late", target_device_id="d1", expires_in_seconds=60)
    await update(api, "d1", "late", status="IN_PROGRESS")
    await api.delete(f"{JOBS}/late")
    scheduler = Scheduler(api.services.settings)
    scheduler.db = api.services.db
    assert await scheduler.tick_expire_jobs(utcnow() + timedelta(seconds=61)) == 1
    got = await job(api, "late")
    assert got["status"] == "CANCELED" and got["executions"][0]["status"] == "TIMED_OUT"
