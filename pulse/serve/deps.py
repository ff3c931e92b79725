"""What a request gets: the process's service context (set on the app by whoever builds it)."""
from __future__ import annotations

from fastapi import Request

from pulse.services.context import ServiceContext


def services(request: Request) -> ServiceContext:
    return request.app.state.services
