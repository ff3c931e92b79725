"""Slack incoming webhook: Block Kit message with a plain-text fallback.

The webhook URL is the credential (anyone holding it can post), so it is a secret: encrypted at
rest, masked on read, and never quoted in an error.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from pulse.domain.urls import http_url
from pulse.integrations.channels.base import ChannelConfig, DeliveryContext, DeliveryResult, Message, dumps, post

_MAX_FIELDS = 10  # Slack's limit per section
_HEADER_MAX = 150


class SlackConfig(ChannelConfig):
    webhook_url: str = Field(description="incoming-webhook URL (write-only)")

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)


def escape(text: str) -> str:
    """Slack mrkdwn control characters; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    title = message.title
    fields = [{"type": "mrkdwn", "text": f"*{escape(k)}*\n{escape(v)}"} for k, v in message.facts()[:_MAX_FIELDS]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:_HEADER_MAX], "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(message.summary)}*"}},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Pulse · delivery {escape(message.delivery_id)}"}]},
    ]
    return {"text": title, "blocks": blocks}


class SlackChannel:
    type: ClassVar[str] = "slack"
    Config: ClassVar = SlackConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)

    def build(self, message: Message, config: SlackConfig) -> dict[str, Any]:
        return payload(message)

    async def send(self, message: Message, config: SlackConfig, ctx: DeliveryContext) -> DeliveryResult:
        return await post(config.webhook_url, dumps(self.build(message, config)), {}, ctx, secret_url=True)
