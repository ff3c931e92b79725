"""Alert rule evaluation: pure functions over one device's readings.

The device actor calls `step` for every message and `tick` on timer ticks; the backtest uses the
same functions (for vectorised rule types: `advance`, the state machine `step` ends in, with the
signal computed column-wise), so live and backtested alerts agree.

Every rule type reduces a reading to a *signal* (the value itself, a window aggregate, a
per-minute rate, a z-score), compares it with its condition, and shares one state machine:
the condition must hold for `duration_seconds` of device time to open; while open, the alert
clears when the clear condition (hysteresis, `clear_threshold`) no longer holds.
"""
from __future__ import annotations

import math
import operator as op
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from pulse.domain.messages import AlertEvent

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GT": op.gt,
    "GTE": op.ge,
    "LT": op.lt,
    "LTE": op.le,
    "EQ": op.eq,
    "NE": op.ne,
}
RULE_TYPES = ("threshold", "window", "rate_of_change", "anomaly", "telemetry_gap")
AGGREGATIONS = ("avg", "min", "max", "count", "sum")
ALERT_TYPES = {"threshold": "THRESHOLD", "window": "WINDOW", "rate_of_change": "RATE_OF_CHANGE",
               "anomaly": "ANOMALY", "telemetry_gap": "NO_TELEMETRY"}
MAX_WINDOW_SAMPLES = 1000  # per device and rule: bounds actor memory (docs/alerting.md)


