"""What services need from the actor runtime and the downlink, as Protocols the services own.

`pulse.actors.runtime` implements `Runtime` twice (LocalRuntime in-process, RayRuntime over
named Ray actors); services never know which one they were given."""
from __future__ import annotations

from typing import Any, Protocol, Sequence

from pulse.domain.envelope import Limits
from pulse.domain.live import Event, Watch
from pulse.domain.messages import AlertEvent, Publish


class Runtime(Protocol):
    async def ingest(self, items: Sequence[tuple[str, bytes]], now_ms: int, limits: Limits) -> Any: ...

    async def device_call(self, tenant_id: str, device_id: str, method: str, *args: Any) -> Any: ...

    async def tenant_call(self, tenant_id: str, method: str, *args: Any) -> None: ...

    async def tenant_events(self, events: list[AlertEvent]) -> int: ...

    async def device_changed(self, tenant_id: str, device_id: str, status: str | None) -> None: ...

    async def modules_changed(self, tenant_id: str, device_id: str) -> None: ...

    async def rules_changed(self, tenant_id: str) -> None: ...

    # Acknowledged rows not yet in Parquet: one device's, or with device_id None the whole tenant's.
    async def pending_telemetry(self, tenant_id: str, device_id: str | None = None) -> Any: ...

    async def service_call(self, name: str, method: str, *args: Any) -> Any: ...

    async def notifier_call(self, method: str, *args: Any) -> Any: ...

    async def ready(self) -> bool: ...

    # Live push (docs/live.md): an API process registers what its clients watch and long-polls the
    # node's hub for the matching events -> (events, dropped; -1 when the hub does not know it).
    async def live_watch(self, listener_id: str, watch: Watch) -> None: ...

    async def live_poll(self, listener_id: str, timeout_s: float) -> tuple[list[Event], int]: ...


class Downlink(Protocol):
    """MQTT messages to devices, handed to the broker in the background."""

    async def publish(self, messages: list[Publish], wait_s: float = 0.0) -> None: ...

    async def close(self) -> None: ...
