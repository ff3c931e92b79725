"""1NCE Management API provider (reference §B).

Credentials: `api_key` / `api_secret` are the 1NCE client id / secret (a portal user with API rights),
`api_base_url` is `https://api.1nce.com/management-api` (or a simulator's URL); `/oauth/token` and
`/v1/sims...` are appended to it.

Mapping choices:
- `Enabled` -> active, `Disabled` -> suspended. 1NCE has one switch, so `suspend` and `deactivate`
  both disable and `activate`/`restore` both enable; a deactivated 1NCE SIM reads back as suspended.
- Volumes arrive as MB strings; 1 MB = 1,000,000 bytes (decimal, as carriers bill), converted exactly.
- Usage is the current calendar month (UTC) from `/usage`; the limit is the SIM's lifetime data quota
  (`/quota/data` `total_volume`): 1NCE sells a prepaid lifetime volume, not monthly plans.
- No plans (`list_plans` -> []), no diagnostics, no plan change, no callbacks; changes are synchronous.

Throttling: `/v1/sims*` allows 10 req/s per customer. Each provider spaces its calls at most
`rate_per_s` a second and backs off on 429 honouring `Retry-After` (through `pulse.integrations.http`).
The bearer token is cached and renewed shortly before `expires_in` runs out; a 401 on a call renews it
once and repeats the call once; a refused token request raises `CarrierAuthError` at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from pulse.integrations.carriers.base import (Action, ActionResult, CarrierAuthError, CarrierError, CarrierProvider,
                                              Credentials, DeviceInfo, SimStatus, Usage)
from pulse.integrations.http import RetryPolicy, send

log = logging.getLogger(__name__)

BYTES_PER_MB = 1_000_000
PAGE_SIZE = 100  # the API's maximum
DEFAULT_RATE_PER_S = 10.0  # documented /sims limit per customer
SMS_SOURCE_ADDRESS = "Pulse"

_SIM_STATUS: dict[str, SimStatus] = {"Enabled": "active", "Disabled": "suspended"}
_ACTION_STATUS: dict[str, str] = {"activate": "Enabled", "restore": "Enabled", "suspend": "Disabled",
                                  "deactivate": "Disabled"}
_NETWORK_STATUS = frozenset({"ONLINE", "ATTACHED", "OFFLINE", "BLOCKED"})
# 3GPP RAT type codes as found in the PDP context
_RAT_TYPES = {1: "3G", 2: "2G", 5: "3G", 6: "LTE", 8: "NB-IoT", 9: "LTE-M", 10: "5G"}


def mb_to_bytes(value: Any) -> int:
    """A 1NCE volume (MB, usually a string) in bytes; `CarrierError` when it is not a number."""
    try:
        mb = Decimal(str(value).strip())
    except InvalidOperation:
        raise CarrierError(f"1NCE sent a volume that is not a number: {str(value)[:40]!r}", 502) from None
    if not mb.is_finite():
        raise CarrierError(f"1NCE sent a volume that is not a number: {value!r}", 502)
    return int((mb * BYTES_PER_MB).to_integral_value(ROUND_HALF_UP))


def count_value(value: Any) -> int:
    """An SMS count (a string such as "3")."""
    return int(Decimal(str(value or 0)))


def parse_time(value: Any) -> datetime | None:
    """1NCE timestamps ("2024-05-01 10:00:00", ISO 8601 with or without offset); UTC when naive."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def month_window(today: date) -> tuple[date, date]:
    """First day of this month and of the next."""
    start = today.replace(day=1)
    return start, (start.replace(year=start.year + 1, month=1) if start.month == 12
                   else start.replace(month=start.month + 1))


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Pacer:
    """Spaces calls at least 1/rate apart; reserving a slot has no await, so it needs no lock."""

    def __init__(self, rate_per_s: float | None) -> None:
        self.spacing = 1.0 / rate_per_s if rate_per_s else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.spacing:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.spacing
        if slot > now:
            await asyncio.sleep(slot - now)


