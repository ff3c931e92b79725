"""MQTT: republish the alert document through Pulse's own broker, as Pulse's service account.

Delivery goes through Pulse's one outbound publisher (`pulse.mqtt.publisher.MqttPublisher`, handed
in as `DeliveryContext.mqtt`), so it connects the way `mqtt_url` says: plain or `mqtts://` with TLS.

The topic is a template over {tenant_id}, {device_id}, {alert_id}, {alert_type}, {event} and
{severity}. It must start with `tenant/{tenant_id}/` so a tenant can only publish inside its own
namespace, and may not use `tenant/{tenant_id}/device/...`: that is the device protocol, and a
message there would be read back by the ingest bridge as if a device had sent it.
"""
from __future__ import annotations

import string
import time
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from pulse.integrations.channels.base import ChannelConfig, DeliveryContext, DeliveryResult, Message, clip, dumps
from pulse.mqtt.errors import MqttError

DEFAULT_TOPIC = "tenant/{tenant_id}/alerts/{device_id}"
PLACEHOLDERS = {"tenant_id", "device_id", "alert_id", "alert_type", "event", "severity"}
_PREFIX = "tenant/{tenant_id}/"


def check_topic(template: str) -> str:
    if not template.startswith(_PREFIX) or len(template) > 512:
        raise ValueError("topic must start with tenant/{tenant_id}/")
    if any(c in template for c in "+#\x00") or "//" in template or template.endswith("/"):
        raise ValueError("topic may not contain wildcards or empty levels")
    if template.split("/")[2] == "device":
        raise ValueError("tenant/{tenant_id}/device/... is reserved for the device protocol")
    try:
        names = {name for _, name, spec, conv in string.Formatter().parse(template) if name is not None}
    except ValueError:
        raise ValueError("malformed topic template") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(PLACEHOLDERS)}")
    return template


def render(template: str, message: Message) -> str:
    a = message.alert
    values = {"tenant_id": message.tenant_id, "device_id": a.get("device_id") or "-", "alert_id": a.get("alert_id"),
              "alert_type": a.get("alert_type") or "-", "event": message.event, "severity": message.severity}
    # values are ids (no "/", "+", "#"), but a level must never be split or wildcarded by one
    return template.format(**{k: str(v).replace("/", "_").replace("+", "_").replace("#", "_")
                              for k, v in values.items()})


class MqttConfig(ChannelConfig):
    topic: str = DEFAULT_TOPIC
    qos: Literal[0, 1] = 1
    retain: bool = False

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        return check_topic(v)


class MqttChannel:
    type: ClassVar[str] = "mqtt"
    Config: ClassVar = MqttConfig
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def build(self, message: Message, config: MqttConfig) -> tuple[str, dict[str, Any]]:
        return render(config.topic, message), message.body()

    async def send(self, message: Message, config: MqttConfig, ctx: DeliveryContext) -> DeliveryResult:
        start = time.monotonic()
        topic, body = self.build(message, config)
        if ctx.mqtt is None:
            return DeliveryResult(ok=False, retryable=True, error="no MQTT publisher configured")
        try:
            await ctx.mqtt.publish(topic, dumps(body), qos=config.qos, retain=config.retain)
        except MqttError as e:
            return DeliveryResult(ok=False, retryable=True, error=clip(f"{type(e).__name__}: {e}"),
                                  duration_ms=int((time.monotonic() - start) * 1000))
        return DeliveryResult(ok=True, duration_ms=int((time.monotonic() - start) * 1000), extra={"topic": topic})
