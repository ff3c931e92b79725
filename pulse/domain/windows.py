"""Local-time windows: "HH:MM" times of day, weekdays, and wall-clock times read in a time zone.

Maintenance recurrences, on-call restrictions and handoffs, notification routing's `active_hours`
and the digest's send hour all name a time of day on some weekdays in an IANA zone. This module
is the one parser and the one reading of those times, so they agree on what "02:30 on Sunday in
Europe/Berlin" means.

Wall-clock times that do not exist or exist twice follow RFC 5545 (iCalendar) §3.3.5, which is
what Python's zoneinfo does with fold=0:
- a time in a spring-forward gap is read with the offset from before the gap, so it happens later
  by the gap's length (02:30 → 03:30 CEST on a Europe/Berlin spring-forward day);
- a time in a fall-back overlap means its first occurrence (summer time).
A `DailyWindow` is therefore a pair of instants per day, and an instant is inside it when it lies
between them: its length in real time follows the offsets of its two ends.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from pulse.domain.timezones import zone

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = Python weekday(), 0 = Monday
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
END_HHMM_PATTERN = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"  # an end of day may be 24:00
MINUTES_PER_DAY = 24 * 60
_DAY = timedelta(days=1)

Span = tuple[datetime, datetime]


# ---- parsing -------------------------------------------------------------------------------------
def minutes_of(value: Any, what: str, *, end: bool = False) -> int:
    """Minutes after midnight of an "HH:MM" string (24-hour; "24:00" too when `end`)."""
    if not isinstance(value, str) or not re.match(END_HHMM_PATTERN if end else HHMM_PATTERN, value):
        raise ValueError(f"{what} must be HH:MM (24-hour)")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def time_of(value: Any, what: str) -> time:
    """The `time` of an "HH:MM" string."""
    minutes = minutes_of(value, what)
    return time(minutes // 60, minutes % 60)


def weekday_set(days: Iterable[Any], what: str) -> frozenset[int]:
    """1 to 7 weekdays, 0 (Monday) to 6 (Sunday)."""
    out = [int(d) for d in days]
    if not out or any(not 0 <= d <= 6 for d in out):
        raise ValueError(f"{what} must list 1-7 days, 0 (Monday) to 6 (Sunday)")
    return frozenset(out)


# ---- wall clock ----------------------------------------------------------------------------------
def instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall-clock time, read the RFC 5545 way (fold=0)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of `at` local time on `day`."""
    return instant(datetime.combine(day, at), tz)


def wall_clock(at: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an aware instant."""
    return at.astimezone(tz).replace(tzinfo=None, fold=0)


def union(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged, sorted by start."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


# ---- a daily window ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DailyWindow:
    """From `start` to `end` minutes after local midnight on each of `days` (0 = Monday); an end at
    or before the start runs past midnight and belongs to the day it starts on (a Friday
    22:00-06:00 window covers Saturday 03:00)."""

    days: frozenset[int]
    start: int
    end: int

    @classmethod
    def of(cls, days: Iterable[Any], start: Any, end: Any, what: str) -> "DailyWindow":
        first, last = minutes_of(start, f"{what} start_time"), minutes_of(end, f"{what} end_time", end=True)
        if first == last:
            raise ValueError(f"{what} end_time must differ from start_time (all day is 00:00-24:00)")
        return cls(weekday_set(days, f"{what} days_of_week"), first, last)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "restriction") -> "DailyWindow":
        """`{"days_of_week": [0, …], "start_time": "HH:MM", "end_time": "HH:MM"}` (on-call)."""
        return cls.of(d["days_of_week"], d["start_time"], d["end_time"], what)

    @classmethod
    def from_hours(cls, d: Mapping[str, Any], what: str = "active_hours") -> "DailyWindow":
        """`{"start": "HH:MM", "end": "HH:MM", "days": ["mon", …]?}` (routing rules; no days = every day)."""
        days = [DAY_NAMES.index(name) for name in d.get("days") or ()] or range(7)
        return cls.of(days, d["start"], d["end"], what)

    @property
    def length(self) -> timedelta:
        minutes = self.end - self.start if self.end > self.start else self.end + MINUTES_PER_DAY - self.start
        return timedelta(minutes=minutes)

    def spans(self, tz: ZoneInfo, first: date, last: date) -> Iterator[Span]:
        """UTC spans of the windows starting on local dates first..last."""
        day = first
        while day <= last:
            if day.weekday() in self.days:
                opens = datetime.combine(day, time()) + timedelta(minutes=self.start)
                start, end = instant(opens, tz), instant(opens + self.length, tz)
                if end > start:  # a window lying wholly in a DST gap does not happen
                    yield start, end
            day += _DAY

    def contains(self, at: datetime, tz: ZoneInfo) -> bool:
        """Whether the aware instant `at` lies in one of the windows."""
        today = wall_clock(at, tz).date()
        return any(start <= at < end for start, end in self.spans(tz, today - _DAY, today))


def window_spans(windows: Sequence[DailyWindow], tz: ZoneInfo, start: datetime, end: datetime) -> list[Span]:
    """The union of the windows' spans, clipped to [start, end)."""
    # a window opening the day before may run past midnight (at most 24 h)
    first, last = wall_clock(start, tz).date() - _DAY, wall_clock(end, tz).date()
    spans = union(s for w in windows for s in w.spans(tz, first, last))
    return [(max(s, start), min(e, end)) for s, e in spans if e > start and s < end]


def in_window(window: Mapping[str, Any], at: datetime) -> bool:
    """Whether `at` lies in a routing rule's `active_hours`:
    `{"start": "HH:MM", "end": "HH:MM", "timezone": "Europe/Berlin", "days": ["mon", …]?}`."""
    return DailyWindow.from_hours(window).contains(at, zone(window.get("timezone") or "UTC"))
