"""HTTP bodies of carrier integrations, device links and SIM provisioning (docs/carriers.md).

`carrier_name` is checked against the registered providers by the route (400 "Unsupported carrier
provider", as the documented system answers). Secrets (`api_key`, `api_secret`, `username`,
`password`) are write-only: responses carry `api_key_masked` and the names in `secrets_set`.
Unknown fields are ignored, as in the documented system; line responses add its keys (`linked`,
`success`, `carrier_integration_id`) to Pulse's.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from pulse.domain.carriers import SECRET_FIELDS
from pulse.domain.urls import http_url
from pulse.serve.params import DbId
from pulse.serve.schemas.common import Documented, Page, Stamped, Update

MAX_CONFIG_BYTES = 8_000
ICCID_DIGITS = (15, 22)


def _config(v: dict[str, Any]) -> dict[str, Any]:
    """Non-secret carrier extras only: credentials have their own write-only fields."""
    secret = sorted(k for k in v if k.lower() in SECRET_FIELDS or "secret" in k.lower() or "token" in k.lower())
    if secret:
        raise ValueError(f"config holds no credentials ({', '.join(secret)}): use the api_key, api_secret, "
                         "username and password fields")
    if len(json.dumps(v, default=str)) > MAX_CONFIG_BYTES:
        raise ValueError(f"config is larger than {MAX_CONFIG_BYTES} bytes")
    return v


def _iccid(v: str) -> str:
    digits = v.replace(" ", "")
    low, high = ICCID_DIGITS
    if not digits.isdigit() or not low <= len(digits) <= high:
        raise ValueError(f"an ICCID is {low} to {high} digits")
    return digits


def _text_id(v: Any) -> Any:
    """Plan ids are numbers on some carriers and codes on others: kept as text."""
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


BaseUrl = Annotated[str, Field(max_length=2000), AfterValidator(http_url)]
Config = Annotated[dict[str, Any], AfterValidator(_config)]
Interval = Annotated[int, Field(ge=5, le=1440, description="minutes between scheduled syncs")]
Secret = Annotated[str, Field(max_length=1000)]
DisplayName = Annotated[str, Field(min_length=1, max_length=200)]
CarrierName = Annotated[str, Field(min_length=1, max_length=32, examples=["thingspace", "1nce"])]
TenantId = Annotated[str, Field(min_length=1, max_length=64)]
LineId = Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
                   Field(min_length=1, max_length=64)]
PlanId = Annotated[str, BeforeValidator(_text_id), Field(min_length=1, max_length=200)]


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    carrier_name: CarrierName
    display_name: DisplayName | None = Field(None, validation_alias=AliasChoices("display_name", "name"),
                                             description="also accepted as `name`")
    enabled: bool = True
    sync_enabled: bool = True
    sync_interval_minutes: Interval = 60
    api_base_url: BaseUrl | None = Field(None, description="the carrier's API; its public URL when left out")
    account_id: str | None = Field(None, max_length=200, description="ThingSpace account name, e.g. 0000123456-00001")
    api_key: Secret | None = None
    api_secret: Secret | None = None
    username: Secret | None = None
    password: Secret | None = None
    config: Config = Field(default_factory=dict)


class OperatorIntegrationCreate(IntegrationCreate):
    tenant_id: TenantId


class IntegrationUpdate(Update):
    """A partial update. A secret left out, or sent back masked ("***…"), stays; "" clears it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    NOT_NULL = ("display_name", "enabled", "sync_enabled", "sync_interval_minutes", "api_base_url", "config")

    carrier_name: CarrierName | None = Field(None, description="cannot change; accepted when unchanged")
    display_name: DisplayName | None = Field(None, validation_alias=AliasChoices("display_name", "name"),
                                             description="also accepted as `name`")
    enabled: bool | None = None
    sync_enabled: bool | None = None
    sync_interval_minutes: Interval | None = None
    api_base_url: BaseUrl | None = None
    account_id: str | None = Field(None, max_length=200)
    api_key: Secret | None = None
    api_secret: Secret | None = None
    username: Secret | None = None
    password: Secret | None = None
    config: Config | None = None


class LinkBody(BaseModel):
    carrier_integration_id: DbId
    carrier_device_id: LineId = Field(description="the id the carrier addresses the line by (the ICCID here)")


class ProvisionBody(BaseModel):
    carrier_integration_id: DbId
    iccid: Annotated[str, Field(max_length=40), AfterValidator(_iccid)]
    plan_id: PlanId | None = None


