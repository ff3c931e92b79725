"""The arithmetic of the SLA report (docs/reports.md): device availability from outage intervals, and
mean times from alert transitions. Pure, so each figure is tested against hand-computed values.

Pulse keeps no presence log, only facts that bound each outage: the built-in NO_HEARTBEAT alert
(opened at a scheduler tick once a device has been silent longer than `stale_after_s`, auto-closed at
the first tick after it is heard from again) records how long the device had been silent at both
ticks, and the device actor's snapshot holds when it was last heard from. An outage is rebuilt
from those to the second the device went quiet and came back, not to the tick that noticed it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

Interval = tuple[datetime, datetime]


def outage_of_alert(opened_at: datetime, silent_s_at_open: float | None, stale_after_s: float,
                    closed_at: datetime | None, silent_s_at_close: float | None, now: datetime) -> Interval:
    """When a NO_HEARTBEAT alert's device was not ONLINE: from `stale_after_s` past its last message
    (the open tick saw it silent for `silent_s_at_open`) until the message that brought it back (the
    auto-close tick saw it silent for `silent_s_at_close`). A close without that figure (by a user,
    a decommission) ends the outage at the close; an alert still open runs until `now`."""
    start = opened_at if silent_s_at_open is None else opened_at - timedelta(seconds=silent_s_at_open - stale_after_s)
    if closed_at is None:
        return start, now
    end = closed_at if silent_s_at_close is None else closed_at - timedelta(seconds=silent_s_at_close)
    return start, max(start, end)


def current_outage(last_seen: datetime | None, stale_after_s: float, now: datetime) -> Interval | None:
    """The outage going on now, from the device's last message (None while it is ONLINE)."""
    if last_seen is None:
        return None
    start = last_seen + timedelta(seconds=stale_after_s)
    return (start, now) if start < now else None


def covered(intervals: Iterable[Interval], window: Interval) -> timedelta:
    """How much of `window` the union of `intervals` covers (overlaps counted once)."""
    lo, hi = window
    total, reach = timedelta(0), lo  # `reach`: the furthest end counted so far
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, hi)
        if end > start:
            total += end - start
            reach = end
    return total


@dataclass
class DeviceTime:
    """One device's observed window in the period and its outages."""

    window: Interval
    outages: list[Interval] = field(default_factory=list)


def availability_pct(devices: Iterable[DeviceTime]) -> float | None:
    """Share of observed device-time not covered by an outage, in percent (None: nothing observed)."""
    observed = down = timedelta(0)
    for d in devices:
        start, end = d.window
        if end <= start:
            continue
        observed += end - start
        down += covered(d.outages, d.window)
    if not observed:
        return None
    return round(100 * (observed - down) / observed, 2)


def mean_minutes(spans: Iterable[Interval]) -> float | None:
    """Mean length of the spans in minutes (None when there is none)."""
    lengths = [(end - start).total_seconds() for start, end in spans]
    return round(sum(lengths) / len(lengths) / 60, 2) if lengths else None


def percent(part: int, whole: int) -> float:
    """`part` of `whole` in percent; 0.0 of nothing (the documented report's `online_pct`)."""
    return round(100 * part / whole, 2) if whole else 0.0
