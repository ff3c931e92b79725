"""The rules of IoT jobs (pulse/domain/jobs.py): execution transitions, the optimistic execution number,
targets, cancel and expiry, and the device-protocol bodies."""
from datetime import datetime, timedelta, timezone

import pytest

from pulse.domain import jobs
from pulse.errors import BadRequest, NotFound

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=timezone.utc)


def execution(status="QUEUED", number=1, started_at=None, expires_at=None):
    return {"status": status, "execution_number": number, "started_at": started_at, "expires_at": expires_at}


@pytest.mark.parametrize("start,to", [("QUEUED", "IN_PROGRESS"), ("QUEUED", "SUCCEEDED"), ("QUEUED", "FAILED"),
                                      ("QUEUED", "REJECTED"), ("IN_PROGRESS", "SUCCEEDED"),
                                      ("IN_PROGRESS", "FAILED"), ("IN_PROGRESS", "REJECTED"),
                                      ("IN_PROGRESS", "IN_PROGRESS")])
def test_open_executions_move_on_and_each_change_increments_the_number(start, to):
    changes = jobs.advance(execution(start, number=3), to, None, {"step": 2}, NOW)
    assert changes["status"] == to and changes["execution_number"] == 4
    assert changes["last_updated_at"] == NOW and changes["status_details"] == {"step": 2}


@pytest.mark.parametrize("settled", jobs.TERMINAL)
@pytest.mark.parametrize("to", jobs.DEVICE_STATUSES)
def test_a_settled_execution_never_changes(settled, to):
    with pytest.raises(jobs.InvalidTransition, match=f"from {settled} to {to}"):
        jobs.advance(execution(settled), to, None, None, NOW)


@pytest.mark.parametrize("status", ["QUEUED", "TIMED_OUT", "DONE"])
def test_a_device_reports_only_its_own_statuses(status):
    with pytest.raises(jobs.InvalidTransition):
        jobs.advance(execution("QUEUED"), status, None, None, NOW)


def test_the_expected_number_must_be_current_and_is_checked_first():
    assert jobs.advance(execution(number=5), "IN_PROGRESS", 5, None, NOW)["execution_number"] == 6
    with pytest.raises(jobs.VersionMismatch, match="is 5, not 4"):
        jobs.advance(execution(number=5), "IN_PROGRESS", 4, None, NOW)
    with pytest.raises(jobs.VersionMismatch):  # stale and settled: the device must re-read first
        jobs.advance(execution("SUCCEEDED", number=5), "FAILED", 4, None, NOW)
    assert jobs.VersionMismatch.status_code == jobs.InvalidTransition.status_code == 409


def test_started_at_is_set_by_the_first_change_only():
    assert jobs.advance(execution(), "IN_PROGRESS", None, None, NOW)["started_at"] == NOW
    earlier = NOW - timedelta(minutes=5)
    assert "started_at" not in jobs.advance(execution("IN_PROGRESS", started_at=earlier), "SUCCEEDED", None, None, NOW)


def test_an_update_without_details_keeps_the_previous_ones():
    assert "status_details" not in jobs.advance(execution(), "IN_PROGRESS", None, None, NOW)


def test_an_expired_job_takes_no_update_even_before_the_sweep():
    with pytest.raises(jobs.InvalidTransition, match="expired"):
        jobs.advance(execution(expires_at=NOW), "SUCCEEDED", None, None, NOW)
    assert jobs.advance(execution(expires_at=NOW + timedelta(seconds=1)), "SUCCEEDED", None, None, NOW)


@pytest.mark.parametrize("device,group,everyone,kind", [("d1", None, False, "device"), (None, "g1", False, "group"),
                                                         (None, None, True, "all"), ("", "g1", False, "group")])
def test_exactly_one_target(device, group, everyone, kind):
    assert jobs.check_targets(device, group, everyone) == kind


@pytest.mark.parametrize("device,group,everyone", [(None, None, False), ("d1", "g1", False), ("d1", None, True),
                                                    ("d1", "g1", True), ("", "", False)])
def test_none_or_several_targets_is_the_documented_400(device, group, everyone):
    with pytest.raises(BadRequest) as e:
        jobs.check_targets(device, group, everyone)
    assert e.value.detail == "Exactly one of target_device_id, target_group_id, target_all must be set"


@pytest.mark.parametrize("status", ["COMPLETED", "CANCELED", "DELETION_IN_PROGRESS"])
def test_only_a_job_in_progress_can_be_canceled(status):
    jobs.check_cancel("IN_PROGRESS")
    with pytest.raises(BadRequest) as e:
        jobs.check_cancel(status)
    assert e.value.detail == f"Cannot cancel job in status {status}"


def test_cancel_reason_defaults_to_the_operator():
    assert jobs.cancel_details(None) == {"reason": "canceled by operator"}
    assert jobs.cancel_details("") == {"reason": "canceled by operator"}
    assert jobs.cancel_details("wrong firmware") == {"reason": "wrong firmware"}


def test_expiry():
    assert not jobs.is_expired(None, NOW)
    assert jobs.is_expired(NOW, NOW) and not jobs.is_expired(NOW + timedelta(seconds=1), NOW)


@pytest.mark.parametrize("job_id,ok", [("fw-1.2", True), ("a:b_c-d.e", True), ("x" * 128, True),
                                       ("x" * 129, False), ("-lead", False), ("a/b", False), ("a+b", False),
                                       ("a#", False), ("", False), ("a b", False)])
def test_a_job_id_is_one_topic_level(job_id, ok):
    assert bool(jobs.JOB_ID_RE.match(job_id)) is ok


def test_protocol_bodies():
    e = {"job_id": "j1", "device_id": "d1", "document_type": "reboot", "document_params": {"delay": 5},
         "status": "QUEUED", "execution_number": 1, "queued_at": NOW, "expires_at": None}
    assert jobs.notify_body(e) == {"job_id": "j1", "document_type": "reboot", "document_params": {"delay": 5},
                                   "status": "QUEUED", "execution_number": 1, "queued_at": NOW.isoformat(),
                                   "expires_at": None}
    assert jobs.notify_topic("acme", "d1") == "tenant/acme/device/d1/jobs/notify"
    assert jobs.accepted_body({**e, "status": "SUCCEEDED", "execution_number": 3}) == {
        "job_id": "j1", "status": "SUCCEEDED", "execution_number": 3}
    assert jobs.rejected_body("j1", jobs.VersionMismatch("stale"), 4) == {
        "job_id": "j1", "code": "VERSION_MISMATCH", "detail": "stale", "execution_number": 4}
    assert jobs.rejected_body("j1", jobs.ExecutionNotFound("none"), None)["code"] == "NOT_FOUND"
    assert jobs.rejected_body("j1", jobs.InvalidTransition("no"), 2)["code"] == "INVALID_TRANSITION"
    assert jobs.rejected_body("j1", NotFound("gone"), None)["code"] == "NOT_FOUND"
