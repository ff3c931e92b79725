"""Carrier and Telemetron syncs end to end on Ray: the node's scheduler drives the `carrier-sync` and
`telemetron-sync` service actors on their (short, see conftest) intervals against the simulators on
127.0.0.1, and the results show through the HTTP API. No sync route is called: everything observed
here was done by the scheduled ticks (`carrier_sync`, `carrier_requests`, `telemetron`)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from pulse.simulators import onence as onence_sim
from pulse.simulators import telemetron as telemetron_sim
from pulse.simulators import thingspace as ts_sim
from pulse.simulators.onence import OneNceSim, SimCard
from pulse.simulators.server import SimServer
from pulse.simulators.telemetron import TelemetronSim
from pulse.simulators.thingspace import ThingSpaceSim

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]

INTEGRATIONS = "/api/v1/customer/carrier/integrations"
TELEMETRON = "/api/v1/customer/integrations/telemetron"
ONENCE_ICCID = "8988280666000000901"
TS_ICCID = "89148000000000000901"


def until(fn: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.25) -> Any:
    """Poll `fn` until it returns something truthy; fail naming `what` (and the last value) otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def ok(r, *codes: int) -> Any:
    assert r.status_code in (codes or (200,)), f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def line(device_id: str, what: str) -> str:
    return f"/api/v1/customer/devices/{device_id}/carrier/{what}"


# The simulator's server thread changes its state while the test reads it: read copies (one C-level
# copy each, so no "changed size during iteration").
def owners_at(sim: TelemetronSim, device_id: str) -> set[str]:
    customers = dict(sim.customers)
    return {customers[c]["email"] for d, c in set(sim.assignments) if d == device_id and c in customers}


def customer_at(sim: TelemetronSim, email: str) -> dict | None:
    return next((c for c in list(sim.customers.values()) if c["email"] == email), None)


# ---- carriers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_scheduler_syncs_carrier_lines_and_settles_requests(stack):
    http = stack.http
    today = datetime.now(timezone.utc).date()
    onence = SimServer(OneNceSim(sims=[SimCard(ONENCE_ICCID, label="e2e-sync", quota_mb=100.0)])).start()
    thingspace = SimServer(ThingSpaceSim(demo_devices=False, change_delay_s=0.3)).start()
    integration_ids: list[int] = []
    try:
        # sync_enabled false while linking: a sync of the still empty integration would otherwise
        # make the next one wait sync_interval_minutes (5 at least)
        nce = ok(http.post(INTEGRATIONS, json={
            "carrier_name": "1nce", "api_base_url": f"{onence.base_url}/management-api",
            "api_key": onence_sim.DEMO_CLIENT_ID, "api_secret": onence_sim.DEMO_CLIENT_SECRET,
            "sync_enabled": False, "sync_interval_minutes": 5}), 201)
        integration_ids.append(nce["id"])
        ts = ok(http.post(INTEGRATIONS, json={
            "carrier_name": "thingspace", "api_base_url": thingspace.base_url, "account_id": ts_sim.DEMO_ACCOUNT,
            "api_key": ts_sim.DEMO_CLIENT_ID, "api_secret": ts_sim.DEMO_CLIENT_SECRET,
            "username": ts_sim.DEMO_USERNAME, "password": ts_sim.DEMO_PASSWORD,
            "sync_enabled": False, "sync_interval_minutes": 5}), 201)
        integration_ids.append(ts["id"])
        thingspace.sim.add_device(TS_ICCID, imei="356938035649901", state="active", plan="M2M1GB")

        stack.create_device("sync-nce")
        stack.create_device("sync-ts")
        linked = ok(http.post(line("sync-nce", "link"),
                              json={"carrier_integration_id": nce["id"], "carrier_device_id": ONENCE_ICCID}))
        assert linked["sim_status"] == "active"
        linked = ok(http.post(line("sync-ts", "link"),
                              json={"carrier_integration_id": ts["id"], "carrier_device_id": TS_ICCID}))
        assert linked["sim_status"] == "active"
        before = ok(http.get(line("sync-nce", "usage")))
        assert before["data_used_bytes"] is None and before["history"] == []  # linking reads no usage

        # meanwhile at the carriers: traffic on both lines, the 1NCE SIM disabled, the ThingSpace line suspended
        onence.sim.add_usage(ONENCE_ICCID, today, data_mb=12.5, sms=2)
        onence.sim.sims[ONENCE_ICCID].status = "Disabled"
        thingspace.sim.add_usage(TS_ICCID, today, 4_321_000, sms=1)
        thingspace.sim.device(TS_ICCID).state = "suspend"

        for iid in integration_ids:
            ok(http.put(f"{INTEGRATIONS}/{iid}", json={"sync_enabled": True}))

        def synced(iid: int) -> dict | None:
            integration = ok(http.get(f"{INTEGRATIONS}/{iid}"))
            return integration if integration["last_sync_at"] else None

        for iid in integration_ids:
            integration = until(lambda: synced(iid), f"the scheduled sync of carrier integration {iid}")
            assert integration["last_sync_status"] == "success", integration
            assert integration["last_sync_error"] is None and integration["linked_devices"] == 1

        status = ok(http.get(line("sync-nce", "status")))
        assert (status["sim_status"], status["network_status"]) == ("suspended", "OFFLINE"), status
        assert status["last_sync_error"] is None and status["last_synced_at"]
        usage = ok(http.get(line("sync-nce", "usage")))
        assert usage["data_used_bytes"] == 12_500_000 and usage["data_limit_bytes"] == 100_000_000, usage
        assert usage["data_used_pct"] == 12.5 and usage["sms_count"] == 2 and len(usage["history"]) == 1

        status = ok(http.get(line("sync-ts", "status")))
        assert status["sim_status"] == "suspended", status
        usage = ok(http.get(line("sync-ts", "usage")))
        assert usage["data_used_bytes"] == 4_321_000 and usage["data_limit_bytes"] == 1024 ** 3, usage
        assert len(usage["history"]) == 1

        # a ThingSpace restore is asynchronous (202); the scheduler's request polling settles it
        # (no public_base_url in the e2e settings, so no callback can)
        r = ok(http.post(line("sync-ts", "actions/restore")), 202)
        assert r["state"] == "pending" and r["request_id"]
        assert [q["action"] for q in ok(http.get(line("sync-ts", "status")))["pending_requests"]] == ["restore"]

        def settled() -> dict | None:
            status = ok(http.get(line("sync-ts", "status")))
            return status if not status["pending_requests"] and status["sim_status"] == "active" else None

        status = until(settled, "the restore to be settled by the scheduled request polling")
        assert status["recent_requests"][0]["action"] == "restore"
        assert status["recent_requests"][0]["state"] == "succeeded"
        assert thingspace.sim.device(TS_ICCID).state == "active"

        # the next scheduled sync is sync_interval_minutes (>= 5) away: later carrier changes are read
        # on demand through ?refresh=true
        onence.sim.add_usage(ONENCE_ICCID, today, data_mb=7.5)
        onence.sim.sims[ONENCE_ICCID].status = "Enabled"
        usage = ok(http.get(line("sync-nce", "usage"), params={"refresh": "true"}))
        assert usage["data_used_bytes"] == 20_000_000 and len(usage["history"]) == 2, usage
        assert ok(http.get(line("sync-nce", "status"), params={"refresh": "true"}))["sim_status"] == "active"
    finally:
        for iid in integration_ids:  # the session's stack lives on: leave no integration at a dead URL
            http.delete(f"{INTEGRATIONS}/{iid}")
        onence.stop()
        thingspace.stop()


