"""What every notification channel shares: the message, the delivery result, config rules, HTTP posting.

A channel module defines a pydantic `Config` (the edge: what a tenant may store), the names of its
secret fields, a pure `build(message, config)` (the request it would send, unit-testable) and
`send(message, config, ctx)` which sends it and classifies the outcome:
- ok: the target accepted it (2xx; SMTP accepted);
- retryable: it may work later (timeouts, connection errors, 429, 5xx, SMTP 4xx);
- otherwise permanent (other 4xx, auth refused): retrying would only repeat the failure.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from pulse.domain.channels import TEST_EVENT
from pulse.domain.severity import severity_label
from pulse.mqtt.publisher import MqttPublisher

EVENT_TITLES = {"OPEN": "Alert opened", "ACKNOWLEDGED": "Alert acknowledged", "CLOSED": "Alert closed",
                "ESCALATED": "Alert escalated", TEST_EVENT: "Test notification"}
# The colour of a severity in chat cards (Slack attachments, Teams themeColor).
SEVERITY_COLORS = {1: "2EB67D", 2: "ECB22E", 3: "F2A33A", 4: "E8590C", 5: "E01E5A"}
USER_AGENT = "Pulse-Notifier/1"
_ERROR_MAX = 500


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True)
class Message:
    """One alert event, channel-independent. `alert` is the JSON-safe snapshot taken at the event."""

    tenant_id: str
    event: str
    alert: dict[str, Any]
    delivery_id: str  # stable across retries of one job, so receivers can de-duplicate
    test: bool = False

    @property
    def severity(self) -> int:
        return int(self.alert.get("severity") or 3)

    @property
    def severity_label(self) -> str:
        return severity_label(self.severity)

    @property
    def device_id(self) -> str:
        return str(self.alert.get("device_id") or "")

    @property
    def summary(self) -> str:
        return str(self.alert.get("summary") or self.alert.get("alert_type") or "alert")

    @property
    def title(self) -> str:
        return f"[{self.severity_label.upper()}] {EVENT_TITLES.get(self.event, self.event)}: {self.summary}"

    def facts(self) -> list[tuple[str, str]]:
        """Label/value pairs every rich format shows, in order, only those known."""
        a = self.alert
        pairs = [("Event", self.event), ("Severity", f"{self.severity_label} ({self.severity})"),
                 ("Device", a.get("device_id")), ("Site", a.get("site_id")), ("Alert type", a.get("alert_type")),
                 ("Metric", a.get("metric")), ("Value", a.get("trigger_value")), ("Status", a.get("status")),
                 ("Escalation level", a.get("escalation_level")), ("Alert", a.get("alert_id")),
                 ("Tenant", self.tenant_id), ("Triggered at", a.get("triggered_at") or a.get("created_at"))]
        return [(k, str(v)) for k, v in pairs if v not in (None, "")]

    def body(self) -> dict[str, Any]:
        """The JSON document webhook and MQTT channels send (docs/notifications.md, "Payloads")."""
        a = self.alert
        return {
            "version": "1",
            "event": self.event,
            "test": self.test,
            "delivery_id": self.delivery_id,
            "tenant_id": self.tenant_id,
            "sent_at": datetime.now(timezone.utc).isoformat(),
            "alert": {
                "alert_id": a.get("alert_id"), "device_id": a.get("device_id"), "site_id": a.get("site_id"),
                "rule_id": a.get("rule_id"), "alert_type": a.get("alert_type"), "fingerprint": a.get("fingerprint"),
                "severity": self.severity, "severity_label": self.severity_label, "summary": self.summary,
                "status": a.get("status"), "metric": a.get("metric"), "trigger_value": a.get("trigger_value"),
                "created_at": a.get("created_at") or a.get("triggered_at"),
                "escalation_level": a.get("escalation_level"), "details": a.get("details") or {},
            },
        }


@dataclass
class DeliveryResult:
    ok: bool
    retryable: bool = False
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    retry_after_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeliveryContext:
    """What a send may use: one pooled HTTP client, the service MQTT publisher, limits."""

    http: httpx.AsyncClient
    mqtt: MqttPublisher | None
    timeout_s: float = 10.0
    block_private_targets: bool = False
    # The store and the secret box, for channels that act through a tenant's integration (telemetron).
    db: Any = None
    secrets: Any = None


class Channel(Protocol):
    type: ClassVar[str]
    Config: ClassVar[type[ChannelConfig]]
    secret_fields: ClassVar[tuple[str, ...]]

    async def send(self, message: Message, config: Any, ctx: DeliveryContext) -> DeliveryResult: ...


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def clip(text: str) -> str:
    return text if len(text) <= _ERROR_MAX else text[:_ERROR_MAX] + "…"


class BlockedTarget(Exception):
    pass


async def check_target(host: str, port: int, ctx: DeliveryContext) -> None:
    """SSRF guard (when enabled): refuse hosts resolving to loopback, private or link-local addresses."""
    if not ctx.block_private_targets:
        return
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise BlockedTarget(f"target {host} resolves to a non-public address")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff schedule


_REDACT = re.compile(r"https?://\S+")


async def post(url: str, body: bytes, headers: dict[str, str], ctx: DeliveryContext,
               secret_url: bool = False) -> DeliveryResult:
    """POST `body`, classify the answer. With `secret_url` no error text ever quotes the URL."""
    start = time.monotonic()

    def done(**kw: Any) -> DeliveryResult:
        return DeliveryResult(duration_ms=int((time.monotonic() - start) * 1000), **kw)

    try:
        parts = urlsplit(url)
        await check_target(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), ctx)
        resp = await ctx.http.post(url, content=body, timeout=ctx.timeout_s,
                                   headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    except BlockedTarget as e:
        return done(ok=False, retryable=False, error=str(e))
    except (httpx.TimeoutException, httpx.TransportError, OSError) as e:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return done(ok=False, retryable=True, error=clip(_REDACT.sub("<url>", text) if secret_url else text))
    code = resp.status_code
    if 200 <= code < 300:
        return done(ok=True, status_code=code)
    snippet = resp.text.strip()[:200]
    error = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    retryable = code == 429 or code >= 500
    return done(ok=False, retryable=retryable, status_code=code, error=clip(error),
                retry_after_s=_retry_after(resp) if retryable else None)
