"""Notification channels: where alert events are delivered (docs/notifications.md).

`CHANNELS` maps a channel type to its implementation. A stored channel keeps its plain settings
and its secrets apart: `split_secrets` / `merge_secrets` / `masked` are the only places that know
which fields are secret.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pulse.domain.channels import CHANNEL_TYPES
from pulse.domain.masking import is_masked, mask
from pulse.errors import Invalid
from pulse.integrations.channels.base import Channel, ChannelConfig, DeliveryContext, DeliveryResult, Message
from pulse.integrations.channels.email import EmailChannel
from pulse.integrations.channels.mqtt import MqttChannel
from pulse.integrations.channels.pagerduty import PagerDutyChannel
from pulse.integrations.channels.slack import SlackChannel
from pulse.integrations.channels.teams import TeamsChannel
from pulse.integrations.channels.telemetron import TelemetronChannel
from pulse.integrations.channels.webhook import WebhookChannel

CHANNELS: dict[str, Channel] = {c.type: c for c in (
    WebhookChannel(), EmailChannel(), SlackChannel(), TeamsChannel(), PagerDutyChannel(), MqttChannel(),
    TelemetronChannel())}
assert tuple(CHANNELS) == CHANNEL_TYPES, "pulse.domain.channels.CHANNEL_TYPES names each implementation once, in order"

__all__ = ["CHANNELS", "CHANNEL_TYPES", "Channel", "ChannelConfig", "DeliveryContext", "DeliveryResult", "Message",
           "canonical", "channel", "parse_config", "split_secrets", "merge_secrets", "masked"]


def channel(channel_type: str) -> Channel:
    try:
        return CHANNELS[channel_type]
    except KeyError:
        raise Invalid(f"unknown channel type {channel_type!r}; one of {', '.join(CHANNEL_TYPES)}") from None


def parse_config(channel_type: str, raw: dict[str, Any]) -> ChannelConfig:
    """Validate a full config (secrets included) for its type; Invalid (422) says what is wrong."""
    try:
        return channel(channel_type).Config.model_validate(raw)
    except ValidationError as e:
        raise Invalid.first_of(e.errors(), "config") from None


def canonical(channel_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The validated config as stored: by alias (`from`), unset optional fields left out."""
    return parse_config(channel_type, raw).model_dump(by_alias=True, exclude_none=True)


def split_secrets(channel_type: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain config with secrets masked, the secret values) of a validated config."""
    fields = channel(channel_type).secret_fields
    secret = {k: v for k, v in config.items() if k in fields and v is not None}
    plain = {k: (mask(v) if k in secret else v) for k, v in config.items()}
    return plain, secret


def merge_secrets(channel_type: str, incoming: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """An update's config with the stored secrets filled in where it left them out or sent a mask back.

    Clients never see secrets, so a form that round-trips the config returns masks: those keep the
    stored value. An explicit null removes an optional secret."""
    merged = dict(incoming)
    for name in channel(channel_type).secret_fields:
        if name not in incoming:
            if name in stored:
                merged[name] = stored[name]
        elif isinstance(incoming[name], dict):  # header map: masked values keep theirs
            old = stored.get(name) or {}
            for k, v in incoming[name].items():
                if is_masked(v) and k not in old:
                    raise Invalid(f"config.{name}.{k}: no stored value to keep; send the real value")
            merged[name] = {k: (old[k] if is_masked(v) else v) for k, v in incoming[name].items()}
        elif is_masked(incoming[name]):
            if name not in stored:
                raise Invalid(f"config.{name}: no stored value to keep; send the real value")
            merged[name] = stored[name]
    return merged


def masked(channel_type: str, config: dict[str, Any]) -> dict[str, Any]:
    return split_secrets(channel_type, config)[0]
