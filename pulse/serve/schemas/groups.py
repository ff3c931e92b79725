"""HTTP bodies and answers of device groups (unknown body fields are ignored, as in the documented system;
a dynamic group's `query` is strict, since a misspelt criterion would silently widen the group)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from pulse.domain.tags import MAX_TAG_FILTER
from pulse.serve.schemas.common import Page, Row
from pulse.serve.schemas.devices import ID_PATTERN, DeviceOut
from pulse.serve.schemas.tags import Tag

RegistryStatus = Literal["ACTIVE", "INACTIVE", "SUSPENDED", "REVOKED"]


class GroupQuery(BaseModel):
    """A dynamic group's members: devices matching every given criterion (all listed tags)."""

    model_config = ConfigDict(extra="forbid")

    status: RegistryStatus | None = None
    tags: list[Tag] | None = Field(None, max_length=MAX_TAG_FILTER)
    site_id: str | None = Field(None, pattern=ID_PATTERN)

    @field_validator("tags")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        return sorted(set(v)) if v else None

    @model_validator(mode="after")
    def _not_empty(self) -> "GroupQuery":
        if not (self.status or self.tags or self.site_id):
            raise ValueError("a dynamic group query needs at least one of status, tags, site_id")
        return self


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    query: GroupQuery | None = None


class GroupPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    query: GroupQuery | None = None


class GroupOut(Row):
    group_id: str
    name: str
    description: str | None = None
    query: dict[str, Any] | None = Field(None, description="null for a static group")
    kind: Literal["static", "dynamic"]
    device_count: int
    created_at: datetime
    updated_at: datetime

    @computed_field(description="the documented name of `kind`")
    @property
    def group_type(self) -> str:
        return self.kind

    @computed_field(description="the documented name of `device_count`")
    @property
    def member_count(self) -> int:
        return self.device_count

    @computed_field(description="the documented name of `query`")
    @property
    def query_filter(self) -> dict[str, Any] | None:
        return self.query


class GroupPage(Page):
    groups: list[GroupOut]


class GroupMembers(Page):
    group_id: str
    devices: list[DeviceOut]


class GroupDeleted(BaseModel):
    group_id: str
    deleted: bool = True


class MemberChanged(BaseModel):
    group_id: str
    device_id: str
    action: Literal["added", "removed"]
