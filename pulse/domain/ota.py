"""OTA campaigns as plain rules (docs/ota.md): the campaign's state machine, a device's progress, and
what one wave tick decides. No I/O: `pulse/services/ota.py` loads the facts, asks, and stores.

Campaign: CREATED -> RUNNING <-> PAUSED -> COMPLETED | ABORTED (abort from any non-terminal status).
Device: PENDING -> DOWNLOADING -> INSTALLING -> SUCCESS | FAILED; SKIPPED when the campaign is aborted
before its wave. A device is *dispatched* (DOWNLOADING) when its wave sends it the instruction.

A wave tick of a RUNNING campaign, in this order: dispatched devices past the timeout FAIL; the
failure rate failed / (succeeded + failed) above `abort_threshold` aborts it (the documented rule,
judged once `rollout_rate` devices, or all of a smaller campaign, have finished); nothing PENDING, DOWNLOADING or INSTALLING left completes it; otherwise, at most
once per wave interval, the next `rollout_rate` PENDING devices are dispatched. A `canary` campaign
sends its first wave (`rollout_rate` devices) and then waits until every device of that wave finished
(SUCCESS or FAILED); since the failure rule runs first, it goes on only with the canary's success
rate at least 1 - abort_threshold, and from then on linearly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pulse.domain.messages import Publish
from pulse.errors import BadRequest

# campaign statuses
CREATED, RUNNING, PAUSED, COMPLETED, ABORTED = "CREATED", "RUNNING", "PAUSED", "COMPLETED", "ABORTED"
CAMPAIGN_STATUSES = (CREATED, RUNNING, PAUSED, COMPLETED, ABORTED)
CAMPAIGN_TERMINAL = frozenset({COMPLETED, ABORTED})
# campaigns whose dispatched devices still get their instruction again when they reconnect
INSTRUCTING = (RUNNING, PAUSED)

# device statuses
PENDING, DOWNLOADING, INSTALLING, SUCCESS, FAILED, SKIPPED = (
    "PENDING", "DOWNLOADING", "INSTALLING", "SUCCESS", "FAILED", "SKIPPED")
DEVICE_STATUSES = (PENDING, DOWNLOADING, INSTALLING, SUCCESS, FAILED, SKIPPED)
DISPATCHED = (DOWNLOADING, INSTALLING)  # sent the instruction, not finished
OPEN = (PENDING, *DISPATCHED)  # a campaign with any of these left is not complete
DEVICE_TERMINAL = frozenset({SUCCESS, FAILED, SKIPPED})
REPORTABLE = frozenset({DOWNLOADING, INSTALLING, SUCCESS, FAILED})  # what a device may say on ota/status
_RANK = {PENDING: 0, DOWNLOADING: 1, INSTALLING: 2, SUCCESS: 3, FAILED: 3, SKIPPED: 3}

LINEAR, CANARY = "linear", "canary"
STRATEGIES = (LINEAR, CANARY)
CANARY_WAVE = 1


# ---- campaign transitions ------------------------------------------------------------------------
def start(status: str) -> str:
    """RUNNING, from CREATED or PAUSED; BadRequest (400) from anything else."""
    if status not in (CREATED, PAUSED):
        raise BadRequest(f"Cannot start campaign in status {status}")
    return RUNNING


def pause(status: str) -> str:
    if status != RUNNING:
        raise BadRequest(f"Cannot pause campaign in status {status}")
    return PAUSED


def abort(status: str) -> str:
    if status in CAMPAIGN_TERMINAL:
        raise BadRequest(f"Campaign already in terminal status {status}")
    return ABORTED


# ---- device reports ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceChange:
    """What a report does to a device's row: its new status and progress, and whether it finished now."""

    status: str
    progress_pct: int | None
    error_message: str | None
    finished: bool


