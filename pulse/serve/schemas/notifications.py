"""HTTP bodies of notification channels and routing rules.

A channel's `config` is checked against its type's model in pulse.integrations.channels (by
pulse.services.notifications, after write-only secrets an update left out are filled in), so
here it is a plain object.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from pulse.domain.channels import CHANNEL_TYPES, EVENTS, JOB_STATUSES
from pulse.domain.severity import MAX_SEVERITY, MIN_SEVERITY, parse_severity
from pulse.domain.timezones import check_zone
from pulse.domain.windows import HHMM_PATTERN
from pulse.serve.schemas.devices import ID_PATTERN
from pulse.serve.schemas.tags import Tag
from pulse.serve.schemas.common import Update

ChannelType = Literal[CHANNEL_TYPES]
Event = Literal[EVENTS]
JobStatus = Literal[JOB_STATUSES]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_LIST = 100


def _unique(v: list | None) -> list | None:
    """Order kept, duplicates folded; an empty list means "any", stored as null."""
    return (list(dict.fromkeys(v)) or None) if v is not None else None


Severity = Annotated[int, BeforeValidator(parse_severity), Field(ge=MIN_SEVERITY, le=MAX_SEVERITY)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
AlertType = Annotated[str, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
                      Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")]
IdList = Annotated[list[Id] | None, Field(max_length=MAX_LIST), AfterValidator(_unique)]
UuidList = Annotated[list[Annotated[str, Field(min_length=1, max_length=36)]] | None, Field(max_length=MAX_LIST),
                     AfterValidator(_unique)]
AlertTypes = Annotated[list[AlertType] | None, Field(max_length=MAX_LIST), AfterValidator(_unique)]
Tags = Annotated[list[Tag] | None, Field(max_length=MAX_LIST), AfterValidator(_unique)]
ChannelIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=36)]], Field(min_length=1, max_length=20),
                       AfterValidator(_unique)]
Events = Annotated[list[Event], Field(min_length=1), AfterValidator(_unique)]
HHMM = Annotated[str, Field(pattern=HHMM_PATTERN, examples=["08:00"])]


class TimeWindow(BaseModel):
    """Local time of day [start, end); start > end spans midnight. `days` = days the window starts on."""

    model_config = ConfigDict(extra="forbid")

    start: HHMM
    end: HHMM
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"])
    days: list[Day] | None = Field(None, max_length=7)

    _tz = field_validator("timezone")(lambda cls, v: check_zone(v))

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str] | None) -> list[str] | None:
        return _unique(v)

    @model_validator(mode="after")
    def _not_empty(self) -> "TimeWindow":
        if self.start == self.end:
            raise ValueError("start and end must differ (leave active_hours out for all day)")
        return self


# ---- channels ----------------------------------------------------------------------------------
class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel_type: ChannelType = Field(validation_alias=AliasChoices("channel_type", "type"))
    enabled: bool = True
    config: dict[str, Any] = Field(description="per type, see docs/notifications.md; secrets are write-only")
    rate_limit_per_minute: int | None = Field(None, ge=1, le=6000, description="null = the platform default")


class ChannelUpdate(Update):
    """Fields left out stay. A given `config` replaces the stored one, except that secrets it leaves
    out, or sends back masked ("***…"), keep their stored value."""

    NOT_NULL = ("name", "channel_type", "enabled", "config")

    name: str | None = Field(None, min_length=1, max_length=200)
    channel_type: ChannelType | None = Field(None, validation_alias=AliasChoices("channel_type", "type"))
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    rate_limit_per_minute: int | None = Field(None, ge=1, le=6000)


# ---- routing rules -----------------------------------------------------------------------------
class RoutingRuleCreate(BaseModel):
    """An unset or empty match list matches anything; all set criteria must hold."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    enabled: bool = True
    priority: int = Field(100, ge=0, le=1_000_000, description="lower runs first")
    stop: bool = Field(False, description="a match ends evaluation: lower-priority rules are not tried")
    channel_ids: ChannelIds
    min_severity: Severity | None = None
    alert_types: AlertTypes = None
    rule_ids: UuidList = None
    device_ids: IdList = None
    group_ids: UuidList = None
    tags: Tags = None
    site_ids: IdList = None
    events: Events = Field(default_factory=lambda: ["OPEN"])
    active_hours: TimeWindow | None = None
    throttle_minutes: int = Field(0, ge=0, le=7 * 24 * 60)


class RoutingRuleUpdate(Update):
    NOT_NULL = ("enabled", "priority", "stop", "channel_ids", "events", "throttle_minutes")

    name: str | None = Field(None, max_length=200)
    enabled: bool | None = None
    priority: int | None = Field(None, ge=0, le=1_000_000)
    stop: bool | None = None
    channel_ids: ChannelIds | None = None
    min_severity: Severity | None = None
    alert_types: AlertTypes = None
    rule_ids: UuidList = None
    device_ids: IdList = None
    group_ids: UuidList = None
    tags: Tags = None
    site_ids: IdList = None
    events: Events | None = None
    active_hours: TimeWindow | None = None
    throttle_minutes: int | None = Field(None, ge=0, le=7 * 24 * 60)
