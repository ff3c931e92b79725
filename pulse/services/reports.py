"""Reports: the SLA summary of a tenant (on demand, and daily by the scheduler) and the quick device and
alert exports, each recorded as a report run (docs/reports.md defines every figure)."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterator, TypeVar

from pulse.config.settings import Settings
from pulse.domain import sla
from pulse.domain.device import presence_status
from pulse.errors import PulseError
from pulse.pipelines import exports
from pulse.storage import reports as store
from pulse.storage.db import Database

T = TypeVar("T")
SCHEDULER = "scheduler"
SLA_SUMMARY, DEVICE_EXPORT, ALERT_EXPORT = "sla_summary", "device_export", "alert_export"
# A report takes seconds; one RUNNING for this long lost its process (a crash, a restart).
STALE_RUN = timedelta(hours=1)
REPORT_TYPES = (SLA_SUMMARY, DEVICE_EXPORT, ALERT_EXPORT)
TOP_DEVICES = 10
FORMATS = ("csv", "json")
ALERT_STATUSES = ("OPEN", "ACKNOWLEDGED", "CLOSED")
# an export's `status`: connectivity of an ACTIVE device, else its registry status
DEVICE_STATUSES = ("ONLINE", "STALE", "OFFLINE", "INACTIVE", "SUSPENDED", "REVOKED")
DEVICE_COLUMNS = ("device_id", "name", "model", "status", "site_id", "last_seen_at", "tags")
ALERT_COLUMNS = ("alert_id", "device_id", "alert_type", "severity", "status", "created_at", "acknowledged_at",
                 "closed_at", "summary")


def user(sub: str) -> str:
    """`triggered_by` of a run a user asked for."""
    return f"user:{sub}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _logged(db: Database, tenant_id: str, report_type: str, triggered_by: str,
                  work: Callable[[], Awaitable[tuple[T, int, dict[str, Any]]]],
                  schedule_key: str | None = None) -> T | None:
    """Run `work` (-> result, row count, parameters) as a recorded run; a failure is recorded, then
    raised. None when the scheduled run of `schedule_key` exists already."""
    run_id = await store.start_run(db, tenant_id, report_type, triggered_by, schedule_key)
    if run_id is None:
        return None
    try:
        result, rows, parameters = await work()
    except Exception as e:
        await store.fail_run(db, run_id, f"{type(e).__name__}: {e}")
        raise
    await store.finish_run(db, run_id, rows, parameters)
    return result


async def list_runs(db: Database, tenant_id: str, report_type: str | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    return await store.list_runs(db, tenant_id, report_type, limit, offset)


# ---- SLA -----------------------------------------------------------------------------------------
async def _availability(db: Database, settings: Settings, tenant_id: str, devices: list[dict[str, Any]],
                        start: datetime, end: datetime, now: datetime) -> float | None:
    """Device availability of the devices heard from at least once (docs/reports.md)."""
    outages: dict[str, list[sla.Interval]] = defaultdict(list)
    for a in await store.heartbeat_alerts(db, tenant_id, start):
        outages[a["device_id"]].append(sla.outage_of_alert(
            a["opened_at"], a["trigger_value"], a["stale_after_s"] or settings.stale_after_s, a["closed_at"],
            a["close_value"], now))
    measured = []
    for d in devices:
        if d["last_seen"] is None:
            continue  # never heard from: nothing to measure yet
        ongoing = sla.current_outage(d["last_seen"], settings.stale_after_s, now)
        window = (max(start, d["created_at"]), min(end, now))
        measured.append(sla.DeviceTime(window, outages[d["device_id"]] + ([ongoing] if ongoing else [])))
    return sla.availability_pct(measured)


def _connectivity(settings: Settings, last_seen: datetime | None, now: datetime) -> str:
    """ONLINE / STALE / OFFLINE by the age of the device's last message (pulse.domain.device)."""
    return presence_status(None if last_seen is None else int(last_seen.timestamp() * 1000),
                           int(now.timestamp() * 1000), settings.stale_after_s, settings.offline_after_s)


async def compute_sla(db: Database, settings: Settings, tenant_id: str, start: datetime, end: datetime,
                      now: datetime) -> dict[str, Any]:
    """The SLA figures of [start, end) as known at `now` (docs/reports.md)."""
    opened = await store.alerts_opened(db, tenant_id, start, end)
    devices = await store.devices_in_service(db, tenant_id)
    online = sum(_connectivity(settings, d["last_seen"], now) == "ONLINE" for d in devices)
    top = Counter(a["device_id"] for a in opened)
    return {
        "period_days": round((end - start) / timedelta(days=1)),
        "period_start": start, "period_end": end,
        "total_devices": len(devices), "online_devices": online, "online_pct": sla.percent(online, len(devices)),
        "availability_pct": await _availability(db, settings, tenant_id, devices, start, end, now),
        "total_alerts": len(opened),
        "unresolved_alerts": sum(a["status"] != "CLOSED" for a in opened),
        "mtta_minutes": sla.mean_minutes((a["triggered_at"], a["acknowledged_at"]) for a in opened
                                         if a["acknowledged_at"] is not None),
        "mttr_minutes": sla.mean_minutes((a["triggered_at"], a["closed_at"]) for a in opened
                                         if a["closed_at"] is not None),
        "top_alerting_devices": [{"device_id": d, "count": n}
                                 for d, n in sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_DEVICES]],
    }


