"""HTTP bodies and responses of the alert digest settings (documented names: `email`, `ok`)."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.domain.timezones import check_zone
from pulse.serve.schemas.common import Documented, Stamped, Update

Frequency = Literal["disabled", "hourly", "daily", "weekly"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_RECIPIENTS = 20
_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")


def _address(v: str) -> str:
    if len(v) > 320 or not _ADDRESS.match(v):
        raise ValueError(f"invalid e-mail address {v[:80]!r}")
    return v


def _unique(v: list[str]) -> list[str]:
    return list(dict.fromkeys(a.lower() for a in v))


Email = Annotated[str, AfterValidator(_address)]
Recipients = Annotated[list[Email], Field(max_length=MAX_RECIPIENTS), AfterValidator(_unique)]


class DigestSettings(BaseModel):
    """The settings as a whole (what PUT stores after merging the given fields into the current ones)."""

    model_config = ConfigDict(extra="forbid")

    frequency: Frequency = "disabled"
    recipients: Recipients = Field(default_factory=list, description=f"1 to {MAX_RECIPIENTS} unless disabled")
    channel_id: str | None = Field(None, min_length=1, max_length=36,
                                   description="an email channel whose SMTP server sends the digest; "
                                               "null = the platform's mailer")
    send_at_hour: int = Field(8, ge=0, le=23, description="local hour of daily and weekly digests")
    send_on_day: Day = Field("mon", description="weekly digests")
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"], description="IANA zone of send_at_hour")

    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))

    @model_validator(mode="after")
    def _recipients_when_enabled(self) -> "DigestSettings":
        if self.frequency != "disabled" and not self.recipients:
            raise ValueError(f"a {self.frequency} digest needs 1 to {MAX_RECIPIENTS} recipients")
        return self


class DigestSettingsUpdate(Update):
    """PUT body: the fields to change; read-only and unknown fields are ignored. The documented
    `email` (one address, "" for none) is accepted as `recipients`."""

    model_config = ConfigDict(extra="ignore")

    NOT_NULL = ("frequency", "recipients", "send_at_hour", "send_on_day", "timezone")

    frequency: Frequency | None = None
    recipients: Recipients | None = None
    channel_id: str | None = Field(None, min_length=1, max_length=36)
    send_at_hour: int | None = Field(None, ge=0, le=23)
    send_on_day: Day | None = None
    timezone: str | None = Field(None, max_length=64, examples=["Europe/Berlin"])

    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))

    @model_validator(mode="before")
    @classmethod
    def _documented_email(cls, data: Any) -> Any:
        if isinstance(data, dict) and "email" in data and "recipients" not in data:
            email = data["email"]
            return {**data, "recipients": [email] if email else []}
        return data


class DigestSettingsOut(Stamped, Documented):
    frequency: Frequency
    recipients: list[str]
    email: str = Field("", description="the documented single address: the first recipient")
    channel_id: str | None = None
    send_at_hour: int
    send_on_day: Day
    timezone: str
    last_sent_at: datetime | None = None

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "email": (row.get("recipients") or [""])[0]}


class DigestSettingsSaved(DigestSettingsOut):
    ok: bool = Field(True, description="documented key")
