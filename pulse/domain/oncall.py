"""On-call schedules: pure rotation maths (no database, no Ray).

A schedule has an IANA time zone, layers and overrides. Who is on call at an instant:
1. the latest-created schedule-wide override (no layer) covering it; else
2. the layers by priority, lowest `order` first: the first one that has someone on call — its
   latest-created layer override covering the instant, or else the participant whose shift it
   is, if the instant lies in one of the layer's restriction windows (no restrictions: always);
3. else nobody.
All periods are half-open, [start, end).

Shifts are cut on the schedule's wall clock. Boundary k of a layer is the local time
`anchor + k × length` (length 1 day, 7 days or `shift_hours`), so handoffs stay at, say, 09:00
all year and a daily shift lasts 23 or 25 real hours on DST days. The anchor is the last handoff
at or before the layer's `start_at`; participants[0] holds the shift in progress at `start_at`
and participants[k mod n] the k-th shift after it, for ever: the rotation never resets.
Local times that do not exist or exist twice follow RFC 5545 §3.3.5, as maintenance windows do
(zoneinfo with fold=0): a handoff in the spring-forward gap happens later by the gap's length
(02:30 → 03:30), and an ambiguous one at its first occurrence (summer time).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from pulse.domain.timezones import as_utc
from pulse.domain.windows import DailyWindow, Span, instant, minutes_of, wall_clock, window_spans

ROTATION_TYPES = ("daily", "weekly", "custom")
MAX_SHIFT_HOURS = 720
MAX_PARTICIPANTS = 100
MAX_RANGE = timedelta(days=60)  # longest timeline one request may ask for
CURRENT_HORIZON = timedelta(days=31)  # how far `on_call_at` looks for the edges of the current stretch
_DAY, _WEEK = timedelta(days=1), timedelta(days=7)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ValueError("end must be after start")
    if end - start > MAX_RANGE:
        raise ValueError(f"a timeline covers at most {MAX_RANGE.days} days")
    return start, end


@dataclass(frozen=True, slots=True)
class Shift:
    """A stretch of time one person is on call: for a layer, or (with override_id) by an override."""

    start: datetime
    end: datetime
    responder: str
    layer_id: str | None = None
    override_id: str | None = None

    @property
    def source(self) -> str:
        return "override" if self.override_id else "layer"

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "responder": self.responder, "source": self.source,
                "layer_id": self.layer_id, "override_id": self.override_id}


@dataclass(frozen=True, slots=True)
class Layer:
    layer_id: str
    order: int
    rotation_type: str
    length: timedelta  # of one shift, on the wall clock
    handoff: time  # local
    handoff_day: int | None  # weekly only, 0 = Monday
    start_at: datetime
    end_at: datetime | None
    participants: tuple[str, ...]
    restrictions: tuple[DailyWindow, ...] = ()
    name: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Layer":
        """A stored layer (or a layer body); ValueError names the first field that is wrong."""
        kind = row.get("rotation_type")
        if kind not in ROTATION_TYPES:
            raise ValueError(f"rotation_type must be one of {', '.join(ROTATION_TYPES)}")
        hours = row.get("shift_hours")
        if kind == "custom":
            if hours is None or not 1 <= int(hours) <= MAX_SHIFT_HOURS:
                raise ValueError(f"shift_hours: a custom rotation needs 1 to {MAX_SHIFT_HOURS} hours")
            length = timedelta(hours=int(hours))
        elif hours is not None:
            raise ValueError("shift_hours is only for custom rotations")
        else:
            length = _DAY if kind == "daily" else _WEEK
        day = row.get("handoff_day")
        if kind == "weekly":
            if day is None or not 0 <= int(day) <= 6:
                raise ValueError("handoff_day: a weekly rotation needs 0 (Monday) to 6 (Sunday)")
            day = int(day)
        elif day is not None:
            raise ValueError("handoff_day is only for weekly rotations")
        handoff = minutes_of(row.get("handoff_time"), "handoff_time")
        participants = tuple(row.get("participants") or ())
        if not 1 <= len(participants) <= MAX_PARTICIPANTS or not all(isinstance(p, str) and p for p in participants):
            raise ValueError(f"participants must list 1 to {MAX_PARTICIPANTS} people")
        start_at = as_utc(row["start_at"])
        end_at = as_utc(row["end_at"]) if row.get("end_at") else None
        if end_at is not None and end_at <= start_at:
            raise ValueError("end_at must be after start_at")
        return cls(str(row.get("layer_id") or ""), int(row.get("order") or 0), kind, length,
                   time(handoff // 60, handoff % 60), day, start_at, end_at, participants,
                   tuple(DailyWindow.from_dict(r) for r in row.get("restrictions") or ()), str(row.get("name") or ""))

    def in_bounds(self, at: datetime) -> bool:
        return self.start_at <= at and (self.end_at is None or at < self.end_at)


@dataclass(frozen=True, slots=True)
class Rotation:
    """A layer's shifts in a zone: boundary k is the local wall-clock time `anchor + k × length`."""

    layer: Layer
    tz: ZoneInfo
    anchor: datetime  # naive local: the handoff starting participants[0]'s first shift

    @classmethod
    def of(cls, layer: Layer, tz: ZoneInfo) -> "Rotation":
        day = wall_clock(layer.start_at, tz).date()
        if layer.handoff_day is not None:
            day -= timedelta(days=(day.weekday() - layer.handoff_day) % 7)
        probe = cls(layer, tz, datetime.combine(day, layer.handoff))
        return cls(layer, tz, probe.wall(probe.index_at(layer.start_at)))

    def wall(self, k: int) -> datetime:
        return self.anchor + k * self.layer.length

    def boundary(self, k: int) -> datetime:
        return instant(self.wall(k), self.tz)

    def index_at(self, at: datetime) -> int:
        """The shift in progress at `at`: the largest k with boundary(k) <= at."""
        k = (wall_clock(at, self.tz) - self.anchor) // self.layer.length  # off by one at most near DST
        while self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        return k

    def responder(self, k: int) -> str:
        return self.layer.participants[k % len(self.layer.participants)]

    def shift_at(self, at: datetime) -> Shift | None:
        """The shift in progress at `at`, within the layer's bounds (restrictions not applied)."""
        layer = self.layer
        if not layer.in_bounds(at):
            return None
        k = self.index_at(at)
        end = self.boundary(k + 1) if layer.end_at is None else min(self.boundary(k + 1), layer.end_at)
        return Shift(max(self.boundary(k), layer.start_at), end, self.responder(k), layer.layer_id)

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """Shifts overlapping [start, end), clipped to it and to the layer's bounds."""
        lo = max(start, self.layer.start_at)
        hi = end if self.layer.end_at is None else min(end, self.layer.end_at)
        out: list[Shift] = []
        if hi <= lo:
            return out
        k, cursor = self.index_at(lo), lo
        while cursor < hi:
            # max(): a boundary may map to an instant at or before the previous one when a DST gap
            # is longer than a shift; such empty shifts are skipped
            stop = min(self.boundary(k + 1), hi)
            if stop > cursor:
                out.append(Shift(cursor, stop, self.responder(k), self.layer.layer_id))
                cursor = stop
            k += 1
        return out


