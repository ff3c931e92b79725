"""A ServiceContext on a real migrated store with recording fakes for the runtime, the downlink and the
broker's credentials: service tests see exactly which effects a use case had."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pulse.config.settings import Settings
from pulse.domain.messages import Publish
from pulse.services import commands
from pulse.services.context import ServiceContext
from pulse.storage import tenants
from pulse.storage.db import Database


@dataclass
class RecordingRuntime:
    """Answers `device_call` from `answers` (method -> value, or a function of the call's arguments)
    and records every call."""

    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple] = field(default_factory=list)

    async def device_call(self, tenant_id: str, device_id: str, method: str, *args: Any) -> Any:
        self.calls.append(("device_call", tenant_id, device_id, method))
        answer = self.answers[method]
        return answer(*args) if callable(answer) else answer

    async def device_changed(self, tenant_id: str, device_id: str, status: str | None) -> None:
        self.calls.append(("device_changed", tenant_id, device_id, status))

    async def modules_changed(self, tenant_id: str, device_id: str) -> None:
        self.calls.append(("modules_changed", tenant_id, device_id))

    async def rules_changed(self, tenant_id: str) -> None:
        self.calls.append(("rules_changed", tenant_id))

    async def tenant_call(self, tenant_id: str, method: str, *args: Any) -> None:
        self.calls.append(("tenant_call", tenant_id, method, *args))


@dataclass
class RecordingDownlink:
    """A broker that takes every message at once (and tells `on_sent`, as the real downlink does)."""

    published: list[Publish] = field(default_factory=list)
    on_sent: Callable[[Publish], Awaitable[None]] | None = None

    async def publish(self, messages: list[Publish], wait_s: float = 0.0) -> None:
        self.published.extend(messages)
        for m in messages:
            if self.on_sent is not None and m.command_id is not None:
                await self.on_sent(m)

    async def close(self) -> None:
        pass


@dataclass
class RecordingCredentials:
    secrets: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    async def set_device_secret(self, tenant_id: str, device_id: str, secret: str) -> None:
        self.secrets[f"{tenant_id}/{device_id}"] = secret

    async def remove_device(self, tenant_id: str, device_id: str) -> None:
        self.removed.append(f"{tenant_id}/{device_id}")

    async def close(self) -> None:
        pass


@pytest.fixture
async def ctx(db_url: str, tmp_path) -> AsyncIterator[ServiceContext]:
    """Tenants acme and globex on a fresh store; no lake, no token decoder (no service here reads them)."""
    db = Database(db_url)
    await db.migrate()
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    try:
        yield ServiceContext(settings=Settings(data_dir=tmp_path / "pulse", database_url=db_url), db=db,
                             runtime=RecordingRuntime(), lake=None,
                             downlink=RecordingDownlink(on_sent=commands.delivery_recorder(db)),
                             credentials=RecordingCredentials(), decoder=None)
    finally:
        await db.dispose()
