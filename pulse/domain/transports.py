"""The deprecated device connection, mapped onto the device's primary transport."""
from __future__ import annotations

from typing import Any

# connectivity_config keys the legacy connection exposed as columns
CONNECTION_KEYS = ("carrier_name", "plan_name", "apn", "sim_iccid", "sim_status", "msisdn", "ip_address",
                   "network_status", "data_limit_mb", "data_used_mb")


def transport_changes(connection: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Legacy connection fields -> (transport columns, connectivity_config entries)."""
    changes = dict(connection)
    connectivity = {k: changes.pop(k) for k in CONNECTION_KEYS if k in changes}
    if "connection_type" in changes:
        changes["physical_connectivity"] = changes.pop("connection_type")
    return changes, connectivity


def connection_view(device_id: str, transport: dict[str, Any]) -> dict[str, Any]:
    """The legacy device_connections shape of a primary transport."""
    config = transport["connectivity_config"] or {}
    return {"device_id": device_id, "transport_id": transport["id"],
            "connection_type": transport["physical_connectivity"],
            "ingestion_protocol": transport["ingestion_protocol"],
            "carrier_integration_id": transport["carrier_integration_id"],
            "status": transport["status"], **{k: config.get(k) for k in CONNECTION_KEYS},
            "created_at": transport["created_at"], "updated_at": transport["updated_at"]}
