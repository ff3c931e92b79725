"""Local login and the `pulse token` / `pulse openapi` commands."""
import json
import os
import subprocess
import sys

import httpx

from pulse.storage import tables, tenants, tokens


async def test_login_sets_session_cookie_and_returns_a_working_token(api):
    await tenants.ensure_user(api.services.db, "acme", "ann@acme.test", "customer_viewer", "s3cret-pw")
    r = await api.client.post("/api/v1/auth/login", json={"email": "ann@acme.test", "password": "s3cret-pw"})
    assert r.status_code == 200
    body = r.json()
    assert body["tenant_id"] == "acme" and body["role"] == "customer_viewer"
    assert "pulse_session" in r.cookies
    assert (await api.client.get("/api/v1/customer/devices")).status_code == 200  # via the cookie
    api.client.cookies.clear()
    r = await api.client.get("/api/v1/customer/devices", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 200


async def test_login_refuses_wrong_password_and_unknown_user(api):
    await tenants.ensure_user(api.services.db, "acme", "ann@acme.test", "customer_admin", "right")
    for email, pw in (("ann@acme.test", "wrong"), ("nobody@acme.test", "right")):
        r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": pw})
        assert r.status_code == 401 and r.json()["detail"] == "wrong email or password"
    assert (await api.client.post("/api/v1/auth/login", json={"email": "x"})).status_code == 422


def _pulse(args, env):
    return subprocess.run([sys.executable, "-m", "pulse.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


async def test_token_command_prints_only_a_jwt_and_creates_the_tenant(api, tmp_path):
    s = api.services.settings
    env = {"PULSE_DATA_DIR": str(s.data_dir), "PULSE_DATABASE_URL": s.db_url}
    out = _pulse(["token", "--tenant", "brand-new", "--role", "customer_viewer", "--sub", "v@new"], env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert out.stdout.count("\n") == 1 and token.count(".") == 2
    assert await tenants.get_tenant(api.services.db, "brand-new") is not None
    r = await api.client.get("/api/v1/customer/devices", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["total"] == 0
    assert _pulse(["token", "--tenant", "x", "--role", "emperor"], env).returncode == 2


def test_openapi_command_starts_nothing_and_lists_the_routes(tmp_path):
    out = _pulse(["openapi"], {"PULSE_DATA_DIR": str(tmp_path / "none")})
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "/api/v1/customer/devices/{device_id}/twin/desired" in doc["paths"]
    assert not (tmp_path / "none").exists()


async def test_healthz_is_green_once_the_actors_answer(api):
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def suspend(db, tenant_id: str) -> None:
    async with db.begin() as conn:
        await conn.execute(tables.tenants.update().where(tables.tenants.c.tenant_id == tenant_id)
                           .values(status="SUSPENDED"))


async def test_a_suspended_tenant_loses_api_login_and_device_access(api):
    db = api.services.db
    token = (await api.post("/api/v1/customer/devices", json={"device_id": "d1"})).json()["token"]
    await tenants.ensure_user(db, "acme", "ann@acme.test", "customer_admin", "s3cret-pw")
    await suspend(db, "acme")
    api.services.tenant_statuses.clear()  # as once tenant_status_ttl_s has passed
    r = await api.get("/api/v1/customer/devices")
    assert r.status_code == 403 and r.json()["detail"] == "tenant acme is SUSPENDED"
    r = await api.client.post("/api/v1/auth/login", json={"email": "ann@acme.test", "password": "s3cret-pw"})
    assert r.status_code == 403 and r.json()["detail"] == "tenant acme is SUSPENDED"
    r = await api.client.post("/ingest/v1/tenant/acme/device/d1/telemetry", json={"metrics": {"a": 1}},
                              headers={"X-Provision-Token": token})
    assert r.status_code == 401
    assert not await tokens.verify(db, "acme", "d1", token)  # the broker's check too
    assert (await api.get("/api/v1/customer/devices", tenant="globex")).status_code == 200


async def test_a_suspension_by_another_process_counts_once_the_status_window_has_passed(api):
    api.services.settings.tenant_status_ttl_s = 60
    assert (await api.get("/api/v1/customer/devices")).status_code == 200
    await suspend(api.services.db, "acme")  # straight to the store, as another process would
    assert (await api.get("/api/v1/customer/devices")).status_code == 200  # this process's answer is kept
    api.services.settings.tenant_status_ttl_s = 0  # no window: the store is read on every request
    api.services.tenant_statuses.clear()
    assert (await api.get("/api/v1/customer/devices")).status_code == 403
    assert (await api.get("/api/v1/customer/devices")).status_code == 403


async def test_repeated_failed_logins_are_429_with_retry_after_per_address_and_user(api):
    await tenants.ensure_user(api.services.db, "acme", "ann@acme.test", "customer_admin", "right")
    await tenants.ensure_user(api.services.db, "acme", "bob@acme.test", "customer_admin", "right")
    codes = [(await api.client.post("/api/v1/auth/login", json={"email": "ann@acme.test", "password": "wrong"}))
             .status_code for _ in range(5)]
    assert codes == [401] * 5
    r = await api.client.post("/api/v1/auth/login", json={"email": "ann@acme.test", "password": "right"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "too many failed logins" in r.json()["detail"]
    r = await api.client.post("/api/v1/auth/login", json={"email": "bob@acme.test", "password": "right"})
    assert r.status_code == 200  # another user from the same address is not held up
