"""Every rule type through the one state machine: window, rate of change, anomaly, multi-condition,
hysteresis and telemetry gaps."""
import random

import pytest

from pulse.domain.rules import Condition, Rule, RuleState, step, tick


def rule(rule_type="threshold", conditions=(("temp", "GT", 30.0),), **kw):
    return Rule("r1", "t1", "r", tuple(Condition(*c) for c in conditions), rule_type=rule_type, **kw)


def run(r, readings, state=None):
    """readings: [(ts_seconds, {metric: value})] -> [(kind, ts_seconds)]"""
    state = state or RuleState()
    out = []
    for ts, values in readings:
        ev = step(r, state, "d1", values, int(ts * 1000))
        if ev:
            out.append((ev.kind, ts))
    return out


def test_window_average_opens_when_the_mean_crosses():
    r = rule("window", aggregation="avg", window_seconds=60)
    # single spikes don't move a 60 s average past 30
    assert run(r, [(0, {"temp": 20}), (10, {"temp": 40}), (20, {"temp": 20})]) == []
    assert run(r, [(0, {"temp": 31}), (10, {"temp": 35}), (100, {"temp": 10})]) == [("open", 0), ("clear", 100)]


@pytest.mark.parametrize("agg,values,fires", [("max", [1, 40, 1], True), ("min", [29, 40, 40], False),
                                              ("count", [1] * 31, True), ("sum", [10, 10, 11], True)])
def test_window_aggregations(agg, values, fires):
    r = rule("window", aggregation=agg, window_seconds=3600)
    assert bool(run(r, [(i, {"temp": v}) for i, v in enumerate(values)])) is fires


def test_rate_of_change_is_per_minute():
    r = rule("rate_of_change", conditions=(("temp", "GT", 5.0),))
    # +2 per minute, then +10 in 30 s (= 20/min)
    assert run(r, [(0, {"temp": 20}), (60, {"temp": 22}), (90, {"temp": 32}), (150, {"temp": 32})]) == [
        ("open", 90), ("clear", 150)]


def test_anomaly_needs_min_samples_then_flags_outliers():
    r = rule("anomaly", conditions=(("temp", "GT", 3.0),), min_samples=5, window_size=20)
    steady = [(i, {"temp": 20 + (i % 2) * 0.5}) for i in range(10)]
    assert run(r, [(0, {"temp": 100})] + steady[1:4]) == []  # too few samples to judge the first
    events = run(r, steady + [(10, {"temp": 40}), (11, {"temp": 20.5})])
    assert events == [("open", 10), ("clear", 11)]


def test_multi_condition_all_and_any():
    both = rule(conditions=(("temp", "GT", 30.0), ("hum", "GT", 80.0)), match="all")
    assert run(both, [(0, {"temp": 35}), (1, {"hum": 85}), (2, {"temp": 20})]) == [("open", 1), ("clear", 2)]
    either = rule(conditions=(("temp", "GT", 30.0), ("hum", "GT", 80.0)), match="any")
    assert run(either, [(0, {"hum": 85}), (1, {"temp": 20}), (2, {"hum": 10})]) == [("open", 0), ("clear", 2)]


def test_hysteresis_keeps_an_alert_open_until_the_clear_threshold():
    r = rule(clear_threshold=28.0)
    assert run(r, [(0, {"temp": 31}), (1, {"temp": 29}), (2, {"temp": 29.5}), (3, {"temp": 27})]) == [
        ("open", 0), ("clear", 3)]


def test_telemetry_gap_fires_on_a_timer_and_clears_on_the_next_message():
    r = rule("telemetry_gap", conditions=(("temp", "GT", 0.0),), gap_seconds=600)
    state = RuleState()
    assert tick(r, state, "d1", 0, 599_000) is None
    ev = tick(r, state, "d1", 0, 601_000)
    assert ev.kind == "open" and ev.alert_type == "NO_TELEMETRY" and ev.value == 601
    assert tick(r, state, "d1", 0, 700_000) is None  # once
    assert step(r, state, "d1", {"hum": 1}, 702_000) is None  # another metric doesn't end the gap
    assert step(r, state, "d1", {"temp": 1}, 703_000).kind == "clear"


def test_telemetry_gap_without_any_reading_ever_does_not_fire():
    r = rule("telemetry_gap", conditions=(("*", "GT", 0.0),), gap_seconds=60)
    assert tick(r, RuleState(), "d1", None, 10**9) is None


def test_state_round_trips_through_a_snapshot():
    r = rule("window", aggregation="avg", window_seconds=600)
    state = RuleState()
    run(r, [(0, {"temp": 31}), (1, {"temp": 33})], state)
    again = RuleState.from_dict(state.to_dict())
    assert again.firing and list(again.samples) == list(state.samples)
    assert run(r, [(2, {"temp": 0})], again) == [("clear", 2)]  # the restored window: (31 + 33 + 0) / 3


def general(r):
    """The same rule evaluated without `threshold_on` (the steps every rule type takes)."""
    object.__setattr__(r, "threshold_on", None)
    return r


@pytest.mark.parametrize("op", ["GT", "GTE", "LT", "LTE", "EQ", "NE"])
@pytest.mark.parametrize("kw", [{}, {"duration_seconds": 3}, {"clear_threshold": 25.0}, {"auto_resolve": False}])
def test_a_threshold_on_one_metric_steps_as_the_general_path_does(op, kw):
    rnd = random.Random(f"{op}{kw}")
    short, full = rule(conditions=(("temp", op, 30.0),), **kw), general(rule(conditions=(("temp", op, 30.0),), **kw))
    assert short.threshold_on is not None and full.threshold_on is None
    # a restored state that kept another metric, as after the rule was edited
    states = [RuleState.from_dict({"p": None, "f": False, "t": 0, "v": {"hum": 1.0, "x": 2.0}}) for _ in range(2)]
    events = [], []
    for i in range(400):
        ts = (i - rnd.choice([0, 0, 0, 5])) * 1000  # late messages too
        readings = rnd.choice([{"temp": rnd.choice([20.0, 25.0, 30.0, 31.0, 35.0])}, {"hum": 50.0},
                               {"temp": rnd.choice([29, 30, 31]), "hum": 1.0}])
        for r, state, out in zip((short, full), states, events):
            ev = step(r, state, "d1", readings, ts)
            out.append(ev and (ev.kind, ev.value, ev.ts_ms, ev.details))
        assert states[0] == states[1] and states[0].to_dict() == states[1].to_dict()
    assert events[0] == events[1] and any(events[0])


def test_only_a_threshold_on_one_metric_with_a_known_operator_takes_the_short_way():
    assert rule().threshold_on[0] == "temp"
    assert rule(conditions=(("temp", "GT", 30.0), ("hum", "GT", 80.0))).threshold_on is None
    assert rule("window").threshold_on is None
    assert rule(conditions=(("temp", "BETWEEN", 30.0),)).threshold_on is None
