"""Double-submit CSRF: cookie-authenticated writes echo the csrf_token cookie; Bearer calls need nothing."""
from pulse.storage import tenants

DEVICES = "/api/v1/customer/devices"


async def _signed_in(api) -> None:
    """A browser-like client: the session lives only in the pulse_session cookie."""
    await tenants.ensure_user(api.services.db, "acme", "ann@acme.test", "customer_admin", "s3cret-pw")
    r = await api.client.post("/api/v1/auth/login", json={"email": "ann@acme.test", "password": "s3cret-pw"})
    assert r.status_code == 200, r.text


async def test_a_get_hands_out_the_token_as_httponly_strict_cookie_and_header(api):
    r = await api.client.get("/healthz")
    token = r.headers["x-csrf-token"]
    assert len(token) >= 32
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith(f"csrf_token={token};")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    again = await api.client.get(DEVICES, headers=api.headers())  # the client sends the cookie back
    assert again.headers["x-csrf-token"] == token and "set-cookie" not in again.headers


async def test_a_forged_or_foreign_cookie_value_is_replaced(api):
    r = await api.client.get("/healthz", headers={"Cookie": "csrf_token=short"})
    assert r.headers["x-csrf-token"] != "short" and "csrf_token=" in r.headers["set-cookie"]


async def test_cookie_authenticated_write_without_or_with_a_wrong_token_is_refused(api):
    await _signed_in(api)
    token = (await api.client.get(DEVICES)).headers["x-csrf-token"]
    other = ("y" if token[0] == "x" else "x") + token[1:]  # differs in one character, always
    for headers in ({}, {"X-CSRF-Token": other}, {"X-CSRF-Token": ""}):
        r = await api.client.post(DEVICES, json={"device_id": "d1"}, headers=headers)
        assert r.status_code == 403 and r.json() == {"detail": "CSRF token missing or invalid"}
        assert "x-request-id" in r.headers
    assert (await api.client.get(DEVICES)).json()["total"] == 0  # nothing was created
    r = await api.client.post(DEVICES, json={"device_id": "d1"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text


async def test_a_header_without_the_cookie_is_refused(api):
    await _signed_in(api)
    token = (await api.client.get(DEVICES)).headers["x-csrf-token"]
    api.client.cookies.delete("csrf_token")
    r = await api.client.post(DEVICES, json={"device_id": "d1"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403


async def test_bearer_calls_need_no_csrf_token_even_beside_a_session_cookie(api):
    assert (await api.post(DEVICES, json={"device_id": "d1"})).status_code == 201
    await _signed_in(api)
    api.client.cookies.delete("csrf_token")
    assert (await api.post(DEVICES, json={"device_id": "d2"})).status_code == 201


async def test_every_write_method_is_covered(api):
    await _signed_in(api)
    await api.post(DEVICES, json={"device_id": "d1"})
    for method, path in (("PATCH", f"{DEVICES}/d1"), ("DELETE", f"{DEVICES}/d1"),
                         ("PUT", f"{DEVICES}/d1/tags"), ("POST", "/api/v1/auth/logout")):
        r = await api.client.request(method, path, json={})
        assert r.status_code == 403, (method, path, r.status_code)


async def test_login_needs_no_token_and_logout_clears_the_session_cookie(api):
    await _signed_in(api)  # a stale session cookie is present now; logging in again still works
    await _signed_in(api)
    token = (await api.client.get(DEVICES)).headers["x-csrf-token"]
    r = await api.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert 'pulse_session=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert (await api.client.get(DEVICES)).status_code == 401


async def test_paths_outside_the_api_are_not_checked(api):
    """Ingest authenticates devices by their own token; a stray browser cookie changes nothing."""
    token = (await api.post(DEVICES, json={"device_id": "d1"})).json()["token"]
    await _signed_in(api)
    r = await api.client.post("/ingest/v1/tenant/acme/device/d1/telemetry", json={"metrics": {"a": 1}},
                              headers={"X-Provision-Token": token})
    assert r.status_code != 403, r.text
