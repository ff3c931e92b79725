"""Roles and the permissions they grant (documented system, reference §10), and who a caller is."""
from __future__ import annotations

from dataclasses import dataclass

CUSTOMER_ROLES = ("customer_admin", "customer_viewer")
OPERATOR_ROLES = ("operator", "operator_admin")
ROLES = CUSTOMER_ROLES + OPERATOR_ROLES

# Permission strings follow the documented system (reference §10).
READ_PERMISSIONS = frozenset({
    "devices.read", "alerts.read", "alerts.rules.read", "telemetry.read", "quarantine.read",
    "maintenance.read",
    "templates.read",
    "oncall.read",
    "notifications.read",
    "escalation.read",
    "carrier.integrations.read",
    "telemetron.read",
    "exports.read",
    "audit.read",
    "analytics.read",
    "reports.read",
    "analytics.sql",
    "firmware.read",
    "ota.read",
    "jobs.read",
    "dashboards.read",
})
WRITE_PERMISSIONS = frozenset({
    "devices.create", "devices.update", "devices.delete", "devices.decommission",
    "devices.tokens.rotate", "devices.tokens.revoke", "devices.twin.write", "devices.commands.send",
    "alerts.acknowledge", "alerts.close", "alerts.silence",
    "alert-rules.create", "alert-rules.update", "alert-rules.delete",
    "devices.tags.write", "devices.groups.write", "maintenance.create", "maintenance.update", "maintenance.delete",
    "templates.write",
    "oncall.create", "oncall.update", "oncall.delete", "oncall.layers.write", "oncall.overrides.write",
    "notifications.create", "notifications.update", "notifications.delete", "notifications.test",
    "notifications.routing.create", "notifications.routing.update", "notifications.routing.delete",
    "escalation.create", "escalation.update", "escalation.delete", "alerts.digest.write",
    "carrier.integrations.write", "carrier.actions.execute", "carrier.links.write",
    "telemetron.write", "devices.owners.write",
    "exports.create",
    "firmware.write",
    "ota.write",
    "jobs.write",
    "dashboards.write",
})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "customer_admin": READ_PERMISSIONS | WRITE_PERMISSIONS,
    "customer_viewer": READ_PERMISSIONS,
    "operator": READ_PERMISSIONS | {"operator.read"},
    "operator_admin": READ_PERMISSIONS | WRITE_PERMISSIONS | {"operator.read", "operator.write"},
}


@dataclass(frozen=True)
class Principal:
    sub: str
    tenant_id: str | None
    role: str

    @property
    def permissions(self) -> frozenset[str]:
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def is_operator(self) -> bool:
        return self.role in OPERATOR_ROLES
