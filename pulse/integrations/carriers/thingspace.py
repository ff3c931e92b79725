"""Verizon ThingSpace Connectivity Management (M2M) as a `CarrierProvider` (reference `external-apis.md` §A).

Credentials: `api_key`/`api_secret` are the OAuth client id/secret, `config["username"]`/`config["password"]`
the UWS session login, `account_id` the account name (`config["account_name"]` also works), and
`api_base_url` the host (`https://thingspace.verizon.com`): this module appends `/api/ts/v1/...` and
`/api/m2m/v1/...`. Activation needs `config["mdn_zip_code"]` (5 digits, sent as `mdnZipCode`, required by ThingSpace);
optional `config["service_plan"]` is the plan code used when the caller names none, and
`config["sku_number"]` lets activation add a 4G SIM known only by its ICCID.

Two tokens ride on every call, both cached here:
- the OAuth access token, fetched again shortly before the `expires_in` it came with runs out (while it
  lives, ThingSpace hands back the same token, which is then kept to its real end); a 401 from the
  gateway means it went bad early: fetch a new one and repeat the call, once;
- the session token, from `POST /session/login`. ThingSpace keeps it alive while it is used, so it is
  renewed only when a call fails with a `SessionToken` error (expired after 20 idle minutes, or unknown):
  log in again once, repeat the call once.
Five failed logins in a row lock the account until Verizon support unlocks it, so a login or token
request is sent exactly once and never retried: a refused login raises `CarrierAuthError`, and this
provider then refuses to try that login again (credentials must change, i.e. a new provider). A
login that meets a 5xx, 429 or timeout raises `Unavailable` after that single attempt. Every other
call goes through `pulse.integrations.http.send` with `self.retry` (429 with Retry-After; 5xx and timeouts
only for reads, since an action such as activate or SMS that may have reached Verizon is never sent twice).

ThingSpace results are asynchronous: actions, plan changes and SMS answer a `requestId`; the outcome
arrives on a `CarrierService` (`EnhancedConnectivityService` for SMS) callback, or by polling
`request_status`. Aggregate usage exists only as a `DeviceUsage` callback, so `get_bulk_usage` keeps
the base class's line-by-line reads and `parse_callback` turns those callbacks into `kind="usage"`.
Plan sizes (`sizeKb`) count KiB: limit in bytes = sizeKb × 1024; a size of 0 (pooled plans) is no limit.
"""
from __future__ import annotations

import asyncio
import calendar
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from pulse.integrations.carriers.base import (Action, ActionResult, CallbackEvent, CarrierAuthError, CarrierError,
                                              CarrierProvider, Credentials, DeviceInfo, Diagnostics, Plan,
                                              RequestState, SimStatus, Usage)
from pulse.integrations.http import RetryPolicy, send

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/ts/v1/oauth2/token"
M2M = "/api/m2m/v1"
ONE_ATTEMPT = RetryPolicy(attempts=1)  # logins and token requests: never repeated
ACTIONS = ("activate", "suspend", "restore", "deactivate")
PLANS_TTL_S = 3600.0
MDN_ZIP = re.compile(r"\d{5}")
STATES: dict[str, SimStatus] = {
    "active": "active", "activate": "active", "activated": "active",
    "suspend": "suspended", "suspended": "suspended",
    "deactive": "deactivated", "deactivate": "deactivated", "deactivated": "deactivated",
    "pre-active": "preactive", "preactive": "preactive", "pre active": "preactive"}
# error codes (matched on their last segments) -> the status Pulse reports
CODE_STATUS = {"DeviceNotFound": 404, "AccountNotFound": 404, "DeviceGroupNotFound": 404,
               "DeviceGroup.Exists": 409, "DeviceState.Invalid": 409, "DeviceAlreadyActive": 409}


def sim_status(state: str | None) -> SimStatus:
    """A ThingSpace line state ("active", "SUSPEND", "pending activation", ...) as Pulse's status."""
    s = (state or "").strip().lower()
    if s.startswith("pending"):
        return "pending"
    return STATES.get(s, "unknown")


