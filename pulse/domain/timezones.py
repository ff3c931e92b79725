"""Time zones: the one check every schedule, setting and rule uses for an IANA zone name.

Digest settings, maintenance windows, on-call schedules and routing-rule time windows all take a
zone by name. They share this check so a name accepted in one place is accepted everywhere. It is
the stricter of the checks Pulse used to have: the name must be one of the zones the IANA
database lists, which refuses paths ("../etc/passwd"), padded names (" UTC") and the empty string,
and three names the database ships but that name no place:
- "localtime": whatever the server is set to, so the same setting would mean different instants
  on different hosts;
- "Factory": a placeholder zone (abbreviation "-00") for machines not yet configured;
- "posixrules": the template file older tz tools copy DST rules from.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_A_PLACE


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; ValueError for anything else."""
    if name not in _zone_names():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return ZoneInfo(name)


def check_zone(name: str | None) -> str | None:
    """`name` unchanged when it is an IANA zone (None passes): a pydantic validator's shape."""
    if name is not None:
        zone(name)
    return name


def as_utc(at: datetime) -> datetime:
    """`at` in UTC; ValueError for a naive datetime (whose instant is unknown)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: schedules need timezone-aware instants")
    return at.astimezone(timezone.utc)
