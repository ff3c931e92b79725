"""amqtt plugins for the embedded broker: device-token authentication and per-device topic ACLs.

Identities (the same on the embedded broker and on Mosquitto, see docs/mqtt-broker.md):
- a device connects with username `{tenant_id}/{device_id}` and a device-token secret as password,
  and may only use topics under `tenant/{tenant_id}/device/{device_id}/` (any suffix);
- Pulse connects as `SERVICE_USERNAME` and may use every topic.

The plugins are configured by dotted path in the amqtt 0.12 `plugins` section (see
`pulse.broker.embedded`); each receives its own `Config` dataclass built by amqtt from that section.
"""
from __future__ import annotations

import hmac
import logging
import weakref
from dataclasses import dataclass

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from pulse.storage.tokens import VerificationCache
from pulse.config.settings import SERVICE_MQTT_USER
from pulse.storage import tokens
from pulse.storage.db import Database

log = logging.getLogger(__name__)

SERVICE_USERNAME = SERVICE_MQTT_USER  # "pulse-service"; defined with the settings (see pulse.mqtt.endpoint.service_endpoint)

# Characters that would let an id escape its topic level or act as an MQTT wildcard.
_FORBIDDEN_ID_CHARS = frozenset("/+#\x00")


def parse_device_username(username: str | None) -> tuple[str, str] | None:
    """`"{t}/{d}"` -> `(t, d)`; None for anything that is not a well-formed device username."""
    if not username:
        return None
    tenant_id, sep, device_id = username.partition("/")
    if not sep or not valid_id(tenant_id) or not valid_id(device_id):
        return None
    return tenant_id, device_id


def valid_id(value: str) -> bool:
    return bool(value) and not any(c in _FORBIDDEN_ID_CHARS for c in value)


def device_topic_prefix(tenant_id: str, device_id: str) -> str:
    return f"tenant/{tenant_id}/device/{device_id}"


def device_may_use(tenant_id: str, device_id: str, topic: str) -> bool:
    """True for the device's own prefix and anything below it (what `tenant/{t}/device/{d}/#` matches).

    A plain string-prefix test is enough: the prefix is literal (ids never contain `+`/`#`/`/`), so a
    filter such as `tenant/+/device/d/#` or `#` cannot pass it.
    """
    prefix = device_topic_prefix(tenant_id, device_id)
    return topic == prefix or topic.startswith(prefix + "/")


# Live auth plugins of this process, so EmbeddedCredentials can invalidate their caches.
_live_auth_plugins: weakref.WeakSet[PulseAuthPlugin] = weakref.WeakSet()


def invalidate_cache(username: str | None = None) -> None:
    """Forget cached verifications for `username` (all users if None) in every broker of this process."""
    for plugin in list(_live_auth_plugins):
        plugin.cache.invalidate(username)


class PulseAuthPlugin(BaseAuthPlugin):
    """Service account by constant-time compare; devices by `tokens.verify` (cached). Fails closed."""

    @dataclass
    class Config:
        db_url: str = ""
        service_username: str = SERVICE_USERNAME
        service_password: str = ""  # empty disables the service account
        positive_ttl: float = 30.0
        negative_ttl: float = 5.0

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        if not self.config.db_url:
            raise ValueError("PulseAuthPlugin needs db_url")
        self.db = Database(self.config.db_url)
        self.cache = VerificationCache(float(self.config.positive_ttl), float(self.config.negative_ttl))
        _live_auth_plugins.add(self)

    async def authenticate(self, *, session: Session) -> bool:
        username = session.username
        password = session.password
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        if not username or not password:
            return False  # anonymous or password-less: refused
        if username == self.config.service_username:
            expected = self.config.service_password
            return bool(expected) and hmac.compare_digest(password.encode(), expected.encode())
        ids = parse_device_username(username)
        if ids is None:
            return False
        key = (username, tokens.hash_secret(password))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        try:
            ok = await tokens.verify(self.db, ids[0], ids[1], password)
        except Exception:  # noqa: BLE001 - an exception here would leave the client hanging without CONNACK
            log.exception("token verification failed for %s; refusing", username)
            return False  # not cached: a DB hiccup must not lock devices out for the negative TTL
        self.cache.put(key, ok)
        return ok

    async def close(self) -> None:
        _live_auth_plugins.discard(self)
        await self.db.dispose()


class PulseTopicPlugin(BaseTopicPlugin):
    """Service account: every topic. Device: its own prefix only, for publish, subscribe and receive.

    amqtt drops a refused PUBLISH (still acknowledging it at QoS 1) and answers a refused SUBSCRIBE
    with return code 0x80; the connection stays up.
    """

    @dataclass
    class Config:
        service_username: str = SERVICE_USERNAME

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        if session is None or not topic or not session.username:
            return False
        if session.username == self.config.service_username:
            return True
        ids = parse_device_username(session.username)
        return ids is not None and device_may_use(ids[0], ids[1], topic)
