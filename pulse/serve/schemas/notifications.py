"""HTTP bodies and responses of notification channels, routing rules and the job log.

The documented system's names (api-contracts §16) are accepted too: `is_enabled`; on routing rules
`channel_id` (one channel), `alert_type` (one type) and `deliver_on` (events). Its
`device_tag_key`/`device_tag_val` and `device_prefixes` have no Pulse equivalent and are refused
by name. Unknown fields are ignored (a channel's `config` is checked strictly, per type).

A channel's `config` is checked against its type's model in pulse.integrations.channels (by
pulse.services.notifications, after write-only secrets an update left out are filled in), so
here it is a plain object.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo,
                      field_validator, model_validator)

from pulse.domain.channels import CHANNEL_TYPES, EVENTS, JOB_STATUSES
from pulse.domain.severity import MAX_SEVERITY, MIN_SEVERITY, parse_severity
from pulse.domain.timezones import check_zone
from pulse.domain.windows import HHMM_PATTERN
from pulse.serve.schemas.devices import ID_PATTERN
from pulse.serve.schemas.tags import Tag
from pulse.serve.schemas.common import Documented, Page, Stamped, Update

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
ENABLED_ALIAS = AliasChoices("enabled", "is_enabled")


class ChannelCreate(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    channel_type: ChannelType = Field(validation_alias=AliasChoices("channel_type", "type"),
                                      description="also accepted as `type`")
    enabled: bool = Field(True, validation_alias=ENABLED_ALIAS, description="also accepted as `is_enabled`")
    config: dict[str, Any] = Field(description="per type, see docs/notifications.md; secrets are write-only")
    rate_limit_per_minute: int | None = Field(None, ge=1, le=6000, description="null = the platform default")


class ChannelUpdate(Update):
    """Fields left out stay. A given `config` replaces the stored one, except that secrets it leaves
    out, or sends back masked ("***…"), keep their stored value."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    NOT_NULL = ("name", "channel_type", "enabled", "config")

    name: str | None = Field(None, min_length=1, max_length=200)
    channel_type: ChannelType | None = Field(None, validation_alias=AliasChoices("channel_type", "type"),
                                             description="also accepted as `type`")
    enabled: bool | None = Field(None, validation_alias=ENABLED_ALIAS, description="also accepted as `is_enabled`")
    config: dict[str, Any] | None = None
    rate_limit_per_minute: int | None = Field(None, ge=1, le=6000)


# ---- routing rules -----------------------------------------------------------------------------
UNSUPPORTED_MATCHES = {"device_tag_key": "tags", "device_tag_val": "tags", "device_prefixes": "device_ids"}


def _documented_rule(data: Any) -> Any:
    """The documented single `channel_id` / `alert_type` as Pulse's lists; its unsupported criteria refused."""
    if not isinstance(data, dict):
        return data
    d = dict(data)
    for one, many in (("channel_id", "channel_ids"), ("alert_type", "alert_types")):
        value = d.pop(one, None)
        if value is not None and many not in d:
            d[many] = [str(value) if isinstance(value, int) else value]
    return d


def _unsupported(v: Any, info: ValidationInfo) -> None:
    if v not in (None, "", []):
        raise ValueError(f"not supported by Pulse: match with {UNSUPPORTED_MATCHES[info.field_name]} instead")


class RoutingRuleFields(BaseModel):
    """A rule's match criteria, the same in a create and an update. The documented criteria Pulse
    cannot honour: sent (non-empty), they are a 422 naming them."""

    min_severity: Severity | None = None
    alert_types: AlertTypes = None
    rule_ids: UuidList = None
    device_ids: IdList = None
    group_ids: UuidList = None
    tags: Tags = None
    site_ids: IdList = None
    device_tag_key: Any = Field(None, exclude=True, description="documented, not supported: use tags")
    device_tag_val: Any = Field(None, exclude=True, description="documented, not supported: use tags")
    device_prefixes: Any = Field(None, exclude=True, description="documented, not supported: use device_ids")

    _refused = field_validator(*UNSUPPORTED_MATCHES)(_unsupported)
    _documented = model_validator(mode="before")(lambda cls, data: _documented_rule(data))


class RoutingRuleCreate(RoutingRuleFields):
    """An unset or empty match list matches anything; all set criteria must hold. `channel_id` and
    `alert_type` (one each, documented) are accepted for `channel_ids` and `alert_types`."""

    model_config = ConfigDict(populate_by_name=True)

    name: str | None = Field(None, max_length=200)
    enabled: bool = Field(True, validation_alias=ENABLED_ALIAS, description="also accepted as `is_enabled`")
    priority: int = Field(100, ge=0, le=1_000_000, description="lower runs first")
    stop: bool = Field(False, description="a match ends evaluation: lower-priority rules are not tried")
    channel_ids: ChannelIds
    events: Events = Field(default_factory=lambda: ["OPEN"], validation_alias=AliasChoices("events", "deliver_on"),
                           description="also accepted as `deliver_on`")
    active_hours: TimeWindow | None = None
    throttle_minutes: int = Field(0, ge=0, le=7 * 24 * 60)


