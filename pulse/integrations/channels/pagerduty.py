"""PagerDuty Events API v2: OPEN/ESCALATED trigger, ACKNOWLEDGED acknowledges, CLOSED resolves.

`dedup_key` is the alert fingerprint, so every event of one alert lands on one PagerDuty incident
and a repeated delivery (a retry after a lost answer) is absorbed by PagerDuty. The routing key
(an integration key of a PagerDuty service) is a secret.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import AliasChoices, Field, field_validator

from pulse.domain.channels import TEST_EVENT
from pulse.domain.urls import http_url
from pulse.integrations.channels.base import ChannelConfig, DeliveryContext, DeliveryResult, Message, dumps, post

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ACTIONS = {"OPEN": "trigger", "ESCALATED": "trigger", "ACKNOWLEDGED": "acknowledge", "CLOSED": "resolve",
           TEST_EVENT: "trigger"}


class PagerDutyConfig(ChannelConfig):
    routing_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                             validation_alias=AliasChoices("routing_key", "integration_key"),
                             description="Events API v2 integration key (write-only)")
    events_url: str = DEFAULT_EVENTS_URL

    @field_validator("events_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)


def severity(level: int) -> str:
    """Pulse 1..5 (higher = worse) -> PagerDuty's four levels (reference §4.2)."""
    return "critical" if level >= 4 else "error" if level == 3 else "warning" if level == 2 else "info"


def dedup_key(message: Message) -> str:
    key = message.alert.get("fingerprint") or f"pulse:{message.tenant_id}:{message.alert.get('alert_id')}"
    return str(key)[:255]


def event(message: Message, routing_key: str, action: str | None = None) -> dict[str, Any]:
    action = action or ACTIONS[message.event]
    doc: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(message)}
    if action != "trigger":
        return doc
    a = message.alert
    details = {k: v for k, v in message.facts()}
    if a.get("details"):
        details["details"] = a["details"]
    payload = {"summary": message.title[:1024], "source": message.device_id or "pulse",
               "severity": severity(message.severity), "class": a.get("alert_type"),
               "component": a.get("metric"), "group": a.get("site_id"),
               "timestamp": a.get("triggered_at") or a.get("created_at"), "custom_details": details}
    doc["payload"] = {k: v for k, v in payload.items() if v not in (None, "")}
    doc["client"] = "Pulse"
    return doc


class PagerDutyChannel:
    type: ClassVar[str] = "pagerduty"
    Config: ClassVar = PagerDutyConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("routing_key",)

    def build(self, message: Message, config: PagerDutyConfig) -> dict[str, Any]:
        return event(message, config.routing_key)

    async def send(self, message: Message, config: PagerDutyConfig, ctx: DeliveryContext) -> DeliveryResult:
        result = await post(config.events_url, dumps(self.build(message, config)), {}, ctx)
        if message.test and result.ok:
            # a test must not leave an incident open: resolve it at once
            resolved = await post(config.events_url, dumps(event(message, config.routing_key, "resolve")), {}, ctx)
            result.extra["resolve"] = {"ok": resolved.ok, "status_code": resolved.status_code, "error": resolved.error}
        return result
