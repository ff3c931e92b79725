"""Patching the desired state publishes what the device actor hands back, and nothing for an empty patch."""
from __future__ import annotations

import pytest

from pulse.domain.messages import Publish
from pulse.errors import Invalid, NotFound
from pulse.services import devices, twin


async def test_a_desired_patch_is_published_as_the_actor_returns_it(ctx):
    await devices.create(ctx, "acme", {"device_id": "d1"})
    retained = Publish("tenant/acme/device/d1/twin/desired", b'{"interval_s": 30}', retain=True)
    ctx.runtime.answers["patch_desired"] = ({"desired": {"interval_s": 30}}, [retained])
    view = await twin.patch_desired(ctx, "acme", "d1", {"interval_s": 30}, "*")
    assert view == {"desired": {"interval_s": 30}}
    assert ctx.downlink.published == [retained]


async def test_an_empty_patch_or_unknown_device_publishes_nothing(ctx):
    with pytest.raises(Invalid, match="empty patch"):
        await twin.patch_desired(ctx, "acme", "d1", {}, "*")
    with pytest.raises(NotFound):
        await twin.patch_desired(ctx, "acme", "d1", {"interval_s": 30}, "*")
    assert ctx.downlink.published == [] and ctx.runtime.calls == []
