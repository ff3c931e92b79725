"""The device HTTP API (docs/device-protocol.md, "Device HTTP API"): what a device that polls over HTTP
instead of holding an MQTT connection does: read its twin and report state, fetch and acknowledge
commands, fetch and update job executions.

The device token (`X-Provision-Token`) is the only credential and names the device: it is found by its
hash. Reported state and command acks become the same device messages MQTT carries (`shadow/reported`,
`commands/ack`) and go through the shared ingest pipeline to the device actor, so they cannot behave
differently; job updates go through the jobs service as MQTT's do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pulse.errors import Invalid, RateLimited, Unauthorized
from pulse.services import commands, ingest, jobs, twin
from pulse.services.context import ServiceContext
from pulse.storage import commands as command_store
from pulse.storage import tokens


@dataclass(frozen=True)
class DeviceIdentity:
    tenant_id: str
    device_id: str

    def topic(self, suffix: str) -> str:
        return f"tenant/{self.tenant_id}/device/{self.device_id}/{suffix}"


async def authenticate(ctx: ServiceContext, token: str | None, client: str) -> DeviceIdentity:
    """The device the token belongs to; 401 when missing or not an active token of an ACTIVE device, 429
    without a lookup once `client` (the caller's address) spent its failed lookups, as for HTTP ingest."""
    if not token:
        raise Unauthorized("X-Provision-Token header required")
    wait = ctx.auth_failures.retry_after(client)
    if wait > 0:
        raise RateLimited("too many failed device authentications from this address; retry later", wait)
    found = await tokens.resolve(ctx.db, token)
    if found is None:
        ctx.auth_failures.allow(client)
        raise Unauthorized("invalid device token")
    return DeviceIdentity(*found)


async def _as_device_message(ctx: ServiceContext, device: DeviceIdentity, suffix: str, body: dict[str, Any]) -> None:
    """`body` as the MQTT message on `suffix`, through the ingest pipeline; 422 when it is rejected."""
    result, rejections = await ingest.accept(ctx.runtime, ctx.db, ingest.limits_from(ctx.settings),
                                             [(device.topic(suffix), json.dumps(body).encode())])
    if result is None or result.accepted == 0:
        first = rejections[0] if rejections else None
        raise Invalid(f"rejected: {first.reason}: {first.detail}" if first else "rejected")
    if result.publishes:
        await ctx.downlink.publish(result.publishes)


# ---- twin ----------------------------------------------------------------------------------------------------
async def shadow(ctx: ServiceContext, device: DeviceIdentity) -> dict[str, Any]:
    return {"device_id": device.device_id, **await twin.view(ctx, device.tenant_id, device.device_id)}


async def report(ctx: ServiceContext, device: DeviceIdentity, reported: dict[str, Any],
                 version: int | None) -> dict[str, Any]:
    """Merged into the reported state exactly as `shadow/reported` over MQTT; the twin afterwards."""
    body: dict[str, Any] = {"reported": reported}
    if version is not None:
        body["version"] = version
    await _as_device_message(ctx, device, "shadow/reported", body)
    return await shadow(ctx, device)


# ---- commands ------------------------------------------------------------------------------------------------
async def pending_commands(ctx: ServiceContext, device: DeviceIdentity) -> list[dict[str, Any]]:
    return await commands.pending_for_device(ctx, device.tenant_id, device.device_id)


async def ack_command(ctx: ServiceContext, device: DeviceIdentity, command_id: str, status: str,
                      details: dict[str, Any] | None) -> dict[str, Any]:
    """The ack as `commands/ack` over MQTT; 404 for a command of another device. The command afterwards."""
    await command_store.get(ctx.db, device.tenant_id, device.device_id, command_id)
    await _as_device_message(ctx, device, "commands/ack", {"command_id": command_id, "status": status,
                                                           "details": details})
    return await command_store.get(ctx.db, device.tenant_id, device.device_id, command_id)


# ---- jobs ----------------------------------------------------------------------------------------------------
async def pending_jobs(ctx: ServiceContext, device: DeviceIdentity) -> list[dict[str, Any]]:
    return await jobs.pending(ctx.db, device.tenant_id, device.device_id)


async def job_execution(ctx: ServiceContext, device: DeviceIdentity, job_id: str) -> dict[str, Any]:
    return await jobs.execution(ctx.db, device.tenant_id, device.device_id, job_id)


async def update_job_execution(ctx: ServiceContext, device: DeviceIdentity, job_id: str, status: str,
                               expected_number: int | None, details: dict[str, Any] | None) -> dict[str, Any]:
    return await jobs.update_execution(ctx.db, device.tenant_id, device.device_id, job_id, status, expected_number,
                                       details)
