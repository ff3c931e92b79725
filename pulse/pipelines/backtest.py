"""Backtest a draft alert rule over the Parquet lake with the live evaluation code.

Polars does the data work (partition pruning, filter, de-duplication, sort); each device's
readings then go through `pulse.domain.rules.step` / `tick`, the very functions the device
actors run, and the alert events they raise go through a `TenantActor`, the very lifecycle the
tenant shards run (open, de-duplicate, auto-close), so a backtest and live evaluation of the same
data open and close the same alerts. Only where the tenant shard writes the actor's ops to the
store, `Lifecycle` keeps them in memory.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import count
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from pulse.domain.messages import AlertEvent
from pulse.domain.tenant import CLOSED, CreateAlert, RetriggerAlert, TenantActor, TransitionAlert
from pulse.domain.rules import Rule, RuleState, step, tick
from pulse.storage.lake.parquet import telemetry_root
from pulse.storage.lake.rows import validate_tenant_id


@dataclass
class BacktestResult:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rows_scanned: int = 0
    devices: int = 0
    elapsed_ms: float = 0.0


def _files(lake_dir: str | Path, tenant_id: str, start: datetime, end: datetime) -> list[str]:
    root = telemetry_root(lake_dir) / f"tenant_id={validate_tenant_id(tenant_id)}"
    files: list[str] = []
    day: date = start.date()
    while day <= end.date():
        files.extend(str(p) for p in sorted((root / f"date={day.isoformat()}").glob("part-*.parquet")))
        day += timedelta(days=1)
    return files


def readings_frame(lake_dir: str | Path, tenant_id: str, rule: Rule, start: datetime, end: datetime,
                   device_ids: frozenset[str] | None) -> pl.DataFrame:
    """The rule's metrics in [start, end), duplicates dropped, sorted by device and time."""
    files = _files(lake_dir, tenant_id, start, end)
    if not files:
        return pl.DataFrame(schema={"device_id": pl.String, "ts_ms": pl.Int64, "metric": pl.String, "value": pl.Float64})
    lf = pl.scan_parquet(files).filter(pl.col("ts") >= start, pl.col("ts") < end)
    if rule.rule_type != "telemetry_gap" or rule.metric != "*":
        lf = lf.filter(pl.col("metric").is_in(sorted(rule.metrics)))
    if device_ids is not None:
        lf = lf.filter(pl.col("device_id").is_in(sorted(device_ids)))
    return (lf.unique(subset=["device_id", "metric", "ts", "seq"], keep="first")
              .select("device_id", pl.col("ts").dt.epoch("ms").alias("ts_ms"), "metric", "value")
              .sort("device_id", "ts_ms", "metric")
              .collect())


def _messages(df: pl.DataFrame) -> Iterator[tuple[str, int, dict[str, float]]]:
    """Rows regrouped into messages: (device, ts) -> {metric: value}."""
    key = None
    values: dict[str, float] = {}
    for device, ts, metric, value in df.iter_rows():
        if (device, ts) != key:
            if key is not None:
                yield key[0], key[1], values
            key, values = (device, ts), {}
        values[metric] = value
    if key is not None:
        yield key[0], key[1], values


class Lifecycle:
    """A tenant's alerts over a backtest: `TenantActor` decides, the ops are applied in memory."""

    def __init__(self, tenant_id: str) -> None:
        self.actor = TenantActor(tenant_id)
        self.open: dict[int, dict[str, Any]] = {}
        self.closed: list[dict[str, Any]] = []
        self._ids = count(1)

    def apply(self, event: AlertEvent | None) -> None:
        if event is None:
            return
        for op in self.actor.on_alert_event(event):
            if isinstance(op, CreateAlert):
                self._create(op.event)
            elif isinstance(op, RetriggerAlert):  # not auto-resolved: the open alert is triggered again
                self.open[op.alert_id]["trigger_count"] += 1
            elif isinstance(op, TransitionAlert) and op.status == CLOSED:
                alert = self.open.pop(op.alert_id)
                alert["closed_at"] = _at(op.at_ms)
                self.closed.append(alert)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert opened, closed ones and those still open at the end, by opening time."""
        return sorted([*self.closed, *self.open.values()], key=lambda a: (a["opened_at"], a["device_id"]))

    def _create(self, ev: AlertEvent) -> None:
        alert_id = next(self._ids)
        self.open[alert_id] = {"device_id": ev.device_id, "opened_at": _at(ev.ts_ms), "closed_at": None,
                               "trigger_value": ev.value, "alert_type": ev.alert_type, "trigger_count": 1}
        self.actor.created(ev.fingerprint, alert_id, ev.rule_id)


def _at(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)


def run(lake_dir: str | Path, tenant_id: str, rule: Rule, start: datetime, end: datetime,
        device_ids: frozenset[str] | None = None, tick_s: float | None = None) -> BacktestResult:
    """Alerts the rule would have opened and closed. Timer rules are ticked between readings
    every `tick_s` seconds (default: the scheduler's period is approximated by the gap itself)."""
    started = time.perf_counter()
    df = readings_frame(lake_dir, tenant_id, rule, start, end, device_ids)
    out = BacktestResult(rows_scanned=df.height)
    states: dict[str, RuleState] = {}
    alerts = Lifecycle(tenant_id)
    end_ms = int(end.timestamp() * 1000)
    last_seen: dict[str, int] = {}
    for device, ts, values in _messages(df):
        state = states.setdefault(device, RuleState())
        if rule.rule_type == "telemetry_gap" and device in last_seen:
            _tick_until(rule, state, device, last_seen[device], ts, tick_s, alerts)
        last_seen[device] = ts
        if rule.applies_to(device):
            alerts.apply(step(rule, state, device, values, ts))
    if rule.rule_type == "telemetry_gap":
        for device, seen in last_seen.items():
            _tick_until(rule, states[device], device, seen, end_ms, tick_s, alerts)
    out.devices = len(states)
    out.alerts = alerts.alerts()
    out.elapsed_ms = (time.perf_counter() - started) * 1000
    return out


def _tick_until(rule: Rule, state: RuleState, device: str, since_ms: int, until_ms: int, tick_s: float | None,
                alerts: Lifecycle) -> None:
    period_ms = int((tick_s or rule.gap_seconds) * 1000)
    t = since_ms + period_ms
    while t < until_ms and not state.firing:
        alerts.apply(tick(rule, state, device, since_ms, t))
        t += period_ms
