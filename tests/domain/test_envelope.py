"""Edge validation: every bad message becomes a rejection with a reason code."""
import json
import random
import time

import pytest

from pulse.domain.envelope import Limits, Reject, _iso_ms, _usual_telemetry, _utc_ms, decode, decode_checked
from pulse.domain.messages import CommandAck, Heartbeat, JobUpdate, OtaStatus, ReportedState, Telemetry

NOW = int(time.time() * 1000)
TOPIC = "tenant/acme/device/d1/telemetry"


def env(**over):
    body = {"version": "1", "ts": "2026-01-01T00:00:00Z", "site_id": "s1", "seq": 7, "metrics": {"temp": 21.5}}
    body.update(over)
    return json.dumps(body).encode()


def test_valid_envelope_becomes_telemetry_with_ms_timestamp():
    ok, bad = decode(TOPIC, env(metrics={"temp": 21.5, "door": True}), NOW)
    assert bad == []
    (t,) = ok
    assert isinstance(t, Telemetry)
    assert (t.tenant_id, t.device_id, t.seq, t.site_id) == ("acme", "d1", 7, "s1")
    assert t.ts_ms == 1767225600000
    assert t.metrics == {"temp": 21.5, "door": 1.0}


def test_naive_timestamp_is_utc_and_epoch_seconds_accepted():
    (a,), _ = decode(TOPIC, env(ts="2026-01-01T00:00:00"), NOW)
    (b,), _ = decode(TOPIC, env(ts=1767225600), NOW)
    assert a.ts_ms == b.ts_ms == 1767225600000


def test_missing_ts_uses_arrival_time():
    (t,), _ = decode(TOPIC, json.dumps({"metrics": {"x": 1}}).encode(), NOW)
    assert t.ts_ms == NOW


@pytest.mark.parametrize("topic,payload,reason", [
    ("tenant/acme/dev/d1/telemetry", env(), "BAD_TOPIC_FORMAT"),
    ("tenant/acme/device/d1/bogus", env(), "BAD_TOPIC_FORMAT"),
    ("tenant/../device/d1/telemetry", env(), "BAD_TOPIC_FORMAT"),
    (TOPIC, b"{not json", "INVALID_JSON"),
    (TOPIC, env(version="2"), "UNSUPPORTED_ENVELOPE_VERSION"),
    (TOPIC, env(metrics={f"m{i}": i for i in range(51)}), "TOO_MANY_METRICS"),
    (TOPIC, env(metrics={"temp": "hot"}), "METRIC_VALUE_INVALID"),
    (TOPIC, env(metrics={"bad key!": 1}), "METRIC_KEY_INVALID"),
    (TOPIC, env(metrics={"k" * 129: 1}), "METRIC_KEY_TOO_LONG"),
    (TOPIC, env(metrics={}), "INVALID_METRICS"),
    (TOPIC, env(ts="2999-01-01T00:00:00Z"), "TIMESTAMP_IN_FUTURE"),
    (TOPIC, env(ts="yesterday"), "INVALID_TIMESTAMP"),
    (TOPIC, env(seq="7"), "INVALID_ENVELOPE"),
    (TOPIC, b"x" * 20000, "PAYLOAD_TOO_LARGE"),
])
def test_rejections_carry_reason_codes(topic, payload, reason):
    ok, bad = decode(topic, payload, NOW)
    assert ok == []
    assert [r.reason for r in bad] == [reason]
    assert bad[0].topic == topic


def test_nan_and_infinity_are_rejected():
    ok, bad = decode(TOPIC, b'{"metrics": {"x": NaN}}', NOW)
    assert ok == [] and bad[0].reason == "METRIC_VALUE_INVALID"


def test_batch_keeps_good_envelopes_and_rejects_bad_ones():
    body = json.dumps([{"metrics": {"a": 1}}, {"metrics": {"a": "x"}}, {"metrics": {"a": 3}}]).encode()
    ok, bad = decode(TOPIC, body, NOW)
    assert [m.metrics["a"] for m in ok] == [1.0, 3.0]
    assert [r.reason for r in bad] == ["METRIC_VALUE_INVALID"]


def test_other_uplink_types():
    (hb,), _ = decode("tenant/a/device/d/heartbeat", b"", NOW)
    assert isinstance(hb, Heartbeat)
    (rep,), _ = decode("tenant/a/device/d/shadow/reported", b'{"reported": {"fw": "1.2"}, "version": 3}', NOW)
    assert isinstance(rep, ReportedState) and rep.reported == {"fw": "1.2"} and rep.version == 3
    (ack,), _ = decode("tenant/a/device/d/commands/ack", b'{"command_id": "c1", "status": "succeeded"}', NOW)
    assert isinstance(ack, CommandAck) and ack.status == "succeeded"


