"""HTTP answers of device ingest (`POST /ingest/v1/...`): accepted, refused, or every message rejected."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class IngestAccepted(BaseModel):
    status: Literal["accepted"]
    device_id: str
    accepted: int = Field(description="envelopes now durable (in the WAL)")
    rejected: list[dict[str, Any]] = Field(description="envelopes refused, each with its quarantine reason")


class IngestRefused(BaseModel):
    """The request as a whole was refused and quarantined."""

    detail: str
    reason: str = Field(description="quarantine reason code, e.g. TOKEN_INVALID or RATE_LIMITED")


class IngestRejected(BaseModel):
    """Every envelope of the request was invalid."""

    detail: str
    rejected: list[dict[str, Any]]


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": IngestRefused, "description": "missing or invalid device token"},
    422: {"model": IngestRejected, "description": "no envelope was valid"},
    429: {"model": IngestRefused, "description": "rate limited"},
}
