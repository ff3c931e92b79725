"""Alert timers, pure: escalation steps of a policy and the digest schedule (docs/escalation.md).

No I/O and no clock of its own: callers pass `now`, so the scheduler, the store and the tests all
share the same arithmetic.

Escalation. A policy has ordered levels (each `delay_minutes` after the previous one; level 1 after
the alert opens) and `repeat`: how many more times the last level is notified, each its own delay
after the one before. An alert's `escalation_level` counts the *steps* notified so far: 0 = none,
1..len(levels) = that level, beyond = a repeat of the last level. Counting steps rather than levels
gives every notification its own number, which the notifier uses to tell ESCALATED deliveries apart.
The next step is timed from when the previous one actually fired (`now`), so a scheduler that was
down delays the rest of the chain instead of firing several levels in one burst when it returns.

Digest schedule. `is_due` lives here too because it is the same kind of thing: a pure timer on a
wall clock. Slots are local to the settings' IANA time zone (hourly: every local hour; daily:
`send_at_hour`; weekly: `send_on_day` at `send_at_hour`), read as `pulse.domain.windows` reads
local times; a digest is due once the latest slot is after both the last send and the last save
of the settings. `digest_window` is the period a digest reports on.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

from pulse.domain.timezones import zone
from pulse.domain.windows import DAY_NAMES, local_instant

TARGET_TYPES = ("channel", "oncall_schedule", "user")
MAX_LEVELS = 10
MAX_TARGETS = 20
MAX_REPEAT = 5
MAX_DELAY_MINUTES = 24 * 60

DIGEST_FREQUENCIES = ("disabled", "hourly", "daily", "weekly")


# ---- escalation ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    type: str  # channel | oncall_schedule | user
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


@dataclass(frozen=True, slots=True)
class Level:
    delay_minutes: int
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    levels: tuple[Level, ...]
    repeat: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Policy":
        """From a stored policy (or any mapping with `levels` and `repeat`)."""
        levels = tuple(Level(int(lv["delay_minutes"]), tuple(Target(t["type"], t["id"]) for t in lv["targets"]))
                       for lv in row["levels"])
        return cls(levels, int(row.get("repeat") or 0))

    @property
    def steps(self) -> int:
        """Notifications an alert that nobody acknowledges gets: every level, then the repeats."""
        return len(self.levels) + self.repeat if self.levels else 0

    def level_of(self, step: int) -> Level:
        """The level notified at `step` (1-based); steps past the last level repeat it."""
        return self.levels[min(step, len(self.levels)) - 1]


def _policy(policy: Policy | Mapping[str, Any]) -> Policy:
    return policy if isinstance(policy, Policy) else Policy.from_row(policy)


def _after(at: datetime, minutes: int) -> datetime:
    return at + timedelta(minutes=minutes)


def plan(policy: Policy | Mapping[str, Any], opened_at: datetime) -> datetime | None:
    """When the first step of a newly opened alert is due (None: a policy without levels)."""
    p = _policy(policy)
    return _after(opened_at, p.levels[0].delay_minutes) if p.steps else None


def advance(policy: Policy | Mapping[str, Any], level: int,
            now: datetime) -> tuple[list[dict[str, str]], int, datetime | None]:
    """Fire the step after `level`: (targets to notify, the new level, when the following step is
    due or None when the chain is done). A chain already done (also: a policy since shortened)
    returns ([], level, None)."""
    p = _policy(policy)
    step = level + 1
    if step > p.steps:
        return [], level, None
    targets = [t.as_dict() for t in p.level_of(step).targets]
    following = step + 1
    next_at = _after(now, p.level_of(following).delay_minutes) if following <= p.steps else None
    return targets, step, next_at


def check_levels(levels: Sequence[Mapping[str, Any]], repeat: int) -> None:
    """The invariants a stored policy keeps (ValueError otherwise); the HTTP schema checks shapes."""
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise ValueError(f"a policy needs 1 to {MAX_LEVELS} levels")
    if not 0 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat must be between 0 and {MAX_REPEAT}")
    if repeat and int(levels[-1]["delay_minutes"]) < 1:
        # repeats are spaced by the last level's delay: 0 would send them all at once
        raise ValueError("repeat needs the last level's delay_minutes to be at least 1")


# ---- digest schedule -----------------------------------------------------------------------------
def last_slot(settings: Mapping[str, Any], now: datetime) -> datetime | None:
    """The latest scheduled digest time at or before `now` (UTC), None when disabled."""
    frequency = settings.get("frequency") or "disabled"
    if frequency == "disabled":
        return None
    tz = zone(settings.get("timezone") or "UTC")
    local = now.astimezone(tz)
    if frequency == "hourly":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    hour = int(settings.get("send_at_hour") or 0)
    if frequency == "daily":
        slot = local_instant(local.date(), time(hour), tz)
        return slot if slot <= now else local_instant(local.date() - timedelta(days=1), time(hour), tz)
    if frequency == "weekly":
        weekday = DAY_NAMES.index(settings.get("send_on_day") or "mon")
        day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
        slot = local_instant(day, time(hour), tz)
        return slot if slot <= now else local_instant(day - timedelta(days=7), time(hour), tz)
    raise ValueError(f"unknown digest frequency {frequency!r}")


def is_due(settings: Mapping[str, Any], now: datetime) -> bool:
    """A digest should go out now: a slot has passed since the last send and since the settings
    were last saved (`updated_at`). So enabling a daily digest at 15:00 sends the first one at the
    next `send_at_hour`, not at once, and re-enabling an old one does not send at once either.
    However long the scheduler was away, one digest is due, never one per missed slot."""
    slot = last_slot(settings, now)
    if slot is None:
        return False
    marks = [t for t in (settings.get("last_sent_at"), settings.get("updated_at")) if t is not None]
    return not marks or slot > max(marks)


def period(frequency: str) -> timedelta:
    """The span one digest normally covers."""
    return {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}.get(
        frequency, timedelta(days=1))


def digest_window(settings: Mapping[str, Any], until: datetime) -> tuple[datetime, datetime]:
    """The [since, until) a digest sent at `until` reports on: since the last send, so a late
    scheduler loses nothing, but at most two periods back (a digest re-enabled after months covers
    one period, not the whole pause)."""
    span = period(settings.get("frequency") or "daily")
    last = settings.get("last_sent_at")
    since = last if last is not None and until - last <= 2 * span else until - span
    return since, until
