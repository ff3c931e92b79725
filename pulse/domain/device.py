"""DeviceActor: one device's live state — latest values, twin, presence, rule state.

A plain class (no Ray): methods take a message and return effects. The host activates it
from a snapshot, calls it one message at a time, and persists `snapshot()` write-behind.
"""
from __future__ import annotations

import json
import sys
from itertools import chain
from typing import Any, Iterable

from pulse.domain.messages import (LISTENING, AlertEvent, CommandAck, CommandStatus, Effect, Heartbeat, JobUpdate,
                                   MetricsDiscovered, OtaStatus, Presence, Publish, ReportedState, Telemetry)
from pulse.domain.latest import LatestValues, Packed
from pulse.domain.rules import Rule, RuleState, step, tick
from pulse.errors import Conflict

MAX_DESIRED_BYTES = 8192  # documented limit of a desired-state document (docs/device-protocol.md)
NO_HEARTBEAT = "NO_HEARTBEAT"  # the built-in alert's type, and its key among the rule states
TWIN_STALE_AFTER_MS = 30 * 60_000  # documented: a twin whose device was not heard for 30 min is "stale"
MAX_QUEUED_COMMANDS = 100  # commands waiting for an offline device; more is refused, not dropped
SHARED_STR_MAX = 64  # twin strings up to this length are interned: fleets repeat firmware versions, modes
ACK_STATUS = {"ok": "delivered", "received": "delivered", "succeeded": "succeeded", "success": "succeeded",
              "failed": "failed", "rejected": "rejected"}


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: null deletes a key, objects merge recursively. What the patch
    brings in is interned as `shared_strings` does (the result is what an actor keeps)."""
    out = dict(target)
    for key, value in patch.items():
        key = _shared(key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = _shared(value)
    return out


def structured_delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """The documented system's top-level comparison: keys the device has not got yet (`added`, with
    the desired value), keys it reports that are no longer desired (`removed`, with the reported
    value), keys whose values differ (`changed`, both values) and how many agree."""
    added = {k: v for k, v in desired.items() if k not in reported}
    removed = {k: v for k, v in reported.items() if k not in desired}
    changed = {k: {"desired": v, "reported": reported[k]} for k, v in desired.items()
               if k in reported and reported[k] != v}
    return {"added": added, "removed": removed, "changed": changed,
            "unchanged_count": sum(1 for k, v in desired.items() if k in reported and reported[k] == v)}


def sync_status(delta: dict[str, Any], last_seen_ms: int | None, now_ms: int) -> str:
    """`stale` when the device has not been heard for 30 minutes (what it reported may be old),
    else `synced` when it reports every desired value, else `pending`. The documented system
    compares the two version counters, which count different things (desired writes and device
    reports); Pulse compares the documents themselves."""
    if last_seen_ms is None or now_ms - last_seen_ms > TWIN_STALE_AFTER_MS:
        return "stale"
    return "pending" if delta else "synced"


def diff_keys(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """Desired keys whose reported value differs (recursively for nested objects)."""
    delta: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            sub = diff_keys(want, have)
            if sub:
                delta[key] = sub
        elif want != have:
            delta[key] = want
    return delta


def view_of_latest(latest: dict[str, tuple[float, int]]) -> dict[str, dict[str, Any]]:
    """metric -> {"value", "ts_ms"}, by metric: a device's latest values as the API shows them."""
    return {m: {"value": v[0], "ts_ms": v[1]} for m, v in sorted(latest.items())}


PRESENCE_FIELDS = ("last_seen_ms", "last_telemetry_ms", "last_heartbeat_ms", "connected")