def _cut(shifts: Sequence[Shift], windows: Sequence[Span]) -> list[Shift]:
    """The parts of sorted shifts lying in sorted, disjoint windows."""
    out, i = [], 0
    for shift in shifts:
        while i < len(windows) and windows[i][1] <= shift.start:
            i += 1
        j = i
        while j < len(windows) and windows[j][0] < shift.end:
            start, end = max(shift.start, windows[j][0]), min(shift.end, windows[j][1])
            if end > start:
                out.append(replace(shift, start=start, end=end))
            j += 1
    return out


def layer_shifts(layer: Layer, tz: ZoneInfo, start: datetime, end: datetime) -> list[Shift]:
    """Who the layer puts on call in [start, end): its shifts, cut to its restriction windows."""
    shifts = Rotation.of(layer, tz).shifts(as_utc(start), as_utc(end))
    if not layer.restrictions or not shifts:
        return shifts
    return _cut(shifts, window_spans(layer.restrictions, tz, shifts[0].start, shifts[-1].end))


def layer_on_call(layer: Layer, tz: ZoneInfo, at: datetime) -> Shift | None:
    """The layer's on-call stretch containing `at` (its shift, cut to the restriction window), if any."""
    at = as_utc(at)
    shift = Rotation.of(layer, tz).shift_at(at)
    if shift is None or not layer.restrictions:
        return shift
    pieces = _cut([shift], window_spans(layer.restrictions, tz, shift.start, shift.end))
    return next((p for p in pieces if p.contains(at)), None)


