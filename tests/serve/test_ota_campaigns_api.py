"""OTA campaigns over HTTP against a LocalRuntime (docs/ota.md): CRUD, transitions and their documented
refusals, pagination and filters, tenant isolation, permissions, validation, and the rollout itself:
wave ticks of the service (as the scheduler runs them) with a recording downlink, and device reports
and reconnects through the device shards, as the ingest bridge hands them over."""
from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import urlsplit

import pytest

from pulse.actors.scheduler import Scheduler
from pulse.services import ota as ota_service
from pulse.services.ingest import limits_from

FIRMWARE = "/api/v1/customer/firmware"
CAMPAIGNS = "/api/v1/customer/ota/campaigns"
IMAGE = b"\x7fELF firmware image \x00\x01" * 50


class RecordingDownlink:
    """The Downlink port, keeping what it was given."""

    def __init__(self) -> None:
        self.sent = []

    async def publish(self, messages, wait_s: float = 0.0) -> None:
        self.sent.extend(messages)

    async def close(self) -> None:
        pass

    def take(self) -> dict[str, dict]:
        """device id -> instruction body, of everything sent since the last take."""
        out = {m.topic.split("/")[3]: json.loads(m.payload) for m in self.sent}
        assert all(m.topic.endswith("/ota") and m.qos == 1 for m in self.sent)
        self.sent = []
        return out


@pytest.fixture
def downlink(api) -> RecordingDownlink:
    recorder = RecordingDownlink()
    api.services.downlink = recorder
    api.services.settings.ota_wave_interval_s = 0  # each tick may send a wave
    return recorder


async def devices(api, *ids: str, tenant: str = "acme", **fields) -> None:
    for d in ids:
        r = await api.post("/api/v1/customer/devices", json={"device_id": d, **fields}, tenant=tenant)
        assert r.status_code == 201, r.text


