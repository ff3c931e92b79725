"""HTTP bodies and responses of alert rules and alerts.

Rule bodies also take the documented system's names (api-contracts §15): `metric_name`, `match_mode`,
`duration_minutes`, `conditions` as `{combinator, conditions}`, `anomaly_conditions`, `gap_conditions`
and `device_group_id`; rule responses carry those names next to Pulse's.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.domain.rules import AGGREGATIONS, RULE_TYPES
from pulse.domain.scopes import SCOPE_KEYS
from pulse.domain.severity import DEFAULT_SEVERITY, parse_severity
from pulse.serve.params import DbId
from pulse.serve.schemas.common import Documented, Page, Stamped
from pulse.serve.schemas.devices import ID_PATTERN

Operator = Literal["GT", "GTE", "LT", "LTE", "EQ", "NE"]
MAX_CONDITIONS = 10


def _ids(values: list[str] | None) -> list[str] | None:
    for d in values or []:
        if not re.match(ID_PATTERN, d):
            raise ValueError(f"invalid id {d[:40]!r}")
    return sorted(set(values)) if values else None


class ConditionBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    metric: str = Field(min_length=1, max_length=128, validation_alias=AliasChoices("metric", "metric_name"),
                        description="also accepted as `metric_name`")
    operator: Operator
    threshold: float


def _minutes_to_seconds(d: dict[str, Any], seconds_key: str, minutes: Any) -> None:
    if minutes is not None and seconds_key not in d:
        d[seconds_key] = minutes * 60 if isinstance(minutes, int) and not isinstance(minutes, bool) else minutes


def pulse_rule_names(data: Any) -> Any:
    """A rule body (or PATCH) in the documented system's names, renamed to Pulse's; other keys kept."""
    if not isinstance(data, dict):
        return data
    d = dict(data)
    for documented, own in (("metric_name", "metric"), ("match_mode", "match")):
        if documented in d:
            d.setdefault(own, d.pop(documented))
    _minutes_to_seconds(d, "duration_seconds", d.pop("duration_minutes", None))
    conditions = d.get("conditions")
    if isinstance(conditions, dict):  # {combinator: AND|OR, conditions: [...]}
        d["match"] = "any" if str(conditions.get("combinator", "AND")).upper() == "OR" else "all"
        d["conditions"] = conditions.get("conditions")
    elif conditions == []:  # the documented response's list form of a single-condition rule
        d.pop("conditions")
    anomaly = d.pop("anomaly_conditions", None)
    if isinstance(anomaly, dict):
        d.setdefault("metric", anomaly.get("metric_name"))
        d.update({k: anomaly[k] for k in ("z_threshold", "min_samples") if anomaly.get(k) is not None})
    gap = d.pop("gap_conditions", None)
    if isinstance(gap, dict):
        d.setdefault("metric", gap.get("metric_name"))
        _minutes_to_seconds(d, "gap_seconds", gap.get("gap_minutes", 10))
    group = d.pop("device_group_id", None)
    if group is not None and not d.get("group_ids"):
        d["group_ids"] = [group]
    return d


class RuleCreate(BaseModel):
    """One model for every rule type; fields that a type does not use are refused (422).
    Unknown fields are ignored. The documented names are accepted too: `metric_name` (metric),
    `match_mode` (match), `duration_minutes`, `conditions` as `{combinator: AND|OR, conditions}`,
    `anomaly_conditions` `{metric_name, z_threshold, min_samples}`, `gap_conditions`
    `{metric_name, gap_minutes}` and `device_group_id` (one group).

    threshold: `metric`+`operator`+`threshold`, or `conditions` (1-10) with `match` all|any.
    window: aggregation over `window_seconds` compared with `operator`/`threshold`.
    rate_of_change: change per minute between readings compared with `operator`/`threshold`.
    anomaly: |z-score| of a reading against the previous `window_size` readings > `z_threshold`.
    telemetry_gap: no message for `metric` (or from the device: metric "*") for `gap_seconds`.
    """

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    rule_type: Literal["threshold", "window", "rate_of_change", "anomaly", "telemetry_gap"] = "threshold"
    metric: str | None = Field(None, min_length=1, max_length=128,
                               validation_alias=AliasChoices("metric", "metric_name"),
                               description="also accepted as `metric_name`")
    operator: Operator | None = None
    threshold: float | None = None
    conditions: list[ConditionBody] | None = Field(None, min_length=1, max_length=MAX_CONDITIONS)
    match: Literal["all", "any"] = Field("all", validation_alias=AliasChoices("match", "match_mode"),
                                         description="also accepted as `match_mode`")
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
    _documented = model_validator(mode="before")(lambda cls, data: pulse_rule_names(data))

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
        elif self.rule_type == "anomaly":  # operator and threshold are not anomaly fields: z_threshold is
            if self.metric is None:
                raise ValueError("anomaly rules need metric")
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


# ---- responses ---------------------------------------------------------------------------------
class AlertOut(BaseModel):
    alert_id: int
    tenant_id: str
    device_id: str
    rule_id: str | None = None
    alert_type: str
    fingerprint: str | None = None
    status: Literal["OPEN", "ACKNOWLEDGED", "CLOSED"]
    severity: int
    severity_label: str | None = None
    summary: str | None = None
    metric: str | None = None
    trigger_value: float | None = None
    triggered_at: datetime | None = None
    last_triggered_at: datetime | None = None
    trigger_count: int = 1
    details: dict[str, Any] | None = Field(None, description="what the rule saw; keys depend on the rule type")
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    silenced_until: datetime | None = None
    silenced: bool = False
    created_at: datetime | None = None
    escalation_policy_id: str | None = None
    escalation_level: int = 0
    next_escalation_at: datetime | None = None
    last_escalated_at: datetime | None = None


class Transition(BaseModel):
    action: str
    actor: str | None = None
    at: datetime
    details: dict[str, Any] | None = None


class AlertDetail(AlertOut):
    """An alert with its history (also the answer of acknowledge, close and silence)."""

    transitions: list[Transition] = Field(default_factory=list)


class AlertEnvelope(AlertDetail):
    alert: AlertDetail = Field(description="the documented envelope: the same alert again")


class AlertPage(Page):
    alerts: list[AlertOut]
    tenant_id: str
    status_filter: str = Field(description='the status asked for, "ALL" without one (documented key)')


class TrendBucket(BaseModel):
    bucket_start: datetime
    total: int = Field(description="alerts opened in the bucket")
    closed: int = Field(description="alerts closed in the bucket (whenever they opened)")
    by_severity: dict[str, int]
    by_status: dict[str, int]


class TrendHour(BaseModel):
    hour: datetime = Field(description="the bucket's start")
    opened: int
    closed: int


class AlertTrend(BaseModel):
    start: datetime
    end: datetime
    bucket: Literal["hour", "day"]
    buckets: list[TrendBucket]
    trend: list[TrendHour] = Field(description="the documented form: alerts opened and closed per bucket")


class ConditionOut(BaseModel):
    metric: str
    metric_name: str = Field(description="the documented name of `metric`")
    operator: str
    threshold: float


class RuleOut(Stamped, Documented):
    """A rule in Pulse's names plus the documented ones (`metric_name`, `match_mode`, `conditions`,
    `site_ids`, `group_ids`, `duration_minutes`, `aggregation`, `window_seconds`, `anomaly_conditions`,
    `gap_conditions`), derived from the same stored rule."""

    rule_id: str
    tenant_id: str
    name: str
    description: str | None = None
    rule_type: str
    metric: str | None = None
    operator: str | None = None
    threshold: float | None = None
    severity: int
    duration_seconds: int
    device_ids: list[str] | None = None
    auto_resolve: bool
    enabled: bool
    config: dict[str, Any] = Field(description="type-specific settings, the conditions and the scope")
    escalation_policy_id: str | None = None
    # the documented names
    metric_name: str | None = None
    match_mode: str = "all"
    conditions: list[ConditionOut] = Field(default_factory=list)
    site_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    duration_minutes: int | None = Field(None, description="duration_seconds in minutes when whole")
    aggregation: str | None = None
    window_seconds: int | None = None
    anomaly_conditions: dict[str, Any] | None = None
    gap_conditions: dict[str, Any] | None = None

    DOCUMENTED = {"metric_name": "metric"}

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        config, seconds = row.get("config") or {}, row.get("duration_seconds") or 0
        scope = config.get("scope") or {}
        out = {**row, "match_mode": config.get("match", "all"),
               "conditions": [{**c, "metric_name": c["metric"]} for c in config.get("conditions") or []],
               "site_ids": scope.get("site_ids") or [], "group_ids": scope.get("group_ids") or [],
               "duration_minutes": seconds // 60 if seconds % 60 == 0 else None,
               "aggregation": config.get("aggregation"), "window_seconds": config.get("window_seconds")}
        if row.get("rule_type") == "anomaly":
            out["anomaly_conditions"] = {"metric_name": row.get("metric"), "z_threshold": config.get("z_threshold"),
                                         "min_samples": config.get("min_samples")}
        if row.get("rule_type") == "telemetry_gap" and config.get("gap_seconds"):
            out["gap_conditions"] = {"metric_name": row.get("metric"), "gap_minutes": config["gap_seconds"] // 60}
        return out


class RulePage(Page):
    rules: list[RuleOut]
    tenant_id: str


class BacktestAlert(BaseModel):
    device_id: str
    alert_type: str
    opened_at: datetime
    closed_at: datetime | None = None
    trigger_value: float | None = None
    trigger_count: int


class BacktestResult(BaseModel):
    alerts: list[BacktestAlert]
    total: int
    rows_scanned: int
    devices: int
    elapsed_ms: float


class RuleTemplate(Documented):
    """A built-in rule: a rule body without scope; the fields a rule type does not use are absent."""

    key: str
    template_id: str = Field(description="the documented name of `key`")
    name: str
    rule_type: str = "threshold"
    metric: str
    metric_name: str = Field(description="the documented name of `metric`")
    operator: str | None = None
    threshold: float | None = None
    clear_threshold: float | None = None
    duration_seconds: int = 0
    severity: str | int
    aggregation: str | None = None
    window_seconds: int | None = None
    z_threshold: float | None = None
    min_samples: int | None = None
    window_size: int | None = None
    gap_seconds: int | None = None

    DOCUMENTED = {"template_id": "key", "metric_name": "metric"}


class RuleTemplates(BaseModel):
    templates: list[RuleTemplate]
    total: int


class AppliedTemplates(BaseModel):
    created: list[RuleOut]
    existing: list[RuleOut] = Field(description="rules an earlier apply of the same template and scope created")
