"""The fleet routes against the documented contracts (shared/reference/api-contracts.md §13, §14).

Each row sends the documented request body of one route and checks the documented status and
top-level response keys. A row whose contract Pulse deliberately does not meet is a skip that says
why; a row met only in part runs for what is met and adds a skip naming the `gap`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from pulse.serve.app import create_app
from tests.serve.resources import DEVICES

API = "/api/v1/customer"
TEMPLATES = f"{API}/templates"


@dataclass(frozen=True)
class Contract:
    route: str  # "METHOD /path" under /api/v1/customer; {placeholders} come from the `world` fixture
    body: Any = None
    status: int = 200
    keys: tuple[str, ...] = ()
    headers: dict[str, str] | None = None
    gap: str | None = None  # a documented part Pulse does not meet (the row still runs)
    not_met: str | None = None  # the documented status or shape is not met: the row is skipped


CONTRACTS = [
    # ---- devices -------------------------------------------------------------------------------
    Contract("POST /devices", {"device_id": "c1", "site_id": "s1", "plan_id": "basic"}, 201, ("device_id",),
             gap="subscription_id, plan_id, status:'created': Pulse has no plans or subscriptions (plan_id is "
                 "ignored); status is the registry status (ACTIVE); the first token is returned instead"),
    Contract("GET /devices", None, 200, ("tenant_id", "devices", "total", "limit", "offset"),
             gap="items lack device_type, last_seen_at, tags, sensor_count and subscription_*; "
                 "live status is on GET /devices/{id} (presence)"),
    Contract("GET /devices/summary", None, 200, ("ONLINE", "STALE", "OFFLINE", "total")),
    Contract("GET /devices/{device_id}", None, 200, ("tenant_id", "device", "telemetry"),
             gap="events[]: Pulse keeps no per-device event list (the row and `device` carry its presence)"),
    Contract("PATCH /devices/{device_id}", {"name": "Pump 1", "site_id": "s2", "latitude": 52.5, "notes": "n"},
             200, ("tenant_id", "device"),
             gap="latitude, longitude, address, mac_address, imei, iccid, hw_revision, tags are ignored (not stored)"),
    Contract("PATCH /devices/{device_id}/decommission", {}, 200, ("device_id", "decommissioned_at")),
    Contract("DELETE /devices/{device_id}", None, 200, ("device_id", "status")),
    Contract("GET /devices/{device_id}/tokens", None, 200, ("device_id", "tokens", "total"),
             gap="revoked tokens are listed too (with active:false)"),
    Contract("POST /devices/{device_id}/tokens/rotate", {"label": "rotated"}, 201,
             ("client_id", "password", "broker_url")),
    Contract("DELETE /devices/{device_id}/tokens/{token_id}", None, 204),
    # ---- telemetry and twin --------------------------------------------------------------------
    Contract("GET /devices/{device_id}/telemetry", None, 200, ("tenant_id", "device_id", "count"),
             gap="telemetry[] is `rows` in Pulse's long format (ts, metric, value, seq)"),
    Contract("GET /devices/{device_id}/telemetry/latest", None, 200, ("tenant_id", "device_id", "telemetry", "count"),
             gap="`count` (latest N rows per metric) is not a query parameter: one latest value per metric"),
    Contract("GET /devices/{device_id}/telemetry/metrics", None, 200, ("device_id", "metrics", "total")),
    Contract("GET /devices/{device_id}/telemetry/history?metric=temp", None, 200, ("device_id", "metric", "points"),
             gap="without `range` (or `bucket_size`) Pulse answers raw points in [start, end) and `sensors` "
                 "metadata; the documented default is 24h of buckets"),
    Contract("GET /devices/{device_id}/telemetry/history?metric=temp&range=24h", None, 200,
             ("device_id", "metric", "range", "bucket_size", "unit", "min_range", "max_range", "precision_digits",
              "points")),
    Contract("GET /devices/{device_id}/telemetry/export", None, 200),
    Contract("GET /devices/{device_id}/twin", None, 200,
             ("device_id", "desired", "reported", "delta", "structured_delta", "desired_version", "reported_version",
              "sync_status", "shadow_updated_at")),
    Contract("PATCH /devices/{device_id}/twin/desired", {"desired": {"interval_s": 30}}, 200,
             ("device_id", "desired", "desired_version"), headers={"If-Match": '"0"'}),
    Contract("GET /devices/{device_id}/twin/delta", None, 200,
             ("device_id", "added", "removed", "changed", "unchanged_count", "in_sync", "desired_version",
              "reported_version", "delta")),
    # ---- commands ------------------------------------------------------------------------------
    Contract("POST /devices/{device_id}/commands",
             {"command_type": "reboot", "command_params": {"delay_s": 5}, "expires_in_minutes": 30}, 201,
             ("command_id", "status", "mqtt_published", "expires_at"),
             gap="status is 'pending' (Pulse's lifecycle, docs/device-protocol.md), not 'queued'"),
    Contract("GET /devices/{device_id}/commands", not_met="documented a bare array; Pulse answers its page "
             "object {commands[], total, limit, offset} (docs/architecture.md, REST conventions)"),
    # ---- tags ----------------------------------------------------------------------------------
    Contract("GET /devices/{device_id}/tags", None, 200, ("tenant_id", "device_id", "tags")),
    Contract("PUT /devices/{device_id}/tags", {"tags": ["roof", "north"]}, 200, ("tenant_id", "device_id", "tags")),
    Contract("POST /devices/{device_id}/tags/north", None, 200, ("tenant_id", "device_id", "tag")),
    Contract("DELETE /devices/{device_id}/tags/roof", None, 200, ("tenant_id", "device_id", "tag")),
    Contract("GET /tags", None, 200, ("tenant_id", "tags"),
             gap="tags[] are objects {tag, device_count}, not strings"),
    # ---- groups --------------------------------------------------------------------------------
    Contract("GET /device-groups", None, 200, ("groups", "total")),
    Contract("POST /device-groups", {"group_id": "grp-0000abcd", "name": "Pumps", "description": "all pumps"}, 201,
             ("group_id", "name", "description", "created_at", "updated_at", "group_type", "member_count"),
             gap="a client-chosen group_id is ignored: Pulse always assigns a UUID"),
    Contract("PATCH /device-groups/{group_id}", {"name": "Pumps 2", "description": "x"}, 200,
             ("group_id", "name", "description")),
    Contract("DELETE /device-groups/{group_id}", None, 200, ("group_id", "deleted")),
    Contract("GET /device-groups/{group_id}/devices", None, 200, ("group_id", "total"),
             gap="members[] is `devices` (device rows), Pulse's page object"),
    Contract("PUT /device-groups/{group_id}/devices/{device_id}", None, 200, ("group_id", "device_id", "action")),
    Contract("DELETE /device-groups/{group_id}/devices/{device_id}", None, 200, ("group_id", "device_id", "action")),
    # ---- maintenance windows -------------------------------------------------------------------
    Contract("GET /maintenance-windows", None, 200, ("windows", "total")),
    Contract("POST /maintenance-windows", {"name": "Night", "starts_at": "2030-01-01T00:00:00Z",
                                           "ends_at": "2030-02-01T00:00:00Z", "site_ids": ["s1"], "enabled": True,
                                           "recurring": {"dow": [0], "start_hour": 1, "end_hour": 3}},
             201, ("window_id", "name", "starts_at", "ends_at", "enabled"),
             gap="`device_types` is refused with 422 (Pulse has no device types; ignoring it would widen the "
                 "window to the tenant); window_id is a UUID, not mw-<8hex>"),
    Contract("PATCH /maintenance-windows/{window_id}", {"name": "Night 2", "enabled": False}, 200,
             ("window_id", "name", "enabled")),
    Contract("DELETE /maintenance-windows/{window_id}", None, 200, ("window_id", "deleted")),
    # ---- modules, sensors, transports, connection ----------------------------------------------
    Contract("GET /devices/{gateway}/modules", None, 200, ("device_id", "modules", "total")),
    Contract("POST /devices/{gateway}/modules", {"slot_key": "rs485", "bus_address": "9", "label": "Meter",
                                                 "serial_number": "M-1", "metric_key_map": {}}, 201,
             ("id", "slot_key", "bus_address", "label", "serial_number", "metric_key_map", "status", "installed_at"),
             gap="module_template (an object): Pulse answers module_template_id"),
    Contract("PUT /devices/{gateway}/modules/{module_id}", {"label": "Meter 2", "status": "inactive"}, 200,
             ("id", "label", "status")),
    Contract("DELETE /devices/{gateway}/modules/{module_id}", None, 204),
    Contract("GET /devices/{device_id}/sensors", None, 200, ("device_id", "sensors", "total"),
             gap="sensor_limit: Pulse has no per-device sensor limit"),
    Contract("POST /devices/{device_id}/sensors", {"metric_key": "humidity", "display_name": "Humidity", "unit": "%",
                                                   "min_range": 0, "max_range": 100, "precision_digits": 1}, 201,
             ("id", "metric_key", "display_name", "unit", "status")),
    Contract("PUT /devices/{device_id}/sensors/{sensor_id}", {"display_name": "T", "status": "inactive"}, 200,
             ("id", "display_name", "status")),
    Contract("DELETE /devices/{device_id}/sensors/{sensor_id}", None, 204),
    Contract("GET /sensors", None, 200, ("sensors", "total", "limit", "offset"),
             gap="query sensor_type is metric_key in Pulse"),
    Contract("GET /devices/{device_id}/transports", None, 200, ("device_id", "transports", "total")),
    Contract("POST /devices/{device_id}/transports",
             {"ingestion_protocol": "http_api", "physical_connectivity": "wifi", "protocol_config": {},
              "connectivity_config": {}, "is_primary": False, "status": "active"}, 201,
             ("id", "ingestion_protocol", "is_primary", "status")),
    Contract("PUT /devices/{device_id}/transports/{transport_id}", {"status": "failover"}, 200, ("id", "status")),
    Contract("DELETE /devices/{device_id}/transports/{transport_id}", None, 204),
    Contract("GET /devices/{device_id}/connection", None, 200, ("device_id", "connection_type"),
             gap="without a primary transport Pulse answers 404, not 200 {device_id, connection:null}; "
                 "no Sunset header (Deprecation and Link are sent)"),
    Contract("PUT /devices/{device_id}/connection",
             {"connection_type": "cellular", "carrier_name": "1NCE", "apn": "iot.1nce.net",
              "sim_iccid": "8988228066612345678", "sim_status": "active", "data_limit_mb": 500,
              "billing_cycle_start": 1, "msisdn": "+4912345678"}, 200, ("device_id", "connection_type", "apn"),
             gap="carrier_account_id and billing_cycle_start are accepted but not stored"),
    Contract("DELETE /devices/{device_id}/connection", None, 204),
    # ---- templates (§14) -----------------------------------------------------------------------
    Contract("GET /templates", None, 200, ("templates",)),
    Contract("GET /templates/{template_id}", None, 200, ("id", "name", "slug", "category", "metrics", "commands",
                                                         "slots")),
    Contract("POST /templates", {"name": "Contract Meter", "slug": "contract_meter", "category": "standalone_sensor",
                                 "description": "d", "manufacturer": "Acme", "model": "M1", "metadata": {}}, 201,
             ("id", "name", "slug", "category")),
    Contract("PUT /templates/{template_id}", {"name": "Renamed", "description": "x"}, 200, ("id", "name")),
    Contract("DELETE /templates/{template_id}", None, 204),
    Contract("POST /templates/{template_id}/clone", None, 201, ("id", "metrics", "commands", "slots")),
    Contract("POST /templates/{template_id}/metrics",
             {"metric_key": "pressure", "display_name": "Pressure", "data_type": "float", "unit": "bar",
              "precision_digits": 2, "is_required": False, "sort_order": 1}, 201, ("id", "metric_key"),
             gap="sort_order and a metric's description are accepted but not stored"),
    Contract("PUT /templates/{template_id}/metrics/{metric_id}", {"display_name": "Temp"}, 200, ("id", "display_name")),
    Contract("DELETE /templates/{template_id}/metrics/{metric_id}", None, 204),
    Contract("POST /templates/{template_id}/commands",
             {"command_key": "set_rate", "display_name": "Set rate", "parameters_schema": {"type": "object"},
              "sort_order": 0}, 201, ("id", "command_key")),
    Contract("PUT /templates/{template_id}/commands/{command_id}", {"display_name": "Reboot now"}, 200,
             ("id", "display_name")),
    Contract("DELETE /templates/{template_id}/commands/{command_id}", None, 204),
    Contract("POST /templates/{template_id}/slots",
             {"slot_key": "aux", "display_name": "Aux", "slot_type": "accessory", "interface_type": "gpio",
              "max_devices": 1, "is_required": False, "sort_order": 0}, 201, ("id", "slot_key"),
             gap="max_devices 0 is refused (Pulse: ≥ 1, null = any number)"),
    Contract("PUT /templates/{template_id}/slots/{slot_id}", {"display_name": "Bus"}, 200, ("id", "display_name")),
    Contract("DELETE /templates/{template_id}/slots/{slot_id}", None, 204),
    # ---- Pulse-only routes in the fleet files: no documented contract --------------------------
    Contract("GET /devices/{device_id}/owners", not_met="not in api-contracts.md: Pulse's own route, "
             "contract in docs/telemetron.md (tests/serve/test_owners_api.py)"),
    Contract("PUT /devices/{device_id}/owners", not_met="not in api-contracts.md: Pulse's own route, "
             "contract in docs/telemetron.md (tests/serve/test_owners_api.py)"),
    Contract("GET /quarantine", not_met="not in api-contracts.md: Pulse's own route (tests/serve/test_quarantine_api.py)"),
    Contract("GET /api/v1/operator/quarantine",
             not_met="not in api-contracts.md: Pulse's own route (tests/serve/test_quarantine_api.py)"),
    Contract("POST /api/v1/auth/login", not_met="not in api-contracts.md (the documented system logs in through "
             "Keycloak); Pulse's local login is tested in tests/serve/test_auth_api.py"),
    Contract("POST /api/v1/auth/logout", not_met="not in api-contracts.md: clears the console's HttpOnly session "
             "cookie (docs/console.md), tested in tests/serve/test_csrf.py"),
    Contract("POST /ingest/v1/tenant/{tenant_id}/device/{device_id}/{msg_type}",
             not_met="not in api-contracts.md (device side); DESIGN.md §4 says 202, as tested in "
                     "tests/serve/test_ingest_api.py"),
]


def _params():
    for c in CONTRACTS:
        if c.not_met:
            yield pytest.param(c, id=c.route, marks=pytest.mark.skip(reason=c.not_met))
            continue
        yield pytest.param(c, id=c.route)
        if c.gap:
            yield pytest.param(c, id=f"{c.route} (gap)", marks=pytest.mark.skip(reason=c.gap))


async def _created(api, url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.post(url, json=body)
    assert r.status_code == 201, (url, r.text)
    return r.json()


async def _gateway_template(api) -> int:
    items = (await api.get(TEMPLATES, params={"search": "lifeline-gateway-v1"})).json()["templates"]
    return next(t["id"] for t in items if t["slug"] == "lifeline-gateway-v1")


@pytest.fixture
async def world(api) -> dict[str, Any]:
    """One of everything a fleet route names, created through the API: the path placeholders."""
    device = await _created(api, DEVICES, {"device_id": "d1"})
    await _created(api, DEVICES, {"device_id": "gw", "template_id": await _gateway_template(api)})
    template = await _created(api, TEMPLATES, {"name": "World", "category": "controller",
                                               "metrics": [{"metric_key": "temp"}],
                                               "commands": [{"command_key": "reboot"}],
                                               "slots": [{"slot_key": "bus", "slot_type": "expansion",
                                                          "interface_type": "rs485"}]})
    group = await _created(api, f"{API}/device-groups", {"name": "g"})
    await api.request("PUT", f"{API}/device-groups/{group['group_id']}/devices/d1")
    window = await _created(api, f"{API}/maintenance-windows", {"name": "w"})
    module = await _created(api, f"{DEVICES}/gw/modules", {"slot_key": "rs485", "bus_address": "7"})
    sensor = await _created(api, f"{DEVICES}/d1/sensors", {"metric_key": "temp"})
    transport = await _created(api, f"{DEVICES}/d1/transports", {"ingestion_protocol": "mqtt_direct",
                                                                 "is_primary": True})
    await api.request("PUT", f"{DEVICES}/d1/tags", json={"tags": ["roof"]})
    return {"device_id": "d1", "gateway": "gw", "tenant_id": "acme", "token_id": device["token_id"],
            "template_id": template["id"], "metric_id": template["metrics"][0]["id"],
            "command_id": template["commands"][0]["id"], "slot_id": template["slots"][0]["id"],
            "group_id": group["group_id"], "window_id": window["window_id"], "module_id": module["id"],
            "sensor_id": sensor["id"], "transport_id": transport["id"]}


@pytest.mark.parametrize("contract", list(_params()))
async def test_documented_body_gets_documented_status_and_keys(api, world, contract: Contract):
    method, path = contract.route.split(" ", 1)
    url = path.format(**world)
    url = url if url.startswith(("/api/", "/ingest/")) else API + url
    kw = {} if contract.body is None else {"json": contract.body}
    if contract.headers:
        kw["headers"] = {**api.headers(), **contract.headers}
    r = await api.request(method, url, **kw)
    assert r.status_code == contract.status, r.text
    if contract.keys:
        missing = set(contract.keys) - set(r.json())
        assert not missing, f"documented keys missing: {sorted(missing)}"


def test_every_fleet_route_has_a_contract_row():
    """A new fleet route must say how it stands against the documented contract."""
    fleet = ("/api/v1/customer/devices", "/api/v1/customer/tags", "/api/v1/customer/device-groups",
             "/api/v1/customer/maintenance-windows", "/api/v1/customer/templates", "/api/v1/customer/sensors",
             "/api/v1/customer/quarantine", "/api/v1/operator/quarantine", "/api/v1/auth", "/ingest/v1")
    served = {(m.upper(), p) for p, ops in create_app().openapi()["paths"].items() for m in ops
              if p.startswith(fleet) and "/carrier" not in p and "/alerts" not in p}
    rows = set()
    for c in CONTRACTS:
        method, path = c.route.split(" ", 1)
        path = path.split("?")[0]
        path = path if path.startswith(("/api/", "/ingest/")) else API + path
        rows.add((method, path))
    normalised = {(m, _shape(p)) for m, p in served}
    assert normalised - {(m, _shape(p)) for m, p in rows} == set()


def _shape(path: str) -> str:
    """A path with every parameter or concrete id replaced, so a row's example matches the template."""
    path = re.sub(r"\{[^}]+\}", "{x}", path)
    return re.sub(r"/devices/(?:gw|d1)\b", "/devices/{x}", re.sub(r"/tags/(?:north|roof)$", "/tags/{x}", path))
