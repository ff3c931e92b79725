"""HTTP bodies of alert rules and alerts."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.domain.rules import AGGREGATIONS, RULE_TYPES
from pulse.domain.scopes import SCOPE_KEYS
from pulse.domain.severity import DEFAULT_SEVERITY, parse_severity
from pulse.serve.params import DbId
from pulse.serve.schemas.devices import ID_PATTERN

Operator = Literal["GT", "GTE", "LT", "LTE", "EQ", "NE"]
MAX_CONDITIONS = 10


def _ids(values: list[str] | None) -> list[str] | None:
    for d in values or []:
        if not re.match(ID_PATTERN, d):
            raise ValueError(f"invalid id {d[:40]!r}")
    return sorted(set(values)) if values else None


class ConditionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=128)
    operator: Operator
    threshold: float


class RuleCreate(BaseModel):
    """One model for every rule type; fields that a type does not use are refused (422).

    threshold: `metric`+`operator`+`threshold`, or `conditions` (1-10) with `match` all|any.
    window: aggregation over `window_seconds` compared with `operator`/`threshold`.
    rate_of_change: change per minute between readings compared with `operator`/`threshold`.
    anomaly: |z-score| of a reading against the previous `window_size` readings > `z_threshold`.
    telemetry_gap: no message for `metric` (or from the device: metric "*") for `gap_seconds`.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    rule_type: Literal["threshold", "window", "rate_of_change", "anomaly", "telemetry_gap"] = "threshold"
    metric: str | None = Field(None, min_length=1, max_length=128)
    operator: Operator | None = None
    threshold: float | None = None
    conditions: list[ConditionBody] | None = Field(None, min_length=1, max_length=MAX_CONDITIONS)
    match: Literal["all", "any"] = "all"
    clear_threshold: float | None = Field(None, description="hysteresis: an open alert clears only past this value")
    aggregation: Literal["avg", "min", "max", "count", "sum"] | None = None
    window_seconds: int | None = Field(None, ge=60, le=3600)
    z_threshold: float | None = Field(None, ge=1, le=10)
    min_samples: int | None = Field(None, ge=3, le=1000)
    window_size: int | None = Field(None, ge=3, le=1000)
    gap_seconds: int | None = Field(None, ge=60, le=86400)
    severity: int | str = DEFAULT_SEVERITY
    duration_seconds: int = Field(0, ge=0, le=86400)
    device_ids: list[str] | None = Field(None, max_length=10000)
    group_ids: list[str] | None = Field(None, max_length=100)
    tags: list[str] | None = Field(None, max_length=100)
    site_ids: list[str] | None = Field(None, max_length=100)
    template_ids: list[DbId] | None = Field(None, max_length=100)
    auto_resolve: bool = True
    enabled: bool = True
    escalation_policy_id: str | None = Field(None, max_length=64, description="default: the tenant's default policy")

    _sev = field_validator("severity")(lambda cls, v: parse_severity(v))
    _idlists = field_validator("device_ids", "group_ids", "site_ids")(lambda cls, v: _ids(v))

    @model_validator(mode="after")
    def _by_type(self) -> "RuleCreate":
        used = TYPE_FIELDS[self.rule_type]
        extra = [f for f in ALL_TYPE_FIELDS - used if getattr(self, f) is not None]
        if extra:
            raise ValueError(f"{', '.join(sorted(extra))} not used by {self.rule_type} rules")
        if self.rule_type == "threshold":
            single = self.metric is not None or self.operator is not None or self.threshold is not None
            if single == (self.conditions is not None):
                raise ValueError("give either metric/operator/threshold or conditions")
            if single and None in (self.metric, self.operator, self.threshold):
                raise ValueError("metric, operator and threshold are all required")
            if self.conditions and len(self.conditions) > 1 and self.clear_threshold is not None:
                raise ValueError("clear_threshold applies to single-condition rules")
        elif self.rule_type == "telemetry_gap":
            if self.metric is None or self.gap_seconds is None:
                raise ValueError('telemetry_gap rules need metric (or "*") and gap_seconds')
        else:
            if None in (self.metric, self.operator, self.threshold):
                raise ValueError(f"{self.rule_type} rules need metric, operator and threshold")
        if self.rule_type == "window" and (self.aggregation is None or self.window_seconds is None):
            raise ValueError("window rules need aggregation and window_seconds")
        return self

    def to_fields(self) -> dict[str, Any]:
        """Storage columns: the first condition in metric/operator/threshold, the rest in config."""
        conds = ([c.model_dump() for c in self.conditions] if self.conditions else
                 [{"metric": self.metric, "operator": self.operator or "GT", "threshold": self.threshold or 0.0}])
        if self.rule_type == "anomaly":
            conds = [{"metric": self.metric, "operator": "GT", "threshold": self.z_threshold or 3.0}]
        config = {k: getattr(self, k) for k in ("match", "clear_threshold", "aggregation", "window_seconds",
                                                 "z_threshold", "min_samples", "window_size", "gap_seconds")
                  if getattr(self, k) is not None}
        config["conditions"] = conds
        # device_ids has a column of its own; the rest of the scope lives in config
        config["scope"] = {k: getattr(self, k) for k in SCOPE_KEYS if k != "device_ids" and getattr(self, k)}
        return {"name": self.name, "description": self.description, "rule_type": self.rule_type,
                "metric": conds[0]["metric"], "operator": conds[0]["operator"], "threshold": conds[0]["threshold"],
                "severity": self.severity, "duration_seconds": self.duration_seconds, "device_ids": self.device_ids,
                "auto_resolve": self.auto_resolve, "enabled": self.enabled, "config": config,
                "escalation_policy_id": self.escalation_policy_id}


TYPE_FIELDS: dict[str, set[str]] = {
    "threshold": {"metric", "operator", "threshold", "conditions", "clear_threshold"},
    "window": {"metric", "operator", "threshold", "clear_threshold", "aggregation", "window_seconds"},
    "rate_of_change": {"metric", "operator", "threshold", "clear_threshold"},
    "anomaly": {"metric", "z_threshold", "min_samples", "window_size"},
    "telemetry_gap": {"metric", "gap_seconds"},
}
ALL_TYPE_FIELDS = set().union(*TYPE_FIELDS.values())
assert set(TYPE_FIELDS) == set(RULE_TYPES) and set(AGGREGATIONS) == {"avg", "min", "max", "count", "sum"}


class ApplyTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_keys: list[str] = Field(min_length=1, max_length=50)
    device_ids: list[str] | None = Field(None, max_length=10000)
    group_ids: list[str] | None = Field(None, max_length=100)
    tags: list[str] | None = Field(None, max_length=100)
    site_ids: list[str] | None = Field(None, max_length=100)
    template_ids: list[DbId] | None = Field(None, max_length=100)

    _idlists = field_validator("device_ids", "group_ids", "site_ids")(lambda cls, v: _ids(v))

    def scope(self) -> dict[str, Any]:
        return {k: sorted(getattr(self, k)) for k in SCOPE_KEYS if getattr(self, k)}


MAX_BACKTEST_DAYS = 92


class BacktestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: RuleCreate
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _range(self) -> "BacktestBody":
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                setattr(self, name, value.replace(tzinfo=timezone.utc))
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=MAX_BACKTEST_DAYS):
            raise ValueError(f"at most {MAX_BACKTEST_DAYS} days per backtest")
        return self


class SilenceBody(BaseModel):
    minutes: int = Field(ge=1, le=7 * 24 * 60)
