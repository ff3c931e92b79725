"""HTTP bodies of device commands."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CommandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                      description="command key, e.g. reboot or set_interval")
    params: dict[str, Any] = Field(default_factory=dict)
    expires_in_seconds: int = Field(3600, ge=1, le=7 * 86400,
                                    description="how long an offline device may still receive it")
