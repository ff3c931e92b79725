"""Notifier: routes alert events to channels and delivers them — retries, backoff, rate limits, a log.

A plain async class; `pulse up` hosts it as the `notifier` Ray actor (no Ray import here), tests
drive it directly. Who calls it (docs/notifications.md, "Wiring"):
- `dispatch(tenant_id, alert, event)`: the routing-rule decision plus `enqueue`, for the tenant
  host after it stored an alert transition, and for the scheduler's escalation tick;
- `enqueue(tenant_id, alert, event, channel_ids)`: jobs for channels chosen elsewhere.
Both only write `notification_jobs` rows and return their ids; the delivery loop (`start()`, or
`run_due()` in tests) sends them. Delivery is at-least-once: a job whose sender died is retaken
when its claim lapses, and `delivery_id` (stable per job) lets receivers de-duplicate.

Failures: 2xx = COMPLETED; 429, 5xx, timeouts, refused connections = retried after 5 s, 10 s,
20 s, … (capped, `notifier_backoff_*`) up to `notifier_max_attempts`, then FAILED; any other
4xx (and a config that no longer validates) = FAILED at once. A target that is down therefore
delays delivery until its attempts run out, it never loses a job silently.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from pulse.domain.escalation import digest_window
from pulse.domain.scopes import DeviceFacts, selects
from pulse.domain.windows import in_window
from pulse.integrations.channels.email import EmailConfig, plain_email, send_mail
from pulse.pipelines import reports
from pulse.storage import digest
from pulse.domain.escalation import advance
from pulse.storage import escalation
from pulse.storage import alerts as alert_store
from pulse.storage import groups, maintenance, tenants
from pulse.config.settings import Settings
from pulse.errors import Invalid
from pulse.integrations.channels import CHANNELS, DeliveryContext, DeliveryResult, Message, parse_config
from pulse.domain.channels import EVENTS, TEST_EVENT
from pulse.mqtt.endpoint import service_endpoint
from pulse.mqtt.publisher import MqttPublisher
from pulse.storage import notifications as store
from pulse.services.outbound import OutboundWorker
from pulse.storage.db import Database, utcnow

log = logging.getLogger(__name__)

DEFAULT_EVENTS = ("OPEN",)


# ---- routing: pure, no I/O -----------------------------------------------------------------------
def match_rules(rules: Iterable[Mapping[str, Any]], alert_event: Mapping[str, Any],
                device_facts: DeviceFacts | Mapping[str, Any] | None, now: datetime) -> list[str]:
    """The channel ids an alert event goes to, in rule order, each once.

    `alert_event` is the alert (severity, alert_type, rule_id, device_id, site_id?) plus `event`
    (OPEN | ACKNOWLEDGED | CLOSED | ESCALATED; default OPEN). `device_facts` = {group_ids, tags,
    site_id} (or a `DeviceFacts`). Rules are tried by `priority` ascending (ties in the order
    given); every matching rule contributes its channels, and a matching rule with `stop` ends the
    evaluation."""
    return list(dict.fromkeys(c for rule in matching_rules(rules, alert_event, device_facts, now)
                              for c in rule["channel_ids"]))


def matching_rules(rules: Iterable[Mapping[str, Any]], alert_event: Mapping[str, Any],
                   device_facts: DeviceFacts | Mapping[str, Any] | None, now: datetime) -> list[Mapping[str, Any]]:
    device = routed_device(alert_event, device_facts)
    out: list[Mapping[str, Any]] = []
    for rule in sorted((r for r in rules if r.get("enabled", True)), key=lambda r: r.get("priority", 100)):
        if rule_matches(rule, alert_event, device, now):
            out.append(rule)
            if rule.get("stop"):
                break
    return out


def routed_device(alert: Mapping[str, Any], facts: DeviceFacts | Mapping[str, Any] | None) -> DeviceFacts:
    """The alert's device as routing sees it: its facts, with the alert's site when it has none."""
    if not isinstance(facts, DeviceFacts):
        f = facts or {}
        facts = DeviceFacts(alert.get("device_id"), f.get("site_id"), frozenset(f.get("tags") or ()),
                            frozenset(f.get("group_ids") or ()))
    return facts if facts.site_id else replace(facts, site_id=alert.get("site_id"))


def rule_matches(rule: Mapping[str, Any], alert: Mapping[str, Any], device: DeviceFacts, now: datetime) -> bool:
    """Every criterion the rule sets must hold (an unset or empty list matches anything); its device
    criteria are a filter in the sense of `pulse.domain.scopes.selects`."""
    if alert.get("event", "OPEN") not in (rule.get("events") or DEFAULT_EVENTS):
        return False
    if rule.get("min_severity") is not None and int(alert.get("severity") or 0) < int(rule["min_severity"]):
        return False
    for key, value in (("alert_types", alert.get("alert_type")), ("rule_ids", alert.get("rule_id"))):
        if rule.get(key) and value not in rule[key]:
            return False
    if not selects(rule, device):
        return False
    return not rule.get("active_hours") or _in_active_hours(rule, now)


def _in_active_hours(rule: Mapping[str, Any], now: datetime) -> bool:
    try:
        return in_window(rule["active_hours"], now)
    except ValueError as e:  # stored before its check tightened (e.g. zone "Factory"): it cannot match
        log.warning("routing rule %s: active_hours ignored, the rule does not match: %s", rule.get("rule_id"), e)
        return False


def throttles(rules: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """channel -> throttle minutes of the first (highest-priority) matching rule naming it."""
    out: dict[str, int] = {}
    for rule in rules:
        for c in rule["channel_ids"]:
            out.setdefault(c, int(rule.get("throttle_minutes") or 0))
    return out


# ---- delivery ----------------------------------------------------------------------------------
class TokenBucket:
    """`rate_per_s` sends per second on average, bursts of up to `capacity`."""

    def __init__(self, rate_per_s: float, capacity: float) -> None:
        self.rate, self.capacity = rate_per_s, max(1.0, capacity)
        self.tokens, self.last = self.capacity, None

    def take(self, now_s: float) -> float:
        """0 when a send may go now (and takes a token), else the seconds until one may."""
        if self.last is not None:
            self.tokens = min(self.capacity, self.tokens + max(0.0, now_s - self.last) * self.rate)
        self.last = now_s if self.last is None else max(self.last, now_s)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _addressed(channel: Mapping[str, Any], job: Mapping[str, Any]) -> Mapping[str, Any]:
    """The channel as this job sends through it: an escalation's people replace its recipients."""
    recipients = job["payload"].get("recipients")
    return {**channel, "config": {**channel["config"], "recipients": recipients}} if recipients else channel


