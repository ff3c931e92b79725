"""What API tests create over HTTP before the part they test: devices and notification channels."""
from __future__ import annotations

DEVICES = "/api/v1/customer/devices"
CHANNELS = "/api/v1/customer/notification-channels"


async def make_devices(api, *ids: str, tenant: str = "acme", **fields) -> None:
    for d in ids:
        r = await api.post(DEVICES, tenant=tenant, json={"device_id": d, **fields})
        assert r.status_code == 201, r.text


async def make_channel(api, channel_type: str = "webhook", tenant: str = "acme") -> str:
    """A webhook or email channel named `{channel_type}-{tenant}`; returns its id."""
    config = {"url": "https://hooks.example/in"} if channel_type == "webhook" else {
        "smtp_host": "smtp.example", "smtp_port": 587, "from": "alerts@pulse.example", "recipients": ["a@b.example"]}
    r = await api.post(CHANNELS, tenant=tenant, json={"name": f"{channel_type}-{tenant}", "channel_type": channel_type,
                                                      "config": config})
    assert r.status_code == 201, r.text
    return r.json()["channel_id"]
