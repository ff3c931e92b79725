"""On-call maths: rotations on the local wall clock (DST), restrictions, priorities and overrides."""
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pulse.domain.oncall import (Layer, Override, check_range, final_timeline, layer_on_call, layer_shifts,
                                 on_call_at, responder_at)
from pulse.domain.timezones import zone

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz, *args) -> datetime:
    return datetime(*args, tzinfo=tz)


def layer(participants=("ann", "bob", "cy"), rotation_type="daily", start_at=utc(2024, 1, 1, 9), handoff_time="09:00",
          layer_id="l1", order=0, **fields) -> Layer:
    if rotation_type == "weekly":
        fields.setdefault("handoff_day", 0)
    return Layer.from_row({"layer_id": layer_id, "order": order, "rotation_type": rotation_type,
                           "start_at": start_at, "handoff_time": handoff_time, "participants": list(participants),
                           **fields})


def override(oid, responder, start, end, layer_id=None, created=utc(2024, 1, 1)) -> Override:
    return Override(oid, responder, start, end, layer_id, created)


def who(l, tz, at):
    s = layer_on_call(l, tz, at)
    return s.responder if s else None


def spans(shifts, tz=UTC):
    """(local start, local end, responder, real hours) for readable assertions."""
    return [(s.start.astimezone(tz).strftime("%m-%d %H:%M"), s.end.astimezone(tz).strftime("%m-%d %H:%M"),
             s.responder, (s.end - s.start) / H) for s in shifts]


# ---- rotations -------------------------------------------------------------------------------------
def test_daily_rotation_hands_off_at_the_handoff_time_in_participant_order():
    l = layer()
    assert spans(layer_shifts(l, UTC, utc(2024, 1, 1), utc(2024, 1, 4, 12))) == [
        ("01-01 09:00", "01-02 09:00", "ann", 24), ("01-02 09:00", "01-03 09:00", "bob", 24),
        ("01-03 09:00", "01-04 09:00", "cy", 24), ("01-04 09:00", "01-04 12:00", "ann", 3)]
    assert who(l, UTC, utc(2024, 1, 2, 8, 59, 59)) == "ann"
    assert who(l, UTC, utc(2024, 1, 2, 9)) == "bob"


def test_nobody_before_start_at_or_from_end_at():
    l = layer(end_at=utc(2024, 1, 3, 12))
    assert who(l, UTC, utc(2024, 1, 1, 8, 59)) is None
    assert who(l, UTC, utc(2024, 1, 3, 11, 59)) == "cy"
    assert who(l, UTC, utc(2024, 1, 3, 12)) is None
    assert layer_shifts(l, UTC, utc(2024, 1, 3), utc(2024, 1, 5))[-1].end == utc(2024, 1, 3, 12)
    assert layer_shifts(l, UTC, utc(2023, 12, 1), utc(2023, 12, 31)) == []


def test_first_participant_holds_the_shift_in_progress_at_start_at():
    l = layer(start_at=utc(2024, 1, 1, 15))  # mid-shift: handoffs stay at 09:00
    assert spans(layer_shifts(l, UTC, utc(2024, 1, 1), utc(2024, 1, 3, 9))) == [
        ("01-01 15:00", "01-02 09:00", "ann", 18), ("01-02 09:00", "01-03 09:00", "bob", 24)]


def test_weekly_rotation_never_resets_unlike_the_documented_system():
    # the documented system re-anchored every week, so a weekly layer always showed its first person
    l = layer(("ann", "bob", "cy"), "weekly", start_at=utc(2024, 1, 1, 9), handoff_day=0)  # Monday
    mondays = [utc(2024, 1, 1, 10) + timedelta(weeks=w) for w in range(7)]
    assert [who(l, UTC, t) for t in mondays] == ["ann", "bob", "cy", "ann", "bob", "cy", "ann"]
    far = utc(2024, 1, 1, 10) + timedelta(weeks=3 * 1000 + 1)  # ~57 years on, still exact
    assert who(l, UTC, far) == "bob"


