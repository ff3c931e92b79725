"""Telling the MQTT broker about device secrets.

The token store (pulse.storage.tokens) is the source of truth. Whoever issues, rotates or revokes a
device token also calls a `DeviceCredentials` so the broker follows:
- embedded broker: the auth plugin reads the token store itself; we only drop its cache entries
  (effective in this process only; other processes rely on the cache TTL);
- Mosquitto: the dynamic-security plugin keeps its own client list, so each device gets a dynsec
  client `{t}/{d}` with the secret as password and a role limited to `tenant/{t}/device/{d}/#`.
  A dynsec client has exactly one password: the newest secret set wins, older tokens stop working
  on MQTT. Revoking the device's current token means `remove_device` (or setting a new secret).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import aiomqtt

from pulse.broker.auth_plugin import device_topic_prefix, invalidate_cache, valid_id
from pulse.config.settings import Settings
from pulse.mqtt.endpoint import MqttEndpoint

log = logging.getLogger(__name__)

DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"


def _check_ids(tenant_id: str, device_id: str) -> None:
    # An id with `/`, `+` or `#` would widen the device's topic ACL or break the username format.
    if not valid_id(tenant_id) or not valid_id(device_id):
        raise ValueError(f"invalid tenant/device id for MQTT: {tenant_id!r}/{device_id!r}")


class DeviceCredentials(ABC):
    @abstractmethod
    async def set_device_secret(self, tenant_id: str, device_id: str, secret: str) -> None:
        """Make `secret` the device's MQTT password (creating the device's broker account if needed)."""

    @abstractmethod
    async def remove_device(self, tenant_id: str, device_id: str) -> None:
        """Remove the device's broker account; idempotent."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class EmbeddedCredentials(DeviceCredentials):
    """Embedded broker: nothing to provision; invalidate the in-process auth cache so changes apply at once."""

    async def set_device_secret(self, tenant_id: str, device_id: str, secret: str) -> None:
        _check_ids(tenant_id, device_id)
        invalidate_cache(f"{tenant_id}/{device_id}")  # e.g. a refusal cached before the token existed

    async def remove_device(self, tenant_id: str, device_id: str) -> None:
        _check_ids(tenant_id, device_id)
        invalidate_cache(f"{tenant_id}/{device_id}")


class DynsecError(RuntimeError):
    pass


