"""Stopping tasks that talk MQTT. aiomqtt waits for CONNACK and PUBACK through `asyncio.wait_for`,
which on Python 3.11 drops a cancel that lands in the loop step where the reply arrives; a loop
task cancelled once would then carry on (and a shutdown awaiting it would wait forever)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


async def cancel_until_done(tasks: Sequence[asyncio.Task], recheck_s: float = 1.0) -> None:
    """Cancel `tasks`, again every `recheck_s` for any still running, until all have ended."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=recheck_s)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            log.warning("task %s had stopped: %r", t.get_name(), t.exception())
