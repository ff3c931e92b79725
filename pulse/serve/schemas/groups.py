"""HTTP bodies of device groups."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.domain.tags import MAX_TAG_FILTER
from pulse.serve.schemas.devices import ID_PATTERN
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
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    query: GroupQuery | None = None


class GroupPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    query: GroupQuery | None = None
