"""HTTP bodies and responses of escalation policies.

A level may also be written as the documented system does (api-contracts §16): `level_number`,
`notify_email` (a user target) and `oncall_schedule_id` (a schedule target) instead of `targets`.
`notify_webhook` is refused: Pulse pages webhooks through a webhook channel target. Unknown
fields are ignored.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.domain.escalation import MAX_DELAY_MINUTES, MAX_LEVELS, MAX_REPEAT, MAX_TARGETS, check_levels
from pulse.serve.schemas.common import Documented, Page, Stamped, Update, set_fields

TargetType = Literal["channel", "oncall_schedule", "user"]
MAX_REF_ID = 36  # channel and schedule ids are UUIDs


class TargetBody(BaseModel):
    """Who a level notifies: a notification channel, whoever is on call in a schedule, or a user
    (e-mail or id, checked for shape only: users may live in the identity provider)."""

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


def _documented_targets(level: Any) -> Any:
    """`notify_email` / `oncall_schedule_id` (documented) as targets, when `targets` is not given."""
    if not isinstance(level, dict) or "targets" in level:
        return level
    targets = []
    if level.get("notify_email"):
        targets.append({"type": "user", "id": level["notify_email"]})
    if level.get("oncall_schedule_id") is not None:
        targets.append({"type": "oncall_schedule", "id": str(level["oncall_schedule_id"])})
    return {**level, "targets": targets}


class LevelBody(BaseModel):
    level_number: int | None = Field(None, ge=1, le=MAX_LEVELS, exclude=True,
                                     description="documented: the levels' order (default: list order)")
    delay_minutes: int = Field(15, ge=0, le=MAX_DELAY_MINUTES,
                               description="after the previous level fired; level 1: after the alert opened")
    targets: Annotated[list[TargetBody], Field(min_length=1, max_length=MAX_TARGETS), AfterValidator(_unique_targets),
                       Field(description="documented `notify_email` and `oncall_schedule_id` are accepted instead")]
    notify_webhook: str | None = Field(None, exclude=True,
                                       description="documented, not supported: use a target of type channel "
                                                   "(a webhook channel)")

    _documented = model_validator(mode="before")(lambda cls, data: _documented_targets(data))

    @field_validator("notify_webhook")
    @classmethod
    def _no_webhook_url(cls, v: str | None) -> None:
        if v is not None:
            raise ValueError("not supported: create a webhook notification channel and name it in targets")


def _by_level_number(levels: list[LevelBody]) -> list[LevelBody]:
    return sorted(levels, key=lambda lv: lv.level_number or 0) if all(lv.level_number for lv in levels) else levels


Levels = Annotated[list[LevelBody], Field(min_length=1, max_length=MAX_LEVELS), AfterValidator(_by_level_number)]
Repeat = Annotated[int, Field(ge=0, le=MAX_REPEAT, description="times the last level is notified again, "
                                                                "each its delay_minutes after the one before")]


def _check(levels: list[LevelBody] | None, repeat: int | None) -> None:
    if levels is not None:
        check_levels([lv.model_dump() for lv in levels], repeat or 0)


class PolicyCreate(BaseModel):

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

    model_config = ConfigDict(extra="ignore")

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

    def changes(self) -> dict[str, Any]:
        """Levels whole, with their defaults (a level sent without `delay_minutes` means 15)."""
        return set_fields(self, self.NOT_NULL)


# ---- responses ---------------------------------------------------------------------------------
class TargetOut(BaseModel):
    type: TargetType
    id: str


class LevelOut(Documented):
    level: int
    level_number: int = Field(description="documented name of `level`")
    delay_minutes: int
    targets: list[TargetOut]
    notify_email: str | None = Field(None, description="documented: the level's first user target")
    oncall_schedule_id: str | None = Field(None, description="documented: the level's first on-call schedule target")

    DOCUMENTED = {"level_number": "level"}

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        first = {t["type"]: t["id"] for t in reversed(row.get("targets") or [])}
        return {**row, "notify_email": first.get("user"),
                "oncall_schedule_id": first.get("oncall_schedule")}


class PolicyOut(Stamped):
    policy_id: str
    tenant_id: str
    name: str
    description: str | None = None
    is_default: bool
    repeat: int
    levels: list[LevelOut]


class PolicyPage(Page):
    policies: list[PolicyOut]
