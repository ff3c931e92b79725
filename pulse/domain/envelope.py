"""Device message parsing and validation at the edge (MQTT bridge and HTTP ingest share it).

Returns `DeviceMessage`s or `Rejection`s with a reason code; never raises on bad input.
Pure logic, no I/O: a device shard calls it once per message on the hot path, so the common case
(a well-formed telemetry envelope from a device seen before) takes shortcuts that give the same
answer as the full checks (`decode_checked`): the envelope read and typed by msgspec in one C call,
topics, metric keys and the second of an ISO timestamp already validated looked up. Whatever the
shortcut does not take goes through the full checks, which say why a message is refused.
"""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson

from pulse.domain.messages import (CommandAck, DeviceMessage, Heartbeat, JobUpdate, OtaStatus, Presence, Rejection,
                                   ReportedState, Telemetry)

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
METRIC_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$")
UPLINK_SUFFIXES = {"telemetry", "heartbeat", "shadow/reported", "commands/ack", "ota/status", "presence"}
# Pulse's own downlink topics arrive on the bridge's wildcard subscription too: skip, don't quarantine.
DOWNLINK_SUFFIXES = {"shadow/desired", "commands", "ota", "jobs/notify"}
# Per job: `jobs/{job_id}/update` up, `jobs/{job_id}/update/accepted|rejected` down (docs/jobs.md).
JOB_UPDATE = "jobs/update"
JOB_REPLIES = {"accepted", "rejected"}
MAX_ERROR_CHARS = 1000
# Topics and metric keys that passed validation, so the next message with the same one skips it
# (~0.6 us a topic, ~0.2 us a key). A fleet reuses a few; when a cache fills up it starts again,
# which bounds memory (~3 MB of topics: small next to 10^4 device actors, so a shard with more
# devices than that re-validates more often rather than holding every topic it has seen).
MAX_KNOWN = 10_000
_known_topics: dict[str, tuple[str, str, str]] = {}
_known_keys: dict[str, str] = {}  # valid metric key -> its interned copy
# The usual ISO timestamp, "YYYY-MM-DDTHH:MM:SS" then "Z" or ".fffZ", parsed by two look-ups: the
# second it names (epoch seconds, remembered like topics: a fleet's messages share the current one)
# and its suffix (microseconds). Any other shape goes through `datetime.fromisoformat`. Hours stop
# at 23: a later Python reads "24:00:00" as the next day, but not with a fraction.
_ISO_SECOND_RE = re.compile(r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):\d\d:\d\d", re.ASCII)
_UTC_SUFFIX_US = {"Z": 0, **{f".{ms:03d}Z": ms * 1000 for ms in range(1000)}}
_known_seconds: dict[str, int] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 16384
    max_metrics: int = 50
    max_future_skew_ms: int = 300_000
    max_batch: int = 100


class Reject(Exception):
    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def parse_topic(topic: str) -> tuple[str, str, str]:
    """`tenant/{t}/device/{d}/{suffix}` -> (t, d, suffix)."""
    known = _known_topics.get(topic)
    if known is not None:
        return known
    parsed = _parse_topic(topic)
    _remember(_known_topics, topic, parsed)
    return parsed


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= MAX_KNOWN:
        cache.clear()
    cache[key] = value


def _parse_topic(topic: str) -> tuple[str, str, str]:
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "tenant" or parts[2] != "device":
        raise Reject("BAD_TOPIC_FORMAT")
    tenant_id, device_id, suffix = parts[1], parts[3], "/".join(parts[4:])
    if not ID_RE.match(tenant_id) or not ID_RE.match(device_id):
        raise Reject("BAD_TOPIC_FORMAT", "invalid tenant or device id")
    if suffix not in UPLINK_SUFFIXES and suffix not in DOWNLINK_SUFFIXES and _job_topic(parts[4:]) is None:
        raise Reject("BAD_TOPIC_FORMAT", f"unknown message type {suffix!r}")
    return tenant_id, device_id, suffix


def _job_topic(levels: list[str]) -> tuple[str, bool] | None:
    """`jobs/{job_id}/update` -> (job_id, True); `…/update/accepted|rejected` -> (job_id, False)."""
    if len(levels) < 3 or levels[0] != "jobs" or levels[2] != "update" or not ID_RE.match(levels[1]):
        return None
    if len(levels) == 3:
        return levels[1], True
    if len(levels) == 4 and levels[3] in JOB_REPLIES:
        return levels[1], False
    return None


