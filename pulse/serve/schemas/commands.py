"""HTTP bodies and answers of device commands.

A body may use Pulse's names (`type`, `params`, `expires_in_seconds`) or the documented system's
(`command_type`, `command_params`, `expires_in_minutes`); unknown fields are ignored, as there.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, model_validator

from pulse.serve.schemas.common import Page, Row

DEFAULT_EXPIRY_S = 3600
MAX_EXPIRY_S = 7 * 86400


class CommandCreate(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                      validation_alias=AliasChoices("type", "command_type"),
                      description="command key, e.g. reboot or set_interval; also accepted as `command_type`")
    params: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("params", "command_params"),
                                   description="also accepted as `command_params`")
    expires_in_seconds: int | None = Field(None, ge=1, le=MAX_EXPIRY_S,
                                           description="how long an offline device may still receive it "
                                                       f"(default {DEFAULT_EXPIRY_S})")
    expires_in_minutes: int | None = Field(None, ge=1, le=MAX_EXPIRY_S // 60,
                                           description="the documented alternative to expires_in_seconds")

    @model_validator(mode="after")
    def _one_expiry(self) -> "CommandCreate":
        if self.expires_in_seconds is not None and self.expires_in_minutes is not None:
            raise ValueError("expires_in_seconds, expires_in_minutes: send one of them, not both")
        return self

    @property
    def expires_in_s(self) -> int:
        if self.expires_in_minutes is not None:
            return self.expires_in_minutes * 60
        return self.expires_in_seconds or DEFAULT_EXPIRY_S


class CommandOut(Row):
    command_id: str
    device_id: str
    command_type: str
    params: dict[str, Any]
    status: str = Field(description="pending, delivered, succeeded, failed, rejected or expired")
    created_at: datetime
    published_at: datetime | None = None
    acked_at: datetime | None = None
    ack_details: dict[str, Any] | None = None
    expires_at: datetime
    created_by: str | None = None

    @computed_field(description="the documented name of `params`")
    @property
    def command_params(self) -> dict[str, Any]:
        return self.params

    @computed_field(description="true once the command was handed to the broker (documented key)")
    @property
    def mqtt_published(self) -> bool:
        return self.published_at is not None


class CommandPage(Page):
    commands: list[CommandOut]
