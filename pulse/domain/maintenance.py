"""Maintenance windows: pure schedule maths and scope matching (no database, no Ray).

A window is active at an instant when it is enabled, the instant lies in [starts_at, ends_at)
(ends_at None = indefinite) and, for a recurring window, inside one of its weekly occurrences.

Weekly occurrences start at a local wall-clock time in an IANA time zone and last an exact number
of minutes. Daylight-saving transitions follow RFC 5545 (iCalendar) §3.3.5:
- a start time that does not exist (spring forward) is read with the UTC offset from before the
  gap, so it moves later by the gap's length: 02:30 on a Europe/Berlin spring-forward day starts at
  03:30 CEST;
- a start time that exists twice (fall back) means its first occurrence, so it starts once, in
  summer time: 02:30 on a Europe/Berlin fall-back day is 02:30 CEST (00:30 UTC);
- the duration is elapsed time, not wall-clock time: a 120-minute occurrence from 01:30 on a
  fall-back day ends at 02:30 CET, after 120 real minutes (the wall clock shows 01:30 → 02:30).
Python's zoneinfo implements exactly this with `fold=0` (`pulse.domain.windows`). Time zones are
checked by `pulse.domain.timezones`; which devices a window covers, by `pulse.domain.scopes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo

from pulse.domain.scopes import SCOPE_KEYS
from pulse.domain.timezones import as_utc, zone
from pulse.domain.windows import local_instant, time_of, weekday_set

MAX_DURATION_MINUTES = 7 * 24 * 60
# windows select devices by every scope key but their template
WINDOW_SCOPE_KEYS = tuple(k for k in SCOPE_KEYS if k != "template_ids")


@dataclass(frozen=True, slots=True)
class WeeklyRecurrence:
    """Occurrences start on `days_of_week` (0 = Monday .. 6 = Sunday) at `start` local time."""

    days_of_week: frozenset[int]
    start: time
    duration: timedelta
    tz: ZoneInfo

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WeeklyRecurrence":
        days = weekday_set(d["days_of_week"], "days_of_week")
        start = time_of(str(d["start_time"]), "start_time")
        minutes = int(d["duration_minutes"])
        if not 1 <= minutes <= MAX_DURATION_MINUTES:
            raise ValueError(f"duration_minutes must be between 1 and {MAX_DURATION_MINUTES}")
        return cls(days, start, timedelta(minutes=minutes), zone(str(d.get("timezone") or "UTC")))

    def occurrences_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) in UTC of every occurrence starting on `day` (local date) or later."""
        while True:
            if day.weekday() in self.days_of_week:
                start = local_instant(day, self.start, self.tz)
                yield start, start + self.duration
            day += timedelta(days=1)

    def covering(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence containing `at` (UTC), if any; the earliest-starting one if several overlap."""
        # An occurrence may have started up to `duration` (≤ 7 days) before `at`; one extra day
        # covers the offset change between the local date and UTC.
        first = at.astimezone(self.tz).date() - timedelta(days=self.duration.days + 2)
        for start, end in self.occurrences_from(first):
            if start > at:
                return None
            if at < end:
                return start, end
        return None  # pragma: no cover - occurrences_from never ends


@dataclass(frozen=True, slots=True)
class WindowSchedule:
    starts_at: datetime
    ends_at: datetime | None = None
    recurrence: WeeklyRecurrence | None = None
    enabled: bool = True

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "WindowSchedule":
        rec = row.get("recurrence")
        return cls(as_utc(row["starts_at"]), as_utc(row["ends_at"]) if row.get("ends_at") else None,
                   WeeklyRecurrence.from_dict(rec) if rec else None, bool(row.get("enabled", True)))

    def bounds_contain(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)


def schedule_of(window: WindowSchedule | Mapping[str, Any]) -> WindowSchedule:
    return window if isinstance(window, WindowSchedule) else WindowSchedule.from_row(window)


def is_active(window: WindowSchedule | Mapping[str, Any], at: datetime) -> bool:
    """Whether the window suppresses alerts at `at` (a stored row or a `WindowSchedule`)."""
    s, at = schedule_of(window), as_utc(at)
    if not s.enabled or not s.bounds_contain(at):
        return False
    return s.recurrence is None or s.recurrence.covering(at) is not None


def next_occurrences(window: WindowSchedule | Mapping[str, Any], after: datetime,
                     count: int = 5) -> list[tuple[datetime, datetime | None]]:
    """Up to `count` periods (start, end) in UTC that end after `after`, clipped to the window's
    bounds; the first may already be in progress. End None = indefinite. Disabled: none.

    Occurrences of a recurring window are returned as scheduled, so long durations may overlap.
    """
    s, after = schedule_of(window), as_utc(after)
    if not s.enabled or count <= 0 or (s.ends_at is not None and s.ends_at <= after):
        return []
    if s.recurrence is None:
        return [(s.starts_at, s.ends_at)]
    rec, out = s.recurrence, []
    origin = max(after, s.starts_at)
    first = origin.astimezone(rec.tz).date() - timedelta(days=rec.duration.days + 2)
    for start, end in rec.occurrences_from(first):
        if s.ends_at is not None and start >= s.ends_at:
            break
        start, end = max(start, s.starts_at), (min(end, s.ends_at) if s.ends_at else end)
        if end > origin and end > start:
            out.append((start, end))
            if len(out) == count:
                break
    return out
