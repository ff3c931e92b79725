"""The device HTTP API (docs/device-protocol.md, "Device HTTP API"): the device token alone names the
device; twin, commands and job executions behave exactly as over MQTT because they go the same way."""
import pytest

from tests.serve.helpers import send

DEVICES = "/api/v1/customer/devices"
JOBS = "/api/v1/customer/jobs"


@pytest.fixture
async def tokens(api) -> dict[str, str]:
    out = {}
    for tenant, device in (("acme", "d1"), ("acme", "d2"), ("globex", "d1")):
        r = await api.post(DEVICES, tenant=tenant, json={"device_id": device})
        assert r.status_code == 201, r.text
        out[f"{tenant}/{device}"] = r.json()["token"]
    return out


async def device(api, token: str | None, method: str, path: str, **kw):
    headers = {"X-Provision-Token": token} if token is not None else {}
    return await api.client.request(method, f"/device/v1{path}", headers=headers, **kw)


# ---- auth --------------------------------------------------------------------------------------------------------
async def test_a_missing_or_wrong_token_is_401_with_a_detail(api, tokens):
    r = await device(api, None, "GET", "/shadow")
    assert r.status_code == 401 and r.json()["detail"] == "X-Provision-Token header required"
    r = await device(api, "not-a-token", "GET", "/jobs/pending")
    assert r.status_code == 401 and r.json()["detail"] == "invalid device token"
    user = await api.client.get("/device/v1/shadow", headers=api.headers())  # a user token is no device token
    assert user.status_code == 401


async def test_a_rotated_token_or_a_decommissioned_device_no_longer_works(api, tokens):
    old = tokens["acme/d1"]
    assert (await device(api, old, "GET", "/shadow")).status_code == 200
    new = (await api.post(f"{DEVICES}/d1/tokens/rotate", json={})).json()["token"]
    assert (await device(api, old, "GET", "/shadow")).status_code == 401
    assert (await device(api, new, "GET", "/shadow")).status_code == 200
    await api.patch(f"{DEVICES}/d1/decommission")
    assert (await device(api, new, "GET", "/shadow")).status_code == 401


async def test_repeated_failures_from_one_address_are_429_without_a_lookup(api, tokens):
    codes = [(await device(api, f"wrong-{i}", "GET", "/shadow")).status_code for i in range(25)]
    assert codes[:20] == [401] * 20 and codes[-1] == 429
    r = await device(api, tokens["acme/d1"], "GET", "/shadow")  # refused before its token is looked at
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


# ---- twin ---------------------------------------------------------------------------------------------------------
async def test_the_shadow_of_the_tokens_device_and_reported_state_merged_as_over_mqtt(api, tokens):
    r = await api.request("PATCH", f"{DEVICES}/d1/twin/desired", json={"interval": 30},
                          headers={**api.headers(), "If-Match": "*"})
    assert r.status_code == 200, r.text
    shadow = (await device(api, tokens["acme/d1"], "GET", "/shadow")).json()
    assert shadow["device_id"] == "d1" and shadow["desired"] == {"interval": 30} and shadow["delta"] == {"interval": 30}
    r = await device(api, tokens["acme/d1"], "POST", "/shadow/reported", json={"reported": {"interval": 30, "fw": "1"}})
    assert r.status_code == 200 and r.json()["reported"] == {"interval": 30, "fw": "1"} and r.json()["delta"] == {}
    await send(api, "acme", "d1", "shadow/reported", {"reported": {"fw": None, "mode": "eco"}})  # MQTT: same state
    r = await device(api, tokens["acme/d1"], "POST", "/shadow/reported", json={"reported": {"temp": 1}, "version": 9})
    assert r.json()["reported"] == {"interval": 30, "mode": "eco", "temp": 1} and r.json()["reported_version"] == 9
    twin = (await api.get(f"{DEVICES}/d1/twin")).json()
    assert twin["reported"] == r.json()["reported"]
    other = (await device(api, tokens["globex/d1"], "GET", "/shadow")).json()  # same id, other tenant
    assert other["desired"] == {} and other["reported"] == {}
    assert (await device(api, tokens["acme/d1"], "POST", "/shadow/reported", json={"reported": 3})).status_code == 422