def test_weekly_handoff_day_and_time_are_local():
    l = layer(("ann", "bob"), "weekly", start_at=local(BERLIN, 2024, 1, 10, 12), handoff_time="09:00",
              handoff_day=0)  # a Wednesday: ann until Monday 09:00 Berlin
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 15, 8, 59)) == "ann"
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 15, 9)) == "bob"
    assert layer_on_call(l, BERLIN, utc(2024, 1, 16)).start == utc(2024, 1, 15, 8)  # 09:00 CET


def test_custom_rotation_phase_follows_the_handoff_time():
    l = layer(("ann", "bob"), "custom", shift_hours=12, start_at=utc(2024, 1, 1, 6), handoff_time="08:00")
    assert spans(layer_shifts(l, UTC, utc(2024, 1, 1), utc(2024, 1, 2, 9))) == [
        ("01-01 06:00", "01-01 08:00", "ann", 2), ("01-01 08:00", "01-01 20:00", "bob", 12),
        ("01-01 20:00", "01-02 08:00", "ann", 12), ("01-02 08:00", "01-02 09:00", "bob", 1)]
    l = layer(("a", "b", "c"), "custom", shift_hours=5, start_at=utc(2024, 1, 1, 6), handoff_time="08:00")
    assert [s.start.hour for s in layer_shifts(l, UTC, utc(2024, 1, 1), utc(2024, 1, 2))] == [6, 8, 13, 18, 23]


# ---- daylight saving time --------------------------------------------------------------------------
@pytest.mark.parametrize("tz,spring,fall", [
    (BERLIN, (2024, 3, 31), (2024, 10, 27)), (NEW_YORK, (2024, 3, 10), (2024, 11, 3)),
])
def test_daily_handoffs_stay_at_local_time_so_dst_days_last_23_and_25_hours(tz, spring, fall):
    l = layer(("ann", "bob"), start_at=local(tz, 2024, 1, 1, 9))
    for day, hours in ((spring, 23), (fall, 25)):
        shifts = layer_shifts(l, tz, local(tz, *day) - timedelta(days=2), local(tz, *day) + timedelta(days=2))
        assert all(s.start.astimezone(tz).hour == 9 for s in shifts[1:])
        lengths = [(s.end - s.start) / H for s in shifts[1:-1]]
        assert lengths == [24, hours, 24], (tz, day)


def test_handoff_missing_on_spring_forward_day_happens_later_by_the_gap():
    # 2024-03-31 Europe/Berlin: 02:00 CET jumps to 03:00 CEST; a 02:30 handoff does not exist that day
    l = layer(("ann", "bob", "cy"), start_at=local(BERLIN, 2024, 3, 29, 2, 30), handoff_time="02:30")
    assert spans(layer_shifts(l, BERLIN, utc(2024, 3, 29), utc(2024, 4, 2)), BERLIN) == [
        ("03-29 02:30", "03-30 02:30", "ann", 24), ("03-30 02:30", "03-31 03:30", "bob", 24),
        ("03-31 03:30", "04-01 02:30", "cy", 23), ("04-01 02:30", "04-02 02:00", "ann", 23.5)]
    assert who(l, BERLIN, local(BERLIN, 2024, 3, 31, 3, 15)) == "bob"  # after the gap, before the handoff
    assert who(l, BERLIN, utc(2024, 3, 31, 1, 30)) == "cy"


def test_handoff_missing_on_spring_forward_day_in_new_york():
    l = layer(("ann", "bob"), start_at=utc(2024, 3, 1, 7, 30), handoff_time="02:30")  # 02:30 EST
    shift = layer_on_call(l, NEW_YORK, utc(2024, 3, 10, 12))
    assert shift.start == utc(2024, 3, 10, 7, 30)  # 03:30 EDT
    assert shift.end == utc(2024, 3, 11, 6, 30)  # 02:30 EDT: 23 hours


def test_ambiguous_handoff_on_fall_back_day_is_its_first_occurrence():
    # 2024-10-27 Europe/Berlin: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    l = layer(("ann", "bob"), start_at=local(BERLIN, 2024, 10, 25, 2, 30), handoff_time="02:30")
    assert spans(layer_shifts(l, BERLIN, local(BERLIN, 2024, 10, 26, 2, 30), utc(2024, 10, 28, 12)), BERLIN) == [
        ("10-26 02:30", "10-27 02:30", "bob", 24), ("10-27 02:30", "10-28 02:30", "ann", 25),
        ("10-28 02:30", "10-28 13:00", "bob", 10.5)]
    assert layer_on_call(l, BERLIN, utc(2024, 10, 27, 0, 30)).start == utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    assert who(l, BERLIN, utc(2024, 10, 27, 1, 30)) == "ann"  # the second 02:30 (CET) is not a handoff


