"""The registry service keeps the broker's credentials and the device actors in step with the store."""
from __future__ import annotations

import pytest

from pulse.errors import Invalid, NotFound
from pulse.services import devices


async def test_a_new_device_can_connect_with_the_token_it_is_given(ctx):
    device = await devices.create(ctx, "acme", {"device_id": "d1", "name": "boiler"})
    assert device["device_id"] == "d1" and device["status"] == "ACTIVE"
    assert ctx.credentials.secrets == {"acme/d1": device["token"]}


async def test_status_changes_reach_the_actor_and_scope_changes_the_rules(ctx):
    """A new device, or a new site/template/status (dynamic groups select by status), re-resolves rule scopes."""
    await devices.create(ctx, "acme", {"device_id": "d1"})
    assert ctx.runtime.calls == [("rules_changed", "acme")]
    ctx.runtime.calls.clear()
    await devices.update(ctx, "acme", "d1", {"name": "renamed"})
    assert ctx.runtime.calls == []
    await devices.update(ctx, "acme", "d1", {"status": "SUSPENDED"})
    await devices.update(ctx, "acme", "d1", {"site_id": "plant-2"})
    assert ctx.runtime.calls == [("device_changed", "acme", "d1", "SUSPENDED"), ("rules_changed", "acme"),
                                 ("rules_changed", "acme")]


async def test_an_empty_update_is_refused_before_the_store(ctx):
    with pytest.raises(Invalid, match="nothing to update"):
        await devices.update(ctx, "acme", "nope", {})


async def test_decommission_and_delete_shut_the_broker_and_the_actor_out(ctx):
    for d in ("d1", "d2"):
        await devices.create(ctx, "acme", {"device_id": d})
    ctx.runtime.calls.clear()
    assert (await devices.decommission(ctx, "acme", "d1", "ops@acme", "replaced"))["status"] == "REVOKED"
    await devices.delete(ctx, "acme", "d2", "ops@acme")
    assert ctx.credentials.removed == ["acme/d1", "acme/d2"]
    calls = [c[:4] for c in ctx.runtime.calls]
    assert calls == [("device_changed", "acme", "d1", "REVOKED"), ("tenant_call", "acme", "device_removed", "d1"),
                     ("device_changed", "acme", "d2", None), ("tenant_call", "acme", "device_removed", "d2")]
    with pytest.raises(NotFound):  # an unknown device closes nothing
        await devices.delete(ctx, "acme", "d2", "ops@acme")
    assert len(ctx.runtime.calls) == 4
    with pytest.raises(NotFound):
        await devices.get(ctx, "acme", "d2")


async def test_tokens_rotate_into_the_broker_and_revoking_one_removes_the_device_there(ctx):
    first = await devices.create(ctx, "acme", {"device_id": "d1"})
    rotated = await devices.rotate_token(ctx, "acme", "d1")
    assert ctx.credentials.secrets["acme/d1"] == rotated["token"] != first["token"]
    await devices.revoke_token(ctx, "acme", "d1", rotated["token_id"])
    assert ctx.credentials.removed == ["acme/d1"]
    with pytest.raises(NotFound):
        await devices.rotate_token(ctx, "globex", "d1")


async def test_a_tag_filter_is_checked_before_the_query(ctx):
    with pytest.raises(Invalid, match="at most 20 tags"):
        await devices.list_devices(ctx, "acme", tags=[f"t{i}" for i in range(21)])
    with pytest.raises(Invalid):
        await devices.list_devices(ctx, "acme", tags=["no spaces"])