def request_state(status: str | None) -> RequestState | None:
    """ThingSpace's request status ("Success", the SDK's "Failure", "Failed", ...) as a settled state, None
    while it is not settled: any status starting with "fail" is a failure."""
    s = (status or "").strip().lower()
    return "succeeded" if s == "success" else "failed" if s.startswith("fail") else None


def _has_code(code: str | None, suffix: str) -> bool:
    return bool(code) and (code == suffix or code.endswith("." + suffix))


def _blank_is_none(v: Any) -> Any:
    return None if v == "" else v


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


Time = Annotated[datetime, AfterValidator(_aware)]
OptTime = Annotated[datetime | None, BeforeValidator(_blank_is_none), AfterValidator(_aware)]


# ---- response shapes (only what Pulse reads; extra fields are ignored) ---------------------------
class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(_Reply):
    key: str
    value: str | None = None


class TsDeviceId(_Reply):
    id: str
    kind: str


class TsCarrierInfo(_Reply):
    carrierName: str | None = None
    servicePlan: str | None = None
    state: str | None = None


class TsDevice(_Reply):
    accountName: str | None = None
    billingCycleEndDate: OptTime = None
    carrierInformations: list[TsCarrierInfo] = []
    connected: bool | None = None
    ipAddress: str | None = None
    deviceIds: list[TsDeviceId] = []
    extendedAttributes: list[KeyValue] = []
    groupNames: list[str] = []
    lastConnectionDate: OptTime = None
    createdAt: OptTime = None  # when the line was added: the device-list paging cursor (`earliest`)

    def id_of(self, kind: str) -> str | None:
        return next((i.id for i in self.deviceIds if i.kind.lower() == kind), None)


class _TsPage(_Reply):
    """A page of a ThingSpace list: `hasMoreData` says whether to ask for the next one."""

    hasMoreData: bool = False


class TsDeviceList(_TsPage):
    devices: list[TsDevice] = []


class TsUsageRecord(_Reply):
    timestamp: Time
    bytesUsed: int = 0
    smsUsed: int = 0


class TsUsagePage(_TsPage):
    usageHistory: list[TsUsageRecord] = []


class TsConnectionEvent(_Reply):
    occurredAt: Time
    connectionEventAttributes: list[KeyValue] = []


class TsConnectionPage(_TsPage):
    connectionHistory: list[TsConnectionEvent] = []


class TsCategory(_Reply):
    categoryName: str
    extendedAttributes: list[KeyValue] = []


class TsDiagnostics(_Reply):
    categories: list[TsCategory] = []


class TsPlan(_Reply):
    name: str
    code: str
    sizeKb: int | None = None
    carrierServicePlanCode: str | None = None


class TsRequestId(_Reply):
    requestId: str


class TsRequestStatus(_Reply):
    requestId: str | None = None
    status: str


class TsGroup(_Reply):
    name: str
    description: str | None = None


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise CarrierError(f"ThingSpace answered an unexpected {model.__name__}: {e}", 502,
                           "unexpected_response") from e


