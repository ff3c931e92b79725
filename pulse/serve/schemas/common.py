"""Shapes shared by every area: pagination."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Query

MAX_LIMIT = 1000


@dataclass
class PageParams:
    limit: int
    offset: int


def page_params(limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)) -> PageParams:
    return PageParams(limit, offset)


def page(key: str, items: list, total: int, p: PageParams) -> dict:
    return {key: items, "total": total, "limit": p.limit, "offset": p.offset}
