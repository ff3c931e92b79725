"""A device's latest value per metric, laid out to fit a million devices in a few hundred bytes each.

Devices of a fleet send the same metric names in the same order, so the names and their
positions (a `MetricLayout`) are shared by every device that has seen the same names in the same
order, and each device keeps only its values (one tuple, in layout order) and their timestamps: one
int while they all have the same one (a device sends all its metrics in each message), else a tuple.
As a dict of `(value, ts_ms)` tuples, 10 metrics cost 888 B per device plus the floats (bench_memory's
tracemalloc before issue 13); here a 120 B tuple plus the floats, and the usual message (the device's
metrics, in its order, newer than what is kept) replaces the values in O(1) Python steps.
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

Packed = tuple[tuple[str, ...], tuple[Any, ...], "int | tuple[int, ...]"]  # `LatestValues.pack`
MAX_SHARED_LAYOUTS = 20_000  # beyond this, new layouts are private to their device (no unbounded cache)


class MetricLayout:
    """Metric names in insertion order and each one's slot; immutable, shared between devices.

    A layout knows the layouts one metric longer it has led to (`_next`), so a device that sees a
    new metric moves to the layout every other device with the same history already uses."""

    __slots__ = ("names", "index", "_next")  # index: metric -> its position
    shared = 0  # layouts reachable from EMPTY (the cache), bounded by MAX_SHARED_LAYOUTS

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self._next: dict[str, MetricLayout] | None = None

    def plus(self, metric: str) -> MetricLayout:
        """This layout with `metric` appended."""
        nxt = self._next.get(metric) if self._next is not None else None
        if nxt is None:
            nxt = MetricLayout((*self.names, sys.intern(metric)))
            if MetricLayout.shared < MAX_SHARED_LAYOUTS:
                if self._next is None:
                    self._next = {}
                self._next[nxt.names[-1]] = nxt
                MetricLayout.shared += 1
        return nxt

    def extended(self, metrics: Any) -> MetricLayout:
        """This layout with `metrics` appended, in their order."""
        layout = self
        for metric in metrics:
            layout = layout.plus(metric)
        return layout


EMPTY = MetricLayout(())


class LatestValues:
    """metric -> (value, ts_ms), insertion-ordered like the dict it replaces; entries are never removed."""

    __slots__ = ("layout", "values", "ts")

    def __init__(self, items: dict[str, tuple[float, int]] | None = None) -> None:
        self.layout = EMPTY
        self.values: tuple[Any, ...] = ()
        self.ts: int | tuple[int, ...] = 0  # one for all values, or one per value
        if items:
            self._store(EMPTY.extended(items), [v[0] for v in items.values()], [v[1] for v in items.values()])

    def __len__(self) -> int:
        return len(self.layout.names)

    def __contains__(self, metric: object) -> bool:
        return metric in self.layout.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.names)

    def __getitem__(self, metric: str) -> tuple[float, int]:
        i = self.layout.index[metric]
        ts = self.ts
        return self.values[i], ts if type(ts) is int else ts[i]  # type: ignore[index]

    def get(self, metric: str) -> tuple[float, int] | None:
        i = self.layout.index.get(metric)
        if i is None:
            return None
        ts = self.ts
        return self.values[i], ts if type(ts) is int else ts[i]  # type: ignore[index]

    def items(self) -> Iterator[tuple[str, tuple[float, int]]]:
        return iter(self.as_dict().items())

    def as_dict(self) -> dict[str, tuple[float, int]]:
        """A new dict metric -> (value, ts_ms), in insertion order (the snapshot's `latest`)."""
        return unpack(self.pack())

    def pack(self) -> Packed:
        """(names, values, timestamps) as kept, no copy: what a shard sends for many devices at once
        (~0.1 us a device, against ~1 us to build the dict); `unpack` makes the dict."""
        return self.layout.names, self.values, self.ts

    def update(self, metrics: dict[str, float], ts_ms: int) -> tuple[list[str], list[str] | tuple[str, ...]]:
        """Take one message's readings: a metric's value moves when `ts_ms` is not older than the one
        kept. Returns (metrics seen for the first time, metrics whose value was set), in message order."""
        ts, names = self.ts, self.layout.names
        newest = ts if type(ts) is int else max(ts)  # type: ignore[arg-type]
        if ts_ms >= newest and len(metrics) == len(names) and tuple(metrics) == names:
            self.values, self.ts = tuple(metrics.values()), ts_ms  # the usual message: every value moves
            return [], names
        values = list(self.values)
        stamps = [ts] * len(values) if type(ts) is int else list(ts)  # type: ignore[arg-type]
        index, new, updated = self.layout.index, [], []
        for metric, value in metrics.items():
            i = index.get(metric)
            if i is None:
                new.append(metric)
                values.append(value)
                stamps.append(ts_ms)
                updated.append(metric)
            elif ts_ms >= stamps[i]:
                values[i], stamps[i] = value, ts_ms
                updated.append(metric)
        self._store(self.layout.extended(new) if new else self.layout, values, stamps)
        return new, updated

    def _store(self, layout: MetricLayout, values: list[Any], stamps: list[int]) -> None:
        self.layout, self.values = layout, tuple(values)
        self.ts = stamps[0] if stamps.count(stamps[0]) == len(stamps) else tuple(stamps)


def unpack(packed: Packed) -> dict[str, tuple[Any, int]]:
    """metric -> (value, ts_ms) of a `LatestValues.pack`, in insertion order."""
    names, values, ts = packed
    if type(ts) is int:
        return {name: (v, ts) for name, v in zip(names, values)}
    return {name: (v, t) for name, v, t in zip(names, values, ts)}  # type: ignore[arg-type]