@dataclass(frozen=True, slots=True)
class Override:
    override_id: str
    responder: str
    start_at: datetime
    end_at: datetime
    layer_id: str | None = None  # None: the whole schedule
    created_at: datetime = _EPOCH

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Override":
        start_at, end_at = as_utc(row["start_at"]), as_utc(row["end_at"])
        if end_at <= start_at:
            raise ValueError("end_at must be after start_at")
        return cls(str(row["override_id"]), str(row["responder"]), start_at, end_at, row.get("layer_id"),
                   as_utc(row["created_at"]) if row.get("created_at") else _EPOCH)

    def covers(self, at: datetime) -> bool:
        return self.start_at <= at < self.end_at


class _Resolver:
    """Answers "who is on call at t" for any t in [start, end) from precomputed layer shifts."""

    def __init__(self, layers: Iterable[Layer], overrides: Iterable[Override], tz: ZoneInfo,
                 start: datetime, end: datetime) -> None:
        self.layers = sorted(layers, key=lambda layer: (layer.order, layer.layer_id))
        newest = sorted(overrides, key=lambda o: (o.created_at, o.override_id), reverse=True)
        self.schedule_wide = [o for o in newest if o.layer_id is None]
        # an override naming a layer that is not in the schedule (any more) changes nothing
        self.by_layer = {layer.layer_id: [o for o in newest if o.layer_id == layer.layer_id] for layer in self.layers}
        self.shifts = {layer.layer_id: layer_shifts(layer, tz, start, end) for layer in self.layers}
        self.starts = {lid: [s.start for s in shifts] for lid, shifts in self.shifts.items()}

    def cuts(self) -> set[datetime]:
        found = {t for shifts in self.shifts.values() for s in shifts for t in (s.start, s.end)}
        found |= {t for o in self.schedule_wide for t in (o.start_at, o.end_at)}
        return found | {t for os in self.by_layer.values() for o in os for t in (o.start_at, o.end_at)}

    def at(self, t: datetime) -> tuple[str, str | None, str | None] | None:
        """(responder, layer_id, override_id) at t, or None for nobody."""
        winner = next((o for o in self.schedule_wide if o.covers(t)), None)
        if winner is not None:
            return winner.responder, None, winner.override_id
        for layer in self.layers:
            lid = layer.layer_id
            winner = next((o for o in self.by_layer[lid] if o.covers(t)), None)
            if winner is not None:
                return winner.responder, lid, winner.override_id
            i = bisect_right(self.starts[lid], t) - 1
            if i >= 0 and self.shifts[lid][i].contains(t):
                return self.shifts[lid][i].responder, lid, None
        return None


def final_timeline(layers: Iterable[Layer], overrides: Iterable[Override], tz: ZoneInfo,
                   start: datetime, end: datetime) -> list[Shift]:
    """Who is on call across [start, end), overrides applied: stretches in time order, adjacent
    stretches with the same person from the same source merged; time not covered has nobody."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        return []
    resolver = _Resolver(layers, overrides, tz, start, end)
    cuts = sorted({start, end} | {t for t in resolver.cuts() if start < t < end})
    out: list[Shift] = []
    for a, b in pairwise(cuts):
        who = resolver.at(a)
        if who is None:
            continue
        last = out[-1] if out else None
        if last is not None and last.end == a and (last.responder, last.layer_id, last.override_id) == who:
            out[-1] = replace(last, end=b)
        else:
            out.append(Shift(a, b, *who))
    return out


def on_call_at(layers: Iterable[Layer], overrides: Iterable[Override], tz: ZoneInfo, at: datetime,
               horizon: timedelta = CURRENT_HORIZON) -> Shift | None:
    """The stretch of the final timeline containing `at`; its start and end are clipped to
    `horizon` either side (a one-person layer would otherwise stretch for ever)."""
    at = as_utc(at)
    timeline = final_timeline(list(layers), list(overrides), tz, at - horizon, at + horizon)
    return next((s for s in timeline if s.contains(at)), None)


def responder_at(layers: Iterable[Layer], overrides: Iterable[Override], tz: ZoneInfo, at: datetime) -> str | None:
    """Just who is on call at `at` (cheaper than `on_call_at`: one shift per layer)."""
    at = as_utc(at)
    who = _Resolver(layers, overrides, tz, at, at + timedelta(microseconds=1)).at(at)
    return who[0] if who else None
