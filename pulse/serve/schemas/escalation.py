"""HTTP bodies of escalation policies."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pulse.domain.escalation import MAX_DELAY_MINUTES, MAX_LEVELS, MAX_REPEAT, MAX_TARGETS, check_levels
from pulse.serve.schemas.common import Update

TargetType = Literal["channel", "oncall_schedule", "user"]
MAX_REF_ID = 36  # channel and schedule ids are UUIDs


class TargetBody(BaseModel):
    """Who a level notifies: a notification channel, whoever is on call in a schedule, or a user
    (e-mail or id, checked for shape only: users may live in the identity provider)."""

    model_config = ConfigDict(extra="forbid")

    type: TargetType
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._%+@:-]{0,319}$", examples=["ops@example.com"])

    @model_validator(mode="after")
    def _id_length(self) -> "TargetBody":
        if self.type != "user" and len(self.id) > MAX_REF_ID:
            raise ValueError(f"a {self.type} id has at most {MAX_REF_ID} characters")
        return self


def _unique_targets(targets: list[TargetBody]) -> list[TargetBody]:
    seen: dict[tuple[str, str], TargetBody] = {}
    for t in targets:
        seen.setdefault((t.type, t.id), t)
    return list(seen.values())


class LevelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_minutes: int = Field(ge=0, le=MAX_DELAY_MINUTES,
                               description="after the previous level fired; level 1: after the alert opened")
    targets: Annotated[list[TargetBody], Field(min_length=1, max_length=MAX_TARGETS), AfterValidator(_unique_targets)]


Levels = Annotated[list[LevelBody], Field(min_length=1, max_length=MAX_LEVELS)]
Repeat = Annotated[int, Field(ge=0, le=MAX_REPEAT, description="times the last level is notified again, "
                                                                "each its delay_minutes after the one before")]


def _check(levels: list[LevelBody] | None, repeat: int | None) -> None:
    if levels is not None:
        check_levels([lv.model_dump() for lv in levels], repeat or 0)


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    is_default: bool = Field(False, description="followed by alerts whose rule names no policy; one per tenant")
    repeat: Repeat = 0
    levels: Levels

    @model_validator(mode="after")
    def _levels(self) -> "PolicyCreate":
        _check(self.levels, self.repeat)
        return self


class PolicyUpdate(Update):
    """A partial update (PUT): fields left out stay; the result is checked as a whole by the store."""

    NOT_NULL = ("name", "is_default", "repeat", "levels")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    is_default: bool | None = None
    repeat: Repeat | None = None
    levels: Levels | None = None

    @model_validator(mode="after")
    def _levels(self) -> "PolicyUpdate":
        if self.repeat is not None and self.levels is not None:  # one alone: the store checks it with the other
            _check(self.levels, self.repeat)
        return self