def _is_downlink(suffix: str) -> bool:
    """Pulse's own messages to devices, which the bridge's wildcard subscription receives too."""
    if suffix == "telemetry":
        return False
    job = _job_topic(suffix.split("/"))
    return suffix in DOWNLINK_SUFFIXES or (job is not None and not job[1])


def job_update_topic(tenant_id: str, device_id: str, job_id: str, reply: str | None = None) -> str:
    """The topic a device updates a job execution on, or with `reply` Pulse's answer to that update."""
    topic = f"tenant/{tenant_id}/device/{device_id}/jobs/{job_id}/update"
    return f"{topic}/{reply}" if reply else topic


def parse_ts(value: Any, now_ms: int, limits: Limits) -> int:
    """ISO-8601 (naive = UTC) or epoch seconds/milliseconds -> epoch ms."""
    if value is None:
        return now_ms
    if isinstance(value, bool):
        raise Reject("INVALID_TIMESTAMP", "ts must be ISO-8601 or epoch")
    if isinstance(value, (int, float)):
        ms = int(value * 1000) if value < 1e11 else int(value)
    elif isinstance(value, str):
        ms = _utc_ms(value)
        if ms is None:
            ms = _iso_ms(value)
    else:
        raise Reject("INVALID_TIMESTAMP", "ts must be ISO-8601 or epoch")
    if ms > now_ms + limits.max_future_skew_ms:
        raise Reject("TIMESTAMP_IN_FUTURE", f"ts is more than {limits.max_future_skew_ms // 1000}s ahead")
    if ms < 0:
        raise Reject("INVALID_TIMESTAMP", "ts before 1970")
    return ms


def _iso_ms(value: str) -> int:
    """Any ISO-8601 timestamp (naive = UTC) -> epoch ms, or `Reject`."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Reject("INVALID_TIMESTAMP", f"unparseable ts {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _utc_ms(value: str) -> int | None:
    """`_iso_ms` of the usual shape (see `_UTC_SUFFIX_US`), ~4x faster; None for any other string."""
    us = _UTC_SUFFIX_US.get(value[19:])
    if us is None:
        return None
    second = value[:19]
    seconds = _known_seconds.get(second)
    if seconds is None:
        if not _ISO_SECOND_RE.fullmatch(second):
            return None
        try:
            seconds = (datetime.fromisoformat(second).replace(tzinfo=timezone.utc) - _EPOCH) // _SECOND
        except ValueError:  # no such day (Feb 30): `_iso_ms` says so
            return None
        _remember(_known_seconds, second, seconds)
    # what `_iso_ms` computes (`timestamp()` divides the microseconds since the epoch), rounding included
    return int((seconds * 1_000_000 + us) / 1_000_000 * 1000)


def parse_metrics(raw: Any, limits: Limits) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise Reject("INVALID_METRICS", "metrics must be a non-empty object")
    if len(raw) > limits.max_metrics:
        raise Reject("TOO_MANY_METRICS", f"{len(raw)} metrics > {limits.max_metrics}")
    known, isfinite = _known_keys, math.isfinite
    if raw.keys() <= known.keys():  # the usual message: keys seen before, every value a finite float
        for value in raw.values():
            if type(value) is not float:
                break
        else:
            if isfinite(sum(raw.values())):  # inf or nan anywhere makes the sum so
                return raw
    out: dict[str, float] = {}
    for key, value in raw.items():
        # the same few names arrive millions of times: checked once, and actors keep one copy
        key = known.get(key) or _metric_key(key)
        if type(value) is float and isfinite(value):  # the common case, same result as below
            out[key] = value
        elif isinstance(value, bool):
            out[key] = 1.0 if value else 0.0
        elif isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = float(value)
        else:
            raise Reject("METRIC_VALUE_INVALID", f"{key} is not a finite number or bool")
    return out


def _metric_key(key: str) -> str:
    """A valid metric key, interned and remembered, or `Reject`."""
    if len(key) > 128:
        raise Reject("METRIC_KEY_TOO_LONG", key[:40])
    if not METRIC_KEY_RE.match(key):
        raise Reject("METRIC_KEY_INVALID", key[:40])
    key = sys.intern(key)
    _remember(_known_keys, key, key)
    return key


def _loads(payload: bytes) -> Any:
    """JSON -> Python. orjson is several times faster than `json`, but stricter: it refuses NaN and
    Infinity, integers beyond 64 bits and non-UTF-8 encodings, which `json` takes (and the checks
    after it then judge, e.g. NaN -> METRIC_VALUE_INVALID). So `json` gets whatever orjson refuses,
    and the reasons stay what they were."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


