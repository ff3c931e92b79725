"""Maintenance schedule maths: bounds, weekly recurrence in a time zone, DST, scope matching."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pulse.domain.maintenance import WeeklyRecurrence, is_active, next_occurrences

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window(starts_at=utc(2024, 1, 1), ends_at=None, recurrence=None, enabled=True) -> dict:
    return {"starts_at": starts_at, "ends_at": ends_at, "recurrence": recurrence, "enabled": enabled}


def weekly(days, start, minutes, tz="UTC") -> dict:
    return {"days_of_week": days, "start_time": start, "duration_minutes": minutes, "timezone": tz}


def test_one_off_window_is_active_from_start_until_just_before_end():
    w = window(utc(2024, 5, 1, 10), utc(2024, 5, 1, 12))
    assert not is_active(w, utc(2024, 5, 1, 9, 59, 59))
    assert is_active(w, utc(2024, 5, 1, 10))
    assert is_active(w, utc(2024, 5, 1, 11, 59, 59))
    assert not is_active(w, utc(2024, 5, 1, 12))


def test_window_without_end_is_indefinite_and_disabled_window_never_active():
    assert is_active(window(utc(2024, 5, 1)), utc(2030, 1, 1))
    assert not is_active(window(utc(2024, 5, 1), enabled=False), utc(2024, 5, 2))
    assert next_occurrences(window(utc(2024, 5, 1), enabled=False), utc(2024, 5, 2)) == []


def test_instants_in_other_offsets_compare_as_instants_and_naive_ones_are_refused():
    w = window(utc(2024, 5, 1, 10), utc(2024, 5, 1, 12))
    assert is_active(w, datetime(2024, 5, 1, 13, 30, tzinfo=BERLIN))  # 11:30 UTC
    with pytest.raises(ValueError, match="naive"):
        is_active(w, datetime(2024, 5, 1, 11))


def test_weekly_occurrence_runs_past_midnight_into_a_day_not_listed():
    w = window(recurrence=weekly([0, 2], "22:00", 180))  # Monday and Wednesday 22:00-01:00 UTC
    assert is_active(w, utc(2024, 5, 6, 23, 30))  # Monday
    assert is_active(w, utc(2024, 5, 7, 0, 59))  # Tuesday, still Monday's occurrence
    assert not is_active(w, utc(2024, 5, 7, 1, 0))
    assert not is_active(w, utc(2024, 5, 7, 22, 30))  # Tuesday's own evening
    assert is_active(w, utc(2024, 5, 8, 22, 0))  # Wednesday


def test_recurrence_only_counts_inside_the_window_bounds():
    w = window(utc(2024, 5, 6, 23), utc(2024, 5, 13, 23), recurrence=weekly([0], "22:00", 120))
    assert not is_active(w, utc(2024, 5, 6, 22, 30))  # occurrence started before starts_at
    assert is_active(w, utc(2024, 5, 6, 23, 30))
    assert is_active(w, utc(2024, 5, 13, 22, 30))
    assert not is_active(w, utc(2024, 5, 13, 23, 30))  # past ends_at
    assert next_occurrences(w, utc(2024, 5, 1)) == [
        (utc(2024, 5, 6, 23), utc(2024, 5, 7, 0)), (utc(2024, 5, 13, 22), utc(2024, 5, 13, 23))]


def test_local_start_time_follows_the_zone_offset_through_the_year():
    w = window(recurrence=weekly([0, 1, 2, 3, 4, 5, 6], "02:00", 60, "Europe/Berlin"))
    assert is_active(w, utc(2024, 1, 15, 1, 30))  # CET: 02:30 local
    assert not is_active(w, utc(2024, 7, 15, 1, 30))  # CEST: 03:30 local
    assert is_active(w, utc(2024, 7, 15, 0, 30))  # CEST: 02:30 local


def test_start_time_in_the_spring_forward_gap_moves_later_by_the_gap():
    # 2024-03-31 Europe/Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    w = window(recurrence=weekly([0, 1, 2, 3, 4, 5, 6], "02:30", 60, "Europe/Berlin"))
    assert next_occurrences(w, utc(2024, 3, 30), count=3) == [
        (utc(2024, 3, 30, 1, 30), utc(2024, 3, 30, 2, 30)),  # 02:30-03:30 CET
        (utc(2024, 3, 31, 1, 30), utc(2024, 3, 31, 2, 30)),  # 03:30-04:30 CEST: one hour later on the clock
        (utc(2024, 4, 1, 0, 30), utc(2024, 4, 1, 1, 30)),  # 02:30-03:30 CEST
    ]
    start = next_occurrences(w, utc(2024, 3, 31))[0][0].astimezone(BERLIN)
    assert (start.hour, start.minute, start.utcoffset()) == (3, 30, timedelta(hours=2))
    assert not is_active(w, utc(2024, 3, 31, 1, 0))  # 03:00 CEST, before the moved start
    assert is_active(w, utc(2024, 3, 31, 2, 29))


def test_spring_forward_gap_in_another_zone():
    w = window(recurrence=weekly([6], "02:30", 30, "America/New_York"))  # Sundays
    (start, end), = next_occurrences(w, utc(2024, 3, 10), count=1)  # 2024-03-10: 02:00 EST -> 03:00 EDT
    assert start == utc(2024, 3, 10, 7, 30) and end == utc(2024, 3, 10, 8, 0)  # 03:30 EDT


def test_occurrence_spanning_the_fall_back_hour_lasts_its_real_duration():
    # 2024-10-27 Europe/Berlin: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 happens twice.
    w = window(recurrence=weekly([6], "01:30", 120, "Europe/Berlin"))  # Sundays 01:30 for 2 h
    (start, end), = next_occurrences(w, utc(2024, 10, 26), count=1)
    assert start == utc(2024, 10, 26, 23, 30) and end == utc(2024, 10, 27, 1, 30)  # 01:30 CEST .. 02:30 CET
    assert is_active(w, utc(2024, 10, 27, 0, 45))  # 02:45 CEST, first pass
    assert is_active(w, utc(2024, 10, 27, 1, 15))  # 02:15 CET, second pass
    assert not is_active(w, utc(2024, 10, 27, 1, 45))  # 02:45 CET: 120 minutes have passed


def test_ambiguous_start_time_on_fall_back_day_means_the_first_one_only():
    w = window(recurrence=weekly([0, 1, 2, 3, 4, 5, 6], "02:30", 30, "Europe/Berlin"))
    occ = next_occurrences(w, utc(2024, 10, 26, 12), count=2)
    assert occ == [(utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 0)),  # 02:30 CEST, once
                   (utc(2024, 10, 28, 1, 30), utc(2024, 10, 28, 2, 0))]  # 02:30 CET next day
    assert is_active(w, utc(2024, 10, 27, 0, 45))
    assert not is_active(w, utc(2024, 10, 27, 1, 45))  # the repeated 02:45 (CET) is not a second start


def test_weekly_wall_clock_time_is_kept_across_both_transitions():
    w = window(recurrence=weekly([6], "04:00", 60, "Europe/Berlin"))
    starts = [s.astimezone(BERLIN) for s, _ in next_occurrences(w, utc(2024, 3, 20), count=33)]
    assert all((s.hour, s.minute, s.weekday()) == (4, 0, 6) for s in starts)
    assert {s.utcoffset() for s in starts} == {timedelta(hours=1), timedelta(hours=2)}


def test_next_occurrences_includes_the_one_in_progress_and_honours_count():
    w = window(recurrence=weekly([0, 1, 2, 3, 4], "09:00", 60))
    occ = next_occurrences(w, utc(2024, 5, 10, 9, 30), count=2)  # Friday, during the occurrence
    assert occ == [(utc(2024, 5, 10, 9), utc(2024, 5, 10, 10)), (utc(2024, 5, 13, 9), utc(2024, 5, 13, 10))]
    assert next_occurrences(w, utc(2024, 5, 10), count=0) == []


def test_next_occurrences_of_one_off_windows():
    w = window(utc(2024, 5, 1), utc(2024, 5, 2))
    assert next_occurrences(w, utc(2024, 4, 1)) == [(utc(2024, 5, 1), utc(2024, 5, 2))]
    assert next_occurrences(w, utc(2024, 5, 2)) == []
    assert next_occurrences(window(utc(2024, 5, 1)), utc(2025, 1, 1)) == [(utc(2024, 5, 1), None)]


def test_week_long_occurrence_covers_the_whole_week():
    w = window(recurrence=weekly([0], "00:00", 7 * 24 * 60))
    assert all(is_active(w, utc(2024, 5, 6) + timedelta(hours=h)) for h in range(0, 24 * 14, 5))


@pytest.mark.parametrize("bad,message", [
    (weekly([], "02:00", 60), "days_of_week"), (weekly([7], "02:00", 60), "days_of_week"),
    (weekly([1], "24:00", 60), "start_time"), (weekly([1], "2:00", 60), "start_time"),
    (weekly([1], "02:00", 0), "duration"), (weekly([1], "02:00", 10081), "duration"),
    (weekly([1], "02:00", 60, "Mars/Olympus"), "time zone"), (weekly([1], "02:00", 60, "localtime"), "time zone"),
    (weekly([1], "02:00", 60, "../etc/passwd"), "time zone"),
])
def test_invalid_recurrences_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        WeeklyRecurrence.from_dict(bad)
