"""HTTP bodies and answers of OTA campaigns (reference §2 "OTA Firmware"; docs/ota.md).

Pulse extras: a campaign targets a static or dynamic group (`target_group_id`) or explicit `device_ids`,
exactly one of them; answers also carry `firmware_version_id`, `waves`, `last_wave_at`, `abort_reason`
and `updated_at`, and every list answers `total` (every match), `limit` and `offset`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from pulse.domain import ota
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.common import Page

MAX_DEVICE_IDS = 10_000


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    firmware_version_id: DbId
    target_group_id: str | None = Field(None, min_length=1, max_length=36,
                                        description="a static or dynamic group; its members now are the targets")
    device_ids: list[StrId] | None = Field(None, min_length=1, max_length=MAX_DEVICE_IDS,
                                           description="Pulse: explicit targets instead of a group")
    rollout_strategy: Literal["linear", "canary"] = "linear"
    rollout_rate: int = Field(10, ge=1, le=1000, description="devices per wave")
    abort_threshold: float = Field(0.1, ge=0, le=1, description="abort when failed / (succeeded + failed) exceeds it")

    @model_validator(mode="after")
    def _one_target(self) -> "CampaignCreate":
        if (self.target_group_id is None) == (self.device_ids is None):
            raise ValueError("give exactly one of target_group_id and device_ids")
        return self


class CampaignOut(BaseModel):
    id: int
    tenant_id: str
    name: str
    firmware_version_id: int
    target_group_id: str | None
    rollout_strategy: str
    rollout_rate: int
    abort_threshold: float
    status: str
    total_devices: int
    succeeded: int
    failed: int
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    firmware_version: str
    firmware_url: str | None
    firmware_checksum: str | None
    firmware_device_type: str | None
    waves: int = Field(description="waves dispatched so far")
    last_wave_at: datetime | None
    abort_reason: str | None = Field(description="why an ABORTED campaign stopped: a user, or the failure rate")


class CampaignDetail(CampaignOut):
    status_breakdown: dict[str, int] = Field(description="devices per status (statuses with none left out)")


class CampaignPage(Page):
    campaigns: list[CampaignOut]


class CampaignStatus(BaseModel):
    id: int
    status: str


class CampaignDevice(BaseModel):
    device_id: str
    status: str
    progress_pct: int | None
    error_message: str | None
    wave: int | None = Field(description="the wave that sent it the instruction")
    started_at: datetime | None = Field(description="when its wave sent the instruction")
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CampaignDevicePage(Page):
    campaign_id: int
    devices: list[CampaignDevice]



def any_case(values: tuple[str, ...]) -> str:
    """A query pattern taking one of `values` in any case (the documented API upper-cases the filter)."""
    return f"^(?i:{'|'.join(values)})$"


CAMPAIGN_STATUS = any_case(ota.CAMPAIGN_STATUSES)
DEVICE_STATUS = any_case(ota.DEVICE_STATUSES)
