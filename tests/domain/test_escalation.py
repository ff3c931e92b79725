"""Escalation steps (plan, advance: delays, repeats, late ticks) and the digest schedule (time zones, DST)."""
from datetime import datetime, timedelta, timezone

import pytest

from pulse.domain.escalation import Policy, advance, check_levels, digest_window, is_due, last_slot, plan
from pulse.domain.timezones import zone

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def level(delay, *targets):
    return {"delay_minutes": delay, "targets": [{"type": t.split(":")[0], "id": t.split(":")[1]} for t in targets]}


THREE = {"levels": [level(0, "channel:a"), level(10, "user:b@x.io"), level(30, "oncall_schedule:s")], "repeat": 2}


def run_chain(policy, opened_at):
    """Fire every step exactly when due; -> [(fired_at, level, target ids)]."""
    out, lvl, at = [], 0, plan(policy, opened_at)
    while at is not None:
        targets, lvl, nxt = advance(policy, lvl, at)
        out.append((at, lvl, [t["id"] for t in targets]))
        at = nxt
    return out


def test_plan_times_the_first_level_from_when_the_alert_opened():
    assert plan(THREE, T0) == T0
    assert plan({"levels": [level(15, "channel:a")]}, T0) == T0 + timedelta(minutes=15)


def test_chain_walks_the_levels_then_repeats_the_last_with_its_own_delay():
    m = timedelta(minutes=1)
    assert run_chain(THREE, T0) == [
        (T0, 1, ["a"]), (T0 + 10 * m, 2, ["b@x.io"]), (T0 + 40 * m, 3, ["s"]),
        (T0 + 70 * m, 4, ["s"]), (T0 + 100 * m, 5, ["s"])]


def test_without_repeat_the_chain_ends_after_the_last_level():
    policy = {"levels": [level(5, "channel:a"), level(5, "channel:b")], "repeat": 0}
    assert [lvl for _, lvl, _ in run_chain(policy, T0)] == [1, 2]
    assert advance(policy, 1, T0) == ([{"type": "channel", "id": "b"}], 2, None)


def test_a_finished_or_shortened_chain_fires_nothing():
    policy = {"levels": [level(5, "channel:a")], "repeat": 1}
    assert advance(policy, 2, T0) == ([], 2, None)
    assert advance(policy, 7, T0) == ([], 7, None)  # the policy lost levels since this alert started


def test_a_late_tick_delays_the_rest_of_the_chain_instead_of_bursting():
    late = T0 + timedelta(hours=3)  # the scheduler was down
    targets, lvl, nxt = advance(THREE, 1, late)
    assert lvl == 2 and nxt == late + timedelta(minutes=30)


def test_targets_come_back_as_given_and_a_policy_object_works_too():
    policy = Policy.from_row(THREE)
    assert policy.steps == 5 and policy.level_of(5) == policy.levels[2]
    assert advance(policy, 0, T0)[0] == [{"type": "channel", "id": "a"}]


@pytest.mark.parametrize("levels, repeat, message", [
    ([], 0, "1 to 10 levels"),
    ([level(1, "channel:a")] * 11, 0, "1 to 10 levels"),
    ([level(1, "channel:a")], 6, "repeat"),
    ([level(5, "channel:a"), level(0, "channel:b")], 1, "last level's delay_minutes"),
])
def test_check_levels_refuses_policies_that_cannot_run(levels, repeat, message):
    with pytest.raises(ValueError, match=message):
        check_levels(levels, repeat)
    check_levels([level(0, "channel:a")], 0)  # notify at once, no repeat: fine


# ---- digest schedule ------------------------------------------------------------------------------
def digest(frequency, **kw):
    return {"frequency": frequency, "send_at_hour": 8, "send_on_day": "mon", "timezone": "UTC",
            "last_sent_at": None, "updated_at": datetime(2026, 1, 1, tzinfo=UTC), **kw}


def test_disabled_is_never_due():
    assert last_slot(digest("disabled"), T0) is None and not is_due(digest("disabled"), T0)


def test_daily_is_due_once_per_local_day_at_the_hour():
    s = digest("daily", timezone="America/New_York")  # 08:00 EST = 13:00 UTC in March before DST
    before, at = datetime(2026, 3, 2, 12, 59, tzinfo=UTC), datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    s["last_sent_at"] = datetime(2026, 3, 1, 13, 0, 5, tzinfo=UTC)
    assert not is_due(s, before) and is_due(s, at)
    s["last_sent_at"] = at + timedelta(seconds=5)
    assert not is_due(s, at + timedelta(hours=10))
    assert is_due(s, datetime(2026, 3, 3, 13, 0, tzinfo=UTC))


def test_daily_follows_daylight_saving_time():
    s = digest("daily", timezone="Europe/Berlin")
    # 29 March 2026: Berlin moves from UTC+1 to UTC+2; 08:00 local is 07:00 UTC before, 06:00 UTC after
    assert last_slot(s, datetime(2026, 3, 28, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    assert last_slot(s, datetime(2026, 3, 30, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_a_send_hour_skipped_by_dst_still_sends_that_day():
    s = digest("daily", timezone="Europe/Berlin", send_at_hour=2)  # 02:00 does not exist on 29 March
    # read with the offset before the change: 01:00 UTC, which is 03:00 CEST
    assert last_slot(s, datetime(2026, 3, 29, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_hourly_is_due_every_local_hour_even_in_half_hour_zones():
    s = digest("hourly", timezone="Asia/Kolkata", last_sent_at=datetime(2026, 3, 2, 8, 30, 1, tzinfo=UTC))
    assert not is_due(s, datetime(2026, 3, 2, 9, 29, tzinfo=UTC))  # 14:59 local
    assert is_due(s, datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # 15:00 local


def test_weekly_is_due_on_its_day_and_hour():
    s = digest("weekly", send_on_day="wed", send_at_hour=9, last_sent_at=datetime(2026, 2, 25, 9, 0, 1, tzinfo=UTC))
    assert last_slot(s, datetime(2026, 3, 3, 12, 0, tzinfo=UTC)) == datetime(2026, 2, 25, 9, 0, tzinfo=UTC)
    assert not is_due(s, datetime(2026, 3, 4, 8, 59, tzinfo=UTC))
    assert is_due(s, datetime(2026, 3, 4, 9, 0, tzinfo=UTC))


def test_the_first_digest_waits_for_the_first_slot_after_saving():
    saved = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    s = digest("daily", updated_at=saved)
    assert not is_due(s, saved + timedelta(hours=1))
    assert is_due(s, datetime(2026, 3, 3, 8, 0, tzinfo=UTC))


def test_a_long_outage_makes_one_digest_due_not_one_per_missed_slot():
    s = digest("hourly", last_sent_at=T0)
    now = T0 + timedelta(hours=5, minutes=10)
    assert is_due(s, now)
    s["last_sent_at"] = now
    assert not is_due(s, now + timedelta(minutes=30))


def test_digest_window_covers_since_the_last_send_but_at_most_two_periods():
    now = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert digest_window(digest("daily", last_sent_at=now - timedelta(hours=27)), now) == (now - timedelta(hours=27), now)
    assert digest_window(digest("daily", last_sent_at=now - timedelta(days=40)), now) == (now - timedelta(days=1), now)
    assert digest_window(digest("weekly"), now) == (now - timedelta(days=7), now)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "localtime", " UTC"])
def test_zone_accepts_iana_names_only(name):
    with pytest.raises(ValueError):
        zone(name)
    assert zone("Europe/Berlin").key == "Europe/Berlin"
