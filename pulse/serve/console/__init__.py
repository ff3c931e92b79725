"""The console: a no-build single-page app served by Pulse at `/`, same origin as the API.

Its files ship inside the package (static/, package data); the chart library is vendored into
static/vendor by `make install` from the npm lock file (docs/console.md). Nothing here touches a
service: the pages call the public API like any other client.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False, response_class=FileResponse)
    async def console_index() -> FileResponse:
        # no-cache: a new release's index (and through it the module graph) is fetched at once
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/console", StaticFiles(directory=STATIC), name="console")
