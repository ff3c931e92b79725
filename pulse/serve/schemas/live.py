"""Live push: the stream status body, and the client -> server WebSocket actions (docs/live.md)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StreamStatus(BaseModel):
    total_connections: int
    max_per_tenant: int


class StreamAction(BaseModel):
    """One WebSocket message from the client. Fields a given action does not use are ignored."""
    model_config = ConfigDict(extra="ignore")

    action: Literal["subscribe", "unsubscribe", "set_metrics", "clear_filters"]
    device_id: str | None = Field(None, min_length=1, max_length=128)
    device_ids: list[str] | None = Field(None, max_length=1000)
    group_id: str | None = Field(None, min_length=1, max_length=128)
    channel: Literal["telemetry", "alerts", "status"] | None = None
    metrics: list[str] | None = Field(None, max_length=200)
