"""Pulse configuration: PULSE_* environment variables, optionally a TOML file.

This is the only module that reads the environment. Everything else receives a
`Settings` object (or the piece of it it needs).
"""
from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any, Callable

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


SERVICE_MQTT_USER = "pulse-service"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore", frozen=False)

    # Paths and endpoints
    data_dir: Path = Path(".pulse")
    config_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # Set -> use that external broker (e.g. mqtt://pulse:secret@127.0.0.1:1883) instead of the embedded one;
    # mqtts://… connects with TLS (default port 8883), verifying the broker's certificate.
    mqtt_url: str | None = None
    # mqtts:// only: a PEM file of the CA that signed the broker's certificate (a private CA); unset -> system CAs.
    mqtt_ca_file: Path | None = None
    # Mosquitto only: how Pulse manages device credentials ("dynsec" = dynamic security plugin).
    mqtt_auth_mode: str = "dynsec"
    database_url: str | None = None
    ray_address: str | None = None
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265
    dashboard_enabled: bool = True
    # Niceness of the node's background processes when Pulse starts Ray itself (`pulse.node`): Ray's
    # agents and Pulse's scheduled work. Ray's dashboard agent re-records every Serve request's
    # histogram samples at each 10 s metrics report, a 50-100 ms burst that would otherwise queue the
    # API behind it (docs/operations.md). 0 leaves them at the request path's priority.
    background_nice: int = Field(default=10, ge=0, le=19)

    # Auth
    jwt_secret: str | None = None
    jwt_ttl_seconds: int = 12 * 3600
    # Every customer request checks its tenant is ACTIVE; an API process keeps the answer this long, so
    # a suspension made by another process counts within it (0 = read the store on every request).
    tenant_status_ttl_s: float = 1.0
    oidc_jwks_url: str | None = None
    oidc_issuer: str | None = None  # with a JWKS URL, RS256 tokens must carry this `iss`
    oidc_audience: str | None = None  # ... and this `aud`

    # Actor runtime
    partitions: int = 1024
    # One shard per node by default: on 2 cores, where the broker (and here the load) take the other
    # core, a second shard process costs more than it runs in parallel (bench_ingest.py --sweep shards)
    device_shards: int = 1
    tenant_shards: int = 1
    snapshot_interval_s: float = 1.0
    passivate_after_s: float = 600.0

    # Ingest
    ingest_bridges: int = 1
    # bridge i runs inside device shard i % device_shards: no Ray call per batch to its own shard and
    # one process fewer (bench_ingest.py --sweep intake); off: each bridge is a Ray actor of its own
    ingest_in_shards: bool = True
    # requests to the shards over a socket per caller instead of Ray calls (pulse.actors.lane): ~0.05
    # instead of ~1 ms of CPU on each side (bench_serve.py); off: every request is a Ray call
    shard_lanes: bool = True
    ingest_batch_size: int = 2000  # fewer Ray calls per message (bench_ingest.py --sweep batch)
    ingest_batch_ms: int = 10  # the longest a message waits for its batch to fill (latency at low and half load)
    max_payload_bytes: int = 16384
    max_metrics: int = 50
    max_future_skew_s: int = 300
    http_ingest_rate_per_s: float = 10.0
    http_ingest_burst: float = 20.0
    stale_after_s: int = 60
    offline_after_s: int = 300
    command_expiry_interval_s: float = 10.0
    job_expiry_interval_s: float = 10.0  # how often expired jobs' open executions are timed out (docs/jobs.md)
    timer_rules_interval_s: float = 15.0
    no_heartbeat_alerts: bool = True
    escalation_interval_s: float = 15.0
    no_heartbeat_severity: int = 4
    sla_report_check_interval_s: float = 600.0  # how often the scheduler looks for tenants lacking yesterday's SLA report

    # Carrier integrations (docs/carriers.md): the scheduler asks the carrier-sync actor this often which
    # integrations are due (each has its own sync_interval_minutes) and polls pending carrier requests.
    carrier_check_interval_s: float = 60.0
    carrier_request_poll_interval_s: float = 30.0
    carrier_http_timeout_s: float = 15.0
    carrier_retry_attempts: int = 4
    carrier_retry_base_s: float = 0.5
    carrier_data_usage_alert_pct: float = 80.0
    # Public base URL carriers call back (e.g. https://pulse.example.com); unset -> callbacks not registered.
    public_base_url: str | None = None

    # Telemetron sync (docs/telemetron.md): how often the outbox is drained.
    telemetron_drain_interval_s: float = 10.0
    telemetron_http_timeout_s: float = 15.0
    telemetron_retry_attempts: int = 3
    telemetron_retry_base_s: float = 0.5
    # A device whose change Telemetron could not take (down, 5xx) waits 10 s, 20 s, ... (capped) before
    # its queue is tried again; other devices and tenants go on. Delivered outbox rows are kept this long.
    telemetron_backoff_base_s: float = 10.0
    telemetron_backoff_max_s: float = 600.0
    telemetron_batch_size: int = 500  # outbox rows read per tenant and drain
    telemetron_outbox_retention_days: float = 7.0

    # Export jobs (docs/exports.md): how often the scheduler runs pending jobs and removes expired files;
    # the secret signing download links (unset -> generated into the data dir).
    export_interval_s: float = 5.0
    download_url_secret: str | None = None
    # Firmware registry (docs/ota.md): the largest image Pulse hosts (413 beyond), and how long a signed
    # link to a hosted image works.
    firmware_max_bytes: int = 64 * 1024 * 1024
    firmware_link_ttl_s: int = 3600
    # OTA campaigns (docs/ota.md): a wave at most this often per running campaign (the scheduler's tick), and
    # how long a dispatched device may take before it counts as FAILED.
    ota_wave_interval_s: float = 10.0
    ota_device_timeout_s: float = 24 * 3600.0
    # Tenant audit trail (docs/audit-log.md): rows older than this go, checked this often.
    audit_retention_days: float = 90.0
    audit_retention_interval_s: float = 3600.0

    # Lake
    # Reads merge the writer's unflushed rows, so a long interval costs no freshness and keeps files few.
    lake_flush_interval_s: float = 30.0
    lake_flush_rows: int = 200_000
    # Lake lifecycle (docs/lake.md): a UTC day is compacted once it ended
    # `lake_compaction_delay_s` ago; replaced parts stay `lake_compaction_grace_s` for running reads.
    lake_compaction_interval_s: float = 900.0
    lake_compaction_delay_s: float = 3600.0
    lake_compaction_grace_s: float = 3600.0
    lake_retention_interval_s: float = 3600.0
    lake_retention_days: int = 30  # a tenant's own `telemetry_retention_days` wins

    # Tenant SQL (docs/tenant-sql.md): each query's wall-clock and memory budget.
    tenant_sql_timeout_s: float = 10.0
    tenant_sql_memory_mb: int = 512
    tenant_sql_concurrency: int = 2  # queries at once per API process; more are refused with 429

    # Notifications (docs/notifications.md): Fernet key(s) for channel secrets at rest, comma-separated,
    # the first encrypts (rotation); unset -> generated into the data dir on first use.
    secrets_key: str | None = None
    notifier_poll_interval_s: float = 1.0
    notifier_batch_size: int = 100
    notifier_concurrency: int = 16
    notifier_timeout_s: float = 10.0
    notifier_max_attempts: int = 60  # with backoff capped at 15 min: about 14 h of retrying before FAILED
    notifier_backoff_base_s: float = 5.0  # 5, 10, 20, ... s between attempts
    notifier_backoff_max_s: float = 900.0
    notifier_rate_per_minute: float = 60.0  # per channel, unless the channel sets its own
    notifier_rate_burst: int = 10
    # Refuse targets on loopback/private/link-local addresses (SSRF guard for multi-tenant SaaS).
    notifier_block_private_targets: bool = False

    # Serve: the library default (5 in flight) collapses under concurrency; see docs/operations.md,
    # "Capacity and load shedding", for these and the figures behind them.
    serve_max_ongoing_requests: int = 64
    serve_replicas: int = 1
    # Direct ingress: with one replica, the replica itself listens on http_port and Serve's proxy hop
    # is skipped (Serve ~ bare uvicorn; docs/operations.md). More replicas always go through the proxy.
    serve_direct_ingress: bool = True
    # Serve's per-request log lines (proxy and replica): off, they cost ~20 % of its rate
    # (docs/operations.md); Serve's request metrics stay on the dashboard either way.
    serve_access_log: bool = False
    # HTTP requests in progress per API process (uvicorn or Serve replica), pulse/serve/shedding.py:
    # up to api_max_in_flight always taken; past it, up to api_max_in_flight_burst while a new request
    # would wait less than api_queue_target_ms (those in progress times the process's CPU per request
    # over the last 100 ms); the rest are answered 503 with Retry-After at once. Serve's proxy counts
    # api_max_in_flight x serve_replicas only. Health checks and live streams never count. 0 = no
    # limit; a burst bound at or below api_max_in_flight = a plain count.
    api_max_in_flight: int = 8
    api_max_in_flight_burst: int = 24
    api_queue_target_ms: float = 30.0
    api_shed_retry_after_s: int = 1

    # Live push (docs/live.md). Each open WebSocket/SSE stream is an ongoing Serve request: the
    # ingress deployment adds `live_max_subscribers` to `serve_max_ongoing_requests`.
    live_max_subscribers: int = 500  # streams per API process (Serve replica); more are refused
    live_max_per_tenant: int = 200  # streams per tenant per API process (documented env default: 10)
    live_queue_size: int = 256  # events waiting per client; when full the oldest are dropped
    live_send_timeout_s: float = 10.0  # a client that takes longer to accept one frame is disconnected
    live_keepalive_s: float = 15.0  # idle time before a ping (WS) or keepalive comment (SSE)
    live_hub_queue_size: int = 10_000  # events waiting per API process in the hub (drop-oldest)
    live_max_group_devices: int = 10_000  # a group subscription resolves at most this many members
    live_allowed_origins: str = ""  # comma-separated WebSocket Origins accepted besides the API's own

    # First start
    bootstrap_tenant: str = "demo"
    bootstrap_admin_email: str = "admin@demo.local"
    bootstrap_admin_password: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("PULSE_CONFIG_FILE")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'pulse.db'}"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.mqtt_url

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.lake_dir, self.wal_dir):
            d.mkdir(parents=True, exist_ok=True)

    def _generated(self, name: str, make: Callable[[], str]) -> str:
        """A secret kept in the data dir (mode 0600), made on first use. Linking a temp file into
        place is atomic, so concurrent first starts (Ray workers) all end up with the same value."""
        path = self.data_dir / name
        if not path.exists():
            self.ensure_dirs()
            tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
            tmp.write_text(make())
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()

    def resolved_jwt_secret(self) -> str:
        """The configured secret, else one generated into the data dir."""
        return self.jwt_secret or self._generated("jwt_secret", lambda: secrets.token_urlsafe(48))

    def resolved_secrets_key(self) -> str:
        """The configured Fernet key(s), else one generated into the data dir."""
        return self.secrets_key or self._generated(
            "secrets_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())

    def resolved_download_url_secret(self) -> str:
        """The configured secret for signed download links, else one generated into the data dir."""
        return self.download_url_secret or self._generated("download_url_secret", lambda: secrets.token_urlsafe(48))

    def service_mqtt_password(self) -> str:
        """Password of Pulse's own MQTT account on the embedded broker (generated once)."""
        return self._generated("mqtt_service_password", lambda: secrets.token_urlsafe(24))

    def env(self) -> dict[str, str]:
        """These settings as PULSE_* variables, for processes Pulse starts (Ray workers, subprocesses)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is not None:
                out[f"PULSE_{name.upper()}"] = str(value)
        return out


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