def snapshot(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The alert as JSON (datetimes as ISO-8601): what a job keeps and a channel renders."""
    return json.loads(json.dumps(dict(alert), default=_json_default))


def probe_alert(channel: Mapping[str, Any]) -> dict[str, Any]:
    """The made-up alert a channel test sends: severity info, device "pulse-test", alert id 0."""
    return {"alert_id": 0, "device_id": "pulse-test", "alert_type": "TEST", "severity": 1, "status": "OPEN",
            "fingerprint": f"TEST:{channel['channel_id']}", "created_at": utcnow().isoformat(),
            "summary": f"Pulse test message for channel {channel.get('name') or channel['channel_id']}"}


class Notifier(OutboundWorker):
    def __init__(self, settings: Settings, db: Database | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(settings, db, clock)
        self._mqtt: MqttPublisher | None = None
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running = False
        self._stats = {"enqueued": 0, "attempts": 0, "delivered": 0, "retries": 0, "failed": 0, "rate_limited": 0,
                       "throttled": 0, "loop_errors": 0}

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self, runtime: Any = None) -> bool:
        """`runtime` (the actor runtime, handed over by it) is unused: deliveries need no actor."""
        if self._task is None:
            self._running = True
            self._task = asyncio.create_task(self._loop(), name="notifier")
        return True

    async def stop(self) -> None:
        self._running = False
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)  # finish the batch in hand
            self._task = None
        if self._mqtt is not None:
            await self._mqtt.close()
            self._mqtt = None
        await self._close_owned()

    async def stats(self) -> dict[str, Any]:
        return {**self._stats, "jobs": await store.job_counts(self.db)}

    # ---- the calls alerting makes --------------------------------------------------------------
    async def enqueue(self, tenant_id: str, alert: Mapping[str, Any], event: str, channel_ids: Iterable[str],
                      now: datetime | None = None) -> list[int]:
        """PENDING jobs for `channel_ids` (the tenant's enabled ones; others are skipped and logged).

        Idempotent: enqueueing the same alert event for a channel again returns the existing job.
        ESCALATED events are told apart by `alert["escalation_level"]`."""
        if event not in EVENTS:
            raise Invalid(f"event must be one of {', '.join(EVENTS)}")
        if alert.get("alert_id") is None:
            raise Invalid("alert needs an alert_id")
        wanted = list(dict.fromkeys(channel_ids))
        if not wanted:
            return []
        occurrence = int(alert.get("escalation_level") or 0) if event == "ESCALATED" else 0
        ids = await store.insert_jobs(self.db, tenant_id, int(alert["alert_id"]), event, occurrence,
                                      alert.get("fingerprint"), wanted, {"alert": snapshot(alert)},
                                      now or self.clock())
        if len(ids) < len(wanted):
            log.warning("notifier: %d of %d channels for alert %s of %s are unknown or disabled; skipped",
                        len(wanted) - len(ids), len(wanted), alert["alert_id"], tenant_id)
        self._stats["enqueued"] += len(ids)
        self._wake.set()
        return ids

    async def dispatch(self, tenant_id: str, alert: Mapping[str, Any], event: str,
                       device_facts: Mapping[str, Any] | None = None, now: datetime | None = None) -> list[int]:
        """Route an alert event through the tenant's routing rules and enqueue what matches.

        Device facts are read from the store when not given. A channel whose first matching rule
        has `throttle_minutes` is skipped while it already has a job for the same fingerprint and
        event (of an earlier alert, e.g. a flapping one) created within that many minutes."""
        now = now or self.clock()
        rules = await store.enabled_rules(self.db, tenant_id)
        if not rules:
            return []
        if device_facts is None:
            group_ids = {g for r in rules for g in (r.get("group_ids") or ())}
            async with self.db.connect() as conn:
                device_facts = await groups.device_facts(conn, tenant_id, str(alert.get("device_id")), group_ids)
        matched = matching_rules(rules, {**alert, "event": event}, device_facts, now)
        limits = throttles(matched)
        windows = {c: now - timedelta(minutes=m) for c, m in limits.items() if m > 0}
        skip: set[str] = set()
        if windows and alert.get("fingerprint"):
            skip = await store.recently_notified(self.db, tenant_id, int(alert["alert_id"]), alert["fingerprint"],
                                                 event, windows)
            self._stats["throttled"] += len(skip)
        return await self.enqueue(tenant_id, alert, event, [c for c in limits if c not in skip], now)

    async def notify(self, notices: Iterable[tuple[str, int, str]]) -> int:
        """Committed alert transitions (tenant, alert id, event) from the tenant actors: route each one.

        OPEN and ESCALATED are suppressed (recorded, not sent) while the alert is silenced or its
        device is in a maintenance window; acknowledgements and closes always go out, so a target
        that saw an alert also sees it end. Returns the jobs enqueued."""
        jobs = 0
        for tenant_id, alert_id, event in notices:
            alert = await alert_store.get(self.db, tenant_id, alert_id)
            if event in ("OPEN", "ESCALATED") and await self.suppressed(tenant_id, alert):
                self._stats["suppressed"] = self._stats.get("suppressed", 0) + 1
                continue
            jobs += len(await self.dispatch(tenant_id, alert, event))
        return jobs

    async def escalate_due(self, now: datetime | None = None) -> int:
        """One scheduler tick of escalation: every OPEN, unacknowledged, unsilenced alert whose
        timer is due moves one step and its targets get an ESCALATED notification.

        The step is marked before the jobs are enqueued (compare-and-set on the level), so two
        schedulers never page twice and an alert acknowledged meanwhile is never paged."""
        now = now or self.clock()
        steps = 0
        for alert in await escalation.due(self.db, now):
            policy = alert.get("policy")
            targets, level, next_at = advance(policy, alert["escalation_level"], now) if policy else ([], 0, None)
            if not targets and level == alert["escalation_level"]:
                await escalation.finish(self.db, alert["tenant_id"], alert["alert_id"], alert["escalation_level"])
                continue
            resolved = await escalation.resolve_targets(self.db, alert["tenant_id"], targets, now)
            if not await escalation.mark_escalated(self.db, alert["tenant_id"], alert["alert_id"], level, next_at, now,
                                                   targets=resolved):
                continue
            if await self.suppressed(alert["tenant_id"], alert):
                continue
            stepped = {**alert, "escalation_level": level}
            # people first: when the mail channel is also a target, its one job carries them too
            await self.page_people(alert["tenant_id"], stepped, resolved["people"], resolved["channel_ids"], now)
            await self.enqueue(alert["tenant_id"], stepped, "ESCALATED", resolved["channel_ids"], now)
            steps += 1
        return steps

    async def page_people(self, tenant_id: str, alert: Mapping[str, Any], people: list[str],
                          channel_ids: list[str], now: datetime) -> list[int]:
        """An escalation step's people (users, on-call responders) get the ESCALATED e-mail through the
        tenant's e-mail channel (its SMTP server), as one queued job: retried, logged, idempotent
        per step like channel jobs. People are e-mail addresses or user ids with an e-mail in Pulse."""
        if not people:
            return []
        addresses = await self._addresses(tenant_id, people)
        channel = await store.mail_channel(self.db, tenant_id)
        if channel is None or not addresses:
            log.warning("escalation of alert %s (%s): nobody of %s can be e-mailed (%s)", alert["alert_id"],
                        tenant_id, people, "no enabled e-mail channel" if channel is None else "no e-mail address")
            return []
        if channel["channel_id"] in channel_ids:
            addresses = [*channel["config"]["recipients"], *addresses]
        ids = await store.insert_jobs(self.db, tenant_id, int(alert["alert_id"]), "ESCALATED",
                                      int(alert.get("escalation_level") or 0), alert.get("fingerprint"),
                                      [channel["channel_id"]],
                                      {"alert": snapshot(alert), "recipients": list(dict.fromkeys(addresses))}, now)
        self._stats["enqueued"] += len(ids)
        self._wake.set()
        return ids

    async def _addresses(self, tenant_id: str, people: list[str]) -> list[str]:
        """E-mail addresses of people: an address as given, a user id through the users table."""
        known = await tenants.user_emails(self.db, tenant_id, [p for p in people if "@" not in p])
        missing = [p for p in people if "@" not in p and p not in known]
        if missing:
            log.warning("escalation: no e-mail address for %s of tenant %s", missing, tenant_id)
        return [p if "@" in p else known[p] for p in people if "@" in p or p in known]

    async def send_digests(self, now: datetime | None = None) -> int:
        """Alert digests that are due, each by its e-mail channel's SMTP server to its recipients.
        A failed send is retried at the next tick (the digest stays due until one succeeds)."""
        now = now or self.clock()
        sent = 0
        for settings in await digest.due_digests(self.db, now):
            since, until = digest_window(settings, now)
            content = await digest.digest_content(self.db, settings["tenant_id"], since, until)
            subject, text, body = reports.digest_email(content, settings["frequency"])
            try:
                channel = await store.channel_for_delivery(self.db, self.box, settings["tenant_id"], settings["channel_id"])
                config = EmailConfig.model_validate({**channel["config"], "recipients": settings["recipients"]})
                mail = plain_email(config, subject, text, body)
                await asyncio.to_thread(send_mail, config, mail, self.settings.notifier_timeout_s)
            except Exception as e:  # SMTP down, channel gone: try again next tick
                log.warning("digest for %s not sent: %s", settings["tenant_id"], e)
                continue
            await digest.mark_sent(self.db, settings["tenant_id"], now)
            sent += 1
        return sent

    async def suppressed(self, tenant_id: str, alert: Mapping[str, Any]) -> bool:
        if alert.get("silenced"):
            return True
        return await maintenance.in_maintenance(self.db, tenant_id, alert["device_id"], self.clock())

    # ---- delivery ------------------------------------------------------------------------------
    async def run_due(self, now: datetime | None = None) -> int:
        """Send one batch of due jobs; returns the delivery attempts made (rate-limited jobs wait).

        `now` (tests) pins the clock for the whole batch; otherwise outcomes are stamped when they arrive."""
        clock = self.clock if now is None else (lambda: now)
        now = clock()
        lease = now + timedelta(seconds=max(60.0, 4 * self.settings.notifier_timeout_s))
        claimed = await store.claim_due(self.db, now, lease, self.settings.notifier_batch_size)
        if not claimed:
            return 0
        channels = await store.channels_for_delivery(self.db, self.box, {j["channel_id"] for j in claimed})
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for job in claimed:
            by_channel.setdefault(job["channel_id"], []).append(job)
        limit = asyncio.Semaphore(self.settings.notifier_concurrency)
        counts = await asyncio.gather(*(self._deliver(channels.get(cid), batch, clock, limit)
                                        for cid, batch in by_channel.items()))
        return sum(counts)

    async def send_test(self, channel: Mapping[str, Any]) -> dict[str, Any]:
        """Send a test message to a channel (its secrets decrypted) now; the result, also logged."""
        delivery_id = f"test-{uuid.uuid4().hex[:12]}"
        message = Message(channel["tenant_id"], TEST_EVENT, probe_alert(channel), delivery_id, test=True)
        result = await self._send(channel, message)
        await store.log_send(self.db, {
            "tenant_id": channel["tenant_id"], "job_id": None, "channel_id": channel["channel_id"], "alert_id": None,
            "event": TEST_EVENT, "attempt": 1, "ok": result.ok, "status_code": result.status_code,
            "error": result.error, "duration_ms": result.duration_ms, "at": self.clock()})
        return {"channel_id": channel["channel_id"], "channel_type": channel["channel_type"],
                "delivery_id": delivery_id, **result.as_dict()}

    # ---- internals -----------------------------------------------------------------------------
    def _context(self) -> DeliveryContext:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False, timeout=self.settings.notifier_timeout_s)
        if self._mqtt is None:
            self._mqtt = MqttPublisher(service_endpoint(self.settings), timeout_s=self.settings.notifier_timeout_s)
        return DeliveryContext(http=self._http, mqtt=self._mqtt, timeout_s=self.settings.notifier_timeout_s,
                               block_private_targets=self.settings.notifier_block_private_targets,
                               db=self.db, secrets=self.box)

    def _bucket(self, channel: Mapping[str, Any]) -> TokenBucket:
        per_minute = float(channel.get("rate_limit_per_minute") or self.settings.notifier_rate_per_minute)
        held = self._buckets.get(channel["channel_id"])
        if held is None or held[0] != per_minute:
            burst = min(float(self.settings.notifier_rate_burst), per_minute)
            held = (per_minute, TokenBucket(per_minute / 60.0, burst))
            self._buckets[channel["channel_id"]] = held
        return held[1]

    async def _send(self, channel: Mapping[str, Any], message: Message) -> DeliveryResult:
        try:
            config = parse_config(channel["channel_type"], channel["config"])
        except Invalid as e:  # stored before a validation rule tightened: sending cannot fix it
            return DeliveryResult(ok=False, error=f"invalid channel config: {e.detail}")
        try:
            return await CHANNELS[channel["channel_type"]].send(message, config, self._context())
        except Exception as e:  # a bug or an unforeseen library error: count it, retry the job
            log.exception("notifier: %s channel %s raised", channel["channel_type"], channel["channel_id"])
            return DeliveryResult(ok=False, retryable=True, error=f"internal error: {type(e).__name__}")

    async def _deliver(self, channel: Mapping[str, Any] | None, batch: list[dict[str, Any]],
                       clock: Callable[[], datetime], limit: asyncio.Semaphore) -> int:
        """One channel's jobs, in order (an alert's events must not overtake each other)."""
        attempts = 0
        async with limit:
            for i, job in enumerate(batch):
                now = clock()
                if channel is None or channel["tenant_id"] != job["tenant_id"]:
                    await self._close(job, "channel deleted", now)
                    continue
                if not channel["enabled"]:
                    await self._close(job, "channel disabled", now)
                    continue
                if channel.get("unreadable"):
                    result = DeliveryResult(ok=False, retryable=True,
                                            error="channel secrets do not decrypt (secrets_key changed?)")
                else:
                    wait = self._bucket(channel).take(now.timestamp())
                    if wait > 0:
                        await self._defer(batch[i:], now, now + timedelta(seconds=wait))
                        break
                    message = Message(job["tenant_id"], job["event"], job["payload"]["alert"], f"job-{job['job_id']}")
                    result = await self._send(_addressed(channel, job), message)
                await self._record(job, result, clock())
                attempts += 1
        return attempts

    def _backoff(self, attempts: int) -> float:
        s = self.settings
        return min(s.notifier_backoff_base_s * 2 ** max(0, attempts - 1), s.notifier_backoff_max_s)

    async def _record(self, job: dict[str, Any], result: DeliveryResult, at: datetime) -> None:
        attempts = job["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempts, "updated_at": at, "last_status_code": result.status_code,
                                  "last_error": result.error}
        if result.ok:
            values.update(status=store.COMPLETED, next_attempt_at=None, completed_at=at)
            self._stats["delivered"] += 1
        elif result.retryable and attempts < self.settings.notifier_max_attempts:
            delay = max(self._backoff(attempts), min(result.retry_after_s or 0.0, self.settings.notifier_backoff_max_s))
            values.update(status=store.PENDING, next_attempt_at=at + timedelta(seconds=delay))
            self._stats["retries"] += 1
        else:
            if result.retryable:
                values["last_error"] = f"gave up after {attempts} attempts: {result.error}"
            values.update(status=store.FAILED, next_attempt_at=None, completed_at=at)
            self._stats["failed"] += 1
            log.warning("notifier: job %s (%s to channel %s) failed: %s", job["job_id"], job["event"],
                        job["channel_id"], values["last_error"])
        self._stats["attempts"] += 1
        await store.finish_job(self.db, job, values, {
            "tenant_id": job["tenant_id"], "job_id": job["job_id"], "channel_id": job["channel_id"],
            "alert_id": job["alert_id"], "event": job["event"], "attempt": attempts, "ok": result.ok,
            "status_code": result.status_code, "error": result.error, "duration_ms": result.duration_ms, "at": at})

    async def _close(self, job: dict[str, Any], reason: str, now: datetime) -> None:
        self._stats["failed"] += 1
        await store.finish_job(self.db, job, {"status": store.FAILED, "last_error": reason, "next_attempt_at": None,
                                              "updated_at": now, "completed_at": now}, None)

    async def _defer(self, batch: list[dict[str, Any]], now: datetime, until: datetime) -> None:
        """Rate-limited: back to PENDING without spending an attempt."""
        self._stats["rate_limited"] += len(batch)
        for job in batch:
            await store.finish_job(self.db, job, {"status": store.PENDING, "next_attempt_at": until,
                                                  "updated_at": now}, None)

    async def _loop(self) -> None:
        while self._running:
            try:
                sent = await self.run_due()
            except Exception:  # the store is down, say: jobs stay where they are; retried next poll
                self._stats["loop_errors"] += 1
                log.exception("notifier: delivery batch failed")
                sent = 0
            if sent >= self.settings.notifier_batch_size or not self._running:
                continue  # more may be due right now
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.notifier_poll_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()


async def send_test(settings: Settings, db: Database, channel: Mapping[str, Any]) -> dict[str, Any]:
    """A one-off test send (the API's `POST …/test`), without a running delivery loop."""
    notifier = Notifier(settings, db)
    try:
        return await notifier.send_test(channel)
    finally:
        await notifier.stop()
