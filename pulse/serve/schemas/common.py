"""Shapes shared by every area: pagination, partial updates, rows and their timestamps."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from pulse.errors import Invalid
from pulse.serve.params import Limit, Offset


@dataclass
class PageParams:
    limit: int
    offset: int


async def page_params(limit: Limit = 50, offset: Offset = 0) -> PageParams:
    # async: FastAPI would run a plain `def` dependency in a worker thread, a hop per request
    return PageParams(limit, offset)


def one_of(values: tuple[str, ...]) -> str:
    """A regex accepting exactly one of `values` (a query parameter's allowed values)."""
    return f"^({'|'.join(values)})$"


def page(key: str, items: list, total: int, p: PageParams) -> dict:
    return {key: items, "total": total, "limit": p.limit, "offset": p.offset}


class Update(BaseModel):
    """A partial update (PUT/PATCH): fields left out stay as they are; NOT_NULL fields cannot be null."""

    model_config = ConfigDict(extra="forbid")
    NOT_NULL: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _not_null(self):
        for name in self.NOT_NULL:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        fields = self.model_dump(exclude_unset=True)
        if not fields:
            raise Invalid("nothing to update")
        return fields


def set_fields(body: BaseModel, not_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """A PATCH body's fields that were sent, nested bodies whole (unlike `Update.changes`, which drops
    a nested body's unset fields); Invalid when none was sent or a `not_null` one is null."""
    fields = {k: v for k, v in body.model_dump().items() if k in body.model_fields_set}
    if not fields:
        raise Invalid("nothing to update")
    for key in not_null:
        if key in fields and fields[key] is None:
            raise Invalid(f"{key} cannot be null")
    return fields


def weekdays(v: list[int]) -> list[int]:
    """Days of the week, 0 (Monday) to 6 (Sunday), de-duplicated and sorted."""
    if any(not 0 <= d <= 6 for d in v):
        raise ValueError("days are 0 (Monday) to 6 (Sunday)")
    return sorted(set(v))


class Row(BaseModel):
    """A stored row as an answer: the declared keys are documented, the row's other columns pass through."""

    model_config = ConfigDict(extra="allow")


class DevicePart(Row):
    """A stored row that belongs to one device: a module, a sensor, a transport."""

    id: int
    device_id: str


class Page(BaseModel):
    """The list envelope of docs/architecture.md (REST conventions); subclasses name the items key."""

    total: int
    limit: int
    offset: int


class Stamped(BaseModel):
    """When a stored thing was created and last changed (null where the store does not say)."""

    created_at: datetime | None = None
    updated_at: datetime | None = None


class Documented(BaseModel):
    """An answer that also carries the documented system's names (api-contracts) next to Pulse's:
    `DOCUMENTED` maps a documented name to the Pulse field it repeats; `documented` derives the rest."""

    DOCUMENTED: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _documented_names(cls, row: Any) -> Any:
        if not isinstance(row, dict):
            return row
        return cls.documented({**row, **{name: row.get(own) for name, own in cls.DOCUMENTED.items()}})

    @classmethod
    def documented(cls, row: dict[str, Any]) -> dict[str, Any]:
        """The names that are not plain copies of one field (none unless a model says)."""
        return row
