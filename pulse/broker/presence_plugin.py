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


class PulsePresencePlugin(BasePlugin[BrokerContext]):
    async def on_broker_client_connected(self, client_id: str, client_session: Session) -> None:
        await self._announce(client_session, True)

    async def on_broker_client_disconnected(self, client_id: str, client_session: Session) -> None:
        await self._announce(client_session, False)

    async def _announce(self, session: Session, connected: bool) -> None:
        ids = parse_device_username(session.username)
        if ids is None:  # the service account, or no username
            return
        body = json.dumps({"connected": connected, "ts": int(time.time() * 1000)}).encode()
        try:
            await self.context.broadcast_message(f"{device_topic_prefix(*ids)}/presence", body, qos=1)
        except Exception:  # presence is best effort: last-seen still tracks the device
            log.exception("presence announcement failed for %s", session.username)
