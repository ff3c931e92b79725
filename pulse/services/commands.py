"""Commands to one device: validated against its template, queued on its actor, published, tracked by status."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pulse.domain.command_params import validate_params
from pulse.domain.commands import MAX_PARAMS_BYTES
from pulse.domain.envelope import parse_topic
from pulse.domain.messages import CommandStatus, Effect, Publish
from pulse.errors import Invalid
from pulse.services.context import ServiceContext
from pulse.storage import commands as store
from pulse.storage import devices as device_store
from pulse.storage import templates
from pulse.storage.db import Database, utcnow

# How long a send waits for the broker to take a connected device's command, so that the answer
# can say `delivered`; a slower broker only delays that status, the command stays queued.
PUBLISH_WAIT_S = 5.0


async def send(ctx: ServiceContext, tenant_id: str, device_id: str, command_type: str, params: dict[str, Any],
               expires_in_s: int, created_by: str) -> dict[str, Any]:
    """Published at once (QoS 1) when the device is connected, else when it next connects."""
    device = await device_store.get(ctx.db, tenant_id, device_id)
    if device["status"] != "ACTIVE":
        raise Invalid(f"device {device_id} is {device['status']}; commands need an ACTIVE device")
    if len(json.dumps(params)) > MAX_PARAMS_BYTES:
        raise Invalid(f"params larger than {MAX_PARAMS_BYTES} bytes")
    await _check_template(ctx, tenant_id, device.get("template_id"), command_type, params)
    cmd = await store.create(ctx.db, tenant_id, device_id, command_type, params, expires_in_s, created_by)
    effects = await ctx.runtime.device_call(tenant_id, device_id, "queue_command",
                                            store.as_actor_command(cmd), int(time.time() * 1000))
    await apply_effects(ctx, tenant_id, device_id, effects, wait_s=PUBLISH_WAIT_S)
    return await store.get(ctx.db, tenant_id, device_id, cmd["command_id"])


async def list_commands(ctx: ServiceContext, tenant_id: str, device_id: str, status: str | None, limit: int,
                        offset: int) -> tuple[list[dict[str, Any]], int]:
    await device_store.get(ctx.db, tenant_id, device_id)
    return await store.list_commands(ctx.db, tenant_id, device_id, status, limit, offset)


async def apply_effects(ctx: ServiceContext, tenant_id: str, device_id: str, effects: list[Effect],
                        wait_s: float = 0.0) -> None:
    """What the device actor asked for: its MQTT messages published, its command statuses stored."""
    await ctx.downlink.publish([e for e in effects if isinstance(e, Publish)], wait_s)
    updates = [(tenant_id, device_id, e) for e in effects if isinstance(e, CommandStatus)]
    if updates:
        await store.apply_statuses(ctx.db, updates)


async def pending_for_device(ctx: ServiceContext, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    """What a device polling over HTTP gets (the device HTTP API): its unsettled, unexpired commands, oldest
    first; the `pending` ones become `delivered`, as a publish the broker took makes them. A device that also
    connects over MQTT may get one of them there again (at least once, as over MQTT)."""
    commands = await store.open_for_device(ctx.db, tenant_id, device_id, utcnow())
    now_ms = int(time.time() * 1000)
    fresh = [(tenant_id, device_id, CommandStatus(c["command_id"], "delivered", now_ms))
             for c in commands if c["status"] == "pending"]
    if fresh:
        await store.apply_statuses(ctx.db, fresh)
    return [{**c, "status": "delivered" if c["status"] == "pending" else c["status"]} for c in commands]


def delivery_recorder(db: Database) -> Callable[[Publish], Awaitable[None]]:
    """The downlink's `on_sent`: a command's message is with the broker, so the command is delivered."""

    async def delivered(message: Publish) -> None:
        tenant_id, device_id, _ = parse_topic(message.topic)
        status = CommandStatus(message.command_id or "", "delivered", int(time.time() * 1000))
        await store.apply_statuses(db, [(tenant_id, device_id, status)])

    return delivered


async def _check_template(ctx: ServiceContext, tenant_id: str, template_id: int | None, command_type: str,
                          params: dict[str, Any]) -> None:
    """Devices with a template accept only its commands, with params matching its schema."""
    if template_id is None:
        return
    definition = await templates.command_definition(ctx.db, tenant_id, template_id, command_type)
    if definition is None:
        raise Invalid(f"the device's template has no command {command_type!r}")
    errors = validate_params(definition.get("parameters_schema") or {}, params)
    if errors:
        raise Invalid("params: " + "; ".join(errors))