def _telemetry(t: str, d: str, body: Any, now_ms: int, limits: Limits) -> Telemetry:
    if not isinstance(body, dict):
        raise Reject("INVALID_ENVELOPE", "envelope must be an object")
    version = body.get("version", "1")
    if str(version) != "1":
        raise Reject("UNSUPPORTED_ENVELOPE_VERSION", f"version {str(version)[:20]!r}")
    seq = body.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise Reject("INVALID_ENVELOPE", "seq must be an integer")
    site = body.get("site_id")
    if site is not None and not isinstance(site, str):
        raise Reject("INVALID_ENVELOPE", "site_id must be a string")
    return Telemetry(t, d, parse_ts(body.get("ts"), now_ms, limits), parse_metrics(body.get("metrics"), limits), seq, site)


def _int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject("INVALID_ENVELOPE", f"{key} must be an integer")
    return value


def _status(body: dict[str, Any]) -> str:
    status = body.get("status")
    if not isinstance(status, str) or not status or len(status) > 32:
        raise Reject("INVALID_ENVELOPE", "status required")
    return status.upper()


def _ota_status(t: str, d: str, ts: int, body: dict[str, Any]) -> OtaStatus:
    campaign_id = _int(body, "campaign_id")
    if campaign_id is None:
        raise Reject("INVALID_ENVELOPE", "campaign_id required")
    progress = _int(body, "progress_pct") if "progress_pct" in body else _int(body, "progress")
    if progress is not None and not 0 <= progress <= 100:
        raise Reject("INVALID_ENVELOPE", "progress_pct must be 0..100")
    error = body.get("error")
    if error is not None and not isinstance(error, str):
        raise Reject("INVALID_ENVELOPE", "error must be a string")
    return OtaStatus(t, d, ts, campaign_id, _status(body), progress, error[:MAX_ERROR_CHARS] if error else None)


def _job_update(t: str, d: str, ts: int, job_id: str, body: dict[str, Any]) -> JobUpdate:
    details = body.get("status_details")
    if details is not None and not isinstance(details, dict):
        raise Reject("INVALID_ENVELOPE", "status_details must be an object")
    return JobUpdate(t, d, ts, job_id, _status(body), _int(body, "expected_execution_number"), details)


def _one(t: str, d: str, suffix: str, body: Any, now_ms: int, limits: Limits) -> DeviceMessage:
    if suffix == "telemetry":
        return _telemetry(t, d, body, now_ms, limits)
    body = body if isinstance(body, dict) else {}
    ts = parse_ts(body.get("ts"), now_ms, limits)
    if suffix == "ota/status":
        return _ota_status(t, d, ts, body)
    job = _job_topic(suffix.split("/"))
    if job is not None:
        return _job_update(t, d, ts, job[0], body)
    if suffix == "heartbeat":
        return Heartbeat(t, d, ts)
    if suffix == "shadow/reported":
        reported = body.get("reported")
        if not isinstance(reported, dict):
            raise Reject("INVALID_ENVELOPE", "reported must be an object")
        version = body.get("version")
        return ReportedState(t, d, ts, reported, version if isinstance(version, int) else None)
    if suffix == "presence":
        connected = body.get("connected")
        if not isinstance(connected, bool):
            raise Reject("INVALID_ENVELOPE", "connected must be true or false")
        return Presence(t, d, ts, connected, body.get("subscribed") is not False)
    if suffix == "commands/ack":
        cid = body.get("command_id")
        if not isinstance(cid, str) or not cid:
            raise Reject("INVALID_ENVELOPE", "command_id required")
        details = body.get("details")
        return CommandAck(t, d, ts, cid, str(body.get("status", "ok")), details if isinstance(details, dict) else None)
    raise Reject("BAD_TOPIC_FORMAT", f"unsupported message type {suffix}")


def decode(
    topic: str, payload: bytes, now_ms: int, limits: Limits = Limits()
) -> tuple[list[DeviceMessage], list[Rejection]]:
    """One MQTT/HTTP message -> accepted messages (a telemetry batch may hold several) and rejections."""
    msg = _usual_telemetry(topic, payload, now_ms, limits)
    if msg is not None:
        return [msg], []
    return decode_checked(topic, payload, now_ms, limits)


