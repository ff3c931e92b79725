"""HTTP bodies and responses of on-call schedules, layers and overrides.

The documented system's names (api-contracts §16) are accepted too: a schedule's `layers`, and on a
layer `responders`, `layer_order`, `handoff_hour`, `shift_duration_hours`; responses carry them next
to Pulse's, and `current` / `timeline` add `responder, layer, until` / `slots`. Unknown fields are
ignored.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator,
                      model_validator)

from pulse.serve.schemas.common import Documented, Page, Stamped, Update, weekdays
from pulse.domain.oncall import MAX_PARTICIPANTS, MAX_SHIFT_HOURS
from pulse.domain.timezones import check_zone
from pulse.domain.windows import END_HHMM_PATTERN, HHMM_PATTERN
from pulse.services.oncall import MAX_LAYERS

# A user's email or id: no spaces, no slashes, at most an email address's length.
Person = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._%+@:-]{0,319}$")]
RotationType = Literal["daily", "weekly", "custom"]
MAX_RESTRICTIONS = 50


IGNORE_UNKNOWN = ConfigDict(extra="ignore")
ROTATION_HOURS = {"daily": 24, "weekly": 168}
DOCUMENTED_LAYER_KEYS = {"responders", "layer_order", "handoff_hour", "shift_duration_hours"}


def _now_minute() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


def pulse_layer_names(data: Any) -> Any:
    """A layer in the documented names, renamed to Pulse's. A documented body always carries
    `handoff_day` and `shift_duration_hours`; the rotation that does not use them ignores them."""
    if not isinstance(data, dict) or not DOCUMENTED_LAYER_KEYS & data.keys():
        return data
    d = dict(data)
    for documented, own in (("responders", "participants"), ("layer_order", "order")):
        if documented in d:
            d.setdefault(own, d.pop(documented))
    hour = d.pop("handoff_hour", None)
    if isinstance(hour, int) and "handoff_time" not in d:
        d["handoff_time"] = f"{hour:02d}:00"
    rotation = d.get("rotation_type", "weekly")
    hours = d.pop("shift_duration_hours", None)
    if rotation == "custom" or (hours is not None and hours != ROTATION_HOURS.get(rotation)):
        d.setdefault("shift_hours", hours)
    if rotation != "weekly":
        d.pop("handoff_day", None)
    return d


# ---- schedules ---------------------------------------------------------------------------------
class ScheduleCreate(BaseModel):
    """`layers` (documented) creates the schedule's layers with it."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"],
                          description="IANA zone of handoff times and restrictions")
    layers: list["LayerCreate"] = Field(default_factory=list, max_length=MAX_LAYERS, exclude=True,
                                        description="created with the schedule, in order")

    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))


class ScheduleUpdate(Update):
    """Layers change through their own routes: `layers` here is refused rather than ignored."""

    model_config = IGNORE_UNKNOWN
    NOT_NULL = ("name", "timezone")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    timezone: str | None = Field(None, max_length=64)
    layers: Any = Field(None, exclude=True, description="refused: use the /layers routes")

    _zone = field_validator("timezone")(lambda cls, v: check_zone(v))

    @field_validator("layers")
    @classmethod
    def _no_layers(cls, v: Any) -> None:
        if v is not None:
            raise ValueError("layers are changed through /oncall-schedules/{id}/layers")


# ---- layers ------------------------------------------------------------------------------------
class Restriction(BaseModel):
    """A local time-of-day window on the listed weekdays (0 = Monday) when the layer is active;
    `end_time` at or before `start_time` runs past midnight; `24:00` is the end of the day."""

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
    _documented = model_validator(mode="before")(lambda cls, data: pulse_layer_names(data))

    shift_hours: int | None = Field(None, ge=1, le=MAX_SHIFT_HOURS, description="custom rotations only")
    handoff_time: str | None = Field(None, pattern=HHMM_PATTERN, examples=["09:00"],
                                     description="schedule-local; default: the local time of start_at")
    handoff_day: int | None = Field(None, ge=0, le=6,
                                    description="weekly only, 0 = Monday; default: the local weekday of start_at")
    end_at: AwareDatetime | None = Field(None, description="none: the layer runs for ever")


