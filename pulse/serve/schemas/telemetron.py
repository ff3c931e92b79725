"""HTTP body and responses of the Telemetron integration (`/api/v1/customer/integrations/telemetron`)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.domain.masking import is_masked
from pulse.domain.urls import http_url
from pulse.serve.schemas.common import Stamped


class TelemetronIntegrationPut(BaseModel):
    """Create or update. `api_key` is required when creating; on an update, leaving it out (or
    sending back its mask) keeps the stored key. `base_url` defaults to Telemetron's ext-v1 API."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, max_length=2000, examples=["https://admin.telemetron.ai/api/ext-v1"])
    api_key: str | None = Field(None, min_length=1, max_length=256, pattern=r"^\S+$",
                                description="write-only; read back masked (last 4 characters)")
    enabled: bool | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return http_url(v).rstrip("/") if v is not None else None

    @field_validator("api_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and not is_masked(v) and len(v) < 8:
            raise ValueError("an API key has at least 8 characters")
        return v


class TelemetronIntegrationOut(Stamped):
    base_url: str
    enabled: bool
    api_key: str = Field(description="masked")
    api_key_readable: bool = Field(description="false when the stored key no longer decrypts: send it again")
    last_sync_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class Resync(BaseModel):
    enqueued: int = Field(description="owned devices queued for the sync")


class OutboxFailure(BaseModel):
    id: int
    aggregate_id: str
    operation: str
    attempts: int
    last_error: str | None = None
    updated_at: datetime | None = None


class TelemetronStatus(BaseModel):
    enabled: bool
    base_url: str
    last_sync_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    pending: int
    failed: int
    delivered: int
    next_retry_at: datetime | None = None
    recent_failures: list[OutboxFailure]
