"""The vectorised backtest gives exactly the alerts of the per-message replay through `step`.

Property-style: random readings (several devices and metrics, gaps, readings equal to the
thresholds, a repeated reading at the same time) against random rules of each vectorised type;
the reference is `backtest.replay`, the exact path the module falls back to.
"""
import random

import polars as pl
import pytest

from pulse.domain.rules import OPERATORS, Condition, Rule
from pulse.pipelines.backtest import Lifecycle, evaluate, replay

END_MS = 10**9
DEVICES = ("d1", "d2", "d3")


def frame(rng: random.Random, metrics: tuple[str, ...]) -> pl.DataFrame:
    """Rows as `readings_frame` gives them: sorted by device, time and metric."""
    rows = []
    for device in DEVICES[:rng.randint(1, 3)]:
        ts = 0
        for _ in range(rng.randint(0, 80)):
            ts += rng.choice((1, 10, 30, 60, 60, 60, 200)) * 1000
            carried = [m for m in metrics if rng.random() < 0.7] or [metrics[0]]
            for metric in carried:
                for _ in range(2 if rng.random() < 0.05 else 1):  # a replayed reading, other seq
                    rows.append((device, ts, metric, float(rng.choice((rng.randint(0, 10), rng.uniform(0, 10))))))
    schema = {"device_id": pl.String, "ts_ms": pl.Int64, "metric": pl.String, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("device_id", "ts_ms", "metric", maintain_order=True)


def rule_of(rng: random.Random, rule_type: str, metrics: tuple[str, ...]) -> Rule:
    conditions = tuple(Condition(m, rng.choice(list(OPERATORS)), float(rng.randint(2, 8))) for m in metrics)
    clear = None
    if len(metrics) == 1 and rng.random() < 0.6:
        step = rng.choice((1, 2)) if rng.random() < 0.8 else -1  # mostly on the clearing side, sometimes not
        clear = conditions[0].threshold + (-step if conditions[0].operator in ("GT", "GTE") else step)
    return Rule("r", "acme", "rule", conditions, rule_type=rule_type, match=rng.choice(("any", "all")),
                duration_seconds=rng.choice((0, 0, 60, 150)), clear_threshold=clear,
                auto_resolve=rng.random() < 0.8, enabled=rng.random() < 0.95,
                device_ids=frozenset(rng.sample(DEVICES, 2)) if rng.random() < 0.2 else None)


def reference(rule: Rule, df: pl.DataFrame) -> list[dict]:
    alerts = Lifecycle("acme")
    replay(rule, df, END_MS, None, alerts)
    return alerts.alerts()


@pytest.mark.parametrize("rule_type, metrics", [("threshold", ("temp",)), ("threshold", ("a", "b")),
                                                ("threshold", ("a", "b", "c")), ("rate_of_change", ("temp",)),
                                                ("rate_of_change", ("temp", "b"))])
def test_vectorised_alerts_equal_the_per_message_replay(rule_type, metrics):
    rng = random.Random(f"{rule_type}{metrics}")
    opened = 0
    for _ in range(150):
        df, rule = frame(rng, metrics), rule_of(rng, rule_type, metrics)
        expected = reference(rule, df)
        assert evaluate(rule, "acme", df, END_MS) == expected, rule
        opened += len(expected)
    assert opened > 100  # the random rules do fire


def test_a_long_breach_opens_once_after_its_duration_and_closes_on_the_hysteresis():
    rule = Rule("r", "acme", "hot", (Condition("temp", "GT", 30),), duration_seconds=120, clear_threshold=28)
    values = [20, 31, 32, 33, 29, 31, 29.5, 28, 27, 35]  # a minute apart: breach from 1, open at 3, 29 keeps it
    df = pl.DataFrame({"device_id": ["d1"] * 10, "ts_ms": [i * 60_000 for i in range(10)], "metric": ["temp"] * 10,
                       "value": [float(v) for v in values]})
    alerts = evaluate(rule, "acme", df, END_MS)
    assert alerts == reference(rule, df)
    assert [(a["opened_at"].minute, a["closed_at"] and a["closed_at"].minute, a["trigger_value"]) for a in alerts] == [
        (3, 7, 33.0)]
