"""The analytics query language: time ranges, bucket sizes and aggregations (docs/analytics.md).

Pure, so the API validates against it and the lake pipeline aggregates by it. A bucket size a
client types ("5 minutes", "1 hour", "30s") is parsed here into a bounded duration; only that
duration, as a number of milliseconds, ever reaches a query, never the text.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal, get_args

from pulse.errors import Invalid

TimeRange = Literal["1h", "6h", "24h", "7d", "30d"]
Aggregation = Literal["avg", "min", "max", "p95", "sum", "count"]
GroupBy = Literal["device", "site", "group"]

TIME_RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24),
    "7d": timedelta(days=7), "30d": timedelta(days=30),
}
# The documented system's defaults: about a hundred points per range.
DEFAULT_BUCKETS: dict[str, timedelta] = {
    "1h": timedelta(minutes=1), "6h": timedelta(minutes=5), "24h": timedelta(minutes=15),
    "7d": timedelta(hours=1), "30d": timedelta(hours=6),
}
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)
MIN_BUCKET = timedelta(seconds=1)
MAX_BUCKET = timedelta(days=30)
MAX_BUCKETS = 3000  # points per series: a chart never needs more, and the answer stays small

_UNITS: dict[str, timedelta] = {}
for _names, _unit in ((("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
                      (("m", "min", "mins", "minute", "minutes"), timedelta(minutes=1)),
                      (("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
                      (("d", "day", "days"), timedelta(days=1))):
    _UNITS.update(dict.fromkeys(_names, _unit))
_BUCKET_RE = re.compile(r"^\s*(\d{1,7})\s*([a-z]+)\s*$")


def parse_bucket(text: str) -> timedelta:
    """"5 minutes", "1 hour", "30s", "2h", "1 day" -> a duration between 1 second and 30 days."""
    match = _BUCKET_RE.match(text.lower())
    if not match or match.group(2) not in _UNITS:
        raise Invalid(f"bucket_size {text[:40]!r} is not '<number> <unit>' with unit seconds, minutes, "
                      "hours or days (e.g. '5 minutes', '1 hour', '30s')")
    bucket = int(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_BUCKET <= bucket <= MAX_BUCKET:
        raise Invalid(f"bucket_size must be between 1 second and 30 days, not {text[:40]!r}")
    return bucket


def bucket_for(time_range: str, text: str | None) -> timedelta:
    """The bucket of a query: the range's default, or the parsed `text` if it yields at most
    MAX_BUCKETS points over the range."""
    if text is None:
        return DEFAULT_BUCKETS[time_range]
    bucket = parse_bucket(text)
    points = TIME_RANGES[time_range] / bucket
    if points > MAX_BUCKETS:
        raise Invalid(f"bucket_size {text[:40]!r} gives {int(points)} points over {time_range}; "
                      f"at most {MAX_BUCKETS} per series")
    return bucket


def bucket_text(bucket: timedelta) -> str:
    """A duration as the largest whole unit: 900 s -> "15 minutes", 90 s -> "90 seconds"."""
    seconds = int(bucket.total_seconds())
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {name}{'' if n == 1 else 's'}"
    raise AssertionError("unreachable: every whole number of seconds is a multiple of one second")