def _parameters(report: dict[str, Any]) -> dict[str, Any]:
    """The report as a JSON document (stored as the run's parameters)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in report.items()}


async def sla_summary(db: Database, settings: Settings, tenant_id: str, days: int, triggered_by: str) -> dict[str, Any]:
    """The last `days` days up to now, recorded as an `sla_summary` run."""
    now = _now()

    async def work() -> tuple[dict[str, Any], int, dict[str, Any]]:
        report = await compute_sla(db, settings, tenant_id, now - timedelta(days=days), now, now)
        return report, report["total_alerts"], _parameters(report)

    return await _logged(db, tenant_id, SLA_SUMMARY, triggered_by, work)


async def daily_sla_reports(db: Database, settings: Settings, now: datetime) -> int:
    """Yesterday's (UTC) SLA report for every ACTIVE tenant that has none yet; once per tenant-day
    however often it is called. Returns the reports made."""
    day = now.date() - timedelta(days=1)
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    await store.fail_stale_runs(db, SLA_SUMMARY, now - STALE_RUN, "interrupted: the process stopped while it ran")
    made = 0
    for tenant_id in await store.tenants_without_run(db, SLA_SUMMARY, day.isoformat()):
        async def work(tenant_id: str = tenant_id) -> tuple[bool, int, dict[str, Any]]:
            report = await compute_sla(db, settings, tenant_id, start, start + timedelta(days=1), now)
            return True, report["total_alerts"], _parameters(report)

        made += bool(await _logged(db, tenant_id, SLA_SUMMARY, SCHEDULER, work, schedule_key=day.isoformat()))
    return made


# ---- quick exports -------------------------------------------------------------------------------
@dataclass
class QuickExport:
    """The rows (JSON) or their CSV, chunk by chunk, with the attachment's file name."""

    filename: str
    rows: list[dict[str, Any]]
    csv_chunks: Iterator[bytes] | None = None


def _format(value: str) -> str:
    fmt = value.lower()
    if fmt not in FORMATS:
        raise PulseError("Invalid format")  # 400, as the documented system answers
    return fmt


def _status(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """Upper-cased; None (or ALL) = any."""
    status = value.upper() if value else None
    if status is None or status == "ALL":
        return None
    if status not in allowed:
        raise PulseError("Invalid status")  # 400, as the documented system answers
    return status


def _export(kind: str, fmt: str, rows: list[dict[str, Any]], columns: tuple[str, ...], now: datetime) -> QuickExport:
    chunks = exports.csv_chunks(exports.rows_reader(rows, columns)) if fmt == "csv" else None
    return QuickExport(f"{kind}-{now:%Y%m%d}.{fmt}", rows, chunks)


def _device_status(row: dict[str, Any], settings: Settings, now: datetime) -> str:
    if row["registry_status"] != "ACTIVE":
        return row["registry_status"]
    return _connectivity(settings, row["last_seen_at"], now)


async def export_devices(db: Database, settings: Settings, tenant_id: str, fmt: str, status: str | None,
                         site_id: str | None, triggered_by: str) -> QuickExport:
    """The tenant's devices (optionally of one status or site), recorded as a `device_export` run."""
    fmt, status, now = _format(fmt), _status(status, DEVICE_STATUSES), _now()

    async def work() -> tuple[QuickExport, int, dict[str, Any]]:
        found = [{**r, "status": _device_status(r, settings, now)} for r in await store.device_rows(db, tenant_id, site_id)]
        rows = [{k: r[k] for k in DEVICE_COLUMNS} for r in found if status is None or r["status"] == status]
        parameters = {"format": fmt, "status": status, "site_id": site_id}
        return _export("devices", fmt, rows, DEVICE_COLUMNS, now), len(rows), parameters

    return await _logged(db, tenant_id, DEVICE_EXPORT, triggered_by, work)


async def export_alerts(db: Database, tenant_id: str, fmt: str, status: str | None, days: int,
                        triggered_by: str) -> QuickExport:
    """Alerts created in the last `days` days (optionally in one status), as an `alert_export` run."""
    fmt, status, now = _format(fmt), _status(status, ALERT_STATUSES), _now()

    async def work() -> tuple[QuickExport, int, dict[str, Any]]:
        rows = await store.alert_rows(db, tenant_id, status, now - timedelta(days=days))
        parameters = {"format": fmt, "status": status or "ALL", "days": days}
        return _export("alerts", fmt, rows, ALERT_COLUMNS, now), len(rows), parameters

    return await _logged(db, tenant_id, ALERT_EXPORT, triggered_by, work)