def _error_of(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from ThingSpace's `{errorCode, errorMessage}`, the gateway's `{fault}` or OAuth's `{error}`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if body.get("errorCode"):
            return str(body["errorCode"]), str(body.get("errorMessage") or body["errorCode"])
        if isinstance(body.get("fault"), dict):
            fault = body["fault"]
            return str(fault.get("code")), str(fault.get("description") or fault.get("message") or "gateway fault")
        if body.get("error"):
            return str(body["error"]), str(body.get("error_description") or body["error"])
    return None, (response.text or "")[:200] or f"HTTP {response.status_code}"


def _is_gateway_fault(response: httpx.Response) -> bool:
    """The API gateway's 401 for a bad OAuth token (the password was never looked at)."""
    try:
        return response.status_code == 401 and isinstance(response.json().get("fault"), dict)
    except (ValueError, AttributeError):
        return False


def _kind(carrier_device_id: str) -> str:
    """ICCIDs have 18-22 digits, IMEIs 14-16, MDNs 10 (Pulse addresses lines by ICCID)."""
    n = len(carrier_device_id)
    return "iccid" if n >= 18 else "imei" if n >= 14 else "mdn"


def _month_before(t: datetime) -> datetime:
    year, month = (t.year - 1, 12) if t.month == 1 else (t.year, t.month - 1)
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


class ThingSpaceProvider(CarrierProvider):
    name = "thingspace"
    # Verizon documents request-status polling only for single-device activate/suspend/restore/deactivate:
    # an SMS (the reboot) and a plan change settle by their callback
    polled_actions = frozenset(ACTIONS)
    page_size = 2000  # ThingSpace's largest device-list page

    def __init__(self, credentials: Credentials, http: httpx.AsyncClient | None = None,
                 retry: RetryPolicy = RetryPolicy(), timeout_s: float = 15.0) -> None:
        super().__init__(credentials, http, retry, timeout_s)
        self._access_token: str | None = None
        self._token_refresh_at = 0.0
        self._session_token: str | None = None
        self._login_refused: CarrierAuthError | None = None
        self._token_lock = asyncio.Lock()
        self._session_lock = asyncio.Lock()
        self._plans: tuple[float, list[Plan]] | None = None

    @property
    def account(self) -> str:
        name = self.credentials.account_id or self.credentials.config.get("account_name", "")
        if not name:
            raise CarrierError("The ThingSpace integration has no account name (account_id)", 400)
        return name

    @property
    def _aname(self) -> str:
        return quote(self.account, safe="")

    # ---- the two tokens ----------------------------------------------------------------------------
    async def _bearer(self) -> str:
        async with self._token_lock:
            if self._access_token is None or time.monotonic() >= self._token_refresh_at:
                await self._fetch_token()
            assert self._access_token is not None
            return self._access_token

    async def _fetch_token(self) -> None:
        c = self.credentials
        response = await send(self.http, "POST", TOKEN_PATH, ONE_ATTEMPT, data={"grant_type": "client_credentials"},
                              auth=(c.api_key, c.api_secret))
        if response.status_code != 200:
            code, message = _error_of(response)
            raise CarrierAuthError(f"ThingSpace refused the OAuth client credentials: {message}",
                                   response.status_code, code)
        body = response.json()
        token, expires_in = body.get("access_token"), float(body.get("expires_in") or 3600)
        if not token:
            raise CarrierAuthError("ThingSpace's token answer has no access_token", 502, "unexpected_response")
        # while a token lives ThingSpace returns that same one: keep it to its end rather than ask again
        margin = 0.0 if token == self._access_token else min(60.0, expires_in / 10)
        self._access_token, self._token_refresh_at = token, time.monotonic() + expires_in - margin

    async def _session(self) -> str:
        async with self._session_lock:
            if self._session_token is None:
                self._session_token = await self._login()
            return self._session_token

    async def _login(self) -> str:
        if self._login_refused is not None:
            raise self._login_refused
        config = self.credentials.config
        body = {"username": config.get("username", ""), "password": config.get("password", "")}
        for _ in range(2):
            bearer = await self._bearer()
            response = await send(self.http, "POST", f"{M2M}/session/login", ONE_ATTEMPT, json=body,
                                  headers={"Authorization": f"Bearer {bearer}"})
            if not _is_gateway_fault(response):
                break
            # the gateway refused the OAuth token before the password was looked at: safe to repeat once
            self._drop_token(bearer)
        else:
            code, message = _error_of(response)
            raise CarrierAuthError(f"ThingSpace refused the OAuth token: {message}", 401, code)
        if response.status_code != 200:
            code, message = _error_of(response)
            self._login_refused = CarrierAuthError(f"ThingSpace refused the session login: {message}",
                                                   response.status_code, code)
            log.warning("thingspace account %s: session login refused (%s); not retrying", self.account, code)
            raise self._login_refused
        token = response.json().get("sessionToken")
        if not token:
            raise CarrierAuthError("ThingSpace's login answer has no sessionToken", 502, "unexpected_response")
        return token

    def _drop_token(self, stale: str) -> None:
        if self._access_token == stale:
            self._access_token = None

    def _drop_session(self, stale: str) -> None:
        if self._session_token == stale:
            self._session_token = None

    async def aclose(self) -> None:
        """End the session (best effort: callbacks keep arriving after a logout) and close the client."""
        if self._session_token and self._access_token:
            try:
                await self.http.post(f"{M2M}/session/logout", headers=self._headers(self._access_token,
                                                                                    self._session_token))
            except httpx.HTTPError as e:
                log.info("thingspace logout failed: %s", e)
            self._session_token = None
        await super().aclose()

    @staticmethod
    def _headers(bearer: str, session: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {bearer}", "VZ-M2M-Token": session}

    async def _call(self, method: str, path: str, json: Any = None, query: bool = False) -> Any:
        """One M2M call: retried by `send` (on timeouts and 5xx only a GET/PUT or a `query`, a read sent
        by POST: an action is never sent twice), repeated once after a token refresh on a gateway 401
        and once after a new login on a session error. Any other refusal is a CarrierError."""
        token_refreshed = session_renewed = False
        while True:
            session = await self._session()
            bearer = await self._bearer()
            response = await send(self.http, method, M2M + path, self.retry, json=json,
                                  headers=self._headers(bearer, session), idempotent=query or None)
            if response.status_code in (200, 201, 202):
                return response.json() if response.content else None
            code, message = _error_of(response)
            if response.status_code == 401 and not token_refreshed:
                token_refreshed = True
                self._drop_token(bearer)
                continue
            if code and ".SessionToken." in code and not session_renewed:
                session_renewed = True
                self._drop_session(session)
                log.info("thingspace account %s: %s; logging in again", self.account, code)
                continue
            if response.status_code == 401:
                raise CarrierAuthError(f"ThingSpace refused the OAuth token: {message}", 401, code)
            status = next((s for suffix, s in CODE_STATUS.items() if _has_code(code, suffix)), response.status_code)
            raise CarrierError(f"ThingSpace refused {method} {path}: {message}", status, code)

    # ---- normalising ---------------------------------------------------------------------------------
    @staticmethod
    def _device_ref(carrier_device_id: str) -> dict[str, str]:
        return {"id": carrier_device_id, "kind": _kind(carrier_device_id)}

    def _devices(self, carrier_device_id: str) -> list[dict[str, Any]]:
        return [{"deviceIds": [self._device_ref(carrier_device_id)]}]

    @staticmethod
    def _device_info(d: TsDevice, raw: dict[str, Any]) -> DeviceInfo:
        carrier = d.carrierInformations[0] if d.carrierInformations else TsCarrierInfo()
        iccid = d.id_of("iccid")
        ip = d.ipAddress if d.ipAddress and d.ipAddress != "0.0.0.0" else None
        return DeviceInfo(
            carrier_device_id=iccid or (d.deviceIds[0].id if d.deviceIds else ""), iccid=iccid,
            sim_status=sim_status(carrier.state),
            network_status=None if d.connected is None else "ONLINE" if d.connected else "OFFLINE",
            ip_address=ip, last_connection=d.lastConnectionDate, plan=carrier.servicePlan or None,
            msisdn=d.id_of("msisdn") or d.id_of("mdn"), imei=d.id_of("imei"), raw=raw)

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        if "mdn_zip_code" in config and not MDN_ZIP.fullmatch(str(config["mdn_zip_code"] or "")):
            raise CarrierError("config.mdn_zip_code must be a 5-digit ZIP code", 422, "mdn_zip_code")

    def _activation(self, plan_id: str | None) -> dict[str, str]:
        """What every activation sends from the integration's config: `mdnZipCode` (required by
        ThingSpace: the area of the number the line gets), the plan and the SKU."""
        config = self.credentials.config
        zip_code = str(config.get("mdn_zip_code") or "")
        if not MDN_ZIP.fullmatch(zip_code):
            raise CarrierError("The ThingSpace integration needs config.mdn_zip_code (5 digits: the ZIP code whose "
                               "area gives the line its number) to activate a line", 422, "mdn_zip_code")
        fields = {"mdnZipCode": zip_code}
        if plan_id or config.get("service_plan"):
            fields["servicePlan"] = plan_id or config["service_plan"]
        if config.get("sku_number"):
            fields["skuNumber"] = config["sku_number"]
        return fields

    @staticmethod
    def _pending(data: Any, detail: str | None = None) -> ActionResult:
        return ActionResult(state="pending", request_id=_parse(TsRequestId, data).requestId, detail=detail,
                            raw=data if isinstance(data, dict) else {})

    # ---- reads -------------------------------------------------------------------------------------------
    async def list_devices(self) -> AsyncIterator[DeviceInfo]:
        """Pages of up to `page_size` lines, continued by moving `earliest` to the last `createdAt` seen
        (the documented cursor, "devices added after": listed lines carry no internal `DeviceId`, so
        `largestDeviceIdSeen` is never sent). Lines already yielded are skipped should a page repeat them."""
        seen: set[str] = set()
        earliest: datetime | None = None
        while True:
            body: dict[str, Any] = {"accountName": self.account, "maxNumberOfDevices": self.page_size}
            if earliest is not None:
                body["earliest"] = earliest.isoformat()
            data = await self._call("POST", "/devices/actions/list", body, query=True)
            page = _parse(TsDeviceList, data)
            fresh = 0
            for device, raw in zip(page.devices, data.get("devices", [])):
                info = self._device_info(device, raw)
                if info.carrier_device_id not in seen:
                    seen.add(info.carrier_device_id)
                    fresh += 1
                    yield info
            if not page.hasMoreData or not page.devices:
                return
            last = page.devices[-1].createdAt
            if last is None or not fresh:
                raise CarrierError("ThingSpace said more devices follow but the paging did not move forward", 502,
                                   "unexpected_response")
            earliest = last

    async def _device(self, carrier_device_id: str) -> tuple[TsDevice, dict[str, Any]]:
        body = {"accountName": self.account, "deviceId": self._device_ref(carrier_device_id)}
        data = await self._call("POST", "/devices/actions/list", body, query=True)
        page = _parse(TsDeviceList, data)
        if not page.devices:
            raise CarrierError(f"ThingSpace has no device {carrier_device_id}", 404, "DeviceNotFound")
        return page.devices[0], data["devices"][0]

    async def get_device_info(self, carrier_device_id: str) -> DeviceInfo:
        return self._device_info(*await self._device(carrier_device_id))

    async def get_usage(self, carrier_device_id: str) -> Usage:
        """Usage of the current billing cycle: the daily usage history from the cycle's start (one month
        before the device's `billingCycleEndDate`) until now."""
        device, _ = await self._device(carrier_device_id)
        now = datetime.now(timezone.utc)
        end = device.billingCycleEndDate
        if end is None:  # not reported: assume calendar-month cycles
            end = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
        start = _month_before(end)
        records = [r async for r in self._usage_history(carrier_device_id, start, min(now, end))]
        records = [r for r in records if start <= r.timestamp < end]
        plan = device.carrierInformations[0].servicePlan if device.carrierInformations else None
        limits = {p.plan_id: p.data_limit_bytes for p in await self.list_plans()}
        return Usage(carrier_device_id=carrier_device_id, data_used_bytes=sum(r.bytesUsed for r in records),
                     data_limit_bytes=limits.get(plan or ""), sms_count=sum(r.smsUsed for r in records),
                     billing_cycle_start=start, billing_cycle_end=end,
                     raw={"servicePlan": plan, "days": len(records)})

    async def _usage_history(self, carrier_device_id: str, earliest: datetime,
                             latest: datetime) -> AsyncIterator[TsUsageRecord]:
        """Pages of at most 500 daily records, continued by moving `earliest` past the last one seen."""
        while True:
            body = {"deviceId": self._device_ref(carrier_device_id), "earliest": earliest.isoformat(),
                    "latest": latest.isoformat()}
            page = _parse(TsUsagePage, await self._call("POST", "/devices/usage/actions/list", body, query=True))
            for record in page.usageHistory:
                yield record
            if not page.hasMoreData or not page.usageHistory:
                return
            following = page.usageHistory[-1].timestamp + timedelta(seconds=1)
            if following <= earliest:
                raise CarrierError("ThingSpace usage paging did not move forward", 502, "unexpected_response")
            earliest = following

    async def get_diagnostics(self, carrier_device_id: str) -> Diagnostics:
        """Extended diagnostics (categories of key/values) plus the last day's connection events."""
        body = {"accountName": self.account, "deviceList": [self._device_ref(carrier_device_id)]}
        raw = await self._call("POST", "/devices/extendeddiagnostics/actions/list", body, query=True)
        diagnostics = _parse(TsDiagnostics, raw)
        data: dict[str, Any] = {c.categoryName: {a.key: a.value for a in c.extendedAttributes}
                                for c in diagnostics.categories}
        now = datetime.now(timezone.utc)
        history = {"deviceId": self._device_ref(carrier_device_id), "earliest": (now - timedelta(days=1)).isoformat(),
                   "latest": now.isoformat()}
        events = _parse(TsConnectionPage, await self._call("POST", "/devices/connections/actions/listHistory", history,
                                                           query=True))
        data["connection_events"] = [{"at": e.occurredAt.isoformat(),
                                      **{a.key: a.value for a in e.connectionEventAttributes}}
                                     for e in events.connectionHistory]
        return Diagnostics(carrier_device_id=carrier_device_id, data=data,
                           raw={"extendeddiagnostics": raw, "connectionHistory": events.model_dump(mode="json")})

    async def list_plans(self) -> list[Plan]:
        if self._plans is not None and time.monotonic() - self._plans[0] < PLANS_TTL_S:
            return self._plans[1]
        data = await self._call("GET", f"/plans/{self._aname}")
        plans = [_parse(TsPlan, p) for p in (data or [])]
        result = [Plan(plan_id=p.code, name=p.name, data_limit_bytes=p.sizeKb * 1024 if p.sizeKb else None,
                       raw=p.model_dump()) for p in plans]
        self._plans = (time.monotonic(), result)
        return result

    # ---- changes -------------------------------------------------------------------------------------
    async def action(self, carrier_device_id: str, action: Action) -> ActionResult:
        if action not in ACTIONS:
            raise CarrierError(f"Unknown action {action!r}; one of {', '.join(ACTIONS)}", 400)
        body: dict[str, Any] = {"accountName": self.account, "devices": self._devices(carrier_device_id)}
        if action == "activate":
            body |= self._activation(None)
        if action == "deactivate":
            body["reasonCode"] = "FF"  # the only valid code: General Admin/Maintenance
        try:
            return self._pending(await self._call("POST", f"/devices/actions/{action}", body))
        except CarrierError as e:
            if action == "activate" and _has_code(e.code, "DeviceAlreadyActive"):
                return ActionResult(state="succeeded", detail="already active")
            raise

    async def change_plan(self, carrier_device_id: str, plan_id: str) -> ActionResult:
        body = {"accountName": self.account, "devices": self._devices(carrier_device_id), "servicePlan": plan_id}
        return self._pending(await self._call("PUT", "/devices/actions/plan", body))

    async def send_sms(self, carrier_device_id: str, text: str) -> ActionResult:
        body = {"accountName": self.account, "smsMessage": text, "deviceIds": [self._device_ref(carrier_device_id)]}
        return self._pending(await self._call("POST", "/sms", body))

    async def claim_sim(self, iccid: str, plan_id: str | None = None) -> DeviceInfo:
        """Activate the line by its ICCID (ThingSpace adds it first if the account lacks it); the answer
        usually shows it pending activation."""
        body: dict[str, Any] = {"accountName": self.account,
                                "devices": [{"deviceIds": [{"id": iccid, "kind": "iccid"}]}], **self._activation(plan_id)}
        try:
            await self._call("POST", "/devices/actions/activate", body)
        except CarrierError as e:
            if not _has_code(e.code, "DeviceAlreadyActive"):
                raise
        return await self.get_device_info(iccid)

    async def request_bulk_usage(self, carrier_device_ids: list[str], start: datetime, end: datetime) -> ActionResult:
        """ThingSpace's aggregate usage (at most a month, within the last 6): the totals arrive on the
        `DeviceUsage` callback, which `parse_callback` reads as `kind="usage"`."""
        body = {"accountName": self.account, "startTime": start.isoformat(), "endTime": end.isoformat(),
                "deviceIds": [self._device_ref(c) for c in carrier_device_ids]}
        return self._pending(await self._call("POST", "/devices/usage/actions/list/aggregate", body))

    async def request_status(self, request_id: str) -> ActionResult:
        data = await self._call("GET", f"/accounts/{self._aname}/requests/{quote(request_id, safe='')}/status")
        status = _parse(TsRequestStatus, data).status
        return ActionResult(state=request_state(status) or "pending", request_id=request_id, detail=status, raw=data)

    # ---- device groups (ThingSpace only) --------------------------------------------------------------
    async def list_groups(self) -> list[dict[str, Any]]:
        data = await self._call("GET", f"/groups/{self._aname}")
        return [_parse(TsGroup, g).model_dump() for g in (data or [])]

    async def create_group(self, name: str, description: str = "",
                           carrier_device_ids: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        body = {"accountName": self.account, "groupName": name, "groupDescription": description,
                "devicesToAdd": [self._device_ref(c) for c in carrier_device_ids]}
        await self._call("POST", "/groups", body)
        return {"name": name, "description": description}

    # ---- callbacks ------------------------------------------------------------------------------------
    async def register_callback(self, service: str, url: str, username: str, password: str) -> None:
        body = {"name": service, "url": url, "username": username, "password": password}
        await self._call("POST", f"/callbacks/{self._aname}", body)

    async def list_callbacks(self) -> list[dict[str, Any]]:
        return list(await self._call("GET", f"/callbacks/{self._aname}") or [])

    async def delete_callback(self, service: str) -> None:
        await self._call("DELETE", f"/callbacks/{self._aname}/name/{quote(service, safe='')}")

    def parse_callback(self, body: dict[str, Any], username: str, password: str) -> CallbackEvent:
        """ThingSpace authenticates a callback only by echoing the registered username/password in its body."""
        if not username or not password:
            raise CarrierAuthError("Callback credentials are not configured; refusing an unverifiable callback", 401)
        if not isinstance(body, dict):
            raise CarrierAuthError("Callback body is not a JSON object", 401)
        given_user, given_password = body.get("username"), body.get("password")
        if not (isinstance(given_user, str) and isinstance(given_password, str)
                and hmac.compare_digest(given_user.encode(), username.encode())
                & hmac.compare_digest(given_password.encode(), password.encode())):
            raise CarrierAuthError("Callback credentials do not match", 401)
        raw = {k: v for k, v in body.items() if k != "password"}
        request_id = body.get("requestId") if isinstance(body.get("requestId"), str) else None
        response = body.get("deviceResponse") if isinstance(body.get("deviceResponse"), dict) else {}
        fault = body.get("faultResponse") or response.get("faultResponse")
        status = str(body.get("status") or "")
        state: RequestState | None = request_state(status) or ("failed" if fault else None)
        if isinstance(response.get("usageResponse"), list):
            ids = [_line_id(u.get("deviceIds")) for u in response["usageResponse"] if isinstance(u, dict)]
            return CallbackEvent(kind="usage", request_id=request_id, carrier_device_ids=[i for i in ids if i],
                                 state=state, raw=raw)
        if request_id and (fault or response) and state:
            detail = (fault.get("faultstring") if isinstance(fault, dict) else None) or next(iter(response), None)
            line = _line_id(body.get("deviceIds"))
            return CallbackEvent(kind="request_result", request_id=request_id,
                                 carrier_device_ids=[line] if line else [], state="failed" if fault else state,
                                 detail=detail, raw=raw)
        return CallbackEvent(kind="unknown", request_id=request_id, raw=raw)


def _line_id(device_ids: Any) -> str | None:
    """The ICCID among a callback's `deviceIds` (else its first id): how Pulse addresses the line."""
    if not isinstance(device_ids, list):
        return None
    ids = [i for i in device_ids if isinstance(i, dict) and isinstance(i.get("id"), str)]
    iccid = next((i["id"] for i in ids if str(i.get("kind", "")).lower() == "iccid"), None)
    return iccid or (ids[0]["id"] if ids else None)
