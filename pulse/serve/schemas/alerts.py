"""HTTP bodies of alert rules and alerts."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.actors.rules import OPERATORS, SEVERITY_NAMES
from pulse.serve.schemas.devices import ID_PATTERN

Operator = Literal["GT", "GTE", "LT", "LTE", "EQ", "NE"]
assert set(OPERATORS) == {"GT", "GTE", "LT", "LTE", "EQ", "NE"}


def severity_value(v: int | str) -> int:
    """1 (info) .. 5 (critical), or the level's name."""
    if isinstance(v, str):
        if v.lower() not in SEVERITY_NAMES:
            raise ValueError(f"severity must be 1-5 or one of {', '.join(SEVERITY_NAMES)}")
        return SEVERITY_NAMES[v.lower()]
    if not 1 <= v <= 5:
        raise ValueError("severity must be between 1 (info) and 5 (critical)")
    return v


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=2000)
    duration_seconds: int = Field(0, ge=0, le=86400)
    device_ids: list[str] | None = Field(None, max_length=10000)
    auto_resolve: bool = True
    enabled: bool = True

    @field_validator("device_ids")
    @classmethod
    def _ids(cls, v: list[str] | None) -> list[str] | None:
        import re

        for d in v or []:
            if not re.match(ID_PATTERN, d):
                raise ValueError(f"invalid device id {d[:40]!r}")
        return sorted(set(v)) if v else None


class RuleCreate(RuleBase):
    name: str = Field(min_length=1, max_length=200)
    rule_type: Literal["threshold"] = "threshold"
    metric: str = Field(min_length=1, max_length=128)
    operator: Operator
    threshold: float
    severity: int | str = 3

    @field_validator("severity")
    @classmethod
    def _sev(cls, v: int | str) -> int:
        return severity_value(v)


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    metric: str | None = Field(None, min_length=1, max_length=128)
    operator: Operator | None = None
    threshold: float | None = None
    severity: int | str | None = None
    duration_seconds: int | None = Field(None, ge=0, le=86400)
    device_ids: list[str] | None = None
    auto_resolve: bool | None = None
    enabled: bool | None = None

    @field_validator("severity")
    @classmethod
    def _sev(cls, v: int | str | None) -> int | None:
        return None if v is None else severity_value(v)

    _ids = field_validator("device_ids")(RuleBase._ids.__func__)  # type: ignore[attr-defined]


class SilenceBody(BaseModel):
    minutes: int = Field(ge=1, le=7 * 24 * 60)
