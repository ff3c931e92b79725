"""The 1NCE simulator over real HTTP: auth, paging headers, status changes, usage window, quotas, SMS,
rate limit and error shape (reference §B)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from pulse.simulators.onence import (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, OneNceSim, SimCard, luhn_digit,
                                     months_back)
from pulse.simulators.server import SimServer

CLIENT = ("acme-api", "s3cret")
ICCID = "8988280666000000101"


def _sims(n: int = 3) -> list[SimCard]:
    return [SimCard(f"89882806660000{i:05d}", imei=f"3569380356{i:05d}") for i in range(101, 101 + n)]


@pytest.fixture
def sim() -> OneNceSim:
    return OneNceSim({CLIENT[0]: CLIENT[1]}, _sims(), rate_limit_per_s=None, bulk_delay_s=0.05)


@pytest.fixture
def api(sim: OneNceSim) -> Iterator[httpx.Client]:
    with SimServer(sim) as server, httpx.Client(base_url=f"{server.base_url}/management-api", timeout=5) as client:
        token = client.post("/oauth/token", auth=CLIENT, json={"grant_type": "client_credentials"}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield client


def test_token_has_the_documented_shape_and_bad_credentials_are_refused(sim: OneNceSim) -> None:
    with SimServer(sim) as server, httpx.Client(base_url=f"{server.base_url}/management-api") as c:
        ok = c.post("/oauth/token", auth=CLIENT, json={"grant_type": "client_credentials"})
        bad = c.post("/oauth/token", auth=(CLIENT[0], "wrong"), json={"grant_type": "client_credentials"})
        grant = c.post("/oauth/token", auth=CLIENT, json={"grant_type": "password"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["status_code"] == 200 and body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"] and body["userId"] == CLIENT[0] and "scope" in body
    assert bad.status_code == 401 and bad.json()["error_token"] == "Unauthorized"
    assert grant.status_code == 400 and grant.json()["error_token"] == "BadRequest"


def test_every_sims_call_needs_a_live_bearer_token() -> None:
    sim = OneNceSim({CLIENT[0]: CLIENT[1]}, _sims(1), token_ttl_s=1, rate_limit_per_s=None)
    with SimServer(sim) as server, httpx.Client(base_url=server.base_url) as c:
        assert c.get("/v1/sims").status_code == 401
        assert c.get("/v1/sims", headers={"Authorization": "Bearer nonsense"}).status_code == 401
        token = c.post("/oauth/token", auth=CLIENT, json={"grant_type": "client_credentials"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/v1/sims", headers=auth).status_code == 200
        time.sleep(1.05)
        expired = c.get("/v1/sims", headers=auth)
    assert expired.status_code == 401
    assert set(expired.json()) == {"error_code", "error_token", "message"}


def test_demo_customer_works_with_no_arguments_under_both_base_paths() -> None:
    with SimServer(OneNceSim()) as server, httpx.Client(base_url=server.base_url) as c:
        for base in ("/management-api", ""):
            token = c.post(f"{base}/oauth/token", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
                           json={"grant_type": "client_credentials"}).json()["access_token"]
            rows = c.get(f"{base}/v1/sims", headers={"Authorization": f"Bearer {token}"}).json()
            assert {r["status"] for r in rows} == {"Enabled", "Disabled"} and len(rows) == 4


def test_list_is_a_paged_array_with_paging_headers() -> None:
    sim = OneNceSim({CLIENT[0]: CLIENT[1]}, _sims(25), rate_limit_per_s=None)
    with SimServer(sim) as server, httpx.Client(base_url=server.base_url) as c:
        token = c.post("/oauth/token", auth=CLIENT, json={"grant_type": "client_credentials"}).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        first = c.get("/v1/sims")
        last = c.get("/v1/sims", params={"page": 3, "pageSize": 10})
        too_big = c.get("/v1/sims", params={"pageSize": 101})
        filtered = c.get("/v1/sims", params={"q": "imei:356938035600110"})
    assert len(first.json()) == 10  # default page size
    assert (first.headers["X-Total-Count"], first.headers["X-Total-Pages"], first.headers["X-Current-Page"],
            first.headers["X-Count-Per-Page"]) == ("25", "3", "1", "10")
    assert [r["iccid"] for r in last.json()] == [f"89882806660000{i:05d}" for i in range(121, 126)]
    assert too_big.status_code == 400 and too_big.json()["error_token"] == "BadRequest"
    assert [r["iccid"] for r in filtered.json()] == ["8988280666000000110"]


def test_sim_object_fields(api: httpx.Client) -> None:
    row = api.get(f"/v1/sims/{ICCID}").json()
    assert row["iccid_with_luhn"] == ICCID + luhn_digit(ICCID)
    assert {"imsi", "imsi_2", "current_imsi", "msisdn", "imei", "imei_lock", "status", "activation_date",
            "ip_address", "current_quota", "quota_status", "current_quota_SMS", "quota_status_SMS", "label"} <= set(row)
    assert api.get("/v1/sims/8988280666999999999").status_code == 404


def test_luhn_digit_of_a_known_number() -> None:
    assert luhn_digit("7992739871") == "3"


def test_put_changes_status_and_validates(api: httpx.Client, sim: OneNceSim) -> None:
    ok = api.put(f"/v1/sims/{ICCID}", json={"iccid": ICCID, "status": "Disabled", "label": "pump"})
    assert ok.status_code == 200 and sim.sims[ICCID].status == "Disabled" and sim.sims[ICCID].label == "pump"
    assert api.get(f"/v1/sims/{ICCID}").json()["status"] == "Disabled"
    assert api.put(f"/v1/sims/{ICCID}", json={"iccid": ICCID}).status_code == 400
    assert api.put(f"/v1/sims/{ICCID}", json={"iccid": ICCID, "status": "Suspended"}).status_code == 400
    assert api.put(f"/v1/sims/{ICCID}", json={"iccid": "8988280666000000102", "status": "Enabled"}).status_code == 400
    assert api.put(f"/v1/sims/{ICCID}", content=b"not json", headers={"content-type": "application/json"}
                   ).status_code == 400
    unknown = api.put("/v1/sims/8988280666999999999", json={"iccid": "8988280666999999999", "status": "Enabled"})
    assert unknown.status_code == 404 and unknown.json()["error_token"] == "NotFound"


def test_expired_sim_refuses_changes_with_422(api: httpx.Client, sim: OneNceSim) -> None:
    sim.add_sim("8988280666000000999", expiry_date=datetime.now(timezone.utc) - timedelta(days=1))
    r = api.put("/v1/sims/8988280666000000999", json={"iccid": "8988280666000000999", "status": "Disabled"})
    assert r.status_code == 422 and "expired" in r.json()["message"]


def test_bulk_update_is_accepted_then_applied_shortly_after(api: httpx.Client, sim: OneNceSim) -> None:
    ids = list(sim.sims)[:2]
    r = api.post("/v1/sims", json=[{"iccid": i, "status": "Disabled"} for i in ids])
    assert r.status_code == 201
    assert all(sim.sims[i].status == "Enabled" for i in ids)  # queued, not yet applied
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(sim.sims[i].status != "Disabled" for i in ids):
        time.sleep(0.02)
    assert all(sim.sims[i].status == "Disabled" for i in ids)
    assert api.post("/v1/sims", json=[{"iccid": "8988280666999999999", "status": "Enabled"}]).status_code == 404
    assert api.post("/v1/sims", json=[{"iccid": ids[0]}]).status_code == 400


def test_status_reflects_connectivity_and_a_disabled_sim_is_offline(api: httpx.Client, sim: OneNceSim) -> None:
    sim.add_sim("8988280666000000201", connectivity="ATTACHED")
    sim.add_sim("8988280666000000202", status="Disabled")
    online = api.get(f"/v1/sims/{ICCID}/status").json()
    assert online["status"] == "ONLINE" and online["pdp_context"]["ue_ip_address"] == sim.sims[ICCID].ip_address
    assert online["location"]["last_updated"] and online["services"]
    attached = api.get("/v1/sims/8988280666000000201/status").json()
    assert attached["status"] == "ATTACHED" and attached["pdp_context"] is None
    assert api.get("/v1/sims/8988280666000000202/status").json()["status"] == "OFFLINE"


def test_usage_is_daily_mb_strings_within_the_last_six_months(api: httpx.Client, sim: OneNceSim) -> None:
    today = datetime.now(timezone.utc).date()
    sim.add_usage(ICCID, today, 1.5, sms=2)
    sim.add_usage(ICCID, today - timedelta(days=40), 10.25)
    r = api.get(f"/v1/sims/{ICCID}/usage", params={"start_dt": (today - timedelta(days=7)).isoformat(),
                                                       "end_dt": today.isoformat()})
    assert r.status_code == 200
    [day] = r.json()["stats"]
    assert day["date"] == today.isoformat()
    assert day["data"]["volume"] == "1.500000" and isinstance(day["data"]["volume_rx"], str)
    assert float(day["data"]["volume_rx"]) + float(day["data"]["volume_tx"]) == pytest.approx(1.5)
    assert day["sms"]["volume"] == "2"
    too_old = months_back(today, 6) - timedelta(days=1)
    old = api.get(f"/v1/sims/{ICCID}/usage", params={"start_dt": too_old.isoformat(), "end_dt": today.isoformat()})
    assert old.status_code == 400 and "6 months" in old.json()["message"]
    backwards = api.get(f"/v1/sims/{ICCID}/usage", params={"start_dt": today.isoformat(),
                                                               "end_dt": (today - timedelta(days=1)).isoformat()})
    assert backwards.status_code == 400
    assert api.get(f"/v1/sims/{ICCID}/usage", params={"start_dt": "yesterday", "end_dt": "x"}).status_code == 400


def test_months_back_clamps_to_the_month_length() -> None:
    assert months_back(date(2024, 8, 31), 6) == date(2024, 2, 29)
    assert months_back(date(2024, 3, 15), 6) == date(2023, 9, 15)


def test_quotas_report_remaining_and_total(api: httpx.Client, sim: OneNceSim) -> None:
    sim.sims[ICCID].quota_mb = 500
    sim.add_usage(ICCID, datetime.now(timezone.utc).date(), 64.22, sms=3)
    data = api.get(f"/v1/sims/{ICCID}/quota/data").json()
    sms = api.get(f"/v1/sims/{ICCID}/quota/sms").json()
    assert data["total_volume"] == 500 and data["volume"] == pytest.approx(435.78)
    assert {"expiry_date", "last_volume_added", "last_status_change_date", "threshold_percentage",
            "peak_throughput"} <= set(data)
    assert sms["total_volume"] == 250 and sms["volume"] == 247


def test_sms_is_stored_listed_and_counted(api: httpx.Client, sim: OneNceSim) -> None:
    assert api.post(f"/v1/sims/{ICCID}/sms", json={"source_address": "Pulse", "payload": "REBOOT"}).status_code == 201
    assert api.post(f"/v1/sims/{ICCID}/sms", json={"payload": ""}).status_code == 400
    listed = api.get(f"/v1/sims/{ICCID}/sms")
    assert [m["payload"] for m in listed.json()] == ["REBOOT"] and listed.headers["X-Total-Count"] == "1"
    assert listed.json()[0]["status"]["description"] == "DELIVERED"
    assert api.get(f"/v1/sims/{ICCID}/quota/sms").json()["volume"] == 249


def test_rate_limit_answers_429_with_retry_after_in_the_1nce_shape(sim: OneNceSim) -> None:
    sim.set_rate_limit(5, burst=5)
    with SimServer(sim) as server, httpx.Client(base_url=server.base_url) as c:
        token = c.post("/oauth/token", auth=CLIENT, json={"grant_type": "client_credentials"}).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        statuses = [c.get(f"/v1/sims/{ICCID}").status_code for _ in range(6)]
        limited = c.get(f"/v1/sims/{ICCID}")
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error_token"] == "TooManyRequests"
    assert len(sim.throttled) == 2


def test_injected_faults_use_the_1nce_error_shape(api: httpx.Client, sim: OneNceSim) -> None:
    sim.faults.add(503, times=1, path="/management-api/v1/sims", retry_after_s=2)
    r = api.get("/v1/sims")
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert r.json()["error_token"] == "ServiceUnavailable" and r.json()["error_code"] == 1000
    assert api.get("/v1/sims").status_code == 200