class RoutingRuleUpdate(RoutingRuleFields, Update):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    NOT_NULL = ("enabled", "priority", "stop", "channel_ids", "events", "throttle_minutes")

    name: str | None = Field(None, max_length=200)
    enabled: bool | None = Field(None, validation_alias=ENABLED_ALIAS, description="also accepted as `is_enabled`")
    priority: int | None = Field(None, ge=0, le=1_000_000)
    stop: bool | None = None
    channel_ids: ChannelIds | None = None
    events: Events | None = Field(None, validation_alias=AliasChoices("events", "deliver_on"),
                                  description="also accepted as `deliver_on`")
    active_hours: TimeWindow | None = None
    throttle_minutes: int | None = Field(None, ge=0, le=7 * 24 * 60)


# ---- responses ---------------------------------------------------------------------------------
class ChannelOut(Stamped, Documented):
    channel_id: str
    tenant_id: str
    name: str
    channel_type: ChannelType
    enabled: bool
    is_enabled: bool = Field(description="documented name of `enabled`")
    config: dict[str, Any] = Field(description="per type; secrets masked")
    rate_limit_per_minute: int | None = None

    DOCUMENTED = {"is_enabled": "enabled"}


class ChannelPage(Page):
    channels: list[ChannelOut]


class ChannelTestResult(Documented):
    channel_id: str
    channel_type: ChannelType
    delivery_id: str
    ok: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int
    retry_after_s: float | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="per type, e.g. PagerDuty's `resolve`")
    status: Literal["ok", "failed"] = Field(description="documented: `ok` as a word")
    message: str = Field(description="documented: what happened, in words")

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        ok = bool(row.get("ok"))
        return {**row, "status": "ok" if ok else "failed",
                "message": "test message delivered" if ok else f"test message failed: {row.get('error')}"}


class RoutingRuleOut(Stamped, Documented):
    rule_id: str
    tenant_id: str
    name: str | None = None
    enabled: bool
    is_enabled: bool = Field(description="documented name of `enabled`")
    priority: int
    stop: bool
    channel_ids: list[str]
    channel_id: str = Field(description="documented: the first of `channel_ids`")
    min_severity: int | None = None
    alert_types: list[str] | None = None
    alert_type: str | None = Field(None, description="documented: the first of `alert_types`")
    rule_ids: list[str] | None = None
    device_ids: list[str] | None = None
    group_ids: list[str] | None = None
    tags: list[str] | None = None
    site_ids: list[str] | None = None
    events: list[str]
    deliver_on: list[str] = Field(description="documented name of `events`")
    active_hours: TimeWindow | None = None
    throttle_minutes: int

    DOCUMENTED = {"is_enabled": "enabled", "deliver_on": "events"}

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "channel_id": (row.get("channel_ids") or [""])[0],
                "alert_type": (row.get("alert_types") or [None])[0]}


class RoutingRulePage(Page):
    rules: list[RoutingRuleOut]


class JobAttempt(BaseModel):
    attempt: int
    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    at: datetime | None = None


class JobOut(Stamped, Documented):
    job_id: int
    tenant_id: str
    alert_id: int
    channel_id: str
    event: str
    deliver_on_event: str = Field(description="documented name of `event`")
    occurrence: int
    fingerprint: str | None = None
    status: JobStatus
    attempts: int
    next_attempt_at: datetime | None = None
    next_run_at: datetime | None = Field(None, description="documented name of `next_attempt_at`")
    last_error: str | None = None
    last_status_code: int | None = None
    completed_at: datetime | None = None
    log: list[JobAttempt]

    DOCUMENTED = {"deliver_on_event": "event", "next_run_at": "next_attempt_at"}


class JobPage(Page):
    jobs: list[JobOut]


# ---- the delivery log under its documented names (api-contracts §4, docs/notifications.md) ------
class DeliveryJobOut(BaseModel):
    """A job as the documented delivery-log page names it: integration = channel, route = routing rule."""

    job_id: int
    alert_id: int
    integration_id: str = Field(description="the channel id")
    route_id: str | None = Field(None, description="always null: a job is not tied to the routing rule that chose it")
    status: JobStatus
    attempts: int
    last_error: str | None = None
    deliver_on_event: str
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _documented(cls, row: Any) -> Any:
        if not isinstance(row, dict):
            return row
        return {**row, "integration_id": row.get("channel_id"), "deliver_on_event": row.get("event")}


class DeliveryJobPage(Page):
    jobs: list[DeliveryJobOut]


class DeliveryAttemptOut(BaseModel):
    """One send of a job, from the job log: what the target answered, and how long it took."""

    attempt_no: int = Field(description="1-based")
    ok: bool
    http_status: int | None = Field(None, description="the target's HTTP status; null when none came back")
    latency_ms: int | None = None
    error: str | None = None
    started_at: datetime
    finished_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _documented(cls, row: Any) -> Any:
        if not isinstance(row, dict) or "at" not in row:
            return row
        return {**row, "attempt_no": row["attempt"], "http_status": row.get("status_code"),
                "latency_ms": row.get("duration_ms"), "finished_at": row["at"],
                "started_at": row["at"] - timedelta(milliseconds=row.get("duration_ms") or 0)}


class DeliveryAttempts(BaseModel):
    job_id: int
    attempts: list[DeliveryAttemptOut]


class DeliveryStatusAttempt(DeliveryAttemptOut):
    tenant_id: str
    job_id: int


class DeliveryStatus(BaseModel):
    tenant_id: str
    attempts: list[DeliveryStatusAttempt]