def test_ota_status_and_job_updates_are_device_messages():
    (ota,), _ = decode("tenant/a/device/d/ota/status", b'{"campaign_id": 4, "status": "downloading", "progress": 30}', NOW)
    assert isinstance(ota, OtaStatus) and (ota.campaign_id, ota.status, ota.progress_pct, ota.error) == (4, "DOWNLOADING", 30, None)
    (job,), _ = decode("tenant/a/device/d/jobs/job-1/update",
                       b'{"status": "SUCCEEDED", "expected_execution_number": 2, "status_details": {"k": 1}}', NOW)
    assert isinstance(job, JobUpdate) and (job.job_id, job.status, job.expected_execution_number) == ("job-1", "SUCCEEDED", 2)
    assert job.status_details == {"k": 1}


@pytest.mark.parametrize("topic", ["tenant/a/device/d/ota", "tenant/a/device/d/jobs/notify",
                                   "tenant/a/device/d/jobs/j1/update/accepted", "tenant/a/device/d/jobs/j1/update/rejected"])
def test_pulses_own_ota_and_job_downlinks_are_skipped(topic):
    assert decode(topic, b"{}", NOW) == ([], [])


@pytest.mark.parametrize("topic, payload", [
    ("tenant/a/device/d/ota/status", b'{"status": "SUCCESS"}'),
    ("tenant/a/device/d/ota/status", b'{"campaign_id": "4", "status": "SUCCESS"}'),
    ("tenant/a/device/d/ota/status", b'{"campaign_id": 4, "status": "SUCCESS", "progress_pct": 101}'),
    ("tenant/a/device/d/ota/status", b'{"campaign_id": 4}'),
    ("tenant/a/device/d/jobs/j1/update", b'{"status": 3}'),
    ("tenant/a/device/d/jobs/j1/update", b'{"status": "FAILED", "status_details": []}'),
    ("tenant/a/device/d/jobs/j1/update", b'{"status": "FAILED", "expected_execution_number": true}'),
])
def test_malformed_field_reports_are_invalid_envelopes(topic, payload):
    _, (bad,) = decode(topic, payload, NOW)
    assert bad.reason == "INVALID_ENVELOPE"


@pytest.mark.parametrize("topic", ["tenant/a/device/d/jobs/j1", "tenant/a/device/d/jobs/j1/update/other",
                                   "tenant/a/device/d/jobs/+/update", "tenant/a/device/d/jobs"])
def test_other_job_topics_are_bad_topics(topic):
    _, (bad,) = decode(topic, b"{}", NOW)
    assert bad.reason == "BAD_TOPIC_FORMAT"


def test_custom_limits_apply():
    ok, bad = decode(TOPIC, env(metrics={"a": 1, "b": 2}), NOW, Limits(max_metrics=1))
    assert bad[0].reason == "TOO_MANY_METRICS"


def test_what_the_fast_json_parser_refuses_is_judged_as_before():
    # orjson refuses these; the stdlib parser takes them and the envelope checks give the reason
    _, bad = decode(TOPIC, b'{"metrics": {"x": 1e400}}', NOW)
    assert [r.reason for r in bad] == ["METRIC_VALUE_INVALID"]
    (t,), bad = decode(TOPIC, json.dumps({"metrics": {"x": 1}}).encode("utf-16"), NOW)
    assert bad == [] and t.metrics == {"x": 1.0}
    _, bad = decode(TOPIC, b'{"metrics": {"x": 1}', NOW)
    assert [r.reason for r in bad] == ["INVALID_JSON"]


def test_a_topic_or_key_seen_before_is_judged_the_same(monkeypatch):
    monkeypatch.setattr("pulse.domain.envelope.MAX_KNOWN", 2)  # caches fill up and start again
    for _ in range(3):
        for i in range(3):
            (t,), _ = decode(f"tenant/acme/device/d{i}/telemetry", env(metrics={f"m{i}": 1, "temp": 2}), NOW)
            assert (t.device_id, t.metrics) == (f"d{i}", {f"m{i}": 1.0, "temp": 2.0})
        _, bad = decode("tenant/../device/d1/telemetry", env(), NOW)
        assert [r.reason for r in bad] == ["BAD_TOPIC_FORMAT"]
        _, bad = decode(TOPIC, env(metrics={"temp": 1, "bad key!": 1}), NOW)
        assert [r.reason for r in bad] == ["METRIC_KEY_INVALID"]