class LayerCreate(LayerFields):
    """Documented names accepted: `responders` (participants), `layer_order` (order), `handoff_hour`
    (handoff_time HH:00), `shift_duration_hours` (shift_hours, custom rotations)."""

    name: str = Field("Layer 1", min_length=1, max_length=200)
    order: int | None = Field(None, ge=0, le=1000, description="priority, lowest first; default: after the last")
    rotation_type: RotationType = "weekly"
    start_at: AwareDatetime = Field(default_factory=_now_minute,
                                    description="participants[0] is on call from here; handoffs never reset; "
                                                "default: now")
    participants: list[Person] = Field(min_length=1, max_length=MAX_PARTICIPANTS,
                                       description="also accepted as `responders`")
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

    model_config = IGNORE_UNKNOWN
    NOT_NULL = ("name", "order", "rotation_type", "handoff_time", "start_at", "participants", "restrictions")

    name: str | None = Field(None, min_length=1, max_length=200)
    order: int | None = Field(None, ge=0, le=1000)
    rotation_type: RotationType | None = None
    start_at: AwareDatetime | None = None
    participants: list[Person] | None = Field(None, min_length=1, max_length=MAX_PARTICIPANTS)
    restrictions: list[Restriction] | None = Field(None, max_length=MAX_RESTRICTIONS)


# ---- overrides ---------------------------------------------------------------------------------
class OverrideCreate(BaseModel):
    responder: Person
    start_at: AwareDatetime
    end_at: AwareDatetime
    layer_id: Annotated[str | None, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = Field(
        None, max_length=36, description="none: the whole schedule")
    reason: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _order(self) -> "OverrideCreate":
        if self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self


ScheduleCreate.model_rebuild()


# ---- responses ---------------------------------------------------------------------------------
class RestrictionOut(BaseModel):
    days_of_week: list[int]
    start_time: str
    end_time: str


class LayerOut(Stamped, Documented):
    layer_id: str
    schedule_id: str
    name: str
    order: int
    rotation_type: RotationType
    shift_hours: int | None = None
    handoff_time: str
    handoff_day: int | None = None
    start_at: datetime
    end_at: datetime | None = None
    participants: list[str]
    restrictions: list[RestrictionOut]
    # the documented names
    responders: list[str]
    layer_order: int
    handoff_hour: int
    shift_duration_hours: int | None = Field(None, description="shift_hours, or the rotation's 24 / 168")

    DOCUMENTED = {"responders": "participants", "layer_order": "order"}

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "handoff_hour": int(str(row.get("handoff_time", "0"))[:2]),
                "shift_duration_hours": row.get("shift_hours") or ROTATION_HOURS.get(row.get("rotation_type", ""))}


class ScheduleOut(Stamped):
    schedule_id: str
    tenant_id: str
    name: str
    description: str | None = None
    timezone: str
    layers: list[LayerOut]


class SchedulePage(Page):
    schedules: list[ScheduleOut]


class OverrideOut(BaseModel):
    override_id: str
    schedule_id: str
    layer_id: str | None = None
    responder: str
    start_at: datetime
    end_at: datetime
    reason: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None


class OverridePage(Page):
    overrides: list[OverrideOut]


class Shift(BaseModel):
    responder: str
    start: datetime
    end: datetime


class Stretch(Shift):
    """A stretch of the final timeline: from a layer's rotation or an override."""

    source: Literal["layer", "override"]
    layer_id: str | None = None
    override_id: str | None = None


class LayerOnCall(BaseModel):
    layer_id: str
    name: str
    order: int
    on_call: Shift | None = None


class CurrentOnCall(Documented):
    schedule_id: str
    name: str
    timezone: str
    at: datetime
    on_call: Stretch | None = None
    responders: list[str]
    layers: list[LayerOnCall]
    overrides: list[OverrideOut]
    # the documented view
    responder: str | None = Field(None, description="documented: who is on call (on_call.responder)")
    layer: str | None = Field(None, description='documented: the layer\'s name, "Override" for an override')
    until: datetime | None = Field(None, description="documented: on_call.end")

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        if not row.get("on_call"):
            return row
        on_call = row["on_call"]
        names = {lv["layer_id"]: lv["name"] for lv in row.get("layers") or []}
        layer = "Override" if on_call.get("override_id") else names.get(on_call.get("layer_id"))
        return {**row, "responder": on_call["responder"], "layer": layer, "until": on_call["end"]}


class LayerShifts(BaseModel):
    layer_id: str
    name: str
    order: int
    shifts: list[Shift]


class Slot(Shift):
    layer_name: str | None = None
    is_override: bool


class Timeline(Documented):
    schedule_id: str
    name: str
    timezone: str
    start: datetime
    end: datetime
    layers: list[LayerShifts]
    overrides: list[OverrideOut]
    final: list[Stretch]
    slots: list[Slot] = Field(description="documented: the final timeline with layer names")

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        names = {lv["layer_id"]: lv["name"] for lv in row.get("layers") or []}
        slots = [{"start": f["start"], "end": f["end"], "responder": f["responder"],
                  "is_override": bool(f.get("override_id")),
                  "layer_name": "Override" if f.get("override_id") else names.get(f.get("layer_id"))}
                 for f in row.get("final") or []]
        return {**row, "slots": slots}
