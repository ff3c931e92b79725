"""The embedded MQTT broker (amqtt, MQTT 3.1.1): Pulse's zero-install default for small fleets.

Runs in the caller's asyncio loop (a Ray actor, or a test). TCP listener only; authentication and
topic ACLs come from `pulse.broker.auth_plugin`; anonymous clients are refused.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker, Server
from amqtt.contexts import ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session

from pulse.broker.presence_plugin import PulsePresencePlugin
from pulse.broker.auth_plugin import SERVICE_USERNAME, PulseAuthPlugin, PulseTopicPlugin
from pulse.config.settings import Settings

log = logging.getLogger(__name__)

_AUTH_RESULT = "pulse.auth"  # Session.attributes key: result of the early authentication
_STOP_TIMEOUT_S = 10.0


class _ScopedSessionBroker(Broker):
    """amqtt's Broker, with client sessions keyed by (username, client id) and auth done first.

    Why: amqtt 0.12.1 looks sessions up by client id alone and acts on the existing session *before*
    it authenticates: a CONNECT with clean_session=1 deletes the subscriptions of whoever holds that
    client id, one with clean_session=0 resumes that session, and a connected holder is taken over -
    even when the password turns out wrong. Any client that guesses Pulse's bridge client id could
    silently cut ingest. Here a refused client never touches the session table, and an accepted one
    can only resume or take over its own sessions. (Client ids are never sent back in MQTT 3.1.1,
    so the scoping is invisible to clients.) Overrides private methods: amqtt is pinned in
    pyproject.toml and tests/broker/test_broker_auth.py fails if this stops working.
    """

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        """Retained messages only through the session's own subscriptions. amqtt 0.12.1, on every
        CONNECT, runs this for every topic filter any client holds (the ingest bridge's
        `tenant/+/device/+/#` among them), past the ACL: a device that connected got every other
        device's - every tenant's - retained `shadow/desired`. tests/broker/test_broker_auth.py checks it."""
        if any(s.client_id == session.client_id for s, _ in self._subscriptions.get(subscription[0], ())):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError:
            await writer.close()
            raise
        except NoDataError as exc:
            raise AMQTTError(exc) from exc

        ok = await super()._authenticate(session, None)  # type: ignore[arg-type]
        session.password = None  # don't keep device secrets in broker memory
        if not ok:
            session.attributes[_AUTH_RESULT] = False
            return handler, session

        session.client_id = json.dumps([session.username, session.client_id])  # unambiguous for any strings
        if session.clean_session:
            await self._delete_session(session.client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            for attr in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive"):
                setattr(existing, attr, getattr(session, attr))
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        session.attributes[_AUTH_RESULT] = True

        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _handle_disconnect(self, client_session: Session, handler: BrokerProtocolHandler,
                                 disconnect_waiter: asyncio.Future) -> None:
        """Route what the client published before it left, then disconnect.

        amqtt acknowledges a PUBLISH (PUBACK) before routing it; whatever is still queued when
        the client disconnects would be dropped, although the client was told it arrived. A
        device that publishes and disconnects at once (typical for battery devices) lost its last
        message in an end-to-end run (tests/e2e/test_node.py, the malformed-payload test); the
        race is timing-dependent, so the broker test only guards the outcome."""
        queue = client_session.delivered_message_queue
        while not queue.empty():
            done = asyncio.get_running_loop().create_future()
            done.set_result(queue.get_nowait())
            await self._handle_message_delivery(client_session, handler, done)
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        # Already decided in _initialize_client_session (the password has been dropped since).
        return bool(session.attributes.pop(_AUTH_RESULT, False))

    async def _handle_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        client_session: Session,
        handler: BrokerProtocolHandler,
        server: Server,
        listener_name: str,
    ) -> None:
        if client_session.attributes.get(_AUTH_RESULT) is False:
            # Refuse without registering the session (the base class would store it under the
            # client's id, replacing a legitimate session, and never remove it).
            handler.attach(client_session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            return
        await super()._handle_client_session(reader, writer, client_session, handler, server, listener_name)


class EmbeddedBroker:
    """amqtt broker on settings.mqtt_host:mqtt_port with Pulse's auth and topic plugins.

    `mqtt_port` 0 picks a free port; read `.port` after `start()`. TTLs: see pulse.storage.tokens.VerificationCache.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        db_url: str | None = None,
        positive_ttl: float = 30.0,
        negative_ttl: float = 5.0,
    ) -> None:
        self.host = settings.mqtt_host
        self.port = settings.mqtt_port
        self.service_username = SERVICE_USERNAME
        self.service_password = settings.service_mqtt_password()
        self._db_url = db_url or settings.db_url
        self._positive_ttl = float(positive_ttl)
        self._negative_ttl = float(negative_ttl)
        self._broker: Broker | None = None

    def _config(self) -> dict[str, Any]:
        plugin = f"{PulseAuthPlugin.__module__}.{PulseAuthPlugin.__qualname__}"
        topic_plugin = f"{PulseTopicPlugin.__module__}.{PulseTopicPlugin.__qualname__}"
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only our plugins: an explicit `plugins` section replaces amqtt's defaults, which
            # include AnonymousAuthPlugin(allow_anonymous=True) and the $SYS publisher.
            "plugins": {
                plugin: {
                    "db_url": self._db_url,
                    "service_username": self.service_username,
                    "service_password": self.service_password,
                    "positive_ttl": self._positive_ttl,
                    "negative_ttl": self._negative_ttl,
                },
                topic_plugin: {"service_username": self.service_username},
                f"{PulsePresencePlugin.__module__}.{PulsePresencePlugin.__qualname__}": {},
            },
        }

    async def start(self) -> None:
        if self._broker is not None:
            return
        broker = _ScopedSessionBroker(self._config(), loop=asyncio.get_running_loop())
        try:
            await broker.start()
        except Exception:
            await broker.plugins_manager.close()  # the auth plugin's DB engine
            raise
        self._broker = broker
        if self.port == 0:
            server = broker._servers["default"].instance  # noqa: SLF001 - the OS-assigned port
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        # asyncio.wait, not wait_for: wait_for also waits for the cancelled shutdown to end, which an
        # amqtt shutdown stuck in a plugin or a connection may never do; a stop must not hang (CI once
        # waited 300 s in a test's teardown).
        shutdown = asyncio.ensure_future(broker.shutdown())
        done, _ = await asyncio.wait({shutdown}, timeout=_STOP_TIMEOUT_S)
        if not done:
            shutdown.cancel()
            log.error("embedded MQTT broker did not shut down within %.0f s; left behind", _STOP_TIMEOUT_S)
        elif shutdown.exception() is not None:  # stopping must not raise in teardown paths
            log.error("embedded MQTT broker did not shut down cleanly", exc_info=shutdown.exception())