def test_known_keys_with_float_values_pass_as_they_are_and_anything_else_is_checked():
    for metrics in ({"temp": 1.5, "hum": 2.0}, {"temp": 1.5, "hum": 2}, {"temp": True, "hum": 2.0}):
        (t,), _ = decode(TOPIC, env(metrics=metrics), NOW)
        assert t.metrics == {k: float(v) for k, v in metrics.items()}
        assert all(type(v) is float for v in t.metrics.values())
    for body in (b'{"metrics": {"temp": 1e308, "hum": 1e308}}', b'{"metrics": {"temp": 1.5, "hum": "x"}}',
                 b'{"metrics": {"temp": 1.5, "hum": NaN}}', b'{"metrics": {"temp": 1.5, "hum": -Infinity}}'):
        ok, bad = decode(TOPIC, body, NOW)
        if b"1e308" in body:  # finite, only their sum is not
            assert ok[0].metrics == {"temp": 1e308, "hum": 1e308} and bad == []
        else:
            assert ok == [] and [r.reason for r in bad] == ["METRIC_VALUE_INVALID"]


# ---- the usual message's short way gives what the full checks give ------------------------------
def usual_bodies():
    """Envelopes around the usual one: each field at the edge of what `_usual_telemetry` takes."""
    metrics = {"temp": 21.5, "hum": 40.0}
    yield {"version": "1", "ts": "2026-12-07T12:26:01.123Z", "seq": 17, "metrics": metrics}
    for ts in ("2026-12-07T12:26:01Z", "2026-12-07T12:26:01.000Z", "2026-12-07T12:26:01.999Z",
               "2026-12-07T12:26:01.123456Z", "2026-12-07T12:26:01.12Z", "2026-12-07T12:26:01+00:00",
               "2026-12-07T14:26:01.123+02:00", "2026-12-07T12:26:01.123", "2026-12-07 12:26:01.123Z",
               "2026-12-07", "20261207T122601Z", "2026-02-30T00:00:00Z", "2026-12-07T24:00:00Z",
               "2026-12-07T23:59:60Z", "1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z",
               "0001-01-01T00:00:00Z", "2999-01-01T00:00:00.000Z", "２０２６-12-07T12:26:01Z",
               "2026-12-07T12:26:01.123ZZ", "2026-12-07T12:26:01.12aZ", "", "Z", None,
               1767225600, 1767225600.5, 1767225600123, -1, 0, 10**30, True, [1], {"a": 1}):
        yield {"ts": ts, "metrics": metrics}
    for version in ("2", 1, 1.0, None, "1.0", ""):
        yield {"version": version, "metrics": metrics}
    for seq in (0, -5, 2**63, 2**64, -2**63 - 1, 2**70, True, 1.0, "7", None, [1]):
        yield {"seq": seq, "metrics": metrics}
    for site in ("s1", "", 3, None, ["s"]):
        yield {"site_id": site, "metrics": metrics}
    for metrics in ({"temp": 1}, {"temp": 2**53 + 1}, {"temp": 2**64 + 1}, {"temp": -2**63 - 1}, {"temp": 10**30},
                    {"temp": True, "hum": False}, {"temp": -0.0}, {"temp": 1e308, "hum": 1e308},
                    {"temp": 5e-324}, {"temp": "1.5"}, {"temp": None}, {"temp": {"x": 1}}, {"temp": [1.0]},
                    {}, [], None, "x", {f"m{i}": float(i) for i in range(50)}, {f"m{i}": float(i) for i in range(51)},
                    {"new_key_seen_once": 1.5}, {"bad key!": 1.0}, {"k" * 129: 1.0}, {"é": 1.0}):
        yield {"metrics": metrics}
    yield {"metrics": {"temp": 1.0}, "unknown": {"deep": [1, 2, {"x": None}]}, "extra": "x"}
    yield {"ts": "2026-12-07T12:26:01Z"}


def usual_payloads():
    for body in usual_bodies():
        yield json.dumps(body).encode()
    yield from (b'{"metrics": {"x": NaN}}', b'{"metrics": {"x": Infinity}}', b'{"metrics": {"x": -Infinity}}',
                b'{"metrics": {"x": 1e400}}', b'{"metrics": {"x": 1.5}, "other": NaN}',
                b'{"metrics": {"x": 1.5}, "o": 1e400}',
                b'{"metrics": {"x": 1}, "metrics": {"x": 2.5, "y": 1}}', b'{"metrics": {"x": 1, "y": 2, "x": 3.5}}',
                b'{"metrics": {"x": true}, "metrics": {"x": 2.5}}', b'{"metrics": {"x": 2.5}, "metrics": {"x": true}}',
                b'{"seq": 1, "seq": 2.5, "metrics": {"x": 1}}',
                b'{"version": "2", "version": "1", "metrics": {"x": 1}}',
                b'{"metrics": {"x": 1.5}, "site_id": "\\ud800"}', b'{"metrics": {"x": 1.5}, "site_id": "\xff"}',
                b'{"metrics": {"x": 1.5}, "site_id": "\xed\xa0\x80"}', b'\xef\xbb\xbf{"metrics": {"x": 1.5}}',
                b' \n{"metrics": {"x": 1.5}}\r\n', b'{"metrics": {"x": 1.5}} x', b'{"metrics": {"x": 01}}',
                b'{"metrics": {"x": 1.5}, "deep": ' + b"[" * 990 + b"]" * 990 + b"}",
                json.dumps({"metrics": {"x": 1}}).encode("utf-16"), b"", b"   ", b"null", b"[]", b"7", b'"x"',
                b"x" * 20000, json.dumps([{"metrics": {"a": 1}}, {"metrics": {"a": "x"}}, {"seq": True}]).encode(),
                json.dumps([{"metrics": {"a": 1.5}}] * 101).encode())