async def firmware(api, version: str = "2.0.0", hosted: bool = True, tenant: str = "acme") -> dict:
    body = {"version": version} if hosted else {"version": version, "file_url": "https://cdn.example/fw.bin",
                                                "checksum_sha256": "c" * 64, "file_size_bytes": 9}
    r = await api.post(FIRMWARE, json=body, tenant=tenant)
    assert r.status_code == 201, r.text
    if hosted:
        r = await api.post(f"{FIRMWARE}/{r.json()['id']}/image", content=IMAGE, tenant=tenant,
                           headers={**api.headers(tenant), "Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    return r.json()


async def static_group(api, name: str, *members: str, tenant: str = "acme") -> str:
    r = await api.post("/api/v1/customer/device-groups", json={"name": name}, tenant=tenant)
    assert r.status_code == 201, r.text
    gid = r.json()["group_id"]
    for d in members:
        assert (await api.request("PUT", f"/api/v1/customer/device-groups/{gid}/devices/{d}",
                                  tenant=tenant)).status_code == 200
    return gid


async def campaign(api, fw: dict, tenant: str = "acme", **body) -> dict:
    r = await api.post(CAMPAIGNS, json={"name": "rollout", "firmware_version_id": fw["id"], **body}, tenant=tenant)
    assert r.status_code == 201, r.text
    return r.json()


async def tick(api, downlink) -> int:
    return await ota_service.run_waves(api.services.db, api.services.settings, downlink)


async def report(api, device_id: str, campaign_id: int, status: str, tenant: str = "acme", **extra):
    """A device's `…/ota/status` through the device shards, as the ingest bridge hands it over."""
    body = json.dumps({"campaign_id": campaign_id, "status": status, **extra}).encode()
    return await api.services.runtime.ingest([(f"tenant/{tenant}/device/{device_id}/ota/status", body)],
                                             int(time.time() * 1000), limits_from(api.services.settings))


async def device_statuses(api, campaign_id: int) -> dict[str, str]:
    r = await api.get(f"{CAMPAIGNS}/{campaign_id}/devices", params={"limit": 200})
    assert r.status_code == 200, r.text
    return {d["device_id"]: d["status"] for d in r.json()["devices"]}


async def status_of(api, campaign_id: int) -> dict:
    r = await api.get(f"{CAMPAIGNS}/{campaign_id}")
    assert r.status_code == 200, r.text
    return r.json()


# ---- create, read, list ----------------------------------------------------------------------------------
async def test_create_over_a_static_group_resolves_members_into_pending_devices(api, downlink):
    await devices(api, "d1", "d2", "d3")
    fw = await firmware(api)
    gid = await static_group(api, "roof", "d1", "d3")
    created = await campaign(api, fw, target_group_id=gid, rollout_rate=5, abort_threshold=0.2)
    assert created["status"] == "CREATED" and created["total_devices"] == 2
    assert created["target_group_id"] == gid and created["created_by"] == "customer_admin@acme"
    assert created["rollout_strategy"] == "linear" and created["rollout_rate"] == 5
    assert created["abort_threshold"] == 0.2 and created["succeeded"] == created["failed"] == 0
    assert created["status_breakdown"] == {"PENDING": 2} and created["firmware_version"] == "2.0.0"
    assert created["firmware_checksum"] == hashlib.sha256(IMAGE).hexdigest() and created["tenant_id"] == "acme"
    assert await device_statuses(api, created["id"]) == {"d1": "PENDING", "d3": "PENDING"}
    assert await status_of(api, created["id"]) == created
    assert downlink.sent == []  # nothing goes out before start


async def test_a_dynamic_group_and_explicit_devices_are_targets_too(api, downlink):
    await devices(api, "a1", "a2", site_id="north")
    await devices(api, "b1", site_id="south")
    fw = await firmware(api, hosted=False)
    r = await api.post("/api/v1/customer/device-groups", json={"name": "north", "query": {"site_id": "north"}})
    dynamic = await campaign(api, fw, target_group_id=r.json()["group_id"])
    assert set(await device_statuses(api, dynamic["id"])) == {"a1", "a2"}
    explicit = await campaign(api, fw, device_ids=["b1", "a2", "b1"])  # repeats count once
    assert explicit["target_group_id"] is None and explicit["total_devices"] == 2
    assert await device_statuses(api, explicit["id"]) == {"b1": "PENDING", "a2": "PENDING"}


async def test_create_refusals_have_the_documented_status_and_detail(api, downlink):
    await devices(api, "d1")
    fw = await firmware(api)
    body = {"name": "x", "firmware_version_id": fw["id"]}
    r = await api.post(CAMPAIGNS, json={**body, "firmware_version_id": fw["id"] + 99, "device_ids": ["d1"]})
    assert r.status_code == 404 and r.json()["detail"] == "Firmware version not found"
    r = await api.post(CAMPAIGNS, json={**body, "target_group_id": "no-such-group"})
    assert r.status_code == 404 and r.json()["detail"] == "Device group not found"
    empty = await static_group(api, "empty")
    r = await api.post(CAMPAIGNS, json={**body, "target_group_id": empty})
    assert r.status_code == 400 and r.json()["detail"] == "Device group has no members"
    r = await api.post(CAMPAIGNS, json={**body, "device_ids": ["d1", "ghost"]})
    assert r.status_code == 404 and r.json()["detail"] == "Devices not found: ghost"
    bare = await api.post(FIRMWARE, json={"version": "9.9"})  # no file_url, no image
    r = await api.post(CAMPAIGNS, json={**body, "firmware_version_id": bare.json()["id"], "device_ids": ["d1"]})
    assert r.status_code == 400 and "no image" in r.json()["detail"]
    other = await firmware(api, "1.0", tenant="globex")
    r = await api.post(CAMPAIGNS, json={**body, "firmware_version_id": other["id"], "device_ids": ["d1"]})
    assert r.status_code == 404 and r.json()["detail"] == "Firmware version not found"


@pytest.mark.parametrize("extra,field", [
    ({}, "body"), ({"target_group_id": "g", "device_ids": ["d1"]}, "body"),
    ({"device_ids": []}, "device_ids"), ({"device_ids": ["bad id"]}, "device_ids"),
    ({"device_ids": ["d1"], "rollout_strategy": "blue-green"}, "rollout_strategy"),
    ({"device_ids": ["d1"], "rollout_rate": 0}, "rollout_rate"),
    ({"device_ids": ["d1"], "rollout_rate": 1001}, "rollout_rate"),
    ({"device_ids": ["d1"], "abort_threshold": 1.5}, "abort_threshold"),
    ({"device_ids": ["d1"], "name": ""}, "name"), ({"device_ids": ["d1"], "name": "n" * 101}, "name"),
    ({"device_ids": ["d1"], "firmware_version_id": "one"}, "firmware_version_id"),
])
async def test_invalid_bodies_are_422(api, downlink, extra, field):
    r = await api.post(CAMPAIGNS, json={"name": "x", "firmware_version_id": 1, **extra})
    assert r.status_code == 422, r.text
    if field != "body":
        assert r.json()["detail"].startswith(f"{field}"), r.text
    else:
        assert "exactly one of target_group_id and device_ids" in r.json()["detail"]


async def test_list_pages_filters_by_status_in_any_case_and_counts_every_match(api, downlink):
    await devices(api, "d1")
    fw = await firmware(api, hosted=False)
    ids = [(await campaign(api, fw, name=f"c{i}", device_ids=["d1"]))["id"] for i in range(3)]
    await api.post(f"{CAMPAIGNS}/{ids[0]}/abort")
    listing = (await api.get(CAMPAIGNS, params={"limit": 2})).json()
    assert listing["total"] == 3 and listing["limit"] == 2 and listing["offset"] == 0
    assert [c["id"] for c in listing["campaigns"]] == [ids[2], ids[1]]  # newest first
    rest = (await api.get(CAMPAIGNS, params={"limit": 2, "offset": 2})).json()
    assert [c["id"] for c in rest["campaigns"]] == [ids[0]]
    created = (await api.get(CAMPAIGNS, params={"status": "created"})).json()
    assert created["total"] == 2 and {c["status"] for c in created["campaigns"]} == {"CREATED"}
    item = created["campaigns"][0]
    assert item["firmware_version"] == "2.0.0" and item["firmware_device_type"] is None
    assert (await api.get(CAMPAIGNS, params={"status": "BOGUS"})).status_code == 422
    assert (await api.get(CAMPAIGNS, params={"limit": 201})).status_code == 422


async def test_device_list_pages_and_filters(api, downlink):
    await devices(api, "d1", "d2", "d3")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d3", "d1", "d2"], rollout_rate=1)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    page = (await api.get(f"{CAMPAIGNS}/{c['id']}/devices", params={"limit": 2})).json()
    assert page["campaign_id"] == c["id"] and page["total"] == 3 and page["limit"] == 2
    assert set(page["devices"][0]) >= {"device_id", "status", "progress_pct", "error_message", "started_at",
                                       "completed_at", "created_at"}
    pending = (await api.get(f"{CAMPAIGNS}/{c['id']}/devices", params={"status": "pending"})).json()
    assert pending["total"] == 2 and {d["status"] for d in pending["devices"]} == {"PENDING"}
    assert (await api.get(f"{CAMPAIGNS}/{c['id']}/devices", params={"status": "DONE"})).status_code == 422
    r = await api.get(f"{CAMPAIGNS}/{c['id'] + 1}/devices")
    assert r.status_code == 404 and r.json()["detail"] == "Campaign not found"


# ---- transitions -----------------------------------------------------------------------------------------
async def test_transitions_and_their_documented_refusals(api, downlink):
    await devices(api, "d1", "d2")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1", "d2"], rollout_rate=1)
    api.services.settings.ota_wave_interval_s = 3600  # the resume sends no second wave
    url = f"{CAMPAIGNS}/{c['id']}"
    r = await api.post(url + "/pause")
    assert r.status_code == 400 and r.json()["detail"] == "Cannot pause campaign in status CREATED"
    r = await api.post(url + "/start")
    assert r.status_code == 200 and r.json() == {"id": c["id"], "status": "RUNNING"}
    started_at = (await status_of(api, c["id"]))["started_at"]
    r = await api.post(url + "/start")
    assert r.status_code == 400 and r.json()["detail"] == "Cannot start campaign in status RUNNING"
    assert (await api.post(url + "/pause")).json() == {"id": c["id"], "status": "PAUSED"}
    assert (await api.post(url + "/start")).json()["status"] == "RUNNING"
    assert (await status_of(api, c["id"]))["started_at"] == started_at  # kept on resume
    assert (await api.post(url + "/abort")).json() == {"id": c["id"], "status": "ABORTED"}
    r = await api.post(url + "/abort")
    assert r.status_code == 400 and r.json()["detail"] == "Campaign already in terminal status ABORTED"
    r = await api.post(url + "/start")
    assert r.status_code == 400 and r.json()["detail"] == "Cannot start campaign in status ABORTED"
    detail = await status_of(api, c["id"])
    assert detail["completed_at"] and detail["abort_reason"] == "aborted by customer_admin@acme"
    # d1 had its wave (started), d2 was still pending: skipped
    assert await device_statuses(api, c["id"]) == {"d1": "DOWNLOADING", "d2": "SKIPPED"}


async def test_another_tenants_campaign_is_404_everywhere(api, downlink):
    await devices(api, "d1")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1"])
    for method, suffix in [("GET", ""), ("GET", "/devices"), ("POST", "/start"), ("POST", "/pause"),
                           ("POST", "/abort")]:
        r = await api.request(method, f"{CAMPAIGNS}/{c['id']}{suffix}", tenant="globex")
        assert r.status_code == 404 and r.json()["detail"] == "Campaign not found", (method, suffix)
    assert (await api.get(CAMPAIGNS, tenant="globex")).json()["total"] == 0
    assert (await status_of(api, c["id"]))["status"] == "CREATED"


async def test_viewers_read_and_only_admins_write(api, downlink):
    await devices(api, "d1")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1"])
    assert (await api.get(CAMPAIGNS, role="customer_viewer")).status_code == 200
    assert (await api.get(f"{CAMPAIGNS}/{c['id']}/devices", role="customer_viewer")).status_code == 200
    r = await api.post(f"{CAMPAIGNS}/{c['id']}/start", role="customer_viewer")
    assert r.status_code == 403 and "ota.write" in r.json()["detail"]
    r = await api.post(CAMPAIGNS, json={"name": "x", "firmware_version_id": fw["id"], "device_ids": ["d1"]},
                       role="customer_viewer")
    assert r.status_code == 403
    assert (await api.get(CAMPAIGNS, role="operator")).status_code == 403  # customer routes
    assert (await api.client.get(CAMPAIGNS)).status_code == 401


async def test_transitions_are_in_the_audit_trail(api, downlink):
    await devices(api, "d1")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1"])
    await api.post(f"{CAMPAIGNS}/{c['id']}/abort")
    events = (await api.get("/api/v1/customer/audit-log", params={"entity_type": "ota_campaign"})).json()["events"]
    assert {(e["action"], e["entity_id"]) for e in events} >= {("create", str(c["id"])), ("abort", str(c["id"]))}


# ---- waves -----------------------------------------------------------------------------------------------
async def test_start_sends_the_first_wave_with_a_signed_link_and_ticks_send_the_rest(api, downlink):
    await devices(api, "d1", "d2", "d3", "d4", "d5")
    fw = await firmware(api)
    c = await campaign(api, fw, device_ids=["d1", "d2", "d3", "d4", "d5"], rollout_rate=2)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    first = downlink.take()
    assert set(first) == {"d1", "d2"}
    body = first["d1"]
    assert {k: body[k] for k in ("campaign_id", "firmware_id", "version", "checksum_sha256", "file_size_bytes")} == {
        "campaign_id": c["id"], "firmware_id": fw["id"], "version": "2.0.0",
        "checksum_sha256": hashlib.sha256(IMAGE).hexdigest(), "file_size_bytes": len(IMAGE)}
    settings = api.services.settings
    assert body["url"].startswith(f"http://{settings.http_host}:{settings.http_port}/api/v1/firmware-files/acme/")
    link = urlsplit(body["url"])
    image = await api.client.get(f"{link.path}?{link.query}")  # no user token: the signature is the credential
    assert image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == body["checksum_sha256"]
    assert await tick(api, downlink) == 2 and set(downlink.take()) == {"d3", "d4"}
    assert await tick(api, downlink) == 1 and set(downlink.take()) == {"d5"}
    assert await tick(api, downlink) == 0  # all dispatched, none finished
    detail = await status_of(api, c["id"])
    assert detail["status"] == "RUNNING" and detail["waves"] == 3 and detail["status_breakdown"] == {"DOWNLOADING": 5}


async def test_a_wave_at_most_once_per_interval(api, downlink):
    await devices(api, "d1", "d2")
    fw = await firmware(api, hosted=False)
    api.services.settings.ota_wave_interval_s = 3600
    c = await campaign(api, fw, device_ids=["d1", "d2"], rollout_rate=1)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    assert downlink.take()["d1"]["url"] == "https://cdn.example/fw.bin"  # a registered URL as it is
    assert await tick(api, downlink) == 0  # the start's wave was just now


async def test_reports_move_devices_and_counters_and_success_sets_fw_version(api, downlink):
    await devices(api, "d1", "d2", "d3")
    fw = await firmware(api)
    c = await campaign(api, fw, device_ids=["d1", "d2", "d3"], rollout_rate=3, abort_threshold=0.5)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    res = await report(api, "d1", c["id"], "downloading", progress_pct=30)
    assert res.accepted == 1 and not res.rejections
    await report(api, "d1", c["id"], "INSTALLING")
    await report(api, "d1", c["id"], "DOWNLOADING", progress_pct=90)  # backwards: ignored
    await report(api, "d1", c["id"], "SUCCESS")
    await report(api, "d1", c["id"], "FAILED", error="late")  # finished: ignored
    await report(api, "d2", c["id"], "FAILED", error="flash write failed")
    rows = {d["device_id"]: d for d in (await api.get(f"{CAMPAIGNS}/{c['id']}/devices")).json()["devices"]}
    assert rows["d1"]["status"] == "SUCCESS" and rows["d1"]["progress_pct"] == 100 and rows["d1"]["completed_at"]
    assert rows["d2"]["status"] == "FAILED" and rows["d2"]["error_message"] == "flash write failed"
    assert rows["d3"]["status"] == "DOWNLOADING" and rows["d3"]["completed_at"] is None
    detail = await status_of(api, c["id"])
    assert (detail["succeeded"], detail["failed"]) == (1, 1)
    assert (await api.get("/api/v1/customer/devices/d1")).json()["fw_version"] == "2.0.0"
    assert (await api.get("/api/v1/customer/devices/d2")).json().get("fw_version") is None
    await report(api, "d3", c["id"], "SUCCESS")
    await tick(api, downlink)
    detail = await status_of(api, c["id"])
    assert detail["status"] == "COMPLETED" and detail["completed_at"]
    assert (detail["succeeded"], detail["failed"]) == (2, 1)


async def test_reports_on_unknown_campaigns_or_from_non_targets_are_ignored(api, downlink):
    await devices(api, "d1", "d2")
    await devices(api, "d1", tenant="globex")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1"])
    await report(api, "d1", c["id"], "SUCCESS")  # CREATED: nobody was instructed
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    for res in [await report(api, "d2", c["id"], "SUCCESS"),  # not a target
                await report(api, "d1", c["id"] + 50, "SUCCESS"),  # no such campaign
                await report(api, "d1", c["id"], "SUCCESS", tenant="globex"),  # same device id, other tenant
                await report(api, "d1", c["id"], "REBOOTING")]:  # not a status
        assert res.accepted == 1 and not res.rejections  # a valid message: ignored by OTA, not quarantined
    assert await device_statuses(api, c["id"]) == {"d1": "DOWNLOADING"}
    assert (await status_of(api, c["id"]))["succeeded"] == 0


async def test_failure_rate_above_the_threshold_aborts_on_its_own(api, downlink):
    ids = [f"d{i}" for i in range(6)]
    await devices(api, *ids)
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=ids, rollout_rate=2, abort_threshold=0.4)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    assert set(downlink.take()) == {"d0", "d1"}
    await report(api, "d0", c["id"], "SUCCESS")
    await report(api, "d1", c["id"], "FAILED", error="bad")  # 1 of 2 failed: 0.5 > 0.4
    assert await tick(api, downlink) == 0 and downlink.take() == {}
    detail = await status_of(api, c["id"])
    assert detail["status"] == "ABORTED" and detail["abort_reason"].startswith("failure rate 0.50")
    assert detail["status_breakdown"] == {"SUCCESS": 1, "FAILED": 1, "SKIPPED": 4}


async def test_canary_waits_for_its_first_wave_then_goes_on_linearly(api, downlink):
    ids = [f"d{i}" for i in range(5)]
    await devices(api, *ids)
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=ids, rollout_rate=2, rollout_strategy="canary", abort_threshold=0.5)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    assert set(downlink.take()) == {"d0", "d1"}
    await report(api, "d0", c["id"], "SUCCESS")
    assert await tick(api, downlink) == 0  # d1 still running: the canary holds
    await report(api, "d1", c["id"], "INSTALLING")
    assert await tick(api, downlink) == 0
    await report(api, "d1", c["id"], "SUCCESS")
    assert await tick(api, downlink) == 2 and set(downlink.take()) == {"d2", "d3"}
    assert await tick(api, downlink) == 1 and set(downlink.take()) == {"d4"}  # linear: no waiting now


