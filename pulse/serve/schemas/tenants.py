"""HTTP shapes of the operator's per-tenant settings (docs/lake.md "Retention")."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RetentionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retention_days: int | None = Field(..., ge=1, le=3650,
                                       description="days of telemetry kept; null = the platform default")


class RetentionOut(BaseModel):
    tenant_id: str
    retention_days: int = Field(description="what the retention pass applies to this tenant")
    source: Literal["tenant", "default"]
    default_days: int = Field(description="PULSE_LAKE_RETENTION_DAYS")
