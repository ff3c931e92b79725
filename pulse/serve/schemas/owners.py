"""HTTP bodies of device owners: `PUT …/devices/{device_id}/owners` replaces the whole set."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.storage.owners import MAX_OWNERS

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
_EMAIL = re.compile(rf"^[^@\s]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")  # checked after lower-casing


def email(value: str) -> str:
    """Trimmed, lower-cased (owners are kept per tenant by e-mail, as Telemetron keys customers)."""
    value = value.strip().lower()
    if len(value) > 320 or not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value


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