# ---- commands -------------------------------------------------------------------------------------------------------
async def test_pending_commands_are_fetched_once_delivered_and_acked_as_over_mqtt(api, tokens):
    c1 = (await api.post(f"{DEVICES}/d1/commands", json={"type": "reboot", "params": {"delay_s": 5}})).json()
    c2 = (await api.post(f"{DEVICES}/d1/commands", json={"type": "ping"})).json()
    await api.post(f"{DEVICES}/d2/commands", json={"type": "other-device"})
    r = await device(api, tokens["acme/d1"], "GET", "/commands/pending")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["device_id"] == "d1"
    assert [(c["command_id"], c["type"], c["params"], c["status"]) for c in got["commands"]] == [
        (c1["command_id"], "reboot", {"delay_s": 5}, "delivered"), (c2["command_id"], "ping", {}, "delivered")]
    assert {c["status"] for c in (await api.get(f"{DEVICES}/d1/commands")).json()["commands"]} == {"delivered"}

    r = await device(api, tokens["acme/d1"], "POST", f"/commands/{c1['command_id']}/ack",
                     json={"status": "succeeded", "details": {"took_ms": 40}})
    assert r.status_code == 200 and r.json() == {"command_id": c1["command_id"], "status": "succeeded"}
    r = await device(api, tokens["acme/d1"], "POST", f"/commands/{c2['command_id']}/ack")  # default "ok"
    assert r.json()["status"] == "delivered"
    cmds = {c["command_id"]: c for c in (await api.get(f"{DEVICES}/d1/commands")).json()["commands"]}
    assert cmds[c1["command_id"]]["ack_details"] == {"took_ms": 40}
    pending = (await device(api, tokens["acme/d1"], "GET", "/commands/pending")).json()["commands"]
    assert [c["command_id"] for c in pending] == [c2["command_id"]]  # delivered but not settled
    r = await device(api, tokens["acme/d2"], "POST", f"/commands/{c2['command_id']}/ack", json={"status": "failed"})
    assert r.status_code == 404  # d1's command


# ---- jobs ------------------------------------------------------------------------------------------------------------
async def test_jobs_pending_get_and_put_with_the_optimistic_number(api, tokens):
    assert (await api.post(JOBS, json={"job_id": "j1", "document_type": "upgrade", "document_params": {"v": 2},
                                       "target_all": True})).status_code == 201
    token = tokens["acme/d1"]
    pending = (await device(api, token, "GET", "/jobs/pending")).json()
    assert pending["device_id"] == "d1"
    (e,) = pending["jobs"]
    assert (e["job_id"], e["document_type"], e["document_params"], e["status"], e["execution_number"]) == (
        "j1", "upgrade", {"v": 2}, "QUEUED", 1)
    got = await device(api, token, "GET", "/jobs/j1/execution")
    assert got.status_code == 200 and got.json()["device_id"] == "d1" and got.json()["expires_at"]

    r = await device(api, token, "PUT", "/jobs/j1/execution", json={"status": "IN_PROGRESS",
                                                                     "expected_execution_number": 1})
    assert r.status_code == 200 and (r.json()["status"], r.json()["execution_number"]) == ("IN_PROGRESS", 2)
    r = await device(api, token, "PUT", "/jobs/j1/execution", json={"status": "SUCCEEDED",
                                                                     "expected_execution_number": 1})
    assert r.status_code == 409 and r.json()["detail"] == "execution_number is 2, not 1"
    r = await device(api, token, "PUT", "/jobs/j1/execution",
                     json={"status": "succeeded", "expected_execution_number": 2, "status_details": {"ok": True}})
    assert r.status_code == 200 and r.json()["status_details"] == {"ok": True}
    r = await device(api, token, "PUT", "/jobs/j1/execution", json={"status": "FAILED"})
    assert r.status_code == 409 and r.json()["detail"] == "Cannot move execution from SUCCEEDED to FAILED"
    assert (await device(api, token, "GET", "/jobs/pending")).json()["jobs"] == []

    # d2 finishes over MQTT: the job completes whichever way its devices talk
    await send(api, "acme", "d2", "jobs/j1/update", {"status": "SUCCEEDED"})
    assert (await api.get(f"{JOBS}/j1")).json()["status"] == "COMPLETED"


async def test_job_executions_of_other_devices_and_tenants_are_404_and_bad_bodies_422(api, tokens):
    await api.post(JOBS, json={"job_id": "only-d2", "document_type": "x", "target_device_id": "d2"})
    for token in (tokens["acme/d1"], tokens["globex/d1"]):
        assert (await device(api, token, "GET", "/jobs/only-d2/execution")).status_code == 404
        r = await device(api, token, "PUT", "/jobs/only-d2/execution", json={"status": "SUCCEEDED"})
        assert r.status_code == 404 and r.json()["detail"] == "No execution of job only-d2 for this device"
    for body in ({"status": "QUEUED"}, {"status": "TIMED_OUT"}, {}, {"status": "SUCCEEDED", "status_details": 3},
                 {"status": "SUCCEEDED", "expected_execution_number": -1}):
        r = await device(api, tokens["acme/d2"], "PUT", "/jobs/only-d2/execution", json=body)
        assert r.status_code == 422, body


async def test_the_device_api_takes_no_user_token_and_writes_no_audit_rows(api, tokens):
    await device(api, tokens["acme/d1"], "POST", "/shadow/reported", json={"reported": {"a": 1}})
    events = (await api.get("/api/v1/customer/audit-log")).json()["events"]
    assert all("shadow" not in e["action"] for e in events)

