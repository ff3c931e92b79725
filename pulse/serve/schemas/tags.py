"""HTTP bodies and answers of device tags (unknown body fields are ignored, as in the documented system)."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.domain.tags import MAX_TAGS_PER_DEVICE, TAG_PATTERN
from pulse.serve.schemas.common import Page

Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=TAG_PATTERN)]


class TagsPut(BaseModel):
    """The device's complete tag set (duplicates are folded)."""

    model_config = ConfigDict(extra="ignore")

    tags: list[Tag] = Field(max_length=MAX_TAGS_PER_DEVICE)

    @field_validator("tags")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return sorted(set(v))


class DeviceTags(BaseModel):
    tenant_id: str
    device_id: str
    tags: list[str]


class TagChanged(DeviceTags):
    tag: str = Field(description="the tag added or removed (the documented answer); `tags` is the device's set after it")


class TagCount(BaseModel):
    tag: str
    device_count: int


class TagPage(Page):
    tenant_id: str
    tags: list[TagCount]