@dataclass(frozen=True, slots=True)
class Condition:
    metric: str
    operator: str
    threshold: float

    def holds(self, value: Any) -> Any:
        """For one reading, or element-wise for a numpy array of them (the backtest's columns)."""
        return OPERATORS[self.operator](value, self.threshold)


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    tenant_id: str
    name: str
    conditions: tuple[Condition, ...]
    rule_type: str = "threshold"
    match: str = "all"  # multi-condition threshold rules: all (AND) / any (OR)
    severity: int = 3
    duration_seconds: int = 0
    device_ids: frozenset[str] | None = None
    auto_resolve: bool = True
    enabled: bool = True
    clear_threshold: float | None = None
    aggregation: str = "avg"
    window_seconds: int = 300
    z_threshold: float = 3.0
    min_samples: int = 10
    window_size: int = 60
    gap_seconds: int = 600
    metrics: frozenset[str] = field(default=frozenset(), compare=False)  # derived: the conditions' metrics
    # derived: enabled for every device, so `applies_to` need not be asked (the usual rule)
    everywhere: bool = field(default=False, init=False, compare=False, repr=False)
    # derived: (metric, operator, threshold) of a threshold rule on one metric, the usual rule, which
    # `step` evaluates without the general path's steps
    threshold_on: tuple[str, Callable[[float, float], bool], float] | None = field(
        default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", frozenset(c.metric for c in self.conditions))  # hot path: once
        object.__setattr__(self, "everywhere", bool(self.enabled) and self.device_ids is None)
        if self.rule_type == "threshold" and len(self.conditions) == 1 and self.conditions[0].operator in OPERATORS:
            c = self.conditions[0]
            object.__setattr__(self, "threshold_on", (c.metric, OPERATORS[c.operator], c.threshold))

    @property
    def metric(self) -> str:
        return self.conditions[0].metric

    @property
    def alert_type(self) -> str:
        return ALERT_TYPES[self.rule_type]

    def applies_to(self, device_id: str) -> bool:
        return self.enabled and (self.device_ids is None or device_id in self.device_ids)

    @classmethod
    def from_row(cls, row: dict[str, Any], device_ids: frozenset[str] | None = None) -> "Rule":
        """From an `alert_rules` row; `device_ids` is the resolved scope (None = every device)."""
        cfg = row.get("config") or {}
        conds = cfg.get("conditions") or [{"metric": row["metric"], "operator": row["operator"],
                                           "threshold": row["threshold"]}]
        if device_ids is None and row.get("device_ids"):
            device_ids = frozenset(row["device_ids"])
        extra = {k: cfg[k] for k in ("match", "clear_threshold", "aggregation", "window_seconds", "z_threshold",
                                     "min_samples", "window_size", "gap_seconds") if cfg.get(k) is not None}
        return cls(
            rule_id=row["rule_id"], tenant_id=row["tenant_id"], name=row["name"],
            conditions=tuple(Condition(c["metric"], c.get("operator", "GT"), float(c.get("threshold", 0)))
                             for c in conds),
            rule_type=row.get("rule_type") or "threshold", severity=int(row["severity"]),
            duration_seconds=int(row.get("duration_seconds") or 0), device_ids=device_ids,
            auto_resolve=bool(row.get("auto_resolve", True)), enabled=bool(row.get("enabled", True)), **extra,
        )


@dataclass(slots=True)
class RuleState:
    """Per (device, rule): the state machine plus what the rule type needs to compute its signal."""

    pending_since_ms: int | None = None
    firing: bool = False
    last_ts_ms: int = 0
    # last value per metric (threshold rules): one metric (the usual case) in `metric` / `value`, two or
    # more flat in `values` (metric, value, metric, value, ...). Not a dict: a dict is 184 B, and a
    # million devices keep millions of rule states (bench_memory.py)
    metric: str | None = None
    value: float | None = None
    values: tuple = ()
    # (ts_ms, value) for window/rate/anomaly rules; None until needed: most rules never need one,
    # and an empty deque per rule state was a third of a device actor's memory (bench_memory.py)
    samples: deque | None = None
    sums: list[float] | None = None  # running [sum, sum of squares] of `samples`; rebuilt after a restore

    def last_values(self) -> dict[str, float]:
        """metric -> last value seen, in the order first seen."""
        if self.metric is not None:
            return {self.metric: self.value}  # type: ignore[dict-item]
        v = self.values
        return dict(zip(v[::2], v[1::2]))

    def remember(self, readings: dict[str, float]) -> dict[str, float]:
        """Keep these readings as the metrics' last values; returns all last values."""
        if len(readings) == 1 and not self.values and (self.metric is None or self.metric in readings):
            (self.metric, self.value), = readings.items()  # the usual case: one metric, no dict kept
            return readings
        merged = self.last_values()
        merged.update(readings)
        self._keep(merged)
        return merged

    def remember_one(self, metric: str, value: float) -> None:
        """`remember({metric: value})`, without building the dicts."""
        if not self.values and (self.metric is None or self.metric == metric):
            self.metric, self.value = metric, value
        else:
            self.remember({metric: value})

    def _keep(self, values: dict[str, float]) -> None:
        if len(values) == 1:
            (self.metric, self.value), = values.items()
            self.values = ()
        else:
            self.metric = self.value = None
            self.values = tuple(x for kv in values.items() for x in kv)

    def to_dict(self) -> dict[str, Any]:
        return {"p": self.pending_since_ms, "f": self.firing, "t": self.last_ts_ms, "v": self.last_values(),
                "s": [list(s) for s in self.samples or ()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RuleState":
        samples = deque((tuple(s) for s in d["s"]), maxlen=MAX_WINDOW_SAMPLES) if d.get("s") else None
        state = cls(d.get("p"), bool(d.get("f")), int(d.get("t") or 0), samples=samples)
        if d.get("v"):
            state._keep({sys.intern(m): val for m, val in d["v"].items()})
        return state

    def window(self) -> deque:
        if self.samples is None:
            self.samples = deque(maxlen=MAX_WINDOW_SAMPLES)
        return self.samples


# ---- signals ---------------------------------------------------------------------------------
def _sums(state: RuleState) -> list[float]:
    if state.sums is None:
        samples = state.window()
        state.sums = [math.fsum(v for _, v in samples), math.fsum(v * v for _, v in samples)]
    return state.sums


def _push(state: RuleState, ts_ms: int, value: float, keep: Callable[[tuple[int, float]], bool]) -> None:
    """Append a sample and drop old ones, keeping the running sums in step (O(1) amortised)."""
    sums = _sums(state)
    if len(state.window()) == state.samples.maxlen:
        _, old = state.samples[0]
        sums[0] -= old
        sums[1] -= old * old
    state.samples.append((ts_ms, value))
    sums[0] += value
    sums[1] += value * value
    while state.samples and not keep(state.samples[0]):
        _, old = state.samples.popleft()
        sums[0] -= old
        sums[1] -= old * old


def _window(rule: Rule, state: RuleState, value: float, ts_ms: int) -> float:
    cutoff = ts_ms - rule.window_seconds * 1000
    _push(state, ts_ms, value, lambda s: s[0] > cutoff)
    agg = rule.aggregation
    if agg == "count":
        return float(len(state.samples))
    if agg == "sum":
        return state.sums[0]
    if agg == "min":
        return min(v for _, v in state.samples)
    if agg == "max":
        return max(v for _, v in state.samples)
    return state.sums[0] / len(state.samples)


def _rate(state: RuleState, value: float, ts_ms: int) -> float | None:
    """Change per minute since the previous reading (None for the first one)."""
    samples = state.window()
    prev = samples[-1] if samples else None
    samples.clear()
    samples.append((ts_ms, value))
    if prev is None or ts_ms <= prev[0]:
        return None
    return (value - prev[1]) / ((ts_ms - prev[0]) / 60_000)


def _zscore(rule: Rule, state: RuleState, value: float, ts_ms: int) -> float | None:
    """|z| of this reading against the previous `window_size` readings (None until `min_samples`)."""
    sums = _sums(state)
    n = len(state.samples)
    z = None
    if n >= rule.min_samples:
        mean = sums[0] / n
        std = math.sqrt(max(0.0, sums[1] / n - mean * mean))
        if std <= 1e-12 * max(1.0, abs(mean)):
            z = 0.0 if abs(value - mean) <= 1e-12 * max(1.0, abs(mean)) else math.inf
        else:
            z = abs(value - mean) / std
    size = rule.window_size
    _push(state, ts_ms, value, lambda s, count=[0]: len(state.samples) <= size)
    return z


def _signal(rule: Rule, state: RuleState, readings: dict[str, float], ts_ms: int) -> tuple[bool | None, float | None]:
    """(condition holds?, the value that triggered) — None when this message says nothing new."""
    if rule.rule_type == "threshold":
        if len(rule.conditions) == 1:  # the usual rule: its signal is this reading, if there is one
            c = rule.conditions[0]
            value = readings.get(c.metric)
            if value is None:
                return None, None
            state.remember_one(c.metric, value)
            return c.holds(value), value
        hit = [m for m in rule.metrics if m in readings]
        if not hit:
            return None, None
        values = state.remember({m: readings[m] for m in hit})
        known = [c for c in rule.conditions if c.metric in values]
        if rule.match == "any":
            held = any(c.holds(values[c.metric]) for c in known)
        else:
            held = len(known) == len(rule.conditions) and all(c.holds(values[c.metric]) for c in known)
        return held, readings[hit[0]]
    if rule.rule_type == "telemetry_gap":
        if rule.metric == "*" or rule.metric in readings:
            return False, None  # a message arrived: the gap is over
        return None, None
    value = readings.get(rule.metric)
    if value is None:
        return None, None
    if rule.rule_type == "window":
        sig = _window(rule, state, value, ts_ms)
    elif rule.rule_type == "rate_of_change":
        sig = _rate(state, value, ts_ms)
    else:
        sig = _zscore(rule, state, value, ts_ms)
    if sig is None:
        return None, None
    return rule.conditions[0].holds(sig), sig


def still_firing(rule: Rule, signal: Any, held: Any) -> Any:
    """Hysteresis: a firing single-condition alert stays open until the clear condition fails.

    Works on one reading or, element-wise, on numpy arrays of them (the backtest's columns)."""
    if rule.clear_threshold is None or signal is None or rule.rule_type in ("telemetry_gap",) or len(rule.conditions) > 1:
        return held
    return OPERATORS[rule.conditions[0].operator](signal, rule.clear_threshold)


# ---- state machine ---------------------------------------------------------------------------
def step(rule: Rule, state: RuleState, device_id: str, readings: dict[str, float], ts_ms: int) -> AlertEvent | None:
    """Advance one rule by one message; returns an event on a state change.

    Readings older than the last one seen are ignored, so late or replayed data cannot flap an
    alert. With `duration_seconds`, the condition must hold continuously for that long (device
    time) before the alert opens.
    """
    if ts_ms < state.last_ts_ms:
        return None
    if rule.threshold_on is not None:  # `_signal` and `advance` for the usual rule, in fewer steps
        metric, holds, threshold = rule.threshold_on
        value = readings.get(metric)
        if value is None:
            return None
        if state.metric is metric:  # `remember_one` when the state keeps this one metric (so no `values`)
            state.value = value
        else:
            state.remember_one(metric, value)
        state.last_ts_ms = ts_ms
        held = holds(value, threshold)
        if not held and not state.firing:
            state.pending_since_ms = None
            return None
        return advance(rule, state, device_id, held, value, ts_ms)
    held, signal = _signal(rule, state, readings, ts_ms)
    if held is None:
        return None
    state.last_ts_ms = ts_ms
    return advance(rule, state, device_id, held, signal, ts_ms)


def tick(rule: Rule, state: RuleState, device_id: str, last_message_ms: int | None, now_ms: int) -> AlertEvent | None:
    """Timer evaluation of a telemetry_gap rule: fires when nothing arrived for `gap_seconds`."""
    if rule.rule_type != "telemetry_gap":
        return None
    since = last_message_ms if last_message_ms is not None else state.last_ts_ms or None
    if since is None:
        return None  # never heard from: nothing to measure a gap against
    silent_s = (now_ms - since) / 1000
    if silent_s < rule.gap_seconds or state.firing:
        return None
    state.firing = True
    return _event("open", rule, device_id, silent_s, now_ms)


def advance(rule: Rule, state: RuleState, device_id: str, held: bool, signal: float | None,
            ts_ms: int) -> AlertEvent | None:
    """The state machine for one computed signal. `step` computes the signal from a message; the
    backtest computes signals column-wise and calls this for the rows where the state changes."""
    if state.firing:
        if still_firing(rule, signal, held):
            return None
        state.firing, state.pending_since_ms = False, None
        return _event("clear", rule, device_id, signal, ts_ms)
    if not held:
        state.pending_since_ms = None
        return None
    if state.pending_since_ms is None:
        state.pending_since_ms = ts_ms
    if ts_ms - state.pending_since_ms >= rule.duration_seconds * 1000:
        state.firing = True
        return _event("open", rule, device_id, signal, ts_ms)
    return None


def _event(kind: str, rule: Rule, device_id: str, value: float | None, ts_ms: int) -> AlertEvent:
    c = rule.conditions[0]
    details: dict[str, Any] = {"rule_type": rule.rule_type, "operator": c.operator, "threshold": c.threshold,
                               "duration_seconds": rule.duration_seconds}
    if len(rule.conditions) > 1:
        details["conditions"] = [{"metric": x.metric, "operator": x.operator, "threshold": x.threshold}
                                 for x in rule.conditions]
        details["match"] = rule.match
    return AlertEvent(
        kind=kind,  # type: ignore[arg-type]
        tenant_id=rule.tenant_id, device_id=device_id, rule_id=rule.rule_id, rule_name=rule.name,
        severity=rule.severity, metric=c.metric,
        value=None if value is None or math.isinf(value) else float(value),
        ts_ms=ts_ms, auto_resolve=rule.auto_resolve, alert_type=rule.alert_type, details=details,
    )
