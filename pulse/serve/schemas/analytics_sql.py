"""Request and answer of tenant SQL (`POST /api/v1/customer/analytics/sql`, docs/tenant-sql.md)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

MAX_SQL_CHARS = 20_000
MAX_ROWS = 10_000


class SqlQuery(BaseModel):
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS,
                     description="one SELECT (or WITH … SELECT) over the tables telemetry and devices")
    limit: int = Field(1000, ge=1, le=MAX_ROWS, description="rows returned at most; more sets truncated")


class SqlColumn(BaseModel):
    name: str
    type: str = Field(description="DuckDB type, e.g. VARCHAR, DOUBLE, TIMESTAMP WITH TIME ZONE")


class SqlResult(BaseModel):
    columns: list[SqlColumn]
    rows: list[list[Any]] = Field(description="one list per row, values in column order")
    row_count: int
    truncated: bool = Field(description="the query had more rows than `limit`")
    elapsed_ms: float
