"""HTTP shapes of the tenant audit trail (api-contracts §4 `GET /audit-log`, docs/audit-log.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pulse.serve.schemas.common import Page


class AuditEvent(BaseModel):
    timestamp: datetime
    event_type: str = Field(description="`<entity_type>.<action>`, e.g. device.update")
    category: str = Field(description="the API area changed: the route's first segment, e.g. devices")
    severity: str = Field(description="info; warning for a delete")
    entity_type: str
    entity_id: str | None = None
    entity_name: str | None = None
    action: str
    message: str
    details: dict[str, Any] = Field(description="method, path (template), status_code, role, params")
    source_service: str
    actor_type: str
    actor_id: str
    actor_name: str | None = None
    ip: str | None = Field(None, description="Pulse extra: the client address")
    request_id: str = Field(description="Pulse extra: the request's X-Request-ID")


class AuditEventPage(Page):
    events: list[AuditEvent]
