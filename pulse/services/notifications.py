"""Notification channels, routing rules and the delivery job log: the use cases behind their API.

A channel's `config` is validated for its type and split into plain settings and secrets here:
pulse.integrations.channels knows which fields are secret, the store keeps what it is given (the
plain config, and the secrets sealed by pulse.storage.secrets). Reading, deleting, the routing
rules and the job log need nothing but the store, so they are the store's functions, exported
here for the routes. The Notifier (services/notifier.py) writes and sends the jobs.
"""
from __future__ import annotations

import uuid
from typing import Any

from pulse.config.settings import Settings
from pulse.errors import Conflict, PulseError
from pulse.integrations.channels import canonical, merge_secrets, split_secrets
from pulse.services import notifier
from pulse.storage import notifications as store
from pulse.storage.db import Database
from pulse.storage.notifications import (create_rule, delete_channel, delete_rule, get_channel, job_attempts,
                                         list_channels, list_jobs, list_rules, recent_attempts, update_rule)
from pulse.storage.secrets import SecretBox, SecretsUnreadable, box_for

__all__ = ["create_channel", "update_channel", "send_test_message", "list_channels", "get_channel", "delete_channel",
           "list_rules", "create_rule", "update_rule", "delete_rule", "list_jobs", "list_delivery_jobs", "job_attempts",
           "recent_attempts"]

# The documented delivery log calls a channel an integration and may prefix its id (docs/notifications.md).
INTEGRATION_PREFIX = "ch-"


def _sealed(box: SecretBox, channel_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """A config as sent -> the stored `config` (validated, secrets masked) and `secrets` (sealed, or None)."""
    plain, secret = split_secrets(channel_type, canonical(channel_type, config))
    return {"config": plain, "secrets": box.encrypt(secret) if secret else None}


def _opened(box: SecretBox, sealed: str | None) -> dict[str, Any]:
    try:
        return box.decrypt(sealed)
    except SecretsUnreadable:
        return {}  # the key was lost: every secret has to be sent again


async def create_channel(db: Database, settings: Settings, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Secrets in `config` are stored encrypted and only ever read back masked."""
    sealed = _sealed(box_for(settings), fields["channel_type"], fields["config"])
    return await store.create_channel(db, tenant_id, {**fields, **sealed})


async def update_channel(db: Database, settings: Settings, tenant_id: str, channel_id: str,
                         fields: dict[str, Any]) -> dict[str, Any]:
    """A partial update; a given `config` replaces the old one, except for secrets it leaves out or masks."""
    channel_type, sealed = await store.sealed_secrets(db, tenant_id, channel_id)
    if fields.get("channel_type", channel_type) != channel_type:
        raise Conflict("a channel's type is fixed: create a new channel for another type")
    changes = {k: v for k, v in fields.items() if k not in ("channel_type", "config")}
    if "config" in fields:
        box = box_for(settings)
        changes.update(_sealed(box, channel_type, merge_secrets(channel_type, fields["config"], _opened(box, sealed))))
    return await store.update_channel(db, tenant_id, channel_id, changes)


async def send_test_message(db: Database, settings: Settings, tenant_id: str, channel_id: str) -> dict[str, Any]:
    """Send a test message to a channel now (also to a disabled one): the outcome, `ok` false if it failed."""
    channel = await store.channel_for_delivery(db, box_for(settings), tenant_id, channel_id)
    return await notifier.send_test(settings, db, channel)


def channel_of_integration(integration_id: str) -> str:
    """The channel an `integration_id` names: a channel id (a UUID), optionally `ch-`-prefixed; 400 otherwise."""
    try:
        return str(uuid.UUID(integration_id.removeprefix(INTEGRATION_PREFIX)))
    except ValueError:
        raise PulseError("Invalid integration_id") from None  # 400, as the documented system answers


async def list_delivery_jobs(db: Database, tenant_id: str, *, status: str | None, integration_id: str | None,
                             limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The job log under the documented delivery-log names: newest first, filtered by status and channel."""
    channel_id = channel_of_integration(integration_id) if integration_id is not None else None
    return await list_jobs(db, tenant_id, status=status, channel_id=channel_id, limit=limit, offset=offset)
