"""IoT jobs (docs/jobs.md): the rules of a job and of its executions, one per target device. Pure: no I/O.

An execution is QUEUED until its device starts it (IN_PROGRESS) or settles it (SUCCEEDED, FAILED,
REJECTED; QUEUED may settle at once); IN_PROGRESS again is a progress report (new status_details).
A settled execution never changes again; an open one is TIMED_OUT when its job expires. Every
accepted change increments the execution's `execution_number`, and a device that names the number
it last saw (`expected_execution_number`) is refused when another change came first: two writers
(MQTT and HTTP, or a retry) cannot overwrite each other unseen. A job is COMPLETED once none of its executions is open; DELETE
cancels a job only while it is IN_PROGRESS: its QUEUED executions are REJECTED, IN_PROGRESS ones
are left to finish.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

from pulse.errors import BadRequest, Conflict, NotFound

JOB_STATUSES = ("IN_PROGRESS", "COMPLETED", "CANCELED", "DELETION_IN_PROGRESS")
EXECUTION_STATUSES = ("QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED")
OPEN = ("QUEUED", "IN_PROGRESS")
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED")
FAILED_LIKE = ("FAILED", "TIMED_OUT", "REJECTED")  # what the documented `failed_count` counts
DEVICE_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED")  # what a device may report
FIRST_EXECUTION_NUMBER = 1
# one MQTT topic level (devices update on `…/jobs/{job_id}/update`), and a path segment
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
CANCEL_REASON = "canceled by operator"
TARGETS_REQUIRED = "Exactly one of target_device_id, target_group_id, target_all must be set"
MAX_DOCUMENT_BYTES = 8192  # document_params, JSON-encoded: one notify message carries it


class VersionMismatch(Conflict):
    """The device named an execution number that is no longer current."""

    code = "VERSION_MISMATCH"


class InvalidTransition(Conflict):
    """The execution cannot move to that status (it is settled, or the status is not a device's)."""

    code = "INVALID_TRANSITION"


class ExecutionNotFound(NotFound):
    code = "NOT_FOUND"


def check_targets(target_device_id: str | None, target_group_id: str | None, target_all: bool) -> str:
    """Which target a job names: "device", "group" or "all"; exactly one must be set (400 otherwise)."""
    given = [kind for kind, value in (("device", target_device_id), ("group", target_group_id), ("all", target_all))
             if value]
    if len(given) != 1:
        raise BadRequest(TARGETS_REQUIRED)
    return given[0]


def advance(execution: Mapping[str, Any], status: str, expected_number: int | None,
            details: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The changes a device's update makes to its execution (with its job's `expires_at`, if known), or
    VersionMismatch / InvalidTransition.

    The version is checked first: an update based on a stale view is refused as such even when the
    transition would be refused too, so the device knows to read the execution again."""
    current = execution["execution_number"]
    if expected_number is not None and expected_number != current:
        raise VersionMismatch(f"execution_number is {current}, not {expected_number}")
    if status not in DEVICE_STATUSES:
        raise InvalidTransition(f"status must be one of {', '.join(DEVICE_STATUSES)}, not {status}")
    if execution["status"] not in OPEN:
        raise InvalidTransition(f"Cannot move execution from {execution['status']} to {status}")
    if is_expired(execution.get("expires_at"), now):  # the sweep has not timed it out yet
        raise InvalidTransition("The job has expired")
    changes: dict[str, Any] = {"status": status, "execution_number": current + 1, "last_updated_at": now}
    if details is not None:
        changes["status_details"] = details
    if execution.get("started_at") is None:
        changes["started_at"] = now
    return changes


def check_cancel(job_status: str) -> None:
    """Only a job in progress can be canceled (documented 400 otherwise)."""
    if job_status != "IN_PROGRESS":
        raise BadRequest(f"Cannot cancel job in status {job_status}")


def cancel_details(reason: str | None) -> dict[str, str]:
    """The status_details a QUEUED execution is REJECTED with when its job is canceled."""
    return {"reason": reason or CANCEL_REASON}


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def notify_body(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The `…/jobs/notify` message of one open execution (docs/device-protocol.md)."""
    return {"job_id": execution["job_id"], "document_type": execution["document_type"],
            "document_params": execution["document_params"], "status": execution["status"],
            "execution_number": execution["execution_number"], "queued_at": _iso(execution["queued_at"]),
            "expires_at": _iso(execution["expires_at"])}


def accepted_body(execution: Mapping[str, Any]) -> dict[str, Any]:
    return {"job_id": execution["job_id"], "status": execution["status"],
            "execution_number": execution["execution_number"]}


def rejected_body(job_id: str, error: Exception, execution_number: int | None) -> dict[str, Any]:
    """Why an update was refused: the error's code (a NotFound of any kind is NOT_FOUND)."""
    code = getattr(error, "code", "NOT_FOUND" if isinstance(error, NotFound) else "INVALID_TRANSITION")
    return {"job_id": job_id, "code": code, "detail": str(error), "execution_number": execution_number}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def notify_topic(tenant_id: str, device_id: str) -> str:
    return f"tenant/{tenant_id}/device/{device_id}/jobs/notify"