def test_weekly_rotation_spanning_dst_lasts_167_or_169_hours_and_keeps_monday_0900():
    l = layer(("ann", "bob"), "weekly", start_at=local(BERLIN, 2024, 3, 25, 9), handoff_day=0)
    shifts = layer_shifts(l, BERLIN, local(BERLIN, 2024, 3, 25, 9), local(BERLIN, 2024, 11, 4, 9))
    assert all((s.start.astimezone(BERLIN).weekday(), s.start.astimezone(BERLIN).hour) == (0, 9) for s in shifts)
    lengths = {s.start.astimezone(BERLIN).date().isoformat(): (s.end - s.start) / H for s in shifts}
    assert lengths["2024-03-25"] == 167 and lengths["2024-10-21"] == 169
    assert {v for k, v in lengths.items() if k not in ("2024-03-25", "2024-10-21")} == {168}
    assert [s.responder for s in shifts[:4]] == ["ann", "bob", "ann", "bob"]


def test_custom_shifts_keep_wall_clock_handoffs_across_dst():
    l = layer(("day", "night"), "custom", shift_hours=12, start_at=local(NEW_YORK, 2024, 11, 1, 8),
              handoff_time="08:00")
    shifts = layer_shifts(l, NEW_YORK, local(NEW_YORK, 2024, 11, 2, 8), local(NEW_YORK, 2024, 11, 4, 8))
    assert [s.start.astimezone(NEW_YORK).hour for s in shifts] == [8, 20, 8, 20]
    assert [(s.responder, (s.end - s.start) / H) for s in shifts] == [
        ("day", 12), ("night", 13), ("day", 12), ("night", 12)]  # 2024-11-03 01:00 EDT -> 01:00 EST


# ---- restrictions ----------------------------------------------------------------------------------
BUSINESS_HOURS = [{"days_of_week": [0, 1, 2, 3, 4], "start_time": "09:00", "end_time": "17:00"}]


def test_restrictions_limit_a_layer_to_local_business_hours():
    l = layer(("ann", "bob"), start_at=local(BERLIN, 2024, 1, 1, 9), restrictions=BUSINESS_HOURS)
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 5, 12)) == "ann"  # Friday
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 5, 17)) is None
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 6, 12)) is None  # Saturday
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 8, 8, 59)) is None
    assert who(l, BERLIN, local(BERLIN, 2024, 1, 8, 9)) == "bob"  # the rotation ran on over the weekend
    stretch = layer_on_call(l, BERLIN, local(BERLIN, 2024, 1, 8, 10))
    assert (stretch.start, stretch.end) == (local(BERLIN, 2024, 1, 8, 9), local(BERLIN, 2024, 1, 8, 17))
    week = layer_shifts(l, BERLIN, local(BERLIN, 2024, 1, 1), local(BERLIN, 2024, 1, 8))
    assert len(week) == 5 and all((s.end - s.start) == 8 * H for s in week)
    summer = layer_on_call(l, BERLIN, utc(2024, 7, 1, 7, 30))  # 09:30 CEST
    assert summer.start == utc(2024, 7, 1, 7)


def test_a_restriction_window_may_cross_midnight_and_a_shift_change():
    nights = [{"days_of_week": [4], "start_time": "22:00", "end_time": "06:00"}]  # Friday night
    l = layer(("ann", "bob"), start_at=utc(2024, 1, 1, 0), handoff_time="00:00", restrictions=nights)
    assert spans(layer_shifts(l, UTC, utc(2024, 1, 5), utc(2024, 1, 7))) == [
        ("01-05 22:00", "01-06 00:00", "ann", 2), ("01-06 00:00", "01-06 06:00", "bob", 6)]


