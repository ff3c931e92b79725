"""A device's latest value per metric, laid out to fit a million devices in a few hundred bytes each.

Devices of a fleet send the same metric names in the same order, so the names and their
positions (a `MetricLayout`) are shared by every device that has seen the same names in the same
order, and each device keeps only its numbers: one flat array of doubles, value then timestamp per
metric. As a dict of `(value, ts_ms)` tuples the same 10 metrics cost ~1.2 KB per device; here
~240 B, and the array holds no objects for the garbage collector to walk.

Values are floats (the envelope makes every metric a float); timestamps are epoch milliseconds,
exact in a double up to 2^53 ms (year 287,396).
"""
from __future__ import annotations

import sys
from array import array
from typing import Iterator

MAX_SHARED_LAYOUTS = 20_000  # beyond this, new layouts are private to their device (no unbounded cache)


class MetricLayout:
    """Metric names in insertion order and each one's slot; immutable, shared between devices.

    A layout knows the layouts one metric longer it has led to (`_next`), so a device that sees a
    new metric moves to the layout every other device with the same history already uses."""

    __slots__ = ("names", "index", "_next")
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


EMPTY = MetricLayout(())


class LatestValues:
    """metric -> (value, ts_ms), insertion-ordered like the dict it replaces; entries are never removed."""

    __slots__ = ("layout", "data")

    def __init__(self, items: dict[str, tuple[float, int]] | None = None) -> None:
        self.layout = EMPTY
        self.data = array("d")
        if items:
            self._append([(m, float(v[0]), v[1]) for m, v in items.items()])

    def __len__(self) -> int:
        return len(self.layout.names)

    def __contains__(self, metric: object) -> bool:
        return metric in self.layout.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.names)

    def __getitem__(self, metric: str) -> tuple[float, int]:
        i = 2 * self.layout.index[metric]
        return self.data[i], int(self.data[i + 1])

    def get(self, metric: str) -> tuple[float, int] | None:
        i = self.layout.index.get(metric)
        return None if i is None else (self.data[2 * i], int(self.data[2 * i + 1]))

    def items(self) -> Iterator[tuple[str, tuple[float, int]]]:
        data = self.data
        for i, name in enumerate(self.layout.names):
            yield name, (data[2 * i], int(data[2 * i + 1]))

    def as_dict(self) -> dict[str, tuple[float, int]]:
        """A new dict metric -> (value, ts_ms), in insertion order (the snapshot's `latest`)."""
        data = self.data
        return {name: (data[2 * i], int(data[2 * i + 1])) for i, name in enumerate(self.layout.names)}

    def update(self, metrics: dict[str, float], ts_ms: int) -> tuple[list[str], list[str]]:
        """Take one message's readings: a metric's value moves when `ts_ms` is not older than the one
        kept. Returns (metrics seen for the first time, metrics whose value was set), in message order."""
        index, data = self.layout.index, self.data
        new: list[tuple[str, float, int]] = []
        updated: list[str] = []
        for metric, value in metrics.items():
            i = index.get(metric)
            if i is None:
                new.append((metric, value, ts_ms))
                updated.append(metric)
            elif ts_ms >= data[2 * i + 1]:
                data[2 * i] = value
                data[2 * i + 1] = ts_ms
                updated.append(metric)
        if new:
            self._append(new)
        return [m for m, _, _ in new], updated

    def _append(self, entries: list[tuple[str, float, int]]) -> None:
        """New metrics at the end; the array is rebuilt at its exact size (new metrics are rare, and
        growing in place would over-allocate in every device)."""
        layout = self.layout
        flat = list(self.data)
        for metric, value, ts_ms in entries:
            layout = layout.plus(metric)
            flat += (value, ts_ms)
        self.layout, self.data = layout, array("d", flat)