# ---- responses ---------------------------------------------------------------------------------
class IntegrationOut(Stamped):
    id: int
    carrier_name: str
    display_name: str | None = None
    enabled: bool
    sync_enabled: bool
    sync_interval_minutes: int
    api_base_url: str | None = None
    account_id: str | None = None
    config: dict[str, Any] = Field(description="non-secret carrier extras")
    callback_url: str | None = None
    callback_error: str | None = None
    last_sync_at: datetime | None = None
    last_sync_status: str | None = None
    last_sync_error: str | None = None
    api_key_masked: str | None = None
    secrets_set: list[str]
    linked_devices: int


class OperatorIntegrationOut(IntegrationOut):
    tenant_id: str


class IntegrationPage(Page):
    integrations: list[IntegrationOut]


class OperatorIntegrationPage(Page):
    integrations: list[OperatorIntegrationOut]


class PlanOut(BaseModel):
    id: str
    name: str | None = None
    data_limit_bytes: int | None = None


class Plans(BaseModel):
    carrier_name: str
    plans: list[PlanOut]


class CarrierRequestOut(BaseModel):
    id: int
    integration_id: int
    device_id: str
    carrier_device_id: str
    action: str
    request_id: str | None = None
    state: Literal["pending", "sent", "succeeded", "failed"]
    detail: str | None = None
    requested_by: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


class LineState(BaseModel):
    """What the carrier last said about a line (fields it does not report are null)."""

    iccid: str | None = None
    sim_status: str | None = None
    network_status: str | None = None
    network_type: str | None = None
    ip_address: str | None = None
    signal_strength: float | None = None
    msisdn: str | None = None
    plan: str | None = None
    last_connection: datetime | None = None


class UsageNumbers(BaseModel):
    data_used_bytes: int | None = None
    data_limit_bytes: int | None = None
    data_used_pct: float | None = None
    usage_alert_threshold_pct: float
    over_usage_threshold: bool
    usage_alert_active: bool


class Linked(BaseModel):
    linked: bool = Field(True, description="documented key: the device has a line (else 404)")


class Line(Linked):
    """The device and the carrier line linked to it."""

    device_id: str
    carrier_name: str
    carrier_device_id: str


class BillingCycle(BaseModel):
    sms_count: int | None = None
    billing_cycle_start: date | datetime | None = None
    billing_cycle_end: date | datetime | None = None


class LineStatus(Line, UsageNumbers, LineState):
    integration_id: int
    last_synced_at: datetime | None = None
    last_sync_error: str | None = None
    linked_at: datetime | None = None
    pending_requests: list[CarrierRequestOut]
    recent_requests: list[CarrierRequestOut]


class UsageSnapshot(BaseModel):
    taken_at: datetime
    data_used_bytes: int | None = None
    data_limit_bytes: int | None = None
    sms_count: int | None = None


class LineUsage(Line, UsageNumbers, BillingCycle):
    last_synced_at: datetime | None = None
    history: list[UsageSnapshot]


class LineDiagnostics(Line):
    diagnostics: dict[str, Any] = Field(description="the carrier's own diagnostics document, as it sent it")
    fetched_at: datetime


class LineAction(Documented):
    device_id: str
    action: str
    state: Literal["pending", "sent", "succeeded", "failed"]
    request_id: str | None = None
    detail: str | None = None
    carrier_name: str
    carrier_device_id: str
    sim_status: str | None = None
    success: bool = Field(description="documented key: the carrier accepted the action (done or pending)")

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "success": row.get("state") != "failed"}


class LineLink(Linked, LineState, BillingCycle, Documented):
    device_id: str
    integration_id: int
    carrier_integration_id: int = Field(description="documented name of `integration_id`")
    carrier_device_id: str
    data_used_bytes: int | None = None
    data_limit_bytes: int | None = None
    usage_alert_active: bool = False
    last_synced_at: datetime | None = None
    last_sync_error: str | None = None
    linked_at: datetime | None = None
    updated_at: datetime | None = None

    DOCUMENTED = {"carrier_integration_id": "integration_id"}


class Provisioned(BaseModel):
    provisioned: bool
    device_id: str
    carrier_device_id: str
    carrier_integration_id: int
    iccid: str
    carrier_name: str
    claim_result: dict[str, Any] = Field(description="the line as claimed: sim_status, network_status, ip_address, "
                                                     "plan, msisdn and the carrier's request_id")


class CallbackReceipt(BaseModel):
    received: bool
    outcome: str


class IntegrationDeleted(BaseModel):
    deleted: bool = True
    id: int
