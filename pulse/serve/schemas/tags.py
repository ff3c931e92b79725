"""HTTP bodies of device tags."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.domain.tags import MAX_TAGS_PER_DEVICE, TAG_PATTERN

Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=TAG_PATTERN)]


class TagsPut(BaseModel):
    """The device's complete tag set (duplicates are folded)."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(max_length=MAX_TAGS_PER_DEVICE)

    @field_validator("tags")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return sorted(set(v))
