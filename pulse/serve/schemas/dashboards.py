"""HTTP bodies and answers of dashboards (reference §3 "Dashboards"; docs/dashboards.md).

Pulse extras: a widget's `config` is checked against its type (422 naming the key), a position must
lie on the 12-column grid, and a layout naming a widget the dashboard does not have is 400.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.domain.dashboards import MAX_WIDGETS, GridPosition, LayoutItem

DEFAULT_POSITION = {"x": 0, "y": 0, "w": 2, "h": 2}


def _trimmed(v: Any) -> Any:
    return v.strip() if isinstance(v, str) else v


class DashboardCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=100, description="trimmed")
    description: str = Field("", max_length=500, description="trimmed")
    is_default: bool = Field(False, description="true: the caller's other dashboards stop being default")

    _trim = field_validator("name", "description", mode="before")(_trimmed)


class DashboardUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    is_default: bool | None = None

    _trim = field_validator("name", "description", mode="before")(_trimmed)

    def values(self) -> dict[str, Any]:
        """The fields given (null counts as not given: every column here is required)."""
        return self.model_dump(exclude_none=True)


class ShareUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shared: bool = Field(description="true: every user of the tenant sees it; false: the caller's own")


class LayoutUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    layout: list[LayoutItem] = Field(max_length=MAX_WIDGETS)


class WidgetCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    widget_type: str = Field(min_length=1, max_length=50, description="one of the widget types of docs/dashboards.md")
    title: str = Field("", max_length=100)
    config: dict[str, Any] = Field(default_factory=dict, description="checked against the widget type")
    position: GridPosition = Field(default_factory=lambda: GridPosition(**DEFAULT_POSITION))


class WidgetUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = Field(None, max_length=100)
    config: dict[str, Any] | None = None
    position: GridPosition | None = None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Position(BaseModel):
    x: int
    y: int
    w: int
    h: int


class WidgetOut(BaseModel):
    id: int
    widget_type: str
    title: str
    config: dict[str, Any]
    position: Position
    created_at: datetime
    updated_at: datetime


class DashboardBase(BaseModel):
    id: int
    name: str
    description: str
    is_default: bool
    is_shared: bool
    is_owner: bool
    created_at: datetime
    updated_at: datetime


class DashboardSummary(DashboardBase):
    widget_count: int


class DashboardList(BaseModel):
    dashboards: list[DashboardSummary]
    total: int
    limit: int
    offset: int


class DashboardCreated(DashboardBase):
    widgets: list[WidgetOut]


class DashboardDetail(DashboardCreated):
    layout: list[dict[str, Any]] = Field(description="the last layout PUT as sent; positions live in the widgets")


class DashboardUpdated(BaseModel):
    id: int
    name: str
    description: str
    is_default: bool
    updated_at: datetime


class ShareResult(BaseModel):
    id: int
    is_shared: bool


class LayoutSaved(BaseModel):
    ok: bool


class Bootstrapped(BaseModel):
    id: int
    created: bool = Field(description="false: the caller already had a dashboard (own or shared)")
