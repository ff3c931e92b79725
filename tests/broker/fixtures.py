"""Reusable MQTT broker fixtures (a pytest plugin).

Enable in a test package with `pytest_plugins = ["tests.broker.fixtures"]` (top-level conftest or a
test module). Fixtures:
- `broker_db`: a migrated temporary SQLite `Database`;
- `embedded_broker`, `mosquitto_broker`: a running broker on a free 127.0.0.1 port, as a `BrokerHandle`;
- `mqtt_broker`: parametrized over both ("embedded", "mosquitto").
Mosquitto missing: the test is skipped, or fails when CI == "true".
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa

from pulse.broker.auth_plugin import SERVICE_USERNAME
from pulse.broker.credentials import DeviceCredentials, credentials_for
from pulse.broker.embedded import EmbeddedBroker
from pulse.broker.mosquitto import MosquittoProcess, find_dynsec_plugin, write_mosquitto_config
from pulse.config.settings import Settings
from pulse.mqtt.endpoint import MqttEndpoint
from pulse.storage import tokens
from pulse.storage.db import Database, utcnow
from pulse.storage.tables import devices, tenants

# Short auth-cache TTLs for the embedded broker, so revocation tests don't wait 30 s.
EMBEDDED_POSITIVE_TTL_S = 0.5
EMBEDDED_NEGATIVE_TTL_S = 0.2


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class BrokerHandle:
    kind: str  # "embedded" | "mosquitto"
    host: str
    port: int
    service_username: str
    service_password: str
    credentials: DeviceCredentials
    db: Database
    settings: Settings  # points at this broker and database (mqtt_url set for Mosquitto)
    cache_ttl_s: float  # how long a revoked token may still connect when only the DB changed
    mosquitto: MosquittoProcess | None = None  # the subprocess (Mosquitto only), e.g. to restart it

    def client(self, username: str | None = None, password: str | None = None, **kwargs: Any) -> aiomqtt.Client:
        """An aiomqtt client (MQTT 3.1.1); the service account unless username/password are given."""
        if username is None:
            username, password = self.service_username, self.service_password
        kwargs.setdefault("timeout", 5)
        return aiomqtt.Client(self.host, self.port, username=username, password=password, **kwargs)

    def endpoint(self, username: str | None = None, password: str | None = None) -> MqttEndpoint:
        """Where Pulse's MQTT clients reach this broker; the service account unless username is given."""
        if username is None:
            username, password = self.service_username, self.service_password
        return MqttEndpoint(self.host, self.port, username, password)

    async def provision(self, tenant_id: str, device_id: str) -> tuple[str, str]:
        """Create tenant and device rows if missing, issue a token, tell the broker; -> (secret, token_id)."""
        now = utcnow()
        async with self.db.begin() as conn:
            if (await conn.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id))).first() is None:
                await conn.execute(tenants.insert().values(tenant_id=tenant_id, name=tenant_id, created_at=now))
            exists = await conn.execute(
                sa.select(devices.c.device_id).where(devices.c.tenant_id == tenant_id, devices.c.device_id == device_id)
            )
            if exists.first() is None:
                await conn.execute(
                    devices.insert().values(
                        tenant_id=tenant_id, device_id=device_id, metadata={}, created_at=now, updated_at=now
                    )
                )
            issued = await tokens.issue(conn, tenant_id, device_id)
        await self.credentials.set_device_secret(tenant_id, device_id, issued["token"])
        return issued["token"], issued["token_id"]


def _require_mosquitto() -> None:
    missing = [
        name
        for name, ok in (
            ("mosquitto", shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()),
            ("mosquitto_ctrl", shutil.which("mosquitto_ctrl")),
            ("mosquitto_dynamic_security.so", find_dynsec_plugin()),
        )
        if not ok
    ]
    if missing:
        msg = f"Mosquitto not available: missing {', '.join(missing)} (Debian: mosquitto, mosquitto-clients)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
async def broker_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    await db.migrate()
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def embedded_broker(tmp_path: Path, broker_db: Database) -> AsyncIterator[BrokerHandle]:
    settings = Settings(
        data_dir=tmp_path / "pulse",
        mqtt_host="127.0.0.1",
        mqtt_port=0,  # the OS picks; no race with other tests
        mqtt_url=None,
        database_url=broker_db.url,
    )
    broker = EmbeddedBroker(
        settings, positive_ttl=EMBEDDED_POSITIVE_TTL_S, negative_ttl=EMBEDDED_NEGATIVE_TTL_S
    )
    await broker.start()
    settings.mqtt_port = broker.port
    credentials = credentials_for(settings)
    try:
        yield BrokerHandle(
            kind="embedded",
            host=broker.host,
            port=broker.port,
            service_username=broker.service_username,
            service_password=broker.service_password,
            credentials=credentials,
            db=broker_db,
            settings=settings,
            cache_ttl_s=EMBEDDED_POSITIVE_TTL_S,
        )
    finally:
        await credentials.close()
        await broker.stop()


@pytest.fixture
async def mosquitto_broker(tmp_path: Path, broker_db: Database) -> AsyncIterator[BrokerHandle]:
    _require_mosquitto()
    host, port = "127.0.0.1", free_port()
    password = secrets.token_urlsafe(24)
    conf = write_mosquitto_config(tmp_path / "mosquitto", port, SERVICE_USERNAME, password)
    proc = MosquittoProcess(conf, port, host=host)
    await asyncio.to_thread(proc.start)
    settings = Settings(
        data_dir=tmp_path / "pulse",
        mqtt_host=host,
        mqtt_port=port,
        mqtt_url=f"mqtt://{SERVICE_USERNAME}:{password}@{host}:{port}",
        database_url=broker_db.url,
    )
    credentials = credentials_for(settings)
    try:
        yield BrokerHandle(
            kind="mosquitto",
            host=host,
            port=port,
            service_username=SERVICE_USERNAME,
            service_password=password,
            credentials=credentials,
            db=broker_db,
            settings=settings,
            cache_ttl_s=0.0,
            mosquitto=proc,
        )
    finally:
        await credentials.close()
        await asyncio.to_thread(proc.stop)


@pytest.fixture(params=["embedded", "mosquitto"])
def mqtt_broker(request: pytest.FixtureRequest, broker_db: Database) -> BrokerHandle:
    # Sync on purpose: pytest-asyncio sets up the async fixture from here; from inside a running
    # loop it could not. `broker_db` is named so a parametrized store (tests/conftest.py) is seen
    # at collection time.
    return request.getfixturevalue(f"{request.param}_broker")
