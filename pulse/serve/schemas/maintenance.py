"""HTTP bodies and answers of maintenance windows.

Unknown top-level fields are ignored, as in the documented system, except its `device_types`:
Pulse has no device types, and ignoring them would make a tenant-wide window of what the client
meant as narrower, so it is refused with 422. Its top-level `site_ids` is accepted as
`scope.site_ids` and its `recurring` {dow (0 = Sunday), start_hour, end_hour (UTC)} as the
equivalent `recurrence`. `scope` and `recurrence` themselves stay strict: a misspelt selector
would widen the window to the tenant.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pulse.serve.schemas.common import Page, Row, weekdays
from pulse.domain.maintenance import MAX_DURATION_MINUTES
from pulse.domain.timezones import check_zone
from pulse.domain.windows import HHMM_PATTERN
from pulse.serve.schemas.devices import ID_PATTERN
from pulse.serve.schemas.tags import TAG_PATTERN

MAX_SCOPE_ITEMS = 1000


class Recurrence(BaseModel):
    """Weekly: starts on each of `days_of_week` (0 = Monday .. 6 = Sunday) at `start_time` local time
    in `timezone` and lasts `duration_minutes` of elapsed time."""

    model_config = ConfigDict(extra="forbid")

    days_of_week: list[int] = Field(min_length=1, max_length=7)
    start_time: str = Field(pattern=HHMM_PATTERN, examples=["02:30"])
    duration_minutes: int = Field(ge=1, le=MAX_DURATION_MINUTES)
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"])

    _days = field_validator("days_of_week")(lambda cls, v: weekdays(v))
    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))


def _matching(values: list[str], pattern: str, what: str) -> list[str]:
    for v in values:
        if not re.match(pattern, v):
            raise ValueError(f"invalid {what} {v[:70]!r}")
    return sorted(set(values))


class Scope(BaseModel):
    """Devices the window covers: any one matching selector is enough; all empty = the whole tenant."""

    model_config = ConfigDict(extra="forbid")

    device_ids: list[str] = Field(default_factory=list, max_length=MAX_SCOPE_ITEMS)
    group_ids: list[str] = Field(default_factory=list, max_length=MAX_SCOPE_ITEMS)
    site_ids: list[str] = Field(default_factory=list, max_length=MAX_SCOPE_ITEMS)
    tags: list[str] = Field(default_factory=list, max_length=MAX_SCOPE_ITEMS)

    @field_validator("device_ids", "site_ids")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        return _matching(v, ID_PATTERN, "id")

    @field_validator("group_ids")
    @classmethod
    def _group_ids(cls, v: list[str]) -> list[str]:
        return _matching(v, r"^[A-Za-z0-9-]{1,36}$", "group id")

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        return _matching(v, TAG_PATTERN, "tag")


class DocumentedRecurring(BaseModel):
    """The documented system's weekly window: days 0 = Sunday .. 6, whole UTC hours; an end at or
    before the start runs past midnight."""

    model_config = ConfigDict(extra="forbid")

    dow: list[int] = Field(min_length=1, max_length=7)
    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=0, le=24)

    def recurrence(self) -> dict[str, Any]:
        hours = (self.end_hour - self.start_hour) % 24 or 24
        return {"days_of_week": [(d - 1) % 7 for d in self.dow], "start_time": f"{self.start_hour:02d}:00",
                "duration_minutes": hours * 60, "timezone": "UTC"}


def _recurrence_of(recurring: Any) -> dict[str, Any]:
    try:
        return DocumentedRecurring.model_validate(recurring).recurrence()
    except ValidationError as e:
        raise ValueError(f"recurring: {e.errors()[0]['msg']} (at {e.errors()[0]['loc']})") from None


class WindowFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ends_at: AwareDatetime | None = None
    recurrence: Recurrence | None = None

    @model_validator(mode="before")
    @classmethod
    def _documented_fields(cls, data: Any) -> Any:
        """The documented system's top-level `site_ids` is `scope.site_ids`; see the module docstring."""
        if not isinstance(data, dict):
            return data
        if data.get("device_types"):
            raise ValueError("device_types: Pulse has no device types; use scope {device_ids, group_ids, site_ids, tags}")
        if "site_ids" in data:
            if "scope" in data:
                raise ValueError("site_ids, scope: send site_ids inside scope")
            data = {**data, "scope": {"site_ids": data["site_ids"]}}
        if data.get("recurring") is not None:
            if data.get("recurrence") is not None:
                raise ValueError("recurring, recurrence: send one of them")
            data = {**data, "recurrence": _recurrence_of(data["recurring"])}
        return data


class WindowCreate(WindowFields):
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    starts_at: AwareDatetime | None = Field(None, description="default: now")
    scope: Scope = Field(default_factory=Scope)

    @model_validator(mode="after")
    def _order(self) -> "WindowCreate":
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class WindowPatch(WindowFields):
    """Absent fields stay; `ends_at: null` makes the window indefinite, `recurrence: null` one-off."""

    name: str | None = Field(None, min_length=1, max_length=200)
    enabled: bool | None = None
    starts_at: AwareDatetime | None = None
    scope: Scope | None = None


class WindowOut(Row):
    window_id: str
    name: str
    enabled: bool
    starts_at: datetime
    ends_at: datetime | None
    recurrence: dict[str, Any] | None
    scope: dict[str, list[str]]
    created_at: datetime
    updated_at: datetime


class WindowPage(Page):
    windows: list[WindowOut]


class WindowDeleted(BaseModel):
    window_id: str
    deleted: bool = True
