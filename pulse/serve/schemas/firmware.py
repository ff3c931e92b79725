"""HTTP bodies and answers of the firmware registry (reference §2 "OTA Firmware"; docs/ota.md).

Pulse extras: `file_url` may be left out (an uploaded image sets it), `checksum_sha256` must be 64 hex
digits (stored lower-case) so an upload can be checked against it, and answers say whether Pulse
`hosted` the image.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from pulse.domain.ids import BIGINT_MAX
from pulse.domain.urls import MAX_URL_LENGTH
from pulse.serve.schemas.common import Page

Sha256 = Annotated[str, Field(pattern="^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]


class FirmwareCreate(BaseModel):
    version: str = Field(min_length=1, max_length=50, examples=["1.4.2"])
    description: str | None = Field(None, max_length=2000)
    file_url: str | None = Field(None, min_length=1, max_length=MAX_URL_LENGTH,
                                 description="where devices fetch the image; left out, an upload sets it")
    file_size_bytes: int | None = Field(None, ge=1, le=BIGINT_MAX)
    checksum_sha256: Sha256 | None = Field(None, description="hex SHA-256 of the image; an upload must match it")
    device_type: str | None = Field(None, max_length=50, description="null or empty: for any device type")


class FirmwareOut(BaseModel):
    id: int
    version: str
    description: str | None
    file_url: str | None
    file_size_bytes: int | None
    checksum_sha256: str | None
    device_type: str | None
    created_at: datetime
    created_by: str | None
    hosted: bool = Field(description="Pulse holds the image (uploaded); `file_url` is then its signed-link route")


class FirmwarePage(Page):
    firmware_versions: list[FirmwareOut]