class OneNceProvider(CarrierProvider):
    name: ClassVar[str] = "1nce"
    default_base_url: ClassVar[str] = "https://api.1nce.com/management-api"

    def __init__(self, credentials: Credentials, http: httpx.AsyncClient | None = None,
                 retry: RetryPolicy = RetryPolicy(), timeout_s: float = 15.0,
                 rate_per_s: float | None = DEFAULT_RATE_PER_S) -> None:
        super().__init__(credentials, http=http, retry=retry, timeout_s=timeout_s)
        self.base_url = credentials.api_base_url.rstrip("/")
        self.pacer = Pacer(rate_per_s)
        self._token: str | None = None
        self._token_valid_until = 0.0
        self._token_lock = asyncio.Lock()

    # ---- transport --------------------------------------------------------------------------
    async def _access_token(self, stale: str | None = None) -> str:
        """The cached token, or a new one when it is near expiry or was just refused (`stale`)."""
        async with self._token_lock:
            if self._token and self._token != stale and time.monotonic() < self._token_valid_until:
                return self._token
            self._token = None
            response = await send(self.http, "POST", f"{self.base_url}/oauth/token", self.retry, True,
                                  auth=(self.credentials.api_key, self.credentials.api_secret),
                                  json={"grant_type": "client_credentials"})
            if response.status_code in (400, 401, 403):
                raise CarrierAuthError(f"1NCE refused the credentials: {_message(response)}",
                                       response.status_code, _token_code(response))
            body = _json(response) if response.is_success else None
            if not isinstance(body, dict) or not body.get("access_token"):
                raise CarrierError(f"1NCE token request failed: {_message(response)}", response.status_code)
            expires_in = float(body.get("expires_in") or 3600)
            # renew before it lapses: a tenth of its life, at most a minute, early
            self._token_valid_until = time.monotonic() + expires_in - min(60.0, expires_in / 10)
            self._token = str(body["access_token"])
            return self._token

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = await self._access_token()
        response = await self._send(method, path, token, **kwargs)
        if response.status_code == 401:  # revoked or expired early: renew once, repeat once
            token = await self._access_token(stale=token)
            response = await self._send(method, path, token, **kwargs)
        if response.status_code in (401, 403):
            raise CarrierAuthError(f"1NCE refused the call: {_message(response)}", response.status_code,
                                   _token_code(response))
        if not response.is_success:
            raise CarrierError(_message(response), response.status_code, _token_code(response))
        return response

    async def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        await self.pacer.wait()
        return await send(self.http, method, f"{self.base_url}{path}", self.retry,
                          headers={"Authorization": f"Bearer {token}"}, **kwargs)

    async def _get_json(self, path: str, **params: Any) -> Any:
        return _json(await self._call("GET", path, params=params or None))

    # ---- reads ------------------------------------------------------------------------------
    async def list_devices(self) -> AsyncIterator[DeviceInfo]:
        """Every SIM of the account, page by page (status endpoint not queried: one call per SIM)."""
        page, pages = 1, 1
        while page <= pages:
            response = await self._call("GET", "/v1/sims", params={"page": page, "pageSize": PAGE_SIZE})
            rows = _json(response)
            if not isinstance(rows, list):
                raise CarrierError("1NCE sent a SIM page that is not a list", 502)
            for sim in rows:
                yield _device(sim, None)
            pages = _int_header(response, "X-Total-Pages", default=page + (len(rows) == PAGE_SIZE))
            page += 1

    async def get_device_info(self, carrier_device_id: str) -> DeviceInfo:
        path = _sim_path(carrier_device_id)
        sim = await self._get_json(path)
        status = await self._get_json(f"{path}/status")
        return _device(sim, status if isinstance(status, dict) else None)

    async def get_usage(self, carrier_device_id: str) -> Usage:
        path = _sim_path(carrier_device_id)
        today = datetime.now(timezone.utc).date()
        start, next_start = month_window(today)
        usage = await self._get_json(f"{path}/usage", start_dt=start.isoformat(), end_dt=today.isoformat())
        quota = await self._get_json(f"{path}/quota/data")
        stats = usage.get("stats") if isinstance(usage, dict) else None
        if not isinstance(stats, list):
            raise CarrierError("1NCE sent usage without stats", 502)
        data = sum(mb_to_bytes((day.get("data") or {}).get("volume") or 0) for day in stats)
        sms = sum(count_value((day.get("sms") or {}).get("volume")) for day in stats)
        total = quota.get("total_volume") if isinstance(quota, dict) else None
        return Usage(carrier_device_id=carrier_device_id, data_used_bytes=data,
                     data_limit_bytes=mb_to_bytes(total) if total is not None else None, sms_count=sms,
                     billing_cycle_start=datetime.combine(start, datetime.min.time(), timezone.utc),
                     billing_cycle_end=datetime.combine(next_start, datetime.min.time(), timezone.utc),
                     raw={"usage": usage, "quota": quota})

    async def get_bulk_usage(self, carrier_device_ids: list[str]) -> dict[str, Usage]:
        """One SIM at a time (1NCE has no bulk usage call), paced by the rate limit. SIMs 1NCE no
        longer knows (404) are left out and logged; any other failure ends the batch."""
        out: dict[str, Usage] = {}
        for cid in carrier_device_ids:
            try:
                out[cid] = await self.get_usage(cid)
            except CarrierError as e:
                if e.status != 404:
                    raise
                log.warning("1nce bulk usage: SIM %s not found, skipped", cid)
        return out

    # ---- changes ----------------------------------------------------------------------------
    async def action(self, carrier_device_id: str, action: Action) -> ActionResult:
        status = _ACTION_STATUS.get(action)
        if status is None:
            raise CarrierError(f"Unknown action {action!r}; one of {', '.join(_ACTION_STATUS)}", 400)
        await self._set_status(carrier_device_id, status)
        return ActionResult(state="succeeded", detail=f"SIM {status.lower()}",
                            raw={"iccid": carrier_device_id, "status": status})

    async def send_sms(self, carrier_device_id: str, text: str) -> ActionResult:
        body = {"source_address": SMS_SOURCE_ADDRESS, "source_address_type": {"id": 208}, "payload": text}
        await self._call("POST", f"{_sim_path(carrier_device_id)}/sms", json=body)
        return ActionResult(state="succeeded", detail="SMS submitted", raw={"iccid": carrier_device_id})

    async def claim_sim(self, iccid: str, plan_id: str | None = None) -> DeviceInfo:
        """1NCE SIMs are pre-provisioned to the account: find the SIM, enable it, report it."""
        if plan_id:
            raise self._unsupported("rate plans")
        sim = await self._find_sim(iccid)
        carrier_id = str(sim.get("iccid") or iccid)
        if sim.get("status") != "Enabled":
            await self._set_status(carrier_id, "Enabled")
        return await self.get_device_info(carrier_id)

    async def _find_sim(self, iccid: str) -> dict[str, Any]:
        """The SIM by ICCID; a 20-digit ICCID with a valid Luhn digit (as printed) is also tried without it."""
        try:
            sim = await self._get_json(_sim_path(iccid))
        except CarrierError as e:
            if e.status != 404 or len(iccid) != 20 or not luhn_ok(iccid):
                raise
            sim = await self._get_json(_sim_path(iccid[:-1]))
        if not isinstance(sim, dict):
            raise CarrierError("1NCE sent a SIM that is not an object", 502)
        return sim

    async def _set_status(self, iccid: str, status: str) -> None:
        await self._call("PUT", _sim_path(iccid), json={"iccid": iccid, "status": status})


