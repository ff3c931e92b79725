"""Requests the fuzzer found answered with a 500: out-of-range numbers, unreadable path bytes, NUL.

Each is now a 4xx whose `detail` names the offending parameter (pulse/serve/params.py, errors.py)."""
from __future__ import annotations

import pytest

BIG = "38867866850458402816"  # > 2**63 - 1: overflowed SQLite and PostgreSQL integers
INT4 = str(2**31)  # serial ids are PostgreSQL int4: one past the largest overflowed asyncpg


@pytest.mark.parametrize("url,field", [
    (f"/api/v1/customer/alerts/{BIG}", "path.alert_id"),
    (f"/api/v1/customer/carrier/integrations/{BIG}", "path.integration_id"),
    (f"/api/v1/customer/templates/{BIG}", "path.template_id"),
    ("/api/v1/customer/alerts/0", "path.alert_id"),
    (f"/api/v1/customer/alerts/{INT4}", "path.alert_id"),
    (f"/api/v1/customer/devices/d1/sensors?limit=5&offset={2**63}", "query.offset"),
    (f"/api/v1/customer/alerts?offset={BIG}0000000000", "query.offset"),
    ("/api/v1/customer/alerts?limit=1001", "query.limit"),
    (f"/api/v1/customer/devices?template_id={BIG}", "query.template_id"),
    (f"/api/v1/customer/notification-jobs?alert_id={BIG}", "query.alert_id"),
    ("/api/v1/customer/quarantine?device_id=a%01b", "query.device_id"),
    ("/api/v1/customer/sensors?device_id=%20x", "query.device_id"),
    ("/api/v1/customer/devices/a%07b", "path.device_id"),
])
async def test_out_of_range_ids_and_odd_filters_are_422_naming_the_parameter(api, url, field):
    r = await api.get(url)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:"), r.json()


async def test_operator_integration_id_is_bounded(api):
    r = await api.get(f"/api/v1/operator/carrier-integrations/{BIG}000", role="operator_admin", tenant=None)
    assert r.status_code == 422 and r.json()["detail"].startswith("path.integration_id:")


async def test_huge_id_in_a_body_is_422(api):
    r = await api.post("/api/v1/customer/devices", json={"device_id": "d1", "template_id": int(BIG)})
    assert r.status_code == 422 and r.json()["detail"].startswith("template_id:")


@pytest.mark.parametrize("url", [
    "/api/v1/customer/devices/%F3%B8%FF/connection",  # not UTF-8 once percent-decoded
    "/api/v1/customer/devices/a%00b",
    "/api/v1/customer/alerts?device_id=%FF",
    "/api/v1/customer/devices?search=a%00",
])
async def test_unreadable_path_or_query_is_400(api, url):
    r = await api.get(url)
    assert r.status_code == 400 and ("UTF-8" in r.json()["detail"] or "NUL" in r.json()["detail"]), r.text


async def test_deprecated_connection_route_answers_odd_ids_with_a_4xx_and_a_latin1_link(api):
    """The Link header echoed the raw id: a non-latin-1 character made the response itself fail."""
    r = await api.get("/api/v1/customer/devices/%E9%B6%B7%1D/connection")
    assert r.status_code == 422 and r.json()["detail"].startswith("path.device_id:")
    assert r.headers["Link"] == '</api/v1/customer/devices/%E9%B6%B7%1D/transports>; rel="successor-version"'


async def test_a_422_without_a_body_names_the_body(api):
    r = await api.post("/api/v1/customer/devices")
    assert r.status_code == 422 and r.json()["detail"].startswith("body:")
    r = await api.post("/api/v1/customer/devices", content=b"{not json", headers={
        **api.headers(), "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body:")


async def test_largest_serial_id_is_a_404(api):
    r = await api.get(f"/api/v1/customer/alerts/{2**31 - 1}")
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("body", [b'{"device_id": "d1", "manufacturer": "a\\u0000b"}', b'{"device_id": "d1\x00"}'])
async def test_nul_in_a_body_is_400(api, body):
    """PostgreSQL text refuses NUL: the insert failed with a 500."""
    r = await api.post("/api/v1/customer/devices", content=body, headers={
        **api.headers(), "Content-Type": "application/json"})
    assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(api):
    r = await api.post("/api/v1/customer/devices", content=b'{"device_id": "d1", "notes": "C:\\\\u0000"}',
                       headers={**api.headers(), "Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["notes"] == "C:\\u0000", r.text
