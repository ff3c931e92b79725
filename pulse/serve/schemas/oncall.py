"""HTTP bodies of on-call schedules, layers and overrides."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from pulse.serve.schemas.common import Update, weekdays
from pulse.domain.oncall import MAX_PARTICIPANTS, MAX_SHIFT_HOURS
from pulse.domain.timezones import check_zone
from pulse.domain.windows import END_HHMM_PATTERN, HHMM_PATTERN

# A user's email or id: no spaces, no slashes, at most an email address's length.
Person = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._%+@:-]{0,319}$")]
RotationType = Literal["daily", "weekly", "custom"]
MAX_RESTRICTIONS = 50


# ---- schedules ---------------------------------------------------------------------------------
class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"],
                          description="IANA zone of handoff times and restrictions")

    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))


class ScheduleUpdate(Update):
    NOT_NULL = ("name", "timezone")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    timezone: str | None = Field(None, max_length=64)

    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))


# ---- layers ------------------------------------------------------------------------------------
class Restriction(BaseModel):
    """A local time-of-day window on the listed weekdays (0 = Monday) when the layer is active;
    `end_time` at or before `start_time` runs past midnight; `24:00` is the end of the day."""

    model_config = ConfigDict(extra="forbid")

    days_of_week: list[int] = Field(min_length=1, max_length=7)
    start_time: str = Field(pattern=HHMM_PATTERN, examples=["09:00"])
    end_time: str = Field(pattern=END_HHMM_PATTERN, examples=["17:00"])

    _days = field_validator("days_of_week")(lambda cls, v: weekdays(v))

    @model_validator(mode="after")
    def _not_empty(self) -> "Restriction":
        if self.start_time == self.end_time:
            raise ValueError("end_time must differ from start_time (all day is 00:00-24:00)")
        return self


class LayerFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shift_hours: int | None = Field(None, ge=1, le=MAX_SHIFT_HOURS, description="custom rotations only")
    handoff_time: str | None = Field(None, pattern=HHMM_PATTERN, examples=["09:00"],
                                     description="schedule-local; default: the local time of start_at")
    handoff_day: int | None = Field(None, ge=0, le=6,
                                    description="weekly only, 0 = Monday; default: the local weekday of start_at")
    end_at: AwareDatetime | None = Field(None, description="none: the layer runs for ever")


class LayerCreate(LayerFields):
    name: str = Field(min_length=1, max_length=200)
    order: int | None = Field(None, ge=0, le=1000, description="priority, lowest first; default: after the last")
    rotation_type: RotationType = "weekly"
    start_at: AwareDatetime = Field(description="participants[0] is on call from here; handoffs never reset")
    participants: list[Person] = Field(min_length=1, max_length=MAX_PARTICIPANTS)
    restrictions: list[Restriction] = Field(default_factory=list, max_length=MAX_RESTRICTIONS)

    @model_validator(mode="after")
    def _consistent(self) -> "LayerCreate":
        if (self.shift_hours is None) == (self.rotation_type == "custom"):
            raise ValueError("shift_hours is required for custom rotations and only allowed for them")
        if self.handoff_day is not None and self.rotation_type != "weekly":
            raise ValueError("handoff_day is only for weekly rotations")
        if self.end_at is not None and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self


class LayerUpdate(LayerFields, Update):
    """Checked again as a whole once merged with the stored layer."""

    NOT_NULL = ("name", "order", "rotation_type", "handoff_time", "start_at", "participants", "restrictions")

    name: str | None = Field(None, min_length=1, max_length=200)
    order: int | None = Field(None, ge=0, le=1000)
    rotation_type: RotationType | None = None
    start_at: AwareDatetime | None = None
    participants: list[Person] | None = Field(None, min_length=1, max_length=MAX_PARTICIPANTS)
    restrictions: list[Restriction] | None = Field(None, max_length=MAX_RESTRICTIONS)


# ---- overrides ---------------------------------------------------------------------------------
class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responder: Person
    start_at: AwareDatetime
    end_at: AwareDatetime
    layer_id: str | None = Field(None, max_length=36, description="none: the whole schedule")
    reason: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _order(self) -> "OverrideCreate":
        if self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self
