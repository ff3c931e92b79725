"""HTTP bodies and answers of device owners: `PUT …/devices/{device_id}/owners` replaces the whole set.
Unknown fields are refused (docs/telemetron.md, "Device owners")."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.serve.schemas.common import Row

from pulse.domain.owners import MAX_OWNERS, email


class OwnerIn(BaseModel):
    """An end customer. Phone and address left out keep what is stored for this e-mail."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=320, examples=["jane@example.com"])
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=40, pattern=r"^\+?[0-9][0-9 ()./-]{2,39}$")
    address: str | None = Field(None, min_length=1, max_length=500)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return email(v)


class OwnersPut(BaseModel):
    """The device's owners from now on (an empty list removes them all; a different set is a transfer)."""

    model_config = ConfigDict(extra="forbid")

    owners: list[OwnerIn] = Field(max_length=MAX_OWNERS)

    @field_validator("owners")
    @classmethod
    def _unique(cls, v: list[OwnerIn]) -> list[OwnerIn]:
        emails = [o.email for o in v]
        if len(set(emails)) != len(emails):
            raise ValueError("each e-mail may appear once")
        return v


class OwnerOut(Row):
    customer_id: str
    email: str
    name: str
    phone: str | None = None
    address: str | None = None
    since: datetime = Field(description="when this customer became an owner of the device")


class Owners(BaseModel):
    device_id: str
    owners: list[OwnerOut]
    total: int
