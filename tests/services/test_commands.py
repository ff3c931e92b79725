"""Sending a command: refused for inactive devices and params the template does not allow; what the
device actor returns is published and its statuses stored."""
from __future__ import annotations

import pytest

from pulse.domain.messages import Publish
from pulse.errors import Invalid
from pulse.services import commands, devices
from pulse.storage import templates


async def test_the_actors_publishes_go_out_and_its_statuses_are_stored(ctx):
    await devices.create(ctx, "acme", {"device_id": "d1"})
    # a connected device: the actor publishes at once; the command is delivered once the broker has it
    ctx.runtime.answers["queue_command"] = lambda cmd, now_ms: [
        Publish("tenant/acme/device/d1/commands", b"{}", command_id=cmd["command_id"])]
    cmd = await commands.send(ctx, "acme", "d1", "reboot", {"delay_s": 5}, 600, "ops@acme")
    assert [p.command_id for p in ctx.downlink.published] == [cmd["command_id"]]
    assert cmd["status"] == "delivered" and cmd["published_at"] is not None
    assert cmd["params"] == {"delay_s": 5} and cmd["created_by"] == "ops@acme"


async def test_inactive_devices_and_oversized_params_are_refused_before_anything_is_queued(ctx):
    await devices.create(ctx, "acme", {"device_id": "d1"})
    with pytest.raises(Invalid, match="larger than 4096 bytes"):
        await commands.send(ctx, "acme", "d1", "blob", {"x": "y" * 5000}, 600, "ops@acme")
    await devices.update(ctx, "acme", "d1", {"status": "INACTIVE"})
    with pytest.raises(Invalid, match="d1 is INACTIVE"):
        await commands.send(ctx, "acme", "d1", "reboot", {}, 600, "ops@acme")
    assert [c for c in ctx.runtime.calls if c[0] == "device_call"] == []
    assert (await commands.list_commands(ctx, "acme", "d1", None, 10, 0)) == ([], 0)


async def test_a_templated_device_takes_only_its_templates_commands_with_valid_params(ctx):
    (gateway,), _ = await templates.list_templates(ctx.db, "acme", search="lifeline-gateway-v1")
    await devices.create(ctx, "acme", {"device_id": "gw", "template_id": gateway["id"]})
    with pytest.raises(Invalid, match="no command 'self_destruct'"):
        await commands.send(ctx, "acme", "gw", "self_destruct", {}, 600, "ops@acme")
    with pytest.raises(Invalid, match="params: interval_s: required"):
        await commands.send(ctx, "acme", "gw", "set_interval", {}, 600, "ops@acme")
