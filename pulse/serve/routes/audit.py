"""The tenant audit trail (HTTP only: parse, authorize, call, shape); written by pulse.serve.audit_trail."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pulse.domain.audit import EventFilter
from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import Offset, StrId
from pulse.serve.schemas.audit import AuditEventPage
from pulse.serve.schemas.common import PageParams, page
from pulse.services import audit as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["audit"])
Word = Annotated[str | None, Query(max_length=128)]


@router.get("/audit-log", response_model=AuditEventPage)
async def audit_log(limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0,
                    category: Word = None, severity: Word = None, entity_type: Word = None,
                    entity_id: StrId | None = None, start: datetime | None = None, end: datetime | None = None,
                    search: Annotated[str | None, Query(max_length=200)] = None,
                    p: Principal = Depends(customer("audit.read")),
                    svc: ServiceContext = Depends(services)) -> dict:
    """Newest first; `start`/`end` are ISO-8601 (no offset = UTC), `search` a case-insensitive substring of `message`."""
    f = EventFilter(category=category, severity=severity, entity_type=entity_type, entity_id=entity_id,
                    start=start, end=end, search=search)
    rows, total = await service.list_events(svc.db, p.tenant_id, f, limit, offset)
    return page("events", [r | {"timestamp": r["at"]} for r in rows], total, PageParams(limit, offset))
