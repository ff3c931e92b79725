"""Alert severity: the one scale rules, alerts, routing, channels and digests share.

Levels 1 to 5, higher is more severe (the documented system's senders and UI agree on this), each
with a name: info, warning, minor, major, critical. An HTTP body may give a level as its number or
its name (any case); nothing else is a severity (not "3", not 3.5, not true).
"""
from __future__ import annotations

from typing import Any

SEVERITY_NAMES: dict[str, int] = {"info": 1, "warning": 2, "minor": 3, "major": 4, "critical": 5}
SEVERITY_LABELS: dict[int, str] = {v: k for k, v in SEVERITY_NAMES.items()}
MIN_SEVERITY, MAX_SEVERITY = 1, 5
DEFAULT_SEVERITY = 3


def severity_label(level: int) -> str:
    """The name of a level; a level outside the scale (stored before it was checked) as its number."""
    return SEVERITY_LABELS.get(level, str(level))


def parse_severity(value: Any) -> int:
    """A level from its number (1-5) or its name; ValueError for anything else."""
    if isinstance(value, str) and value.lower() in SEVERITY_NAMES:
        return SEVERITY_NAMES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and MIN_SEVERITY <= value <= MAX_SEVERITY:
        return value
    raise ValueError(f"severity must be 1 (info) to 5 (critical) or one of {', '.join(SEVERITY_NAMES)}")
