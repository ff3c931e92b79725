"""The SLA arithmetic (pulse.domain.sla) against hand-computed values."""
from datetime import datetime, timedelta, timezone

from pulse.domain.sla import (DeviceTime, availability_pct, covered, current_outage, mean_minutes, outage_of_alert,
                              percent)

T = datetime(2026, 12, 1, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


def test_overlapping_and_touching_outages_count_once_and_are_clipped_to_the_window():
    outages = [(at(-30), at(10)), (at(5), at(20)), (at(20), at(25)), (at(50), at(200))]
    # inside [0, 60): 0-25 (three merged) and 50-60 -> 35 minutes
    assert covered(outages, (at(0), at(60))) == timedelta(minutes=35)
    assert covered([], (at(0), at(60))) == timedelta(0)
    assert covered([(at(70), at(80))], (at(0), at(60))) == timedelta(0)


def test_availability_is_the_share_of_device_time_without_an_outage():
    devices = [
        DeviceTime((at(0), at(100)), [(at(10), at(20)), (at(15), at(30))]),  # 20 of 100 down
        DeviceTime((at(50), at(100)), []),  # registered half way: 50 up
        DeviceTime((at(100), at(100)), [(at(0), at(100))]),  # empty window: not counted
    ]
    assert availability_pct(devices) == round(100 * 130 / 150, 2) == 86.67
    assert availability_pct([]) is None


def test_an_alert_outage_runs_from_the_last_message_plus_the_threshold_to_the_message_that_ended_it():
    # last message at 0, stale after 60 s; the tick at 3 min saw 180 s of silence; the device spoke
    # again at 10 min and the tick at 10.5 min (silent 30 s) auto-closed the alert
    assert outage_of_alert(at(3), 180, 60, at(10.5), 30, at(99)) == (at(1), at(10))
    # closed by a user (no silence figure): ends at the close; still open: runs until now
    assert outage_of_alert(at(3), 180, 60, at(7), None, at(99)) == (at(1), at(7))
    assert outage_of_alert(at(3), 180, 60, None, None, at(99)) == (at(1), at(99))


def test_the_current_outage_starts_once_the_device_is_no_longer_online():
    assert current_outage(at(0), 60, at(10)) == (at(1), at(10))
    assert current_outage(at(0), 60, at(0.5)) is None  # still ONLINE
    assert current_outage(None, 60, at(10)) is None  # never heard from


def test_means_and_percentages():
    assert mean_minutes([(at(0), at(4)), (at(10), at(12)), (at(0), at(0.5))]) == round(6.5 / 3, 2) == 2.17
    assert mean_minutes([]) is None
    assert percent(1, 3) == 33.33
    assert percent(0, 0) == 0.0
