"""The frame the outbound workers (the notifier, the Telemetron sync) share.

Each holds the settings, a database (opened here when none is handed in, and then disposed of on
stop), the box that decrypts stored credentials, a clock tests can move, and one HTTP client opened
on first use and closed on stop.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from pulse.config.settings import Settings
from pulse.storage.db import Database, utcnow
from pulse.storage.secrets import box_for


class OutboundWorker:
    def __init__(self, settings: Settings, db: Database | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_url)
        self._owns_db = db is None
        self.box = box_for(settings)
        self.clock = clock
        self._http: httpx.AsyncClient | None = None

    async def _close_owned(self) -> None:
        """Close the HTTP client, and the database when this worker opened it."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._owns_db:
            await self.db.dispose()
