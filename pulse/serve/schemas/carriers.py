"""HTTP bodies of carrier integrations, device links and SIM provisioning (docs/carriers.md).

`carrier_name` is checked against the registered providers by the route (400 "Unsupported carrier
provider", as the documented system answers). Secrets (`api_key`, `api_secret`, `username`,
`password`) are write-only: responses carry `api_key_masked` and the names in `secrets_set`.
"""
from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from pulse.domain.carriers import SECRET_FIELDS
from pulse.domain.urls import http_url
from pulse.serve.params import DbId
from pulse.serve.schemas.common import Update

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
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    carrier_name: CarrierName
    display_name: DisplayName | None = Field(None, validation_alias=AliasChoices("display_name", "name"))
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

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    NOT_NULL = ("display_name", "enabled", "sync_enabled", "sync_interval_minutes", "api_base_url", "config")

    carrier_name: CarrierName | None = Field(None, description="cannot change; accepted when unchanged")
    display_name: DisplayName | None = Field(None, validation_alias=AliasChoices("display_name", "name"))
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
    model_config = ConfigDict(extra="forbid")

    carrier_integration_id: DbId
    carrier_device_id: LineId = Field(description="the id the carrier addresses the line by (the ICCID here)")


class ProvisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier_integration_id: DbId
    iccid: Annotated[str, Field(max_length=40), AfterValidator(_iccid)]
    plan_id: PlanId | None = None