async def test_a_failed_canary_aborts_the_campaign(api, downlink):
    ids = [f"d{i}" for i in range(4)]
    await devices(api, *ids)
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=ids, rollout_rate=2, rollout_strategy="canary", abort_threshold=0.0)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    await report(api, "d0", c["id"], "FAILED", error="boot loop")
    await tick(api, downlink)  # judged once the canary wave (2 devices) finished
    assert (await status_of(api, c["id"]))["status"] == "RUNNING"
    await report(api, "d1", c["id"], "SUCCESS")
    await tick(api, downlink)
    assert (await status_of(api, c["id"]))["status"] == "ABORTED"
    assert await device_statuses(api, c["id"]) == {"d0": "FAILED", "d1": "SUCCESS", "d2": "SKIPPED",
                                                   "d3": "SKIPPED"}
    assert (await status_of(api, c["id"]))["succeeded"] == 1
    assert (await api.get("/api/v1/customer/devices/d1")).json()["fw_version"] == "2.0.0"


async def test_pause_stops_new_waves_and_start_resumes(api, downlink):
    ids = [f"d{i}" for i in range(4)]
    await devices(api, *ids)
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=ids, rollout_rate=1)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    downlink.take()
    await api.post(f"{CAMPAIGNS}/{c['id']}/pause")
    assert await tick(api, downlink) == 0 and downlink.take() == {}
    await report(api, "d0", c["id"], "SUCCESS")  # an instructed device goes on while paused
    assert (await status_of(api, c["id"]))["succeeded"] == 1
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    assert set(downlink.take()) == {"d1"}