def apply_report(current: str, progress_pct: int | None, reported: str, reported_pct: int | None,
                 error: str | None) -> DeviceChange | None:
    """A device's report on its row in `current`; None when it changes nothing: an unknown status, a
    finished device (terminal, SKIPPED included), a step back (INSTALLING, then DOWNLOADING) or a repeat
    that carries no news. A report from a PENDING device counts too: the device is doing it."""
    if reported not in REPORTABLE or current in DEVICE_TERMINAL:
        return None
    if _RANK[reported] < _RANK[current]:
        return None
    if reported == SUCCESS:
        pct = 100
    elif reported_pct is not None:
        pct = reported_pct
    else:  # no figure: a step's progress starts unknown, a repeat keeps what it had
        pct = progress_pct if reported == current else None
    if reported == current and pct == progress_pct and error is None:
        return None
    return DeviceChange(reported, pct, error if reported == FAILED else None, reported in DEVICE_TERMINAL)


# ---- wave ticks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Campaign:
    """The facts a tick needs about one RUNNING campaign."""

    strategy: str
    rollout_rate: int
    abort_threshold: float
    succeeded: int
    failed: int
    counts: dict[str, int]  # devices per status
    waves: int  # waves dispatched so far
    canary_open: int  # devices of the first wave not finished yet
    last_wave_at: datetime | None


@dataclass(frozen=True)
class TickDecision:
    """What to do now: `abort` (with `reason`), `complete`, or dispatch `dispatch` PENDING devices."""

    abort: bool = False
    complete: bool = False
    dispatch: int = 0
    reason: str | None = None
    waiting: str | None = None  # why nothing was dispatched although devices are pending


def failure_rate(succeeded: int, failed: int) -> float:
    return failed / (succeeded + failed) if succeeded + failed else 0.0


def should_abort(c: Campaign) -> bool:
    """The documented rule, failed / (succeeded + failed) > abort_threshold, judged once a wave's worth
    of devices (`rollout_rate`, or every device of a smaller campaign) has finished. The documented
    system judges from the first report, so one early failure (1 of 1 = 100 %) stops a 10,000-device
    campaign; measured in benchmarks/bench_fleet_ops.py, it did."""
    finished = c.succeeded + c.failed
    sample = min(c.rollout_rate, sum(c.counts.get(s, 0) for s in (*OPEN, SUCCESS, FAILED)))
    return finished >= sample and failure_rate(c.succeeded, c.failed) > c.abort_threshold


def decide(c: Campaign, now: datetime, wave_interval_s: float) -> TickDecision:
    """One tick of a RUNNING campaign (its timed-out devices already failed and counted)."""
    if should_abort(c):
        rate = failure_rate(c.succeeded, c.failed)
        return TickDecision(abort=True, reason=f"failure rate {rate:.2f} above abort_threshold {c.abort_threshold}"
                                              f" ({c.failed} failed, {c.succeeded} succeeded)")
    if not any(c.counts.get(s, 0) for s in OPEN):
        return TickDecision(complete=True)
    pending = c.counts.get(PENDING, 0)
    if not pending:
        return TickDecision(waiting="dispatched devices have not finished")
    if c.strategy == CANARY and c.waves >= CANARY_WAVE and c.canary_open:
        return TickDecision(waiting=f"canary wave: {c.canary_open} devices not finished")
    if c.last_wave_at is not None and now - c.last_wave_at < timedelta(seconds=wave_interval_s):
        return TickDecision(waiting="the last wave went out less than a wave interval ago")
    return TickDecision(dispatch=min(c.rollout_rate, pending))


def timeout_cutoff(now: datetime, device_timeout_s: float) -> datetime:
    """Dispatched before this and not finished: the device failed."""
    return now - timedelta(seconds=device_timeout_s)


@dataclass(frozen=True)
class Instruction:
    """The `…/ota` message of one campaign (docs/device-protocol.md)."""

    campaign_id: int
    firmware_id: int
    version: str
    url: str | None
    checksum_sha256: str | None
    file_size_bytes: int | None

    def publish(self, tenant_id: str, device_id: str) -> Publish:
        """The instruction to one device, at QoS 1 (not retained: a finished campaign leaves nothing behind)."""
        body = {"campaign_id": self.campaign_id, "firmware_id": self.firmware_id, "version": self.version,
                "url": self.url, "checksum_sha256": self.checksum_sha256, "file_size_bytes": self.file_size_bytes}
        return Publish(ota_topic(tenant_id, device_id), json.dumps(body).encode(), qos=1)


def ota_topic(tenant_id: str, device_id: str) -> str:
    return f"tenant/{tenant_id}/device/{device_id}/ota"