# ---- Telemetron ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_scheduler_delivers_owner_changes_to_telemetron(stack):
    http = stack.http
    server = SimServer(TelemetronSim()).start()
    sim: TelemetronSim = server.sim
    device_id = "sync-owned"
    configured = False
    try:
        ok(http.put(TELEMETRON, json={"base_url": f"{server.base_url}{telemetron_sim.API_PREFIX}",
                                      "api_key": telemetron_sim.DEMO_API_KEY}), 201)
        configured = True
        stack.create_device(device_id)
        ok(http.put(f"/api/v1/customer/devices/{device_id}/owners",
                    json={"owners": [{"email": "Alice@Example.com", "name": "Alice", "phone": "+49 30 1234567"}]}))

        def status_when_drained() -> dict | None:
            # a drain marks each row delivered, then records the pass (last_sync_at) at its end
            status = ok(http.get(f"{TELEMETRON}/status"))
            drained = status["pending"] == 0 and status["delivered"] > 0 and status["last_sync_at"]
            return status if drained else None

        until(lambda: owners_at(sim, device_id) == {"alice@example.com"}, "the assignment at Telemetron")
        status = until(status_when_drained, "an empty Telemetron outbox")
        assert status["failed"] == 0 and status["last_error"] is None and status["last_sync_at"], status
        alice = customer_at(sim, "alice@example.com")
        assert alice is not None and alice["name"] == "Alice"
        assert device_id in sim.devices
        assert sim.devices[device_id]["properties"]["platformDeviceId"] == device_id

        # transfer: Bob replaces Alice -> unassign Alice, assign Bob
        unassigns = sim.hits("/deviceAssignment/unassignDeviceFromOwner")
        ok(http.put(f"/api/v1/customer/devices/{device_id}/owners",
                    json={"owners": [{"email": "bob@example.com", "name": "Bob"}]}))
        until(lambda: owners_at(sim, device_id) == {"bob@example.com"}, "the transfer at Telemetron")
        assert sim.hits("/deviceAssignment/unassignDeviceFromOwner") > unassigns
        assert customer_at(sim, "bob@example.com")["name"] == "Bob"
        status = until(status_when_drained, "an empty Telemetron outbox after the transfer")
        assert status["failed"] == 0, status
    finally:
        if configured:
            http.delete(TELEMETRON)
        server.stop()
