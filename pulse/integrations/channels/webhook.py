"""Generic webhook: the Pulse alert document as JSON, optionally signed.

With a `secret`, header `X-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>` lets the
receiver check origin and integrity (compare in constant time, over the bytes as received).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import ClassVar

from pydantic import Field, field_validator

from pulse.domain.urls import http_url
from pulse.integrations.channels.base import ChannelConfig, DeliveryContext, DeliveryResult, Message, dumps, post

SIGNATURE_HEADER = "X-Signature-256"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# set by Pulse: a custom header may not replace them
RESERVED_HEADERS = {"content-type", "content-length", "host", "user-agent", "x-signature-256", "x-pulse-event",
                    "x-pulse-delivery", "transfer-encoding", "connection"}


class WebhookConfig(ChannelConfig):
    url: str
    secret: str | None = Field(None, min_length=1, max_length=256)
    headers: dict[str, str] | None = Field(None, max_length=20, description="extra request headers (write-only)")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for name, value in (v or {}).items():
            if not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name[:64]!r} is not allowed")
            if any(c in value for c in "\r\n\x00") or len(value) > 2000:
                raise ValueError(f"invalid value for header {name!r}")
        return v or None


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    type: ClassVar[str] = "webhook"
    Config: ClassVar = WebhookConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("secret", "headers")

    def build(self, message: Message, config: WebhookConfig) -> tuple[bytes, dict[str, str]]:
        body = dumps(message.body())
        headers = {**(config.headers or {}), "X-Pulse-Event": message.event, "X-Pulse-Delivery": message.delivery_id}
        if config.secret:
            headers[SIGNATURE_HEADER] = signature(config.secret, body)
        return body, headers

    async def send(self, message: Message, config: WebhookConfig, ctx: DeliveryContext) -> DeliveryResult:
        body, headers = self.build(message, config)
        return await post(config.url, body, headers, ctx)
