"""A whole Pulse node on Ray per broker kind: embedded amqtt (+ SQLite) and Mosquitto (+ PostgreSQL
when PULSE_TEST_DATABASE_URL is set, as in CI). Started once per module and parameter (slow)."""
from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from dataclasses import dataclass
from typing import Iterator

import httpx
import pytest

from pulse.config.settings import Settings
from tests.broker.fixtures import _require_mosquitto, free_port
from tests.conftest import PG_ADMIN_URL, _pg_admin


@dataclass
class Stack:
    kind: str
    settings: Settings
    node: object
    http: httpx.Client
    token: str
    mqtt_host: str
    mqtt_port: int
    mosquitto: object | None = None

    def create_device(self, device_id: str) -> str:
        r = self.http.post("/api/v1/customer/devices", json={"device_id": device_id})
        assert r.status_code == 201, r.text
        return r.json()["token"]


@pytest.fixture(scope="package", params=["embedded", "mosquitto"])
def stack(request, tmp_path_factory) -> Iterator[Stack]:
    # package scope: the node (and Ray in this process) is gone before the other test packages run
    from pulse.broker.auth_plugin import SERVICE_USERNAME
    from pulse.broker.mosquitto import MosquittoProcess, write_mosquitto_config
    from pulse.node import Node

    kind = request.param
    # "bridge-actor": Mosquitto, with the bridge as a Ray actor of its own instead of inside device
    # shard 0 (the default); only the tests that ask for it (test_ingest_crash.py)
    bridge_actor = kind == "bridge-actor"
    kind = "mosquitto" if bridge_actor else kind
    tmp = tmp_path_factory.mktemp(f"node-{kind}")
    env: dict = dict(data_dir=tmp / "data", http_port=free_port(), dashboard_enabled=False,
                     lake_flush_interval_s=1.0, snapshot_interval_s=0.5, ingest_batch_ms=10,
                     device_shards=2,  # routing across shards, and one shard's WAL alive while the other dies
                     command_expiry_interval_s=1.0, job_expiry_interval_s=1.0, timer_rules_interval_s=1.0,
                     escalation_interval_s=1.0, notifier_poll_interval_s=0.2,
                     ota_wave_interval_s=1.0,  # test_ota_campaign
                     # carrier and Telemetron syncs on short intervals, quick retries (test_integrations_sync)
                     carrier_check_interval_s=1.0, carrier_request_poll_interval_s=1.0, carrier_retry_base_s=0.1,
                     carrier_http_timeout_s=5.0, telemetron_drain_interval_s=1.0, telemetron_retry_base_s=0.1,
                     telemetron_backoff_base_s=1.0, telemetron_http_timeout_s=5.0)
    if bridge_actor:
        env["ingest_in_shards"] = False
    mosquitto = None
    pg_name, pg_created = None, False
    if kind == "mosquitto":
        _require_mosquitto()
        port, password = free_port(), secrets.token_urlsafe(16)
        mosquitto = MosquittoProcess(write_mosquitto_config(tmp / "mosq", port, SERVICE_USERNAME, password), port)
        env.update(mqtt_port=port, mqtt_url=f"mqtt://{SERVICE_USERNAME}:{password}@127.0.0.1:{port}")
        if PG_ADMIN_URL:
            pg_name = f"pulse_e2e_{uuid.uuid4().hex[:10]}"
            env["database_url"] = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    else:
        env["mqtt_port"] = free_port()
    settings = Settings(**env)
    node = Node(settings)
    try:  # everything started from here on is stopped, also when a later step of the set-up fails
        if mosquitto is not None:
            mosquitto.start()
        if pg_name:
            asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_name}"'))
            pg_created = True
        info = node.start()
        http = httpx.Client(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30,
                            headers={"Authorization": f"Bearer {info['token']}"})
        yield Stack(kind, settings, node, http, info["token"], "127.0.0.1", settings.mqtt_port, mosquitto)
        http.close()
    finally:
        node.stop()
        if mosquitto is not None:
            mosquitto.stop()
        if pg_created:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
