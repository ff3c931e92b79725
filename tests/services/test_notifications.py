"""Notification channel use cases: configs validated and split here, the store keeps only the plain
config and the sealed secrets, updates merge write-only secrets (also after the key was lost)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from pulse.errors import Conflict, Invalid
from pulse.services import notifications as service
from pulse.storage.secrets import box_for
from pulse.storage.tables import notification_channels
from tests.integrations.helpers import notifier  # noqa: F401

SECRET = "whsec-0123456789"


async def _stored(notifier, channel_id: str) -> dict:
    async with notifier.db.connect() as conn:
        row = (await conn.execute(sa.select(notification_channels).where(
            notification_channels.c.channel_id == channel_id))).one()
    return dict(row._mapping)


async def _webhook(notifier, **config) -> dict:
    return await service.create_channel(notifier.db, notifier.settings, "acme", {
        "name": "hook", "channel_type": "webhook", "config": {"url": "https://h.example/in", **config}})


async def test_the_store_gets_the_masked_config_and_the_sealed_secrets(notifier):
    ch = await _webhook(notifier, secret=SECRET)
    row = await _stored(notifier, ch["channel_id"])
    assert row["config"] == {"url": "https://h.example/in", "secret": "***6789"} == ch["config"]
    assert SECRET not in row["secrets"] and box_for(notifier.settings).decrypt(row["secrets"]) == {"secret": SECRET}


async def test_a_channel_without_secrets_stores_none(notifier):
    ch = await _webhook(notifier)
    assert (await _stored(notifier, ch["channel_id"]))["secrets"] is None


async def test_an_invalid_config_is_refused_before_anything_is_stored(notifier):
    with pytest.raises(Invalid, match="config.url"):
        await _webhook(notifier, url="ftp://h.example")
    items, total = await service.list_channels(notifier.db, "acme", 10, 0)
    assert (items, total) == ([], 0)


async def test_a_type_change_is_refused_before_the_config_is_checked(notifier):
    ch = await _webhook(notifier)
    with pytest.raises(Conflict, match="type is fixed"):
        await service.update_channel(notifier.db, notifier.settings, "acme", ch["channel_id"],
                                     {"channel_type": "slack", "config": {"url": "not a url"}})


async def test_after_the_key_is_lost_a_masked_secret_must_be_sent_again(notifier):
    ch = await _webhook(notifier, secret=SECRET)
    rotated = notifier.settings.model_copy(update={"secrets_key": Fernet.generate_key().decode()})
    masked = {"url": "https://h.example/in", "secret": ch["config"]["secret"]}
    with pytest.raises(Invalid, match="no stored value to keep"):
        await service.update_channel(notifier.db, rotated, "acme", ch["channel_id"], {"config": masked})
    await service.update_channel(notifier.db, rotated, "acme", ch["channel_id"],
                                 {"config": {**masked, "secret": "new-secret-0123456789"}})
    row = await _stored(notifier, ch["channel_id"])
    assert box_for(rotated).decrypt(row["secrets"]) == {"secret": "new-secret-0123456789"}
