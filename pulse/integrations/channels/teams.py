"""Microsoft Teams: a legacy Office 365 connector MessageCard (default) or an Adaptive Card for
Workflows (Power Automate) webhooks. The webhook URL is the credential: a secret."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from pulse.domain.urls import http_url
from pulse.integrations.channels.base import (SEVERITY_COLORS, ChannelConfig, DeliveryContext, DeliveryResult,
                                              Message, dumps, post)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


class TeamsConfig(ChannelConfig):
    webhook_url: str = Field(description="connector or Workflows webhook URL (write-only)")
    format: Literal["messagecard", "adaptivecard"] = "messagecard"

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)


def message_card(message: Message) -> dict[str, Any]:
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": message.title,
        "themeColor": SEVERITY_COLORS.get(message.severity, "808080"),
        "title": message.title,
        "sections": [{
            "activityTitle": message.summary,
            "activitySubtitle": f"Pulse · tenant {message.tenant_id}",
            "facts": [{"name": k, "value": v} for k, v in message.facts()],
            "markdown": False,
        }],
    }


def adaptive_card(message: Message) -> dict[str, Any]:
    color = "Attention" if message.severity >= 4 else "Warning" if message.severity == 3 else "Default"
    return {
        "type": "message",
        "attachments": [{
            "contentType": ADAPTIVE_CARD,
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium",
                     "color": color, "wrap": True},
                    {"type": "TextBlock", "text": message.summary, "wrap": True},
                    {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.facts()]},
                ],
            },
        }],
    }


class TeamsChannel:
    type: ClassVar[str] = "teams"
    Config: ClassVar = TeamsConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)

    def build(self, message: Message, config: TeamsConfig) -> dict[str, Any]:
        return adaptive_card(message) if config.format == "adaptivecard" else message_card(message)

    async def send(self, message: Message, config: TeamsConfig, ctx: DeliveryContext) -> DeliveryResult:
        return await post(config.webhook_url, dumps(self.build(message, config)), {}, ctx, secret_url=True)
