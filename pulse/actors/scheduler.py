"""Scheduler: periodic platform tasks (command expiry now; escalation, syncs, retention later).

A plain async class; `pulse up` runs it as the `scheduler` Ray actor. Each task is one
idempotent `tick_*` method, so tests call them directly and a missed tick is caught up by the next.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from pulse.config.settings import Settings
from pulse.storage import commands
from pulse.storage.db import Database

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db: Database | None = None
        self.runs: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []

    def _every(self) -> dict[str, tuple[float, Callable[[], Awaitable[int]]]]:
        return {"expire_commands": (self.settings.command_expiry_interval_s, self.tick_expire_commands)}

    async def start(self) -> bool:
        if self._tasks:
            return True
        self.db = Database(self.settings.db_url)
        self._tasks = [asyncio.create_task(self._loop(name, period, fn))
                       for name, (period, fn) in self._every().items()]
        return True

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.db:
            await self.db.dispose()

    async def stats(self) -> dict[str, int]:
        return dict(self.runs)

    async def tick_expire_commands(self) -> int:
        return await commands.expire_due(self.db)

    async def _loop(self, name: str, period: float, fn: Callable[[], Awaitable[int]]) -> None:
        while True:
            try:
                await fn()
                self.runs[name] = self.runs.get(name, 0) + 1
            except Exception:  # a failing task must not stop the others; retried next period
                log.exception("scheduled task %s failed", name)
            await asyncio.sleep(period)
