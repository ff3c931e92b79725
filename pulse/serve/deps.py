"""What a request gets: the process's service context (set on the app by whoever builds it)."""
from __future__ import annotations

from fastapi import Request

from pulse.services.context import ServiceContext


async def services(request: Request) -> ServiceContext:
    # async (like every dependency on the request path): FastAPI runs a plain `def` in a worker thread
    return request.app.state.services
