"""HTTP answers of quarantine events (messages refused at ingest)."""
from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pulse.serve.schemas.common import Page, Row


class QuarantineEvent(Row):
    id: int
    ingested_at: datetime
    tenant_id: str | None = None
    device_id: str | None = None
    topic: str
    reason: str = Field(description="BAD_TOPIC_FORMAT, UNREGISTERED_DEVICE, TOKEN_INVALID, RATE_LIMITED, ...")
    detail: str | None = None


class QuarantinePage(Page):
    events: list[QuarantineEvent]
    counts_by_reason: dict[str, int]