def test_all_day_restriction_and_several_windows_merge():
    l = layer(("ann",), start_at=utc(2024, 1, 1), handoff_time="00:00", restrictions=[
        {"days_of_week": [5, 6], "start_time": "00:00", "end_time": "24:00"},
        {"days_of_week": [4], "start_time": "18:00", "end_time": "24:00"}])
    assert spans(layer_shifts(l, UTC, utc(2024, 1, 1), utc(2024, 1, 8))) == [
        ("01-05 18:00", "01-06 00:00", "ann", 6), ("01-06 00:00", "01-07 00:00", "ann", 24),
        ("01-07 00:00", "01-08 00:00", "ann", 24)]  # shifts are daily; the final timeline merges them


# ---- layers, priorities and overrides --------------------------------------------------------------
def test_lowest_order_layer_wins_and_restricted_time_falls_through():
    primary = layer(("ann",), layer_id="primary", order=0, restrictions=BUSINESS_HOURS)
    backup = layer(("bob",), layer_id="backup", order=5)
    both = [backup, primary]
    assert responder_at(both, [], UTC, utc(2024, 1, 2, 12)) == "ann"
    assert responder_at(both, [], UTC, utc(2024, 1, 2, 20)) == "bob"
    assert responder_at(both, [], UTC, utc(2023, 12, 31)) is None  # before either layer starts
    assert responder_at([], [], UTC, utc(2024, 1, 2)) is None


def test_schedule_override_wins_and_the_latest_created_wins_where_overrides_overlap():
    l = layer(("ann",))
    early = override("o1", "zed", utc(2024, 1, 2, 10), utc(2024, 1, 2, 14), created=utc(2024, 1, 1, 1))
    late = override("o2", "yan", utc(2024, 1, 2, 12), utc(2024, 1, 2, 13), created=utc(2024, 1, 1, 2))
    final = final_timeline([l], [late, early], UTC, utc(2024, 1, 2, 9), utc(2024, 1, 2, 16))
    assert [(s.start.hour, s.end.hour, s.responder, s.source, s.override_id) for s in final] == [
        (9, 10, "ann", "layer", None), (10, 12, "zed", "override", "o1"), (12, 13, "yan", "override", "o2"),
        (13, 14, "zed", "override", "o1"), (14, 16, "ann", "layer", None)]
    nobody = final_timeline([], [early], UTC, utc(2024, 1, 2, 9), utc(2024, 1, 2, 16))
    assert [(s.start.hour, s.end.hour, s.responder) for s in nobody] == [(10, 14, "zed")]  # gaps: nobody


def test_layer_override_replaces_only_its_layer():
    primary = layer(("ann",), layer_id="primary", order=0, restrictions=BUSINESS_HOURS)
    backup = layer(("bob",), layer_id="backup", order=1)
    cover_backup = override("o1", "zed", utc(2024, 1, 2, 8), utc(2024, 1, 2, 20), layer_id="backup")
    ghost = override("o2", "gus", utc(2024, 1, 2), utc(2024, 1, 3), layer_id="deleted-layer")
    args = ([primary, backup], [cover_backup, ghost], UTC)
    assert responder_at(*args, utc(2024, 1, 2, 12)) == "ann"  # the primary layer still comes first
    assert responder_at(*args, utc(2024, 1, 2, 18)) == "zed"  # outside business hours: backup, overridden
    assert responder_at(*args, utc(2024, 1, 2, 21)) == "bob"
    cover_primary = override("o3", "pam", utc(2024, 1, 2, 18), utc(2024, 1, 2, 19), layer_id="primary")
    # a layer override applies even outside the layer's restriction windows
    assert responder_at([primary, backup], [cover_primary], UTC, utc(2024, 1, 2, 18, 30)) == "pam"
    stretch = on_call_at([primary, backup], [cover_primary], UTC, utc(2024, 1, 2, 18, 30))
    assert (stretch.layer_id, stretch.override_id, stretch.source) == ("primary", "o3", "override")


def test_final_timeline_merges_a_persons_consecutive_shifts_from_one_layer():
    l = layer(("ann", "ann", "bob"))
    final = final_timeline([l], [], UTC, utc(2024, 1, 1), utc(2024, 1, 5))
    assert [(s.start.day, s.end.day, s.responder) for s in final] == [(1, 3, "ann"), (3, 4, "bob"), (4, 5, "ann")]
    assert final[0].start == utc(2024, 1, 1, 9)