class _Envelope(msgspec.Struct, gc=False):
    """A telemetry envelope as `_usual_telemetry` reads it: msgspec checks the JSON and these types in
    C (ints become floats, as `parse_metrics` makes them), the Python checks of `decode_checked`.
    Anything else fails to decode: a bool metric, a float seq, a version 1 (not "1"), NaN, a list."""

    metrics: dict[str, float]
    version: str = "1"
    ts: str | int | float | None = None
    seq: int | None = None
    site_id: str | None = None


_read_envelope = msgspec.json.Decoder(_Envelope).decode
# The integers orjson reads as int (a longer one becomes a float, which `decode_checked` judges);
# msgspec reads any length as int.
_ORJSON_INTS = range(-2**63, 2**64)


def _usual_telemetry(topic: str, payload: bytes, now_ms: int, limits: Limits) -> Telemetry | None:
    """The usual message (one telemetry envelope), decoded with the checks of `decode_checked` in
    fewer steps; None for anything else, or anything they would refuse, so that `decode_checked`
    runs from the start and gives every reason and detail (rare: it costs ~2x)."""
    try:
        tenant_id, device_id, suffix = parse_topic(topic)
    except Reject:
        return None
    if suffix != "telemetry" or len(payload) > limits.max_payload_bytes:
        return None
    try:
        env = _read_envelope(payload)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: msgspec nests less deep than orjson
        return None
    metrics, ts, seq = env.metrics, env.ts, env.seq
    if (env.version != "1" or (seq is not None and seq not in _ORJSON_INTS)
            or (type(ts) is int and ts not in _ORJSON_INTS) or not metrics or len(metrics) > limits.max_metrics
            or not math.isfinite(sum(metrics.values()))
            or not (metrics.keys() <= _known_keys.keys() or _known_now(metrics))):
        return None
    ts_ms = _utc_ms(ts) if type(ts) is str else None
    if ts_ms is None:
        try:
            ts_ms = parse_ts(ts, now_ms, limits)
        except Reject:
            return None
    elif not 0 <= ts_ms <= now_ms + limits.max_future_skew_ms:
        return None
    return Telemetry(tenant_id, device_id, ts_ms, metrics, seq, env.site_id)


def _known_now(metrics: dict[str, float]) -> bool:
    """Whether every key is valid, remembering those first seen here. What is remembered (and kept by
    every actor) is msgspec's copy, and msgspec hands out the same copy of a short key each time it
    reads it again: later messages' keys are then the actors' by identity, which compares faster."""
    try:
        for key in metrics:
            if key not in _known_keys:
                _metric_key(key)
    except Reject:
        return False
    return True


def decode_checked(
    topic: str, payload: bytes, now_ms: int, limits: Limits = Limits()
) -> tuple[list[DeviceMessage], list[Rejection]]:
    """`decode` by the full checks, step by step: what gives a refused message its reason."""
    tenant_id = device_id = None
    try:
        tenant_id, device_id, suffix = parse_topic(topic)
        if _is_downlink(suffix):
            return [], []
        if len(payload) > limits.max_payload_bytes:
            raise Reject("PAYLOAD_TOO_LARGE", f"{len(payload)} bytes > {limits.max_payload_bytes}")
        try:
            body = _loads(payload) if payload.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise Reject("INVALID_JSON") from None
        if suffix == "telemetry" and isinstance(body, list):
            if len(body) > limits.max_batch:
                raise Reject("BATCH_TOO_LARGE", f"{len(body)} envelopes > {limits.max_batch}")
            ok, bad = [], []
            for item in body:
                try:
                    ok.append(_telemetry(tenant_id, device_id, item, now_ms, limits))
                except Reject as r:
                    bad.append(_rejection(r, topic, tenant_id, device_id, json.dumps(item)[:4096], now_ms))
            return ok, bad
        return [_one(tenant_id, device_id, suffix, body, now_ms, limits)], []
    except Reject as r:
        return [], [_rejection(r, topic, tenant_id, device_id, payload, now_ms)]


def _rejection(r: Reject, topic: str, t: str | None, d: str | None, payload: bytes | str, now_ms: int) -> Rejection:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return Rejection(r.reason, topic[:512], t, d, text[:4096], now_ms, r.detail)