class DynsecCredentials(DeviceCredentials):
    """Mosquitto dynamic-security plugin, managed over MQTT as the service (dynsec admin) account.

    One lazily opened connection; commands are serialised (provisioning is not a hot path) and
    matched to responses by correlationData. A lost connection is reopened on the next call.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.tls_context = tls_context
        self.timeout = timeout
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, ca_file: Path | None = None, **kwargs: Any) -> DynsecCredentials:
        """`mqtt://user:password@host:port` (or `mqtts://`, verified against `ca_file` if given)."""
        endpoint = MqttEndpoint.parse(url, ca_file)
        if not endpoint.username or not endpoint.password:
            raise ValueError("the MQTT URL must carry the service account's credentials")
        return cls(endpoint.host, endpoint.port, endpoint.username, endpoint.password,
                   tls_context=endpoint.tls_context(), **kwargs)

    @staticmethod
    def role_name(tenant_id: str, device_id: str) -> str:
        return f"pulse-device:{tenant_id}/{device_id}"

    async def set_device_secret(self, tenant_id: str, device_id: str, secret: str) -> None:
        _check_ids(tenant_id, device_id)
        username, role = f"{tenant_id}/{device_id}", self.role_name(tenant_id, device_id)
        topic = f"{device_topic_prefix(tenant_id, device_id)}/#"
        acls = [
            {"acltype": "publishClientSend", "topic": topic, "allow": True},
            {"acltype": "subscribePattern", "topic": topic, "allow": True},
            {"acltype": "unsubscribePattern", "topic": topic, "allow": True},
        ]
        create = await self._call(
            [
                {"command": "createRole", "rolename": role, "acls": acls},
                {"command": "createClient", "username": username, "password": secret, "roles": [{"rolename": role}]},
            ]
        )
        _raise_unless(create, ok_errors=("already exists",))
        if _error(create[1]):
            # The client exists: replace its password (dynsec disconnects it, so it must log in
            # again with the new secret) and make sure it still has its role (addClientRole
            # answers "Internal error" when the role is already there, hence getClient first).
            update = await self._call(
                [
                    {"command": "setClientPassword", "username": username, "password": secret},
                    {"command": "getClient", "username": username},
                ]
            )
            _raise_unless(update)
            roles = {r.get("rolename") for r in update[1].get("data", {}).get("client", {}).get("roles", [])}
            if role not in roles:
                _raise_unless(await self._call([{"command": "addClientRole", "username": username, "rolename": role}]))

    async def remove_device(self, tenant_id: str, device_id: str) -> None:
        _check_ids(tenant_id, device_id)
        responses = await self._call(
            [
                {"command": "deleteClient", "username": f"{tenant_id}/{device_id}"},
                {"command": "deleteRole", "rolename": self.role_name(tenant_id, device_id)},
            ]
        )
        _raise_unless(responses, ok_errors=("not found",))

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()

    # -- transport -------------------------------------------------------------------------------

    async def _call(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        corr = uuid.uuid4().hex
        for c in commands:
            c["correlationData"] = corr
        payload = json.dumps({"commands": commands})
        async with self._lock:
            for attempt in (1, 2):  # one retry on a fresh connection (the broker may have restarted)
                try:
                    client = await self._connect()
                    fut: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
                    self._pending[corr] = fut
                    await client.publish(DYNSEC_TOPIC, payload, qos=1, timeout=self.timeout)
                    responses = await asyncio.wait_for(fut, self.timeout)
                    break
                except (aiomqtt.MqttError, ConnectionError) as exc:
                    await self._disconnect()
                    if attempt == 2:
                        raise DynsecError(f"dynamic-security command failed: {exc}") from exc
                except asyncio.TimeoutError as exc:
                    await self._disconnect()
                    raise DynsecError("no dynamic-security response (is the plugin loaded?)") from exc
                finally:
                    self._pending.pop(corr, None)
        if len(responses) != len(commands):
            raise DynsecError(f"expected {len(commands)} dynsec responses, got {responses}")
        return responses

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None and self._reader is not None and not self._reader.done():
            return self._client
        await self._disconnect()
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=f"pulse-dynsec-{uuid.uuid4().hex[:12]}",
            timeout=self.timeout,
            tls_context=self.tls_context,
        )
        await asyncio.wait_for(client.__aenter__(), self.timeout)
        try:
            await client.subscribe(DYNSEC_RESPONSE_TOPIC, qos=1, timeout=self.timeout)
        except BaseException:
            await client.__aexit__(None, None, None)
            raise
        self._client = client
        self._reader = asyncio.create_task(self._read(client), name="dynsec-responses")
        return client

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                try:
                    body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    continue
                grouped: dict[str, list[dict[str, Any]]] = {}
                for resp in body.get("responses", []):
                    grouped.setdefault(resp.get("correlationData"), []).append(resp)
                for corr, responses in grouped.items():
                    fut = self._pending.get(corr)
                    if fut is not None and not fut.done():
                        fut.set_result(responses)
        except aiomqtt.MqttError as exc:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(exc)

    async def _disconnect(self) -> None:
        reader, self._reader = self._reader, None
        client, self._client = self._client, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.__aexit__(None, None, None), self.timeout)


def _error(response: dict[str, Any]) -> str | None:
    return response.get("error") or None


def _raise_unless(responses: list[dict[str, Any]], ok_errors: tuple[str, ...] = ()) -> None:
    for r in responses:
        err = _error(r)
        if err and not any(s in err.lower() for s in ok_errors):
            raise DynsecError(f"{r.get('command')}: {err}")


def credentials_for(settings: Settings) -> DeviceCredentials:
    """The implementation matching the configured broker."""
    if settings.uses_embedded_broker:
        return EmbeddedCredentials()
    if settings.mqtt_auth_mode != "dynsec":
        raise ValueError(f"unsupported mqtt_auth_mode {settings.mqtt_auth_mode!r} (supported: dynsec)")
    assert settings.mqtt_url is not None
    return DynsecCredentials.from_url(settings.mqtt_url, settings.mqtt_ca_file)