def test_current_stretch_is_clipped_to_the_horizon_either_side():
    l = layer(("solo",))
    at = utc(2024, 3, 1)
    stretch = on_call_at([l], [], UTC, at, horizon=timedelta(days=2))
    assert (stretch.start, stretch.end, stretch.responder) == (at - timedelta(days=2), at + timedelta(days=2), "solo")
    assert on_call_at([l], [], UTC, utc(2023, 1, 1)) is None


def test_pointwise_answers_agree_with_the_timelines():
    rng = random.Random(7)
    tz = BERLIN
    layers_ = [layer(("a", "b", "c"), "custom", shift_hours=7, layer_id="x", order=0, handoff_time="02:30",
                     start_at=local(tz, 2024, 3, 1, 1), restrictions=[
                         {"days_of_week": [0, 2, 4, 6], "start_time": "20:00", "end_time": "03:00"}]),
               layer(("d", "e"), "weekly", layer_id="y", order=1, start_at=local(tz, 2024, 3, 20, 2, 30),
                     handoff_time="02:30", handoff_day=6)]
    overrides = [override("o1", "z", utc(2024, 3, 30, 23), utc(2024, 3, 31, 4), created=utc(2024, 1, 2)),
                 override("o2", "w", utc(2024, 3, 31, 1), utc(2024, 4, 1), layer_id="y", created=utc(2024, 1, 3))]
    start, end = utc(2024, 3, 25), utc(2024, 4, 8)
    final = final_timeline(layers_, overrides, tz, start, end)
    per_layer = {l.layer_id: layer_shifts(l, tz, start, end) for l in layers_}
    for _ in range(400):
        t = start + (end - start) * rng.random()
        expected = next((s.responder for s in final if s.contains(t)), None)
        assert responder_at(layers_, overrides, tz, t) == expected, t
        for l in layers_:
            assert who(l, tz, t) == next((s.responder for s in per_layer[l.layer_id] if s.contains(t)), None), t
    assert all(a.end <= b.start for a, b in zip(final, final[1:]))


# ---- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields,message", [
    ({"rotation_type": "hourly"}, "rotation_type"), ({"rotation_type": "custom"}, "shift_hours"),
    ({"rotation_type": "custom", "shift_hours": 721}, "shift_hours"), ({"shift_hours": 12}, "shift_hours"),
    ({"rotation_type": "weekly", "handoff_day": 7}, "handoff_day"), ({"handoff_day": 1}, "handoff_day"),
    ({"handoff_time": "9:00"}, "handoff_time"), ({"handoff_time": "24:00"}, "handoff_time"),
    ({"participants": []}, "participants"), ({"participants": ["x"] * 101}, "participants"),
    ({"participants": [""]}, "participants"), ({"end_at": utc(2024, 1, 1, 9)}, "end_at"),
    ({"start_at": datetime(2024, 1, 1)}, "naive"),
    ({"restrictions": [{"days_of_week": [], "start_time": "09:00", "end_time": "17:00"}]}, "days_of_week"),
    ({"restrictions": [{"days_of_week": [1], "start_time": "09:00", "end_time": "09:00"}]}, "differ"),
    ({"restrictions": [{"days_of_week": [1], "start_time": "24:00", "end_time": "09:00"}]}, "start_time"),
])
def test_invalid_layers_are_refused(fields, message):
    row = {"layer_id": "l", "rotation_type": "daily", "start_at": utc(2024, 1, 1, 9), "handoff_time": "09:00",
           "participants": ["a"], **fields}
    with pytest.raises(ValueError, match=message):
        Layer.from_row(row)


def test_ranges_zones_and_instants_are_checked():
    assert check_range(utc(2024, 1, 1), utc(2024, 3, 1)) == (utc(2024, 1, 1), utc(2024, 3, 1))
    with pytest.raises(ValueError, match="60 days"):
        check_range(utc(2024, 1, 1), utc(2024, 3, 1, 0, 0, 1))
    with pytest.raises(ValueError, match="after"):
        check_range(utc(2024, 1, 1), utc(2024, 1, 1))
    for bad in ("Mars/Olympus", "localtime", "../etc/passwd"):
        with pytest.raises(ValueError, match="time zone"):
            zone(bad)
    with pytest.raises(ValueError, match="naive"):
        responder_at([layer()], [], UTC, datetime(2024, 1, 2))