async def test_a_device_that_never_finishes_fails_at_the_timeout_so_the_campaign_ends(api, downlink):
    await devices(api, "d1", "d2")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1", "d2"], rollout_rate=2, abort_threshold=1.0)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    await report(api, "d1", c["id"], "SUCCESS")
    await tick(api, downlink)
    assert (await status_of(api, c["id"]))["status"] == "RUNNING"
    api.services.settings.ota_device_timeout_s = 0
    await tick(api, downlink)
    detail = await status_of(api, c["id"])
    assert detail["status"] == "COMPLETED" and (detail["succeeded"], detail["failed"]) == (1, 1)
    row = (await api.get(f"{CAMPAIGNS}/{c['id']}/devices", params={"status": "FAILED"})).json()["devices"][0]
    assert row["device_id"] == "d2" and row["error_message"].startswith("timed out")


async def test_a_device_that_reconnects_gets_its_instruction_again_until_the_campaign_ends(api, downlink):
    await devices(api, "d1", "d2", "d3")
    fw = await firmware(api)
    c = await campaign(api, fw, device_ids=["d1", "d2"], rollout_rate=2)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    downlink.take()
    presence = json.dumps({"connected": True}).encode()
    now_ms, limits = int(time.time() * 1000), limits_from(api.services.settings)
    res = await api.services.runtime.ingest([(f"tenant/acme/device/{d}/presence", presence) for d in ("d1", "d3")],
                                            now_ms, limits)
    again = [p for p in res.publishes if p.topic.endswith("/ota")]
    assert [p.topic for p in again] == ["tenant/acme/device/d1/ota"]  # d3 is no target
    body = json.loads(again[0].payload)
    assert body["campaign_id"] == c["id"] and "signature=" in body["url"]
    await report(api, "d1", c["id"], "SUCCESS")
    res = await api.services.runtime.ingest([("tenant/acme/device/d1/presence", presence)], now_ms + 1, limits)
    assert not [p for p in res.publishes if p.topic.endswith("/ota")]  # finished: nothing more
    await api.post(f"{CAMPAIGNS}/{c['id']}/abort")
    res = await api.services.runtime.ingest([("tenant/acme/device/d2/presence", presence)], now_ms + 2, limits)
    assert not [p for p in res.publishes if p.topic.endswith("/ota")]  # the campaign ended


async def test_the_scheduler_runs_the_wave_tick(api, downlink):
    await devices(api, "d1", "d2")
    fw = await firmware(api, hosted=False)
    c = await campaign(api, fw, device_ids=["d1", "d2"], rollout_rate=1)
    await api.post(f"{CAMPAIGNS}/{c['id']}/start")
    downlink.take()
    scheduler = Scheduler(api.services.settings, api.services.runtime)
    scheduler.db, scheduler.downlink = api.services.db, downlink
    assert "ota_waves" in scheduler._every()
    assert await scheduler.tick_ota_waves() == 1 and set(downlink.take()) == {"d2"}
