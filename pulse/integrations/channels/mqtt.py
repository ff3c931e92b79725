"""MQTT: republish the alert document through Pulse's own broker, as Pulse's service account.

The topic is a template over {tenant_id}, {device_id}, {alert_id}, {alert_type}, {event} and
{severity}. It must start with `tenant/{tenant_id}/` so a tenant can only publish inside its own
namespace, and may not use `tenant/{tenant_id}/device/...`: that is the device protocol, and a
message there would be read back by the ingest bridge as if a device had sent it.
"""
from __future__ import annotations

import asyncio
import string
import time
from typing import Any, ClassVar, Literal

import aiomqtt
from pydantic import field_validator

from pulse.integrations.channels.base import ChannelConfig, DeliveryContext, DeliveryResult, Message, clip, dumps

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


class MqttPublisher:
    """One lazily opened service-account connection; a failed publish drops it (the next reconnects)."""

    def __init__(self, host: str, port: int, username: str, password: str, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        client = await self._connected()
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=self.timeout_s)
        except BaseException:
            async with self._lock:
                if self._client is client:
                    await self._drop()
            raise

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:  # one connect at a time; publishes then share the connection
            if self._client is None:
                client = aiomqtt.Client(self.host, self.port, username=self.username, password=self.password,
                                        timeout=self.timeout_s)
                await client.__aenter__()
                self._client = client
            return self._client

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except Exception:  # already broken; nothing left to release
                pass


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
        except (aiomqtt.MqttError, OSError, asyncio.TimeoutError) as e:
            return DeliveryResult(ok=False, retryable=True, error=clip(f"{type(e).__name__}: {e}"),
                                  duration_ms=int((time.monotonic() - start) * 1000))
        return DeliveryResult(ok=True, duration_ms=int((time.monotonic() - start) * 1000), extra={"topic": topic})