def seen(result):
    """Both lists as a user sees them, including value types (1 and 1.0 differ) and key order."""
    return repr(result)


@pytest.mark.parametrize("payload", list(usual_payloads()))
@pytest.mark.parametrize("topic", [TOPIC, "tenant/acme/device/d1/heartbeat", "tenant/acme/device/d1/shadow/desired"])
def test_decode_gives_what_the_full_checks_give(topic, payload):
    for _ in range(2):  # the second time, the topic and the keys are known
        assert seen(decode(topic, payload, NOW)) == seen(decode_checked(topic, payload, NOW))


def test_the_usual_message_takes_the_short_way_and_an_unusual_one_does_not():
    decode(TOPIC, env(), NOW)
    assert _usual_telemetry(TOPIC, env(metrics={"temp": 1}), NOW, Limits()) is not None  # ints are usual
    (t,), _ = decode(TOPIC, env(metrics={"fresh_key": 1.0, "temp": 2.0}), NOW)  # a new valid key is learnt
    assert _usual_telemetry(TOPIC, env(metrics={"fresh_key": 1.0}), NOW, Limits()) is not None
    assert list(t.metrics) == ["fresh_key", "temp"]
    for unusual in (env(metrics={"temp": True}), env(ts="yesterday"), env(seq=2**64), env(metrics={"bad key!": 1.0}),
                    env(metrics={"temp": 1.0, "k" * 129: 1.0}), env(version=1), b'{"metrics": {"temp": NaN}}'):
        assert _usual_telemetry(TOPIC, unusual, NOW, Limits()) is None
        assert seen(decode(TOPIC, unusual, NOW)) == seen(decode_checked(TOPIC, unusual, NOW))


def test_decode_gives_what_the_full_checks_give_for_mangled_payloads():
    rnd = random.Random(7)
    base = json.dumps({"version": "1", "ts": "2026-12-07T12:26:01.123Z", "seq": 17, "site_id": "s1",
                       "metrics": {"temp": 21.5, "hum": 40, "door": True}}).encode()
    for _ in range(3000):
        payload = bytearray(base)
        for _ in range(rnd.randint(1, 3)):
            payload[rnd.randrange(len(payload))] = rnd.choice(b'0123456789.eE+-" {}[],:tfnZ\\\xff')
        payload = bytes(payload)
        assert seen(decode(TOPIC, payload, NOW)) == seen(decode_checked(TOPIC, payload, NOW)), payload


def test_usual_iso_timestamps_are_read_as_fromisoformat_reads_them():
    rnd = random.Random(11)
    read = 0
    for _ in range(50_000):
        year = rnd.choice([rnd.randint(1, 9999), rnd.randint(1965, 2100)])
        value = (f"{year:04d}-{rnd.randint(0, 13):02d}-{rnd.randint(0, 32):02d}T{rnd.randint(0, 25):02d}:"
                 f"{rnd.randint(0, 61):02d}:{rnd.randint(0, 61):02d}")
        value += rnd.choice(["Z", f".{rnd.randint(0, 999):03d}Z"])
        try:
            expected = _iso_ms(value)
        except Reject:
            expected = None
        assert _utc_ms(value) == expected, value
        read += expected is not None
    assert read > 20_000  # most of them were real times


def test_numbers_are_read_to_the_same_float():
    rnd = random.Random(5)
    for _ in range(3000):
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 25))).lstrip("0") or "0"
        number = rnd.choice([digits, f"-{digits}", f"{digits}.{rnd.randint(0, 10**12)}",
                             f"{digits[:1]}.{digits[1:] or '0'}e{rnd.randint(-330, 310)}"])
        payload = b'{"metrics": {"temp": %s, "hum": 1.5}}' % number.encode()
        assert seen(decode(TOPIC, payload, NOW)) == seen(decode_checked(TOPIC, payload, NOW)), payload