def _sim_path(iccid: str) -> str:
    if not iccid or not iccid.strip():
        raise CarrierError("ICCID is required", 400)
    return f"/v1/sims/{quote(iccid.strip(), safe='')}"


def _device(sim: Any, status: dict[str, Any] | None) -> DeviceInfo:
    if not isinstance(sim, dict) or not sim.get("iccid"):
        raise CarrierError("1NCE sent a SIM without an ICCID", 502)
    status = status or {}
    pdp = status.get("pdp_context") if isinstance(status.get("pdp_context"), dict) else {}
    location = status.get("location") if isinstance(status.get("location"), dict) else {}
    network = status.get("status")
    rat = pdp.get("rat_type")
    return DeviceInfo(
        carrier_device_id=str(sim["iccid"]), iccid=str(sim["iccid"]),
        sim_status=_SIM_STATUS.get(str(sim.get("status")), "unknown"),
        network_status=network if network in _NETWORK_STATUS else None,
        ip_address=sim.get("ip_address") or pdp.get("ue_ip_address") or None,
        network_type=_RAT_TYPES.get(rat, str(rat)) if rat is not None else None,
        last_connection=parse_time(pdp.get("created")) or parse_time(location.get("last_updated")),
        msisdn=sim.get("msisdn") or None, imei=sim.get("imei") or None,
        raw={"sim": sim, **({"status": status} if status else {})},
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CarrierError(f"1NCE sent a response that is not JSON (HTTP {response.status_code})", 502) from None


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response) -> str:
    body = _body(response)
    text = body.get("message") or body.get("error_description") or body.get("error") or response.text[:200]
    return f"HTTP {response.status_code}: {text}".rstrip(": ")


def _token_code(response: httpx.Response) -> str | None:
    code = _body(response).get("error_token")
    return str(code) if code else None


def _int_header(response: httpx.Response, name: str, default: int) -> int:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return default
