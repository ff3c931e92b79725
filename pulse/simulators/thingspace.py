"""A Verizon ThingSpace Connectivity Management (M2M) simulator: stateful, in memory, on the real paths
(reference `external-apis.md` §A, seed 001), so a client written for ThingSpace works by changing only
its base URL: `/api/ts/v1/oauth2/token` for the OAuth token, `/api/m2m/v1/...` for everything else.

Default account (`ThingSpaceSim()`, `pulse sim thingspace`):
- OAuth client credentials (HTTP Basic on `POST /api/ts/v1/oauth2/token`):
  client id `pulse-demo-key`, client secret `pulse-demo-secret`;
- session login (`POST /api/m2m/v1/session/login`): username `pulse-demo`, password `pulse-demo-password`;
- account name `0000123456-00001`;
- in a Pulse integration: `api_key`/`api_secret` = the client id/secret, `account_id` = the account name,
  `config` = `{"username": ..., "password": ..., "service_plan": "M2M5GB"}`.
Demo lines: ICCIDs `89148000000000000001`..`05`: three active (with daily usage and connection events),
one suspended, one pre-active (to claim). Plans `M2M1GB`, `M2M5GB`, `M2MSHARED` (pooled, `sizeKb` 0).

Modelled behaviour:
- Two tokens on every M2M call: `Authorization: Bearer <access_token>` (a missing, unknown or expired
  one gets the gateway's 401 `{"fault": {"code": "900901", ...}}`) and `VZ-M2M-Token: <sessionToken>`.
  The OAuth token lasts `token_ttl_s`; asking again while it lives returns the same token. A session
  expires after `session_ttl_s` without use (`...REQUEST_FAILED.SessionToken.Expired`).
- `lockout_after` (5) failed logins in a row lock the account: later logins fail even with the right
  password (`...REQUEST_FAILED.Account.Locked`) until `unlock()`.
- State changes (activate, suspend, restore, deactivate, plan change) and SMS answer `{requestId}` at
  once, show a "pending ..." state, refuse other changes meanwhile, and settle `change_delay_s` later.
  The result of a single-device activate/suspend/restore/deactivate can be polled
  (`GET /accounts/{aname}/requests/{id}/status`; any other request is refused there), and every result is POSTed to the
  registered callback listener (`CarrierService`; `EnhancedConnectivityService` for SMS; `DeviceUsage`
  for aggregate usage) with the registered username/password echoed in the body. A delivery that is
  not answered 2xx is retried `callback_attempts` times in all, `callback_retry_s` apart (ThingSpace:
  4 attempts, 5 minutes apart). `deliveries` records every attempt. Allowed listener ports are not
  enforced (tests listen on random ports).
- Device list pages hold at most `page_size` devices (2000), sorted by the internal device id, or by
  `createdAt` when an `earliest` window is given. As Verizon documents, `extendedAttributes` (which hold
  that internal `DeviceId`) come back only for a single-device request, so a lister pages by moving
  `earliest` (devices added after it) to the last `createdAt` seen; a `largestDeviceIdSeen` that is no internal id of the account
  (0 included: a first page omits it) is refused with 400. Activation requires `mdnZipCode` (5 digits),
  as the SDK's `CarrierActivateRequest` does; usage and connection history pages hold at most `history_page_size` (500) records, continued by
  moving `earliest` forward. A page with more to come is answered 202 with `hasMoreData: true`.
- Errors are `{"errorCode": "UnifiedWebService.<CLASS>.<Detail>", "errorMessage": ...}`, HTTP 400
  (injected 5xx/429 faults too, with their status); the reference gives no code for a refused login,
  so this simulator uses `UnifiedWebService.REQUEST_FAILED.Login.Failed`.

Test controls: constructor arguments, `add_device`, `add_usage`, `add_connection_event`, `add_mo_sms`,
`expire_sessions`, `expire_tokens`, `fail_next_changes`, `unlock`, and the counters `token_requests`,
`login_attempts`, `gateway_rejections`, plus `deliveries`, `list_queries`, `sms_sent` and the base class's request log.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import math
import random
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from pulse.simulators.server import Simulator

TS = "/api/ts/v1"
M2M = "/api/m2m/v1"
DEMO_ACCOUNT = "0000123456-00001"
DEMO_CLIENT_ID = "pulse-demo-key"
DEMO_CLIENT_SECRET = "pulse-demo-secret"
DEMO_USERNAME = "pulse-demo"
DEMO_PASSWORD = "pulse-demo-password"
CARRIER = "Verizon Wireless"
KINDS = frozenset({"esn", "meid", "imei", "iccid", "mdn", "msisdn", "min", "imsi", "eid"})
# the requests whose status can be polled: single-device activate/suspend/restore/deactivate (the rest: callback)
POLLED = frozenset({"activate", "suspend", "restore", "deactivate"})
CALLBACK_SERVICES = frozenset({
    "CarrierService", "DeviceService", "DeviceUsage", "DevicePRLInformation", "DeviceProfileService",
    "DeviceSuspensionStatus", "DiagnosticsService", "EnhancedConnectivityService", "StateService",
    "AlertService", "ExternalProvisioningChanges", "ResumeTrackingNotification",
    "SubscriptionNotificationService", "PromoChanges"})
DEMO_PLANS = [
    {"name": "M2M 1GB", "code": "M2M1GB", "sizeKb": 1024 * 1024, "carrierServicePlanCode": "84631"},
    {"name": "M2M 5GB", "code": "M2M5GB", "sizeKb": 5 * 1024 * 1024, "carrierServicePlanCode": "84635"},
    {"name": "M2M shared pool", "code": "M2MSHARED", "sizeKb": 0, "carrierServicePlanCode": "84638"},
]

# action -> (states it may start from, state it ends in, the state shown while it runs)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "activate": (frozenset({"pre-active", "deactive"}), "active", "pending activation"),
    "suspend": (frozenset({"active"}), "suspend", "pending suspend"),
    "restore": (frozenset({"suspend"}), "active", "pending restore"),
    "deactivate": (frozenset({"active", "suspend"}), "deactive", "pending deactivation"),
}
STATE_ALIASES = {"preactive": "pre-active", "pre-active": "pre-active", "active": "active", "suspend": "suspend",
                 "suspended": "suspend", "deactive": "deactive", "deactivated": "deactive"}
_FAULT_DETAIL = {429: "REQUEST_FAILED.TooManyRequests", 500: "REQUEST_FAILED.UnexpectedError",
                 502: "REQUEST_FAILED.BadGateway", 503: "REQUEST_FAILED.ServiceUnavailable",
                 504: "REQUEST_FAILED.GatewayTimeout"}


def _code(detail: str) -> str:
    return f"UnifiedWebService.{detail}"


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


class SimError(Exception):
    """An error answered in ThingSpace's shape (or the gateway's, when `body` is given)."""

    def __init__(self, status: int, detail: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {"errorCode": _code(detail), "errorMessage": message}


def _bad(detail: str, message: str) -> SimError:
    return SimError(400, detail, message)


def _gateway_fault() -> SimError:
    return SimError(401, "", "Invalid Credentials", {"fault": {
        "code": "900901", "message": "Invalid Credentials",
        "description": "Access failure for API: /m2m/v1, version: v1. "
                       "Make sure you have given the correct access token"}})


# ---- request bodies (extra fields are accepted, as the real service does) -------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class DeviceIdIn(_Body):
    id: str
    kind: str


class DeviceItemIn(_Body):
    deviceIds: list[DeviceIdIn]


class Selection(_Body):
    """The device selection most change requests share: explicit devices, or a group / plan."""
    accountName: str | None = None
    devices: list[DeviceItemIn] = []
    groupName: str | None = None
    servicePlan: str | None = None


class ActivateIn(Selection):
    skuNumber: str | None = None
    mdnZipCode: Annotated[str, StringConstraints(pattern=r"^\d{5}$")]  # required in the SDK's model


class DeactivateIn(Selection):
    reasonCode: str | None = None
    etfWaiver: bool = False


class PlanChangeIn(_Body):
    accountName: str | None = None
    devices: list[DeviceItemIn] = []
    groupName: str | None = None
    currentServicePlan: str | None = None
    servicePlan: str


class AddIn(_Body):
    accountName: str | None = None
    state: str = "preactive"
    devices: list[DeviceItemIn]
    groupName: str | None = None


class IdentifierFilter(_Body):
    kind: str
    contains: str | None = None
    startswith: str | None = None
    endswith: str | None = None


class ListFilter(_Body):
    deviceIdentifierFilters: list[IdentifierFilter] = []


class ListIn(_Body):
    accountName: str | None = None
    deviceId: DeviceIdIn | None = None
    filter: ListFilter | None = None
    currentState: str | None = None
    servicePlan: str | None = None
    groupName: str | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    maxNumberOfDevices: int | None = None
    largestDeviceIdSeen: int | None = None


class HistoryIn(_Body):
    deviceId: DeviceIdIn
    earliest: datetime | None = None
    latest: datetime | None = None


class AggregateUsageIn(_Body):
    accountName: str | None = None
    groupName: str | None = None
    deviceIds: list[DeviceIdIn] = []
    startTime: datetime
    endTime: datetime


class DiagnosticsIn(_Body):
    accountName: str | None = None
    deviceList: list[DeviceIdIn]


class GroupIn(_Body):
    accountName: str
    groupName: str
    groupDescription: str = ""
    devicesToAdd: list[DeviceIdIn] = []


class GroupUpdateIn(_Body):
    newGroupName: str | None = None
    newGroupDescription: str | None = None
    devicesToAdd: list[DeviceIdIn] = []
    devicesToRemove: list[DeviceIdIn] = []


class SmsIn(_Body):
    accountName: str
    smsMessage: str
    deviceIds: list[DeviceIdIn] = []
    groupName: str | None = None
    dataEncoding: str = "7-bit"


class CallbackIn(_Body):
    name: str
    url: str
    username: str | None = None
    password: str | None = None


class LoginIn(_Body):
    username: str
    password: str


# ---- state ----------------------------------------------------------------------------------------
@dataclass
class SimDevice:
    seq: int  # ThingSpace's internal device id: list order and paging cursor
    iccid: str
    imei: str | None
    state: str  # pre-active | active | suspend | deactive
    plan: str | None
    group: str
    created_at: datetime
    mdn: str | None = None
    ip: str | None = None
    connected: bool = False
    last_connection: datetime | None = None
    last_activation: datetime | None = None
    busy: str | None = None  # the operation running on this line, which refuses every other change
    usage: dict[date, list[int]] = field(default_factory=dict)  # day -> [bytes, sms]
    connections: list[tuple[datetime, str, int]] = field(default_factory=list)  # (at, Start|Stop, bytes)

    @property
    def shown_state(self) -> str:
        pending = TRANSITIONS.get(self.busy or "")
        return pending[2] if pending else self.state

    def ids(self) -> list[dict[str, str]]:
        out = [{"id": self.iccid, "kind": "iccid"}]
        if self.imei:
            out.append({"id": self.imei, "kind": "imei"})
        if self.mdn:
            out += [{"id": self.mdn, "kind": "mdn"}, {"id": "1" + self.mdn, "kind": "msisdn"}]
        return out

    def matches(self, kind: str, value: str) -> bool:
        return any(i["kind"] == kind.lower() and i["id"] == value for i in self.ids())


@dataclass
class SimRequest:
    request_id: str
    operation: str  # activate | suspend | restore | deactivate | plan | sms | usage
    devices: list[SimDevice]
    apply: Callable[[SimDevice], None] | None
    service: str  # the callback service that reports the result
    status: str = "Pending"  # Pending | Success | Failure
    fault: tuple[str, str] | None = None  # (faultcode, faultstring): the request will end Failed
    window: tuple[datetime, datetime] | None = None  # aggregate usage only


@dataclass
class Callback:
    service: str
    url: str
    username: str
    password: str


class ThingSpaceSim(Simulator):
    name: ClassVar[str] = "thingspace"

    def __init__(self, account_name: str = DEMO_ACCOUNT, client_id: str = DEMO_CLIENT_ID,
                 client_secret: str = DEMO_CLIENT_SECRET, username: str = DEMO_USERNAME,
                 password: str = DEMO_PASSWORD, *, demo_devices: bool = True, plans: list[dict] | None = None,
                 token_ttl_s: float = 3600.0, session_ttl_s: float = 1200.0, change_delay_s: float = 1.0,
                 page_size: int = 2000, history_page_size: int = 500, lockout_after: int = 5,
                 billing_day: int = 1, callback_attempts: int = 4, callback_retry_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.account_name, self.client_id, self.client_secret = account_name, client_id, client_secret
        self.username, self.password = username, password
        self.token_ttl_s, self.session_ttl_s, self.change_delay_s = token_ttl_s, session_ttl_s, change_delay_s
        self.page_size, self.history_page_size, self.lockout_after = page_size, history_page_size, lockout_after
        self.billing_day = billing_day
        self.callback_attempts, self.callback_retry_s = callback_attempts, callback_retry_s
        self.clock = clock  # what token and session lifetimes are measured on (tests move it by hand)
        self.plans: list[dict[str, Any]] = [dict(p) for p in (DEMO_PLANS if plans is None else plans)]
        self.default_group = f"Default: {account_name}"
        self.groups: dict[str, str] = {self.default_group: "Default group"}  # name -> description
        self.devices: dict[int, SimDevice] = {}
        self.requests_by_id: dict[str, SimRequest] = {}
        self.callbacks: dict[str, Callback] = {}
        self.deliveries: list[dict[str, Any]] = []  # every callback delivery attempt
        self.list_queries: list[dict[str, Any]] = []  # every device-list body, as sent
        self.sms_sent: list[dict[str, Any]] = []
        self.mo_sms: list[dict[str, Any]] = []  # device-originated messages waiting to be read
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._sessions: dict[str, float | None] = {}  # session token -> last use; None once expired
        self.token_requests = 0
        self.login_attempts = 0
        self.failed_logins = 0  # in a row
        self.locked = False
        self.gateway_rejections = 0  # M2M calls refused for their OAuth bearer
        self._failures: list[tuple[str, str]] = []
        self._tasks: set[asyncio.Task] = set()
        self._next_seq = 1000
        super().__init__()
        if demo_devices:
            self._seed_demo()

    # ---- test helpers ------------------------------------------------------------------------
    def add_device(self, iccid: str, imei: str | None = None, state: str = "active", plan: str | None = None,
                   usage: Mapping[date | str, int | tuple[int, int]] | None = None, *, mdn: str | None = None,
                   group: str | None = None, connected: bool = False,
                   last_connection: datetime | None = None) -> SimDevice:
        """A line on the account. `usage` maps a day to bytes used, or to (bytes, SMS count)."""
        state = STATE_ALIASES[state.lower()]
        self._next_seq += 1
        now = datetime.now(timezone.utc)
        d = SimDevice(self._next_seq, iccid, imei, state, plan if state != "deactive" else None,
                      group or self.default_group, now, mdn=mdn, connected=connected and state == "active",
                      last_connection=last_connection)
        if state in ("active", "suspend"):
            self._provision(d, plan or (self.plans[0]["code"] if self.plans else None))
            d.last_activation = now
        self.devices[d.seq] = d
        for day, used in (usage or {}).items():
            self.add_usage(iccid, day, *(used if isinstance(used, tuple) else (used, 0)))
        return d

    def add_usage(self, iccid: str, day: date | str, bytes_used: int, sms: int = 0) -> None:
        day = date.fromisoformat(day) if isinstance(day, str) else day
        bucket = self.device(iccid).usage.setdefault(day, [0, 0])
        bucket[0] += bytes_used
        bucket[1] += sms

    def add_connection_event(self, iccid: str, at: datetime, event: str = "Start", bytes_used: int = 0) -> None:
        d, at = self.device(iccid), _utc(at)
        d.connections.append((at, event, bytes_used))
        d.connections.sort()
        d.last_connection = max(d.last_connection or at, at)

    def add_mo_sms(self, iccid: str, text: str) -> None:
        d = self.device(iccid)
        self.mo_sms.append({"deviceIds": d.ids(), "message": text, "timestamp": _iso(datetime.now(timezone.utc))})

    def device(self, iccid: str) -> SimDevice:
        for d in self.devices.values():
            if d.iccid == iccid:
                return d
        raise KeyError(iccid)

    def expire_sessions(self) -> None:
        """Every session token issued so far answers `SessionToken.Expired` from now on."""
        for token in self._sessions:
            self._sessions[token] = None

    def expire_tokens(self) -> None:
        for token in self._tokens:
            self._tokens[token] = 0.0

    def fail_next_changes(self, count: int = 1, faultcode: str = "REQUEST_FAILED",
                          faultstring: str = "Provisioning failed in the network") -> None:
        """The next `count` state or plan changes requested end `Failed` (line unchanged) with this fault."""
        self._failures += [(faultcode, faultstring)] * count

    def unlock(self) -> None:
        """What Verizon support does for a locked contact record."""
        self.locked, self.failed_logins = False, 0

    def billing_cycle_end(self, now: datetime | None = None) -> datetime:
        """The end of the current billing cycle: the next `billing_day` at 00:00 UTC."""
        now = now or datetime.now(timezone.utc)
        year, month = now.year, now.month
        if now.day >= self.billing_day:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        day = min(self.billing_day, calendar.monthrange(year, month)[1])
        return datetime(year, month, day, tzinfo=timezone.utc)

    # ---- HTTP -------------------------------------------------------------------------------
    def error_response(self, status: int, message: str) -> Response:
        if status == 401:
            return JSONResponse(_gateway_fault().body, status_code=401)
        detail = _FAULT_DETAIL.get(status, "REQUEST_FAILED.UnexpectedError")
        return JSONResponse({"errorCode": _code(detail), "errorMessage": message}, status_code=status)

    def setup(self, app: FastAPI) -> None:
        @app.exception_handler(SimError)
        async def sim_error(_: Request, e: SimError) -> JSONResponse:
            return JSONResponse(e.body, status_code=e.status)

        @app.exception_handler(RequestValidationError)
        async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
            where = "; ".join(f"{'.'.join(map(str, err['loc'][1:]))}: {err['msg']}" for err in e.errors())
            return JSONResponse({"errorCode": _code("INPUT_INVALID.Request.Invalid"),
                                 "errorMessage": f"invalid request ({where})"}, status_code=400)

        self._auth_routes(app)
        self._device_routes(app)
        self._history_routes(app)
        self._account_routes(app)

    # ---- authentication -----------------------------------------------------------------------
    def _client_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and (client_id, secret) == (self.client_id, self.client_secret)

    def _bearer(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self._tokens.get(token, 0.0) <= self.clock():
            self.gateway_rejections += 1
            raise _gateway_fault()

    def _session(self, request: Request) -> None:
        self._bearer(request)
        token = request.headers.get("vz-m2m-token", "")
        if token not in self._sessions:
            raise _bad("INPUT_INVALID.SessionToken.Invalid", "The VZ-M2M-Token is missing or unknown")
        last = self._sessions[token]
        now = self.clock()
        if last is None or now - last > self.session_ttl_s:
            self._sessions[token] = None
            raise _bad("REQUEST_FAILED.SessionToken.Expired", "The session token has expired; log in again")
        self._sessions[token] = now

    def _account(self, name: str | None) -> None:
        if name is not None and name != self.account_name:
            raise _bad("REQUEST_FAILED.AccountNotFound", f"Account {name} not found")

    def _auth_routes(self, app: FastAPI) -> None:
        @app.post(TS + "/oauth2/token")
        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            if not self._client_ok(request):
                return JSONResponse({"error": "invalid_client", "error_description": "Client Authentication failed."},
                                    status_code=401)
            form = parse_qs((await request.body()).decode())
            if form.get("grant_type") != ["client_credentials"]:
                return JSONResponse({"error": "unsupported_grant_type",
                                     "error_description": "Unsupported grant_type value"}, status_code=400)
            now = self.clock()
            live = [(exp, t) for t, exp in self._tokens.items() if exp > now]
            expires, access = max(live) if live else (now + self.token_ttl_s, secrets.token_hex(16))
            self._tokens[access] = expires
            return JSONResponse({"access_token": access, "scope": "am_application_scope default",
                                 "token_type": "Bearer", "expires_in": math.ceil(expires - now)})

        @app.post(TS + "/oauth2/revoke")
        async def revoke(request: Request) -> dict[str, Any]:
            if not self._client_ok(request):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            for t in parse_qs((await request.body()).decode()).get("token", []):
                self._tokens.pop(t, None)
            return {}

        @app.post(M2M + "/session/login")
        async def login(body: LoginIn, request: Request) -> dict[str, Any]:
            self._bearer(request)
            self.login_attempts += 1
            if self.locked:
                raise _bad("REQUEST_FAILED.Account.Locked",
                           "The contact record is locked after repeated failed logins; contact M2M support")
            if (body.username, body.password) != (self.username, self.password):
                self.failed_logins += 1
                self.locked = self.failed_logins >= self.lockout_after
                raise _bad("REQUEST_FAILED.Login.Failed", "Invalid username or password")
            self.failed_logins = 0
            token = str(uuid.uuid4())
            self._sessions[token] = self.clock()
            return {"sessionToken": token, "expiresIn": int(self.session_ttl_s)}

        @app.post(M2M + "/session/logout")
        async def logout(request: Request) -> dict[str, Any]:
            self._session(request)
            token = request.headers["vz-m2m-token"]
            self._sessions.pop(token, None)
            return {"sessionToken": token}

    # ---- devices ------------------------------------------------------------------------------
    def _find(self, ref: DeviceIdIn) -> SimDevice:
        if ref.kind.lower() not in KINDS:
            raise _bad("INPUT_INVALID.Device.Kind.Invalid", f"Device kind {ref.kind} is not one of ICCID, MEID, "
                       "IMSI, MDN, IMEI, MSISDN, ESN")
        for d in self.devices.values():
            if d.matches(ref.kind, ref.id):
                return d
        raise _bad("REQUEST_FAILED.DeviceNotFound", f"Device {ref.kind}:{ref.id} not found")

    def _find_item(self, item: DeviceItemIn) -> SimDevice:
        """The line any of the item's identifiers names (a deactivated line has no MDN any more)."""
        error: SimError | None = None
        for ref in item.deviceIds:
            try:
                return self._find(ref)
            except SimError as e:
                error = e
        raise error or _bad("INPUT_INVALID.Device.Identifier.Invalid", "deviceIds is empty")

    def _select(self, body: Selection | PlanChangeIn) -> list[SimDevice]:
        self._account(body.accountName)
        if body.devices:
            return [self._find_item(item) for item in body.devices]
        plan = body.currentServicePlan if isinstance(body, PlanChangeIn) else body.servicePlan
        if not (body.groupName or plan):
            raise _bad("INPUT_INVALID.Devices.Required", "Name the devices, a groupName or a servicePlan")
        chosen = [d for d in self.devices.values()
                  if (not body.groupName or d.group == body.groupName) and (not plan or d.plan == plan)]
        if not chosen:
            raise _bad("REQUEST_FAILED.DeviceNotFound", "No device matches the selection")
        return chosen

    def _plan(self, code: str | None) -> str:
        if not code or all(p["code"] != code for p in self.plans):
            raise _bad("REQUEST_FAILED._servicePlan_.NotFound", f"Service plan {code!r} not found on the account")
        return code

    def _provision(self, d: SimDevice, plan: str | None) -> None:
        d.plan = plan
        d.mdn = d.mdn or f"555{d.seq:07d}"[-10:]
        d.ip = d.ip or f"10.{(d.seq >> 16) & 255}.{(d.seq >> 8) & 255}.{d.seq & 255}"

    def _check_free(self, devices: list[SimDevice]) -> None:
        for d in devices:
            if d.busy:
                raise _bad("INPUT_INVALID.DeviceState.Invalid",
                           f"Device {d.iccid} has a change in progress ({d.shown_state})")

    def _start(self, operation: str, devices: list[SimDevice], apply: Callable[[SimDevice], None] | None,
               service: str = "CarrierService", window: tuple[datetime, datetime] | None = None) -> dict[str, str]:
        req = SimRequest(str(uuid.uuid4()), operation, devices, apply, service, window=window)
        if apply is not None and self._failures:
            req.fault = self._failures.pop(0)  # decided now, reported when the request settles
        for d in devices:
            d.busy = operation if apply else d.busy
        self.requests_by_id[req.request_id] = req
        task = asyncio.get_running_loop().create_task(self._settle(req))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"requestId": req.request_id}

    def _transition(self, action: str, devices: list[SimDevice]) -> None:
        allowed, _, _ = TRANSITIONS[action]
        self._check_free(devices)
        for d in devices:
            if action == "activate" and d.state == "active":
                raise _bad("REQUEST_FAILED.DeviceAlreadyActive", f"Device {d.iccid} is already active")
            if d.state not in allowed:
                raise _bad("INPUT_INVALID.DeviceState.Invalid", f"Cannot {action} device {d.iccid}: it is {d.state}")

    def _device_json(self, d: SimDevice, single: bool = False) -> dict[str, Any]:
        return {
            "accountName": self.account_name, "billingCycleEndDate": _iso(self.billing_cycle_end()),
            "carrierInformations": [{"carrierName": CARRIER, "servicePlan": d.plan or "", "state": d.shown_state}],
            "connected": d.connected, "createdAt": _iso(d.created_at), "ipAddress": d.ip or "0.0.0.0",
            "deviceIds": d.ids(), "customFields": [],
            "extendedAttributes": [{"key": "DeviceId", "value": str(d.seq)}] if single else [],
            "groupNames": [d.group], "lastActivationBy": self.username if d.last_activation else "",
            "lastActivationDate": _iso(d.last_activation) if d.last_activation else "",
            "lastConnectionDate": _iso(d.last_connection) if d.last_connection else ""}

    def _listed(self, body: ListIn) -> list[SimDevice]:
        def keep(d: SimDevice) -> bool:
            if body.currentState and d.shown_state != body.currentState.lower():
                return False
            if (body.servicePlan and d.plan != body.servicePlan) or (body.groupName and d.group != body.groupName):
                return False
            if body.earliest and d.created_at <= _utc(body.earliest):  # "added after" this time
                return False
            if body.latest and d.created_at > _utc(body.latest):
                return False
            for f in body.filter.deviceIdentifierFilters if body.filter else []:
                values = [i["id"] for i in d.ids() if i["kind"] == f.kind.lower()]
                if not any((f.contains or "") in v and v.startswith(f.startswith or "") and v.endswith(f.endswith or "")
                           for v in values):
                    return False
            return d.seq > (body.largestDeviceIdSeen or 0)

        if body.largestDeviceIdSeen is not None and body.largestDeviceIdSeen not in self.devices:
            raise _bad("INPUT_INVALID.largestDeviceIdSeen.Invalid",
                       f"largestDeviceIdSeen {body.largestDeviceIdSeen} is not a device id of this account")
        order = (lambda d: (d.created_at, d.seq)) if body.earliest else (lambda d: (d.seq,))
        return sorted((d for d in self.devices.values() if keep(d)), key=order)

    def _device_routes(self, app: FastAPI) -> None:
        @app.post(M2M + "/devices/actions/list")
        async def list_devices(body: ListIn, request: Request) -> JSONResponse:
            self._session(request)
            self._account(body.accountName)
            self.list_queries.append(body.model_dump(exclude_unset=True, mode="json"))
            if body.deviceId is not None:
                device = self._device_json(self._find(body.deviceId), single=True)
                return JSONResponse({"hasMoreData": False, "devices": [device]})
            found = self._listed(body)
            limit = max(1, min(body.maxNumberOfDevices or self.page_size, self.page_size))
            more = len(found) > limit
            return JSONResponse({"hasMoreData": more, "devices": [self._device_json(d) for d in found[:limit]]},
                                status_code=202 if more else 200)

        @app.post(M2M + "/devices/actions/add")
        async def add(body: AddIn, request: Request) -> list[dict[str, Any]]:
            self._session(request)
            self._account(body.accountName)
            out = []
            for item in body.devices:
                ids = {i.kind.lower(): i.id for i in item.deviceIds}
                response = "Success"
                if "iccid" not in ids:
                    response = "Failed: ICCID required"
                elif any(d.iccid == ids["iccid"] for d in self.devices.values()):
                    response = "Failed: device already exists"
                else:
                    self.add_device(ids["iccid"], ids.get("imei"), "pre-active", group=body.groupName)
                out.append({"deviceIds": [i.model_dump() for i in item.deviceIds], "response": response})
            return out

        @app.post(M2M + "/devices/actions/activate")
        async def activate(body: ActivateIn, request: Request) -> dict[str, str]:
            self._session(request)
            self._account(body.accountName)
            devices = [self._find_or_add(item, body) for item in body.devices] if body.devices else self._select(body)
            self._transition("activate", devices)
            plans = {d.seq: self._plan(body.servicePlan or d.plan) for d in devices}
            if body.groupName and body.groupName not in self.groups:
                raise _bad("REQUEST_FAILED.DeviceGroupNotFound", f"Group {body.groupName} not found")

            def apply(d: SimDevice) -> None:
                d.state, d.last_activation = "active", datetime.now(timezone.utc)
                d.group = body.groupName or d.group
                self._provision(d, plans[d.seq])

            return self._start("activate", devices, apply)

        def change(action: str, apply: Callable[[SimDevice], None]) -> Callable:
            async def handler(body: DeactivateIn, request: Request) -> dict[str, str]:
                self._session(request)
                devices = self._select(body)
                if action == "deactivate" and body.reasonCode != "FF":
                    raise _bad("INPUT_INVALID.ReasonCode.Invalid", "reasonCode must be FF (General Admin/Maintenance)")
                self._transition(action, devices)
                return self._start(action, devices, apply)
            return handler

        def suspend(d: SimDevice) -> None:
            d.state, d.connected = "suspend", False

        def restore(d: SimDevice) -> None:
            d.state = "active"

        def deactivate(d: SimDevice) -> None:
            d.state, d.connected, d.plan, d.mdn, d.ip = "deactive", False, None, None, None

        for action, apply in (("suspend", suspend), ("restore", restore), ("deactivate", deactivate)):
            app.post(M2M + f"/devices/actions/{action}")(change(action, apply))

        @app.put(M2M + "/devices/actions/plan")
        async def change_plan(body: PlanChangeIn, request: Request) -> dict[str, str]:
            self._session(request)
            devices = self._select(body)
            plan = self._plan(body.servicePlan)
            self._check_free(devices)
            for d in devices:
                if d.state not in ("active", "suspend"):
                    raise _bad("INPUT_INVALID.DeviceState.Invalid", f"Device {d.iccid} is {d.state}: no plan to change")

            def apply(d: SimDevice) -> None:
                d.plan = plan

            return self._start("plan", devices, apply)

        @app.get(M2M + "/accounts/{aname}/requests/{request_id}/status")
        async def request_status(aname: str, request_id: str, request: Request) -> dict[str, str]:
            self._session(request)
            self._account(aname)
            req = self.requests_by_id.get(request_id)
            if req is None:
                raise _bad("INPUT_INVALID.RequestId.Invalid", f"Request {request_id} not found")
            if req.operation not in POLLED or len(req.devices) != 1:  # documented for these only
                raise _bad("INPUT_INVALID.RequestId.Invalid",
                           f"Request {request_id} ({req.operation}) reports its result by callback only")
            return {"requestId": req.request_id, "status": req.status}

        @app.post(M2M + "/sms")
        async def send_sms(body: SmsIn, request: Request) -> dict[str, str]:
            self._session(request)
            self._account(body.accountName)
            limit = 160 if body.dataEncoding == "7-bit" else 140
            if len(body.smsMessage) > limit:
                raise _bad("INPUT_INVALID.SmsMessage.TooLong", f"smsMessage is longer than {limit} characters")
            if body.deviceIds:
                devices = [self._find(i) for i in body.deviceIds]
            else:
                devices = self._select(Selection(accountName=body.accountName, groupName=body.groupName))
            for d in devices:
                if d.state != "active":
                    raise _bad("INPUT_INVALID.DeviceState.Invalid", f"Device {d.iccid} is {d.state}: SMS not possible")
            reply = self._start("sms", devices, None, "EnhancedConnectivityService")
            self.sms_sent += [{"requestId": reply["requestId"], "iccid": d.iccid, "message": body.smsMessage,
                               "dataEncoding": body.dataEncoding} for d in devices]
            return reply

        @app.get(M2M + "/sms/{aname}/history")
        async def sms_history(aname: str, request: Request) -> dict[str, Any]:
            self._session(request)
            self._account(aname)
            messages, self.mo_sms = self.mo_sms, []
            return {"messages": messages, "hasMoreData": False}

        @app.put(M2M + "/sms/{aname}/startCallbacks")
        async def sms_callbacks(aname: str, request: Request) -> dict[str, bool]:
            self._session(request)
            self._account(aname)
            return {"success": True}

    def _find_or_add(self, item: DeviceItemIn, body: ActivateIn) -> SimDevice:
        """Activation adds a line ThingSpace does not know yet; 4G needs IMEI+ICCID or ICCID+skuNumber."""
        try:
            return self._find_item(item)
        except SimError:
            pass
        ids = {i.kind.lower(): i.id for i in item.deviceIds}
        if "iccid" not in ids or not (ids.get("imei") or body.skuNumber):
            raise _bad("REQUEST_FAILED.DeviceNotFound",
                       "Device not found; to add it on activation send IMEI and ICCID, or ICCID and skuNumber")
        return self.add_device(ids["iccid"], ids.get("imei"), "pre-active")

    # ---- usage, connections, diagnostics ----------------------------------------------------------
    def _window(self, body: HistoryIn) -> tuple[datetime, datetime]:
        now = datetime.now(timezone.utc)
        earliest = _utc(body.earliest) if body.earliest else now - timedelta(days=365)  # records are kept 12 months
        return earliest, _utc(body.latest) if body.latest else now

    def _page(self, key: str, records: list[dict[str, Any]]) -> JSONResponse:
        more = len(records) > self.history_page_size
        return JSONResponse({key: records[:self.history_page_size], "hasMoreData": more},
                            status_code=202 if more else 200)

    def _history_routes(self, app: FastAPI) -> None:
        @app.post(M2M + "/devices/usage/actions/list")
        async def usage(body: HistoryIn, request: Request) -> JSONResponse:
            self._session(request)
            d = self._find(body.deviceId)
            earliest, latest = self._window(body)
            records = []
            for day in sorted(d.usage):
                at = datetime.combine(day, dtime(), timezone.utc)
                if earliest <= at <= latest:
                    used, sms = d.usage[day]
                    records.append({"timestamp": _iso(at), "bytesUsed": used, "smsUsed": sms, "source": "Raw Usage",
                                    "servicePlan": d.plan or "", "extendedAttributes": [
                                        {"key": "MoSms", "value": "0"}, {"key": "MtSms", "value": str(sms)}]})
            return self._page("usageHistory", records)

        @app.post(M2M + "/devices/connections/actions/listHistory")
        async def connections(body: HistoryIn, request: Request) -> JSONResponse:
            self._session(request)
            d = self._find(body.deviceId)
            earliest, latest = self._window(body)
            records = [{"occurredAt": _iso(at), "extendedAttributes": [], "connectionEventAttributes": [
                {"key": "Event", "value": event}, {"key": "BytesUsed", "value": str(used)},
                {"key": "Msisdn", "value": "1" + d.mdn if d.mdn else ""}]}
                for at, event, used in d.connections if earliest <= at <= latest]
            return self._page("connectionHistory", records)

        @app.post(M2M + "/devices/usage/actions/list/aggregate")
        async def aggregate(body: AggregateUsageIn, request: Request) -> dict[str, str]:
            self._session(request)
            self._account(body.accountName)
            start, end = _utc(body.startTime), _utc(body.endTime)
            if end < start or end - start > timedelta(days=31):
                raise _bad("INPUT_INVALID.EndTime.Invalid", "endTime must be within 1 month after startTime")
            if body.deviceIds:
                devices = [self._find(i) for i in body.deviceIds]
            else:
                devices = [d for d in self.devices.values() if not body.groupName or d.group == body.groupName]
            return self._start("usage", devices, None, "DeviceUsage", window=(start, end))

        @app.post(M2M + "/devices/extendeddiagnostics/actions/list")
        async def diagnostics(body: DiagnosticsIn, request: Request) -> dict[str, Any]:
            self._session(request)
            self._account(body.accountName)
            d = self._find(body.deviceList[0])

            def attrs(**kv: Any) -> list[dict[str, str]]:
                return [{"key": k, "value": "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)}
                        for k, v in kv.items()]

            return {"categories": [
                {"categoryName": "Connectivity", "extendedAttributes": attrs(
                    Connected=d.connected, IPAddress=d.ip,
                    LastConnectionDate=d.last_connection and _iso(d.last_connection))},
                {"categoryName": "Provisioning", "extendedAttributes": attrs(
                    State=d.shown_state, ServicePlan=d.plan, MDN=d.mdn, IMEI=d.imei)},
                {"categoryName": "Billing", "extendedAttributes": attrs(
                    BillingCycleEndDate=_iso(self.billing_cycle_end()), AccountName=self.account_name)}]}

    # ---- plans, groups, callbacks -----------------------------------------------------------------
    def _account_routes(self, app: FastAPI) -> None:
        @app.get(M2M + "/plans/{aname}")
        async def plans(aname: str, request: Request) -> list[dict[str, Any]]:
            self._session(request)
            self._account(aname)
            return self.plans

        @app.post(M2M + "/groups")
        async def create_group(body: GroupIn, request: Request) -> dict[str, bool]:
            self._session(request)
            self._account(body.accountName)
            if body.groupName in self.groups:
                raise _bad("REQUEST_FAILED.DeviceGroup.Exists", f"Group {body.groupName} already exists")
            members = [self._find(i) for i in body.devicesToAdd]
            self.groups[body.groupName] = body.groupDescription
            for d in members:
                d.group = body.groupName
            return {"success": True}

        @app.get(M2M + "/groups/{aname}")
        async def list_groups(aname: str, request: Request) -> list[dict[str, str]]:
            self._session(request)
            self._account(aname)
            return [{"name": n, "description": desc} for n, desc in self.groups.items()]

        def group(aname: str, gname: str) -> str:
            self._account(aname)
            if gname not in self.groups:
                raise _bad("REQUEST_FAILED.DeviceGroupNotFound", f"Group {gname} not found")
            return gname

        @app.get(M2M + "/groups/{aname}/name/{gname}")
        async def get_group(aname: str, gname: str, request: Request) -> dict[str, Any]:
            self._session(request)
            name = group(aname, gname)
            return {"name": name, "description": self.groups[name], "hasMoreData": False,
                    "devices": [{"deviceIds": d.ids()} for d in self.devices.values() if d.group == name]}

        @app.put(M2M + "/groups/{aname}/name/{gname}")
        async def update_group(aname: str, gname: str, body: GroupUpdateIn, request: Request) -> dict[str, bool]:
            self._session(request)
            name = group(aname, gname)
            adds, removes = [self._find(i) for i in body.devicesToAdd], [self._find(i) for i in body.devicesToRemove]
            if body.newGroupName and body.newGroupName != name:
                if body.newGroupName in self.groups:
                    raise _bad("REQUEST_FAILED.DeviceGroup.Exists", f"Group {body.newGroupName} already exists")
                self.groups[body.newGroupName] = self.groups.pop(name)
                for d in self.devices.values():
                    d.group = body.newGroupName if d.group == name else d.group
                name = body.newGroupName
            if body.newGroupDescription is not None:
                self.groups[name] = body.newGroupDescription
            for d in adds:
                d.group = name
            for d in removes:
                d.group = self.default_group if d.group == name else d.group
            return {"success": True}

        @app.delete(M2M + "/groups/{aname}/name/{gname}")
        async def delete_group(aname: str, gname: str, request: Request) -> dict[str, bool]:
            self._session(request)
            name = group(aname, gname)
            if name == self.default_group:
                raise _bad("INPUT_INVALID.DeviceGroup.DeleteDefault", "The default group cannot be deleted")
            del self.groups[name]
            for d in self.devices.values():
                d.group = self.default_group if d.group == name else d.group
            return {"success": True}

        @app.post(M2M + "/callbacks/{aname}")
        async def register(aname: str, body: CallbackIn, request: Request) -> dict[str, str]:
            self._session(request)
            self._account(aname)
            if body.name not in CALLBACK_SERVICES:
                raise _bad("INPUT_INVALID.ServiceName.Invalid", f"Unknown callback service {body.name}")
            self.callbacks[body.name] = Callback(body.name, body.url, body.username or "", body.password or "")
            return {"accountName": aname, "serviceName": body.name}

        @app.get(M2M + "/callbacks/{aname}")
        async def list_callbacks(aname: str, request: Request) -> list[dict[str, str]]:
            self._session(request)
            self._account(aname)
            return [{"accountName": aname, "serviceName": c.service, "url": c.url, "username": c.username}
                    for c in self.callbacks.values()]

        @app.delete(M2M + "/callbacks/{aname}/name/{sname}")
        async def unregister(aname: str, sname: str, request: Request) -> dict[str, str]:
            self._session(request)
            self._account(aname)
            if self.callbacks.pop(sname, None) is None:
                raise _bad("REQUEST_FAILED.Callback.NotFound", f"No callback registered for {sname}")
            return {"accountName": aname, "serviceName": sname}

    # ---- settling requests and delivering callbacks -----------------------------------------------
    async def _settle(self, req: SimRequest) -> None:
        await asyncio.sleep(self.change_delay_s)
        for d in req.devices:
            d.busy = None if d.busy == req.operation else d.busy
            if req.apply is not None and req.fault is None:
                req.apply(d)
        req.status = "Failure" if req.fault else "Success"  # the SDK's RequestStatusEnum
        if req.operation == "usage":
            await self._deliver(req.service, self._usage_envelope(req))
            return
        await asyncio.gather(*(self._deliver(req.service, self._result_envelope(req, d)) for d in req.devices))

    def _result_envelope(self, req: SimRequest, d: SimDevice) -> dict[str, Any]:
        body: dict[str, Any] = {"requestId": req.request_id, "deviceIds": d.ids(), "status": req.status}
        if req.fault:
            body["faultResponse"] = {"faultcode": req.fault[0], "faultstring": req.fault[1]}
        else:
            body["deviceResponse"] = {f"{req.operation}Response": {
                "deviceIds": d.ids(), "servicePlan": d.plan or "", "state": d.state}}
        return body

    def _usage_envelope(self, req: SimRequest) -> dict[str, Any]:
        start, end = req.window or (datetime.min.replace(tzinfo=timezone.utc), datetime.now(timezone.utc))
        totals = []
        for d in req.devices:
            days = [v for day, v in d.usage.items() if start <= datetime.combine(day, dtime(), timezone.utc) <= end]
            totals.append({"deviceIds": d.ids(), "dataUsage": sum(v[0] for v in days),
                           "smsUsage": sum(v[1] for v in days), "startTime": _iso(start), "endTime": _iso(end)})
        return {"requestId": req.request_id, "status": req.status, "deviceResponse": {"usageResponse": totals}}

    async def _deliver(self, service: str, body: dict[str, Any]) -> None:
        cb = self.callbacks.get(service)
        if cb is None:
            return
        async with httpx.AsyncClient(timeout=5.0) as client:
            for attempt in range(1, self.callback_attempts + 1):
                envelope = {"username": cb.username, "password": cb.password, **body,
                            "callbackCount": attempt, "maxCallbackThreshold": self.callback_attempts}
                record: dict[str, Any] = {"service": service, "url": cb.url, "attempt": attempt, "body": envelope}
                try:
                    record["status"] = (await client.post(cb.url, json=envelope)).status_code
                except httpx.HTTPError as e:
                    record["status"], record["error"] = None, f"{type(e).__name__}: {e}"
                self.deliveries.append(record)
                if record["status"] is not None and 200 <= record["status"] < 300:
                    return
                if attempt < self.callback_attempts:
                    await asyncio.sleep(self.callback_retry_s)

    # ---- demo data --------------------------------------------------------------------------------
    def _seed_demo(self) -> None:
        rng = random.Random(1)
        today = datetime.now(timezone.utc).date()
        states = ["active", "active", "active", "suspend", "pre-active"]
        for n, state in enumerate(states, start=1):
            iccid = f"8914800000000000000{n}"
            usage = {today - timedelta(days=k): (rng.randrange(1, 40) * 1024 * 1024, rng.randrange(0, 3))
                     for k in range(45)} if state == "active" else None
            plan = None if state == "pre-active" else "M2M5GB" if n % 2 else "M2M1GB"
            self.add_device(iccid, f"35000000000000{n}", state, plan, usage, connected=state == "active" and n != 3)
            if state == "active":
                for k in range(3):
                    start = datetime.now(timezone.utc) - timedelta(hours=8 * k + 6)
                    self.add_connection_event(iccid, start, "Start")
                    self.add_connection_event(iccid, start + timedelta(hours=1), "Stop", rng.randrange(1, 9) * 10**6)
