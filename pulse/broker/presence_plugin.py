"""amqtt plugin: announces device connects and disconnects on `tenant/{t}/device/{d}/presence`.

The ingest bridge turns these into `Presence` messages for the device actor (online status,
queued commands). On Mosquitto there is no such hook: devices announce themselves and set a
last will on the same topic (docs/device-protocol.md).
"""
from __future__ import annotations

import json
import logging
import time

from amqtt.broker import BrokerContext
from amqtt.plugins.base import BasePlugin
from amqtt.session import Session

from pulse.broker.auth_plugin import device_topic_prefix, parse_device_username

log = logging.getLogger(__name__)


def _username(client_id: str) -> str | None:
    """`_ScopedSessionBroker` keys sessions as JSON [username, client id]."""
    try:
        username, _ = json.loads(client_id)
        return username
    except (ValueError, TypeError):
        return None


class PulsePresencePlugin(BasePlugin[BrokerContext]):
    """connected (not yet subscribed) on CONNECT; subscribed once the device subscribes to its
    commands topic, so commands queued for it are sent only when it can receive them."""

    async def on_broker_client_connected(self, client_id: str, client_session: Session) -> None:
        await self._announce(client_session.username, {"connected": True, "subscribed": False})

    async def on_broker_client_subscribed(self, client_id: str, topic: str, qos: int) -> None:
        ids = parse_device_username(_username(client_id))
        if ids and topic in {f"{device_topic_prefix(*ids)}/{s}" for s in ("commands", "#", "+")}:
            await self._announce(_username(client_id), {"connected": True, "subscribed": True})

    async def on_broker_client_disconnected(self, client_id: str, client_session: Session) -> None:
        await self._announce(client_session.username, {"connected": False})

    async def _announce(self, username: str | None, body: dict) -> None:
        ids = parse_device_username(username)
        if ids is None:  # the service account, or no username
            return
        payload = json.dumps({**body, "ts": int(time.time() * 1000)}).encode()
        try:
            await self.context.broadcast_message(f"{device_topic_prefix(*ids)}/presence", payload, qos=1)
        except Exception:  # presence is best effort: last-seen still tracks the device
            log.exception("presence announcement failed for %s", username)
