"""What Pulse tells Telemetron about owners and devices: the outbox operations and their payloads.

The store writes these rows in the transaction of the change (pulse.storage.telemetron) and the
sync sends them later (pulse.services.telemetron_sync), so a payload is frozen at the change and
a replay sends the same thing. Pure mappings from Pulse rows; the wire models that validate them
belong to the client (pulse.integrations.telemetron)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_BASE_URL = "https://admin.telemetron.ai/api/ext-v1"
TOPIC = "telemetron"
UPSERT_CUSTOMER, UPSERT_DEVICE, ASSIGN, UNASSIGN = "upsert_customer", "upsert_device", "assign", "unassign"
Operation = tuple[str, dict[str, Any]]


def customer_payload(customer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: customer.get(k) for k in ("customer_id", "email", "name", "phone", "address")}


def device_payload(device: Mapping[str, Any]) -> dict[str, Any]:
    """A Pulse device row -> the Telemetron device (identifier = Pulse device_id, full properties:
    Telemetron replaces the properties object, so every send carries all of them)."""
    props = {"platformDeviceId": device["device_id"], "name": device.get("name"), "model": device.get("model"),
             "manufacturer": device.get("manufacturer"), "serialNumber": device.get("serial_number"),
             "firmwareVersion": device.get("fw_version"), "siteId": device.get("site_id"),
             "status": device.get("status"), "metadata": device.get("metadata") or {}}
    return {"identifier": device["device_id"], "type": device.get("model") or "device",
            "properties": {k: v for k, v in props.items() if v is not None}}


def assign(device: Mapping[str, Any], emails: list[str]) -> Operation:
    record = device_payload(device)
    return ASSIGN, {"device_identifier": record["identifier"], "emails": emails, "device_type": record["type"]}


def unassign(device_id: str, email: str) -> Operation:
    return UNASSIGN, {"device_identifier": device_id, "email": email}
