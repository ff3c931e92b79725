"""HTTP bodies and answers of IoT jobs (reference §1 "IoT Jobs"; docs/jobs.md), and of the device
side's view of an execution.

Pulse extras: `job_id` must be usable as one MQTT topic level (devices update on
`…/jobs/{job_id}/update`), `expires_in_seconds` may replace `expires_in_hours` (short-lived jobs),
and `document_params` is limited to 8 KiB (it travels in one notify message).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.domain import jobs as rules
from pulse.serve.params import ID_PATTERN

MAX_EXPIRY_HOURS = 720
DEFAULT_EXPIRY_HOURS = 24


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str | None = Field(None, pattern=ID_PATTERN, description="default: a new UUID; one MQTT topic level "
                               "(letters, digits, `_.:-`, at most 128)")
    document_type: str = Field(min_length=1, max_length=100, examples=["reboot"])
    document_params: dict[str, Any] = Field(default_factory=dict, description="the job document (≤ 8 KiB as JSON)")
    target_device_id: str | None = Field(None, max_length=128)
    target_group_id: str | None = Field(None, max_length=128, description="a static or dynamic device group")
    target_all: bool = False
    expires_in_hours: int | None = Field(DEFAULT_EXPIRY_HOURS, ge=1, le=MAX_EXPIRY_HOURS,
                                         description="explicit null: the job never expires")
    expires_in_seconds: int | None = Field(None, ge=1, le=MAX_EXPIRY_HOURS * 3600,
                                           description="Pulse's alternative to expires_in_hours")

    @field_validator("document_params")
    @classmethod
    def _small_document(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v)) > rules.MAX_DOCUMENT_BYTES:
            raise ValueError(f"larger than {rules.MAX_DOCUMENT_BYTES} bytes as JSON")
        return v

    @model_validator(mode="after")
    def _one_expiry(self) -> "JobCreate":
        if self.expires_in_seconds is not None and "expires_in_hours" in self.model_fields_set:
            raise ValueError("expires_in_hours, expires_in_seconds: send one of them, not both")
        return self

    @property
    def expires_in_s(self) -> int | None:
        if self.expires_in_seconds is not None:
            return self.expires_in_seconds
        return None if self.expires_in_hours is None else self.expires_in_hours * 3600

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude={"expires_in_hours", "expires_in_seconds"})


class JobCancel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str | None = Field(None, max_length=500, description="status_details.reason of the rejected executions")


class JobCreated(BaseModel):
    job_id: str
    status: str
    execution_count: int
    expires_at: datetime | None


class JobCanceled(BaseModel):
    job_id: str
    status: Literal["CANCELED"]


class _Job(BaseModel):
    job_id: str
    document_type: str
    document_params: dict[str, Any]
    status: str = Field(description="IN_PROGRESS, COMPLETED or CANCELED")
    target_device_id: str | None
    target_group_id: str | None
    target_all: bool
    expires_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class JobSummary(_Job):
    total_executions: int
    succeeded_count: int
    failed_count: int = Field(description="FAILED, TIMED_OUT and REJECTED executions")


class JobExecutionOut(BaseModel):
    device_id: str
    status: str = Field(description="QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT or REJECTED")
    status_details: dict[str, Any] | None
    queued_at: datetime
    started_at: datetime | None
    last_updated_at: datetime
    execution_number: int


class JobDetail(_Job):
    tenant_id: str
    executions: list[JobExecutionOut]


# ---- the device side ----------------------------------------------------------------------------------------
class DeviceExecution(JobExecutionOut):
    """A device's execution with the job's document, as the device HTTP API answers it."""

    job_id: str
    document_type: str
    document_params: dict[str, Any]
    expires_at: datetime | None


class DeviceExecutions(BaseModel):
    device_id: str
    jobs: list[DeviceExecution]


class ExecutionUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"]
    expected_execution_number: int | None = Field(None, ge=0, le=2**31 - 1,
                                                  description="the execution_number the device last saw: 409 if "
                                                              "it changed since")
    status_details: dict[str, Any] | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v
