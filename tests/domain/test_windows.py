"""Local-time windows: HH:MM parsing, weekdays, and windows read on a zone's wall clock (RFC 5545)."""
from datetime import datetime, timedelta, timezone

import pytest

from pulse.domain.timezones import zone
from pulse.domain.windows import DailyWindow, in_window, minutes_of, weekday_set, window_spans

UTC = timezone.utc
BERLIN = zone("Europe/Berlin")


def test_hhmm_and_weekdays_are_checked():
    assert minutes_of("09:30", "start_time") == 570 and minutes_of("24:00", "end_time", end=True) == 1440
    for bad in ("24:00", "9:30", "09:60", None):
        with pytest.raises(ValueError, match="start_time must be HH:MM"):
            minutes_of(bad, "start_time")
    assert weekday_set([4, 0, 0], "days_of_week") == frozenset({0, 4})
    for bad in ([], [7], [-1]):
        with pytest.raises(ValueError, match="days_of_week"):
            weekday_set(bad, "days_of_week")


def test_equal_start_and_end_is_refused():
    with pytest.raises(ValueError, match="differ"):
        DailyWindow.from_dict({"days_of_week": [0], "start_time": "09:00", "end_time": "09:00"})


def test_on_call_and_routing_shapes_are_the_same_window():
    a = DailyWindow.from_dict({"days_of_week": [4], "start_time": "22:00", "end_time": "06:00"})
    b = DailyWindow.from_hours({"start": "22:00", "end": "06:00", "days": ["fri"]})
    assert a == b and a.length == timedelta(hours=8)
    assert DailyWindow.from_hours({"start": "08:00", "end": "18:00"}).days == frozenset(range(7))


def test_window_starting_in_the_spring_forward_gap_starts_later_by_the_gap():
    w = DailyWindow.from_hours({"start": "02:30", "end": "04:00", "days": ["sun"]})
    day = datetime(2024, 3, 31, tzinfo=UTC)  # Europe/Berlin springs forward at 01:00 UTC
    assert window_spans([w], BERLIN, day, day + timedelta(days=1)) == [(day.replace(hour=1, minute=30),
                                                                       day.replace(hour=2))]
    assert not w.contains(day.replace(hour=1, minute=29), BERLIN) and w.contains(day.replace(hour=1, minute=30), BERLIN)


def test_in_window_refuses_zones_that_are_no_place():
    with pytest.raises(ValueError, match="time zone"):
        in_window({"start": "08:00", "end": "18:00", "timezone": "Factory"}, datetime(2024, 1, 1, tzinfo=UTC))
