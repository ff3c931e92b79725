"""Runtime metrics: Ray custom metrics (dashboard / Prometheus) inside Ray, in-memory otherwise.

Modules record through `counter()` / `gauge()` and never need to know which runtime they run in.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

LOCAL: dict[str, float] = defaultdict(float)
_made: dict[str, Any] = {}


class _Local:
    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        LOCAL[self.name] += value

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        LOCAL[self.name] = value


def _in_ray() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except ImportError:  # pragma: no cover - ray is a dependency
        return False


def _metric(name: str, kind: str, description: str, tag_keys: tuple[str, ...]) -> Any:
    in_ray = _in_ray()
    key = f"{kind}:{name}:{in_ray}"  # a process may start and stop Ray (tests): never reuse across that
    if key not in _made:
        if in_ray:
            from ray.util import metrics

            cls = metrics.Counter if kind == "counter" else metrics.Gauge
            _made[key] = cls(name, description=description, tag_keys=tag_keys)
        else:
            _made[key] = _Local(name, kind)
    return _made[key]


def counter(name: str, description: str = "", tag_keys: tuple[str, ...] = ()) -> Any:
    return _metric(name, "counter", description, tag_keys)


def gauge(name: str, description: str = "", tag_keys: tuple[str, ...] = ()) -> Any:
    return _metric(name, "gauge", description, tag_keys)


# Names shown in the Ray dashboard (Metrics tab / Prometheus: ray_pulse_*).
MESSAGES_IN = "pulse_messages_in"
MESSAGES_REJECTED = "pulse_messages_rejected"
ROWS_FLUSHED = "pulse_lake_rows_flushed"
ALERTS_OPENED = "pulse_alerts_opened"
ACTIVE_DEVICE_ACTORS = "pulse_active_device_actors"
INGEST_LAG_MS = "pulse_ingest_lag_ms"