def shared_strings(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with its keys and short string values interned (recursively): a fleet's twins repeat the
    same keys and values, and each device holding its own copy of each was ~50 B per string."""
    return {_shared(key): _shared(value) for key, value in doc.items()}


def _shared(value: Any) -> Any:
    """A short string interned, a dict through `shared_strings`, anything else as it is."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= SHARED_STR_MAX else value
    return shared_strings(value) if isinstance(value, dict) else value


def _flatten(doc: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(chain.from_iterable(doc.items()))


def _unflatten(flat: tuple[Any, ...]) -> dict[str, Any]:
    pairs = iter(flat)
    return dict(zip(pairs, pairs))


class DeviceActor:
    """One device's live state. A shard holds up to ~10^6 of them, so the layout is compact (see
    docs/architecture.md, "Device actor memory"): every field is a slot (the twin's and presence's
    fields too, not dicts), latest values a `LatestValues` (a tuple under a shared layout), strings
    a fleet repeats are interned, and nothing is allocated before it is needed. `twin` and
    `presence` are views built on demand, in the shape the snapshot and the API have always had."""

    __slots__ = ("tenant_id", "device_id", "latest", "rule_states", "queued", "dirty", "key_map", "changed",
                 "_desired", "desired_version", "desired_ts", "_reported", "reported_version", "reported_ts",
                 *PRESENCE_FIELDS, "presence_extra")

    def __init__(self, tenant_id: str, device_id: str, snapshot: dict[str, Any] | None = None,
                 key_map: dict[str, str] | None = None) -> None:
        s = snapshot or {}
        self.tenant_id = sys.intern(tenant_id)  # a shard's devices belong to few tenants
        self.device_id = device_id
        # firmware key -> semantic key of the device's active modules; None (not {}) when there is none
        self.key_map: dict[str, str] | None = key_map or None
        # metrics whose latest value changed since the last persist (device_sensors.last_value): None for
        # none, True for all of them (the usual case: a device sends the same metrics each time, and a
        # set per actor would cost ~700 B at 10^6 actors between persists), else the set of them
        self.changed: set[str] | bool | None = None
        self.latest = LatestValues(s.get("latest"))
        self._restore_twin(s.get("twin") or {})
        self.rule_states: dict[str, RuleState] = {sys.intern(k): RuleState.from_dict(v)
                                                  for k, v in s.get("rules", {}).items()}
        self._restore_presence(s.get("presence") or {})
        # command_id -> command, for commands created while the device was offline; None for none
        self.queued: dict[str, dict[str, Any]] | None = s.get("queued") or None
        self.dirty = False

    def _restore_twin(self, tw: dict[str, Any]) -> None:
        self.desired = shared_strings(tw.get("desired") or {})
        self.desired_version = tw.get("desired_version", 0)
        self.desired_ts = tw.get("desired_ts")
        self.reported = shared_strings(tw.get("reported") or {})
        self.reported_version = tw.get("reported_version", 0)
        self.reported_ts = tw.get("reported_ts")

    def _restore_presence(self, p: dict[str, Any]) -> None:
        self.last_seen_ms = p.get("last_seen_ms")
        self.last_telemetry_ms = p.get("last_telemetry_ms")
        self.last_heartbeat_ms = p.get("last_heartbeat_ms")
        self.connected = p.get("connected")
        # the rarer fields (subscribed, connection_changed_ms) and any others a snapshot has: None for none
        self.presence_extra: dict[str, Any] | None = {k: v for k, v in p.items() if k not in PRESENCE_FIELDS} or None

    # The twin's two documents are kept flat (key, value, key, value, ...): a tuple of 3 pairs is 88 B
    # where a dict is 184 B, an empty one costs nothing (the shared ()), and they are read far less often
    # than devices report. Each read builds a new dict. What is stored went through `shared_strings`
    # (a snapshot's documents, each patch) so the fleet shares its keys and values.
    @property
    def desired(self) -> dict[str, Any]:
        return _unflatten(self._desired)

    @desired.setter
    def desired(self, doc: dict[str, Any]) -> None:
        self._desired = _flatten(doc)

    @property
    def reported(self) -> dict[str, Any]:
        return _unflatten(self._reported)

    @reported.setter
    def reported(self, doc: dict[str, Any]) -> None:
        self._reported = _flatten(doc)

    @property
    def twin(self) -> dict[str, Any]:
        """The twin document (desired, reported, their versions and times), as snapshots store it."""
        return {"desired": self.desired, "desired_version": self.desired_version, "desired_ts": self.desired_ts,
                "reported": self.reported, "reported_version": self.reported_version, "reported_ts": self.reported_ts}

    @property
    def presence(self) -> dict[str, Any]:
        """Last seen / telemetry / heartbeat times and the MQTT connection, as snapshots store it."""
        p = {"last_seen_ms": self.last_seen_ms, "last_telemetry_ms": self.last_telemetry_ms,
             "last_heartbeat_ms": self.last_heartbeat_ms, "connected": self.connected}
        if self.presence_extra:
            p.update(self.presence_extra)
        return p

    # ---- persistence ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "latest": self.latest.as_dict(),
            "twin": self.twin,
            "rules": {k: v.to_dict() for k, v in self.rule_states.items()},
            "presence": self.presence,
            "queued": self.queued or {},
        }

    def take_changed(self) -> dict[str, tuple[float, int]]:
        """The latest (value, ts_ms) of each metric changed since the last call, for write-behind."""
        changed, self.changed = self.changed, None
        if changed is True:
            return self.latest.as_dict()
        return {m: self.latest[m] for m in changed or () if m in self.latest}

    def keep_changed(self, metrics: Iterable[str]) -> None:
        """A failed write: these metrics' latest values are still to be written."""
        self._mark_changed(list(metrics))

    def _mark_changed(self, metrics: list[str]) -> None:
        """`metrics` (distinct keys of `latest`) changed: all of them is the flag True, not a set."""
        if not metrics or self.changed is True:
            return
        changed = set(metrics) if self.changed is None else self.changed | set(metrics)
        self.changed = True if len(changed) == len(self.latest) else changed

    # ---- messages ------------------------------------------------------------------------
    def normalize(self, msg: Any) -> None:
        """Rename telemetry's firmware keys to semantic keys by the device's modules, in place (the
        shard owns the messages it decoded): what latest, rules, sensors and the lake see."""
        key_map = self.key_map
        if key_map is not None and isinstance(msg, Telemetry):
            msg.metrics = {key_map.get(k, k): v for k, v in msg.metrics.items()}

    def set_key_map(self, key_map: dict[str, str]) -> None:
        self.key_map = key_map or None

    def on_telemetry(self, msg: Telemetry, rules: Iterable[Rule]) -> list[Effect]:
        self._seen(msg.ts_ms, "last_telemetry_ms")
        effects: list[Effect] = []
        new_keys, updated = self.latest.update(msg.metrics, msg.ts_ms)
        self._mark_changed(updated)
        if new_keys:
            effects.append(MetricsDiscovered(new_keys))
        states, device_id, readings, ts_ms = self.rule_states, self.device_id, msg.metrics, msg.ts_ms
        for rule in rules:
            if not (rule.everywhere or rule.applies_to(device_id)):
                continue
            state = states.get(rule.rule_id)
            if state is None:  # not `setdefault`: that builds a RuleState for every rule of every message
                state = states[rule.rule_id] = RuleState()
            event = step(rule, state, device_id, readings, ts_ms)
            if event is not None:
                effects.append(event)
        self.dirty = True
        return effects

    def on_tick(self, now_ms: int, rules: Iterable[Rule], heartbeat: tuple[int, int] | None = None) -> list[Effect]:
        """Timer: rules that fire on silence (telemetry_gap), and the built-in NO_HEARTBEAT alert
        (`heartbeat` = (stale_after_s, severity); it opens when the device is no longer ONLINE and
        closes at the first tick after it is ONLINE again)."""
        effects: list[Effect] = self._heartbeat(now_ms, *heartbeat) if heartbeat else []
        for rule in rules:
            if rule.rule_type != "telemetry_gap" or not rule.applies_to(self.device_id):
                continue
            last = self.last_telemetry_ms if rule.metric == "*" else (self.latest.get(rule.metric) or (None, None))[1]
            event = tick(rule, self.rule_states.setdefault(rule.rule_id, RuleState()), self.device_id, last, now_ms)
            if event is not None:
                effects.append(event)
                self.dirty = True
        return effects

    def _heartbeat(self, now_ms: int, stale_after_s: int, severity: int) -> list[Effect]:
        last_seen = self.last_seen_ms
        if last_seen is None:
            return []  # never heard from: nothing has gone silent
        online = presence_status(last_seen, now_ms, stale_after_s, stale_after_s) == "ONLINE"
        state = self.rule_states.setdefault(NO_HEARTBEAT, RuleState())
        if online == (not state.firing):
            return []
        state.firing = not online
        self.dirty = True
        silent_s = (now_ms - last_seen) / 1000
        return [AlertEvent("open" if state.firing else "clear", self.tenant_id, self.device_id, "", "No heartbeat",
                           severity, "heartbeat", silent_s, now_ms, alert_type=NO_HEARTBEAT,
                           details={"stale_after_s": stale_after_s, "connected": self.connected})]

    def on_heartbeat(self, msg: Heartbeat) -> list[Effect]:
        self._seen(msg.ts_ms, "last_heartbeat_ms")
        self.dirty = True
        return []

    def on_reported(self, msg: ReportedState) -> list[Effect]:
        self.reported = merge_patch(self.reported, msg.reported)
        self.reported_version = max(self.reported_version + 1, msg.version or 0)
        self.reported_ts = msg.ts_ms
        self._seen(msg.ts_ms, None)
        self.dirty = True
        return []

    def on_command_ack(self, msg: CommandAck) -> list[Effect]:
        self._seen(msg.ts_ms, None)
        self.dirty = True
        status = ACK_STATUS.get(msg.status.lower(), "failed")
        details = dict(msg.details or {})
        if msg.status.lower() not in ACK_STATUS:
            details["unknown_ack_status"] = msg.status
        return [CommandStatus(msg.command_id, status, msg.ts_ms, details or None)]

    def on_presence(self, msg: Presence) -> list[Effect]:
        """Connected: send what waited for it (unexpired, in creation order)."""
        self.connected = msg.connected
        subscribed = msg.connected and msg.subscribed
        self.presence_extra = {**(self.presence_extra or {}), "subscribed": subscribed,
                               "connection_changed_ms": msg.ts_ms}
        self._seen(msg.ts_ms, None)
        self.dirty = True
        return [*self._send_queued(msg.ts_ms), LISTENING] if subscribed else []

    def queue_command(self, command: dict[str, Any], now_ms: int) -> list[Effect]:
        """A new command: published now if the device is connected, else kept until it connects."""
        queued = self.queued if self.queued is not None else {}
        if len(queued) >= MAX_QUEUED_COMMANDS:
            raise ValueError(f"device already has {MAX_QUEUED_COMMANDS} commands waiting")
        queued[command["command_id"]] = command
        self.queued = queued
        self.dirty = True
        return self._send_queued(now_ms) if (self.presence_extra or {}).get("subscribed") else []

    def _send_queued(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for cid, cmd in sorted((self.queued or {}).items(), key=lambda kv: kv[1]["created_ms"]):
            if cmd["expires_ms"] > now_ms:
                body = {"command_id": cid, "type": cmd["type"], "params": cmd["params"],
                        "expires_at": cmd["expires_at"]}
                topic = f"tenant/{self.tenant_id}/device/{self.device_id}/commands"
                effects.append(Publish(topic, json.dumps(body).encode(), qos=1, command_id=cid))
        self.queued = None  # expired ones are marked by the scheduler's sweep
        return effects

    def handle(self, msg: Any, rules: Iterable[Rule]) -> list[Effect]:
        if isinstance(msg, Telemetry):
            return self.on_telemetry(msg, rules)
        if isinstance(msg, Heartbeat):
            return self.on_heartbeat(msg)
        if isinstance(msg, ReportedState):
            return self.on_reported(msg)
        if isinstance(msg, CommandAck):
            return self.on_command_ack(msg)
        if isinstance(msg, Presence):
            return self.on_presence(msg)
        if isinstance(msg, (OtaStatus, JobUpdate)):
            self._seen(msg.ts_ms, None)
            self.dirty = True
            return [msg]  # campaign and job state live in the store: the shard hands it to their services
        raise TypeError(f"device actor cannot handle {type(msg).__name__}")

    # ---- requests (from the API) ---------------------------------------------------------
    def patch_desired(self, patch: dict[str, Any], now_ms: int, replace: bool = False,
                      expected_version: int | None = None) -> tuple[dict[str, Any], list[Effect]]:
        """Merge `patch` into the desired state, or with `replace` make it the whole new state
        (merged into nothing, so its nulls are dropped as a merge patch drops them). With
        `expected_version` (the client's If-Match) the write applies only to that version: the
        actor handles one request at a time, so check and write are one step."""
        if expected_version is not None and expected_version != self.desired_version:
            raise Conflict(f"desired_version is {self.desired_version}, not {expected_version} "
                           "(If-Match): read the twin again and retry")
        desired = merge_patch({} if replace else self.desired, patch)
        if len(json.dumps(desired)) > MAX_DESIRED_BYTES:
            raise ValueError(f"desired state larger than {MAX_DESIRED_BYTES} bytes")
        self.desired = desired
        self.desired_version += 1
        self.desired_ts = now_ms
        self.dirty = True
        body = {"desired": desired, "version": self.desired_version, "timestamp": now_ms}
        topic = f"tenant/{self.tenant_id}/device/{self.device_id}/shadow/desired"
        return self.twin_view(now_ms), [Publish(topic, json.dumps(body).encode(), qos=1, retain=True)]

    def rules_changed(self, live_rule_ids: set[str]) -> list[Effect]:
        """Forget state of deleted rules; an alert they left open is closed by the tenant actor."""
        for rid in [r for r in self.rule_states if r not in live_rule_ids and r != NO_HEARTBEAT]:
            del self.rule_states[rid]
            self.dirty = True
        return []

    def latest_view(self) -> dict[str, Any]:
        return view_of_latest(self.latest)

    def latest_values(self) -> Packed:
        """The latest values as kept, packed (`LatestValues.pack`): for many devices at once this is
        far cheaper for the shard to build (and smaller to send) than `latest_view`; the caller
        shapes it with `view_of_latest(unpack(...))`."""
        return self.latest.pack()

    def twin_view(self, now_ms: int) -> dict[str, Any]:
        """The twin with its delta (nested), the documented structured delta, sync status and the
        time of the last change of either document (ms)."""
        tw = self.twin
        delta = diff_keys(tw["desired"], tw["reported"])
        changed = [t for t in (self.desired_ts, self.reported_ts) if t is not None]
        return {**tw, "delta": delta, "structured_delta": structured_delta(tw["desired"], tw["reported"]),
                "sync_status": sync_status(delta, self.last_seen_ms, now_ms),
                "shadow_updated_ts": max(changed, default=None)}

    def delta(self) -> dict[str, Any]:
        return diff_keys(self.desired, self.reported)

    def presence_view(self) -> dict[str, Any]:
        return self.presence

    def live_view(self) -> dict[str, Any]:
        """Presence and latest values in one request (the device page shows both)."""
        return {"presence": self.presence_view(), "latest": self.latest_view()}

    def _seen(self, ts_ms: int, field: str | None) -> None:
        if self.last_seen_ms is None or ts_ms > self.last_seen_ms:
            self.last_seen_ms = ts_ms
        if field == "last_telemetry_ms":
            if self.last_telemetry_ms is None or ts_ms > self.last_telemetry_ms:
                self.last_telemetry_ms = ts_ms
        elif field == "last_heartbeat_ms" and (self.last_heartbeat_ms is None or ts_ms > self.last_heartbeat_ms):
            self.last_heartbeat_ms = ts_ms



def presence_status(last_seen_ms: int | None, now_ms: int, stale_after_s: int, offline_after_s: int) -> str:
    """The documented meaning: from the age of the last message or heartbeat, ONLINE while heard
    from recently, STALE after a silence, OFFLINE after a long one (or never heard from).

    The MQTT connection is a separate fact (`presence.connected`, what command delivery needs): a
    battery device that connects, publishes and disconnects is still ONLINE for a while after."""
    if last_seen_ms is None:
        return "OFFLINE"
    age_s = (now_ms - last_seen_ms) / 1000
    if age_s <= stale_after_s:
        return "ONLINE"
    return "STALE" if age_s <= offline_after_s else "OFFLINE"
