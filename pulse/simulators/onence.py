"""A 1NCE Management API simulator: stateful, in memory, on the real paths (reference §B).

Routes are served twice, under `/management-api` (the real base URL is
`https://api.1nce.com/management-api`) and at the root, so a client configured with either
`http://127.0.0.1:P/management-api` or `http://127.0.0.1:P` appends `/oauth/token`, `/v1/sims...`
exactly as it would against 1NCE.

`OneNceSim()` with no arguments knows one demo customer, client id `pulse-demo` and secret
`pulse-demo-secret`, with four demo SIMs (ICCIDs 8988280666000000001..4). Tests seed their own
customers and SIMs through the constructor, `add_sim` and `add_usage`.

Modelled behaviour:
- `POST /oauth/token` (HTTP Basic + `{"grant_type": "client_credentials"}`) issues bearer tokens that
  expire after `token_ttl_s`; every other call needs a live one (401 otherwise).
- `/v1/sims*` is rate limited per customer (documented 10 req/s): a token bucket refilled at
  `rate_limit_per_s` holding one second's worth; an empty bucket answers 429 with `Retry-After`.
- `POST /v1/sims` (bulk status change) answers 201 at once and applies the changes `bulk_delay_s` later.
- Errors use the v2 body `{"error_code", "error_token", "message"}` everywhere, injected faults included.
- A disabled SIM is OFFLINE; an expired one (`expiry_date` in the past) refuses changes with 422.
- Data volumes are MB as strings; SMS volumes are counts as strings; usage only for the last 6 months.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from pulse.simulators.server import Simulator

DEMO_CLIENT_ID = "pulse-demo"
DEMO_CLIENT_SECRET = "pulse-demo-secret"
BASE_PATH = "/management-api"
MAX_PAGE_SIZE = 100
USAGE_MONTHS = 6
Connectivity = Literal["ONLINE", "ATTACHED", "OFFLINE"]

_ERROR_TOKENS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                 422: "UnprocessableEntity", 429: "TooManyRequests", 500: "InternalServerError",
                 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


class SimApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def luhn_digit(digits: str) -> str:
    """The Luhn check digit 1NCE appends for `iccid_with_luhn`."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these sit left of the check digit
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def months_back(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (clamped to the month's length)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    first_of_next = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (first_of_next - timedelta(days=1)).day))


def _stamp(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _mb(value: float) -> str:
    return f"{value:.6f}"


@dataclass
class DayUsage:
    data_mb: float = 0.0
    sms: int = 0


@dataclass
class SimCard:
    """One SIM of a customer, with what the status, usage, quota and SMS endpoints report."""
    iccid: str
    imsi: str = ""
    msisdn: str = ""
    imei: str = ""
    status: Literal["Enabled", "Disabled"] = "Enabled"
    ip_address: str = ""
    label: str = ""
    imei_lock: bool = False
    quota_mb: float = 500.0
    sms_quota: int = 250
    connectivity: Connectivity = "ONLINE"
    rat_type: int = 6  # 3GPP RAT type: 6 = E-UTRAN (LTE)
    operator: str = "Telekom Deutschland"
    country: str = "Germany"
    mcc: str = "262"
    mnc: str = "01"
    last_seen: datetime | None = None  # location last_updated / PDP context creation
    activation_date: datetime | None = None
    expiry_date: datetime | None = None
    usage: dict[date, DayUsage] = field(default_factory=dict)
    sms: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        tail = self.iccid[-9:]
        n = int(tail) if tail.isdigit() else sum(map(ord, tail))
        self.imsi = self.imsi or f"901405{n % 10**9:09d}"
        self.msisdn = self.msisdn or f"882285{n % 10**9:09d}"
        self.ip_address = self.ip_address or f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"
        now = datetime.now(timezone.utc)
        self.activation_date = self.activation_date or now - timedelta(days=90)
        self.expiry_date = self.expiry_date or now + timedelta(days=365 * 10)
        if self.last_seen is None and self.connectivity != "OFFLINE":
            self.last_seen = now - timedelta(minutes=5)

    @property
    def expired(self) -> bool:
        return self.expiry_date is not None and self.expiry_date <= datetime.now(timezone.utc)

    def data_used_mb(self) -> float:
        return sum(u.data_mb for u in self.usage.values())

    def sms_used(self) -> int:
        return sum(u.sms for u in self.usage.values())

    def remaining_mb(self) -> float:
        return max(0.0, self.quota_mb - self.data_used_mb())

    def remaining_sms(self) -> int:
        return max(0, self.sms_quota - self.sms_used())

    def network(self) -> Connectivity:
        return "OFFLINE" if self.status == "Disabled" else self.connectivity


class TokenBucket:
    """Allows `rate` requests a second on average with bursts of `burst`; `take` says how long to wait."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.at = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class TokenRequest(BaseModel):
    grant_type: str


class SimUpdate(BaseModel):
    iccid: str = Field(min_length=1, max_length=32)
    status: Literal["Enabled", "Disabled"]
    label: str | None = Field(None, max_length=255)
    imei_lock: bool | None = None


class SmsSubmit(BaseModel):
    payload: str = Field(min_length=1, max_length=160)
    source_address: str | None = Field(None, max_length=20)
    udh: str | None = None
    dcs: int | None = None
    expiry_date: str | None = None


def demo_sims() -> list[SimCard]:
    today = datetime.now(timezone.utc).date()
    sims = [
        SimCard("8988280666000000001", imei="356938035643801", connectivity="ONLINE", label="pump-01"),
        SimCard("8988280666000000002", imei="356938035643802", connectivity="ATTACHED", label="pump-02"),
        SimCard("8988280666000000003", imei="356938035643803", connectivity="OFFLINE", label="meter-03"),
        SimCard("8988280666000000004", imei="356938035643804", status="Disabled", label="spare-04"),
    ]
    for n, sim in enumerate(sims[:3], start=1):
        for back in range(0, 20):
            sim.usage[today - timedelta(days=back)] = DayUsage(data_mb=0.75 * n + back * 0.01, sms=int(back % 3 == 0))
    return sims


class OneNceSim(Simulator):
    name: ClassVar[str] = "onence"

    def __init__(self, clients: dict[str, str] | None = None, sims: Iterable[SimCard] | None = None, *,
                 token_ttl_s: int = 3600, rate_limit_per_s: float | None = 10.0, rate_burst: float | None = None,
                 bulk_delay_s: float = 0.2) -> None:
        """`clients`: client id -> secret, all one customer's credentials (demo ones when None);
        `sims`: that customer's SIMs (demo ones when None); `rate_limit_per_s=None` disables the limit."""
        self.clients = dict(clients) if clients is not None else {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
        self.sims: dict[str, SimCard] = {s.iccid: s for s in (demo_sims() if sims is None else sims)}
        self.token_ttl_s = token_ttl_s
        self.rate_limit_per_s = rate_limit_per_s
        self.rate_burst = rate_burst
        self.bulk_delay_s = bulk_delay_s
        self.tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self.throttled: list[str] = []  # paths answered 429 by the rate limit (faults not included)
        self._bucket: TokenBucket | None = None
        self._sms_ids = itertools.count(1)
        super().__init__()

    # ---- seeding and test helpers -----------------------------------------------------------
    def add_sim(self, iccid: str, **fields: Any) -> SimCard:
        sim = SimCard(iccid, **fields)
        self.sims[iccid] = sim
        return sim

    def add_usage(self, iccid: str, day: date, data_mb: float, sms: int = 0) -> None:
        entry = self.sims[iccid].usage.setdefault(day, DayUsage())
        entry.data_mb += data_mb
        entry.sms += sms

    def expire_tokens(self) -> None:
        """Every issued token stops working now (what a client sees after `expires_in`)."""
        self.tokens.clear()

    def set_rate_limit(self, per_s: float | None, burst: float | None = None) -> None:
        self.rate_limit_per_s, self.rate_burst, self._bucket = per_s, burst, None

    # ---- errors -----------------------------------------------------------------------------
    def error_response(self, status: int, message: str) -> Response:
        body = {"error_code": 1000, "error_token": _ERROR_TOKENS.get(status, "Error"), "message": message}
        return JSONResponse(body, status_code=status)

    def setup(self, app: FastAPI) -> None:
        @app.exception_handler(SimApiError)
        async def _api_error(request: Request, exc: SimApiError) -> Response:
            response = self.error_response(exc.status, exc.message)
            response.headers.update(exc.headers)
            return response

        @app.exception_handler(RequestValidationError)
        async def _invalid(request: Request, exc: RequestValidationError) -> Response:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
            return self.error_response(400, f"{where}: {first.get('msg', 'invalid request')}".lstrip(": "))

        router = self._router()
        app.include_router(router, prefix=BASE_PATH)
        app.include_router(router)

    # ---- auth and rate limit ----------------------------------------------------------------
    def _issue_token(self, authorization: str | None, body: TokenRequest) -> dict[str, Any]:
        client_id = self._basic_client(authorization)
        if body.grant_type != "client_credentials":
            raise SimApiError(400, "grant_type must be client_credentials")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        return {"status_code": 200, "access_token": token, "token_type": "bearer", "expires_in": self.token_ttl_s,
                "userId": client_id, "scope": "all"}

    def _basic_client(self, authorization: str | None) -> str:
        scheme, _, value = (authorization or "").partition(" ")
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or not user or not secrets.compare_digest(self.clients.get(user, "\0"), password):
            raise SimApiError(401, "Bad credentials")
        return user

    async def _customer(self, request: Request) -> None:
        """Bearer check, then the per-customer rate limit on /v1/sims* (all clients are one customer)."""
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        expires = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires <= time.monotonic():
            self.tokens.pop(token, None)
            raise SimApiError(401, "Unauthorized: missing, unknown or expired access token")
        if self.rate_limit_per_s is None:
            return
        if self._bucket is None:
            self._bucket = TokenBucket(self.rate_limit_per_s, self.rate_burst)
        wait = self._bucket.take()
        if wait > 0:
            self.throttled.append(request.url.path)
            raise SimApiError(429, "Too many requests", {"Retry-After": str(max(1, math.ceil(wait)))})

    def _sim(self, iccid: str) -> SimCard:
        sim = self.sims.get(iccid)
        if sim is None:
            raise SimApiError(404, f"SIM {iccid} not found")
        return sim

    def _changeable(self, iccid: str) -> SimCard:
        sim = self._sim(iccid)
        if sim.expired:
            raise SimApiError(422, "The following SIMs are expired and cannot be modified via API. "
                                   f"Only extensions are permitted: {iccid}")
        return sim

    # ---- representations --------------------------------------------------------------------
    def sim_json(self, sim: SimCard) -> dict[str, Any]:
        remaining, remaining_sms = sim.remaining_mb(), sim.remaining_sms()
        return {
            "iccid": sim.iccid, "iccid_with_luhn": sim.iccid + luhn_digit(sim.iccid), "imsi": sim.imsi,
            "imsi_2": None, "current_imsi": sim.imsi, "msisdn": sim.msisdn, "imei": sim.imei,
            "imei_lock": sim.imei_lock, "status": sim.status, "activation_date": _stamp(sim.activation_date),
            "ip_address": sim.ip_address, "current_quota": round(remaining, 6),
            "quota_status": _quota_status(remaining, sim.quota_mb),
            "current_quota_SMS": remaining_sms, "quota_status_SMS": _quota_status(remaining_sms, sim.sms_quota),
            "label": sim.label,
        }

    def status_json(self, sim: SimCard) -> dict[str, Any]:
        network = sim.network()
        location = None if sim.last_seen is None else {
            "iccid": sim.iccid, "imsi": sim.imsi, "last_updated": _stamp(sim.last_seen), "mcc": sim.mcc,
            "mnc": sim.mnc, "operator": {"name": sim.operator}, "country": {"name": sim.country},
        }
        pdp = None if network != "ONLINE" else {
            "ue_ip_address": sim.ip_address, "rat_type": sim.rat_type, "created": _stamp(sim.last_seen),
            "mcc": sim.mcc, "mnc": sim.mnc, "imsi": sim.imsi,
        }
        services = [] if network == "OFFLINE" else ["GPRS", "SMS"]
        return {"status": network, "location": location, "pdp_context": pdp, "services": services}

    def usage_json(self, sim: SimCard, start: date, end: date) -> dict[str, Any]:
        stats = []
        for day in sorted(d for d in sim.usage if start <= d <= end):
            u = sim.usage[day]
            tx = round(u.data_mb * 0.3, 6)
            stats.append({
                "date": day.isoformat(),
                "data": {"volume": _mb(u.data_mb), "volume_tx": _mb(tx), "volume_rx": _mb(u.data_mb - tx),
                         "traffic_type": {"id": 5, "description": "Data"}, "cost": "0", "currency": "EUR"},
                "sms": {"volume": str(u.sms), "volume_tx": str(u.sms), "volume_rx": "0",
                        "traffic_type": {"id": 6, "description": "SMS"}, "cost": "0", "currency": "EUR"},
            })
        return {"stats": stats}

    def quota_json(self, remaining: float, total: float, sim: SimCard) -> dict[str, Any]:
        return {"volume": round(remaining, 6), "total_volume": total, "expiry_date": _stamp(sim.expiry_date),
                "last_volume_added": total, "last_status_change_date": _stamp(sim.activation_date),
                "threshold_percentage": 20, "peak_throughput": 1_000_000}

    # ---- routes -----------------------------------------------------------------------------
    def _router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/oauth/token", self._token_route, methods=["POST"])
        sims = APIRouter(prefix="/v1/sims", dependencies=[Depends(self._customer)])
        sims.add_api_route("", self._list_sims, methods=["GET"])
        sims.add_api_route("", self._bulk_update, methods=["POST"], status_code=201)
        sims.add_api_route("/{iccid}", self._get_sim, methods=["GET"])
        sims.add_api_route("/{iccid}", self._update_sim, methods=["PUT"])
        sims.add_api_route("/{iccid}/status", self._get_status, methods=["GET"])
        sims.add_api_route("/{iccid}/usage", self._get_usage, methods=["GET"])
        sims.add_api_route("/{iccid}/quota/data", self._data_quota, methods=["GET"])
        sims.add_api_route("/{iccid}/quota/sms", self._sms_quota, methods=["GET"])
        sims.add_api_route("/{iccid}/sms", self._send_sms, methods=["POST"], status_code=201)
        sims.add_api_route("/{iccid}/sms", self._list_sms, methods=["GET"])
        router.include_router(sims)
        return router

    async def _token_route(self, request: Request, body: TokenRequest) -> dict[str, Any]:
        return self._issue_token(request.headers.get("authorization"), body)

    async def _list_sims(self, page: int = Query(1, ge=1), pageSize: int = Query(10, ge=1, le=MAX_PAGE_SIZE),  # noqa: N803
                         q: str | None = Query(None, max_length=500)) -> Response:
        rows = [self.sim_json(self.sims[i]) for i in sorted(self.sims)]
        rows = [r for r in rows if _matches(r, _filters(q))]
        return _page(rows, page, pageSize)

    async def _get_sim(self, iccid: str) -> dict[str, Any]:
        return self.sim_json(self._sim(iccid))

    async def _update_sim(self, iccid: str, body: SimUpdate) -> Response:
        if body.iccid != iccid:
            raise SimApiError(400, f"iccid in body ({body.iccid}) does not match the path ({iccid})")
        _apply(self._changeable(iccid), body)
        return Response(status_code=200)

    async def _bulk_update(self, body: list[SimUpdate]) -> Response:
        if not body or len(body) > 1000:
            raise SimApiError(400, "expected an array of 1 to 1000 SIM objects")
        for item in body:
            self._changeable(item.iccid)
        # 1NCE queues bulk changes: 201 means accepted; they land a moment later.
        asyncio.get_running_loop().call_later(self.bulk_delay_s, self._apply_bulk, body)
        return Response(status_code=201)

    def _apply_bulk(self, body: list[SimUpdate]) -> None:
        for item in body:
            if item.iccid in self.sims:
                _apply(self.sims[item.iccid], item)

    async def _get_status(self, iccid: str) -> dict[str, Any]:
        return self.status_json(self._sim(iccid))

    async def _get_usage(self, iccid: str, start_dt: date, end_dt: date) -> dict[str, Any]:
        sim = self._sim(iccid)
        today = datetime.now(timezone.utc).date()
        if end_dt < start_dt:
            raise SimApiError(400, "end_dt must not be before start_dt")
        if start_dt < months_back(today, USAGE_MONTHS):
            raise SimApiError(400, f"usage is available for the last {USAGE_MONTHS} months only")
        return self.usage_json(sim, start_dt, end_dt)

    async def _data_quota(self, iccid: str) -> dict[str, Any]:
        sim = self._sim(iccid)
        return self.quota_json(sim.remaining_mb(), sim.quota_mb, sim)

    async def _sms_quota(self, iccid: str) -> dict[str, Any]:
        sim = self._sim(iccid)
        return self.quota_json(sim.remaining_sms(), sim.sms_quota, sim)

    async def _send_sms(self, iccid: str, body: SmsSubmit) -> Response:
        sim = self._changeable(iccid)
        now = datetime.now(timezone.utc)
        reachable = sim.network() != "OFFLINE"
        sim.sms.append({
            "id": next(self._sms_ids), "submit_date": now.isoformat(), "iccid": sim.iccid, "msisdn": sim.msisdn,
            "imsi": sim.imsi, "payload": body.payload, "source_address": body.source_address, "dcs": body.dcs or 0,
            "udh": body.udh, "delivery_date": now.isoformat() if reachable else None,
            "status": {"id": 4, "description": "DELIVERED"} if reachable else {"id": 1, "description": "PENDING"},
            "sms_type": {"id": 1, "description": "MT"},
        })
        self.add_usage(iccid, now.date(), 0.0, sms=1)
        return Response(status_code=201)

    async def _list_sms(self, iccid: str, page: int = Query(1, ge=1),
                        pageSize: int = Query(10, ge=1, le=MAX_PAGE_SIZE)) -> Response:  # noqa: N803
        return _page(list(self._sim(iccid).sms), page, pageSize)


def _apply(sim: SimCard, update: SimUpdate) -> None:
    sim.status = update.status
    if update.label is not None:
        sim.label = update.label
    if update.imei_lock is not None:
        sim.imei_lock = update.imei_lock


def _quota_status(remaining: float, total: float) -> dict[str, Any]:
    if remaining <= 0:
        return {"id": 2, "description": "No volume available", "threshold_reached_date": None,
                "quota_exceeded_date": None}
    if total and remaining / total < 0.2:
        return {"id": 1, "description": "Less than 20% available", "threshold_reached_date": None,
                "quota_exceeded_date": None}
    return {"id": 0, "description": "More than 20% available", "threshold_reached_date": None,
            "quota_exceeded_date": None}


def _filters(q: str | None) -> dict[str, str]:
    """`q=imei:4711,ip_address:10.0.0.1` -> {"imei": "4711", "ip_address": "10.0.0.1"}."""
    out: dict[str, str] = {}
    for part in (q or "").split(","):
        name, sep, value = part.partition(":")
        if not part.strip():
            continue
        if not sep or not name.strip():
            raise SimApiError(400, f"invalid filter {part!r}; expected field:value")
        out[name.strip()] = value.strip()
    return out


def _matches(row: dict[str, Any], filters: dict[str, str]) -> bool:
    return all(str(row.get(name)) == value for name, value in filters.items())


def _page(rows: list[dict[str, Any]], page: int, size: int) -> Response:
    total = len(rows)
    pages = max(1, math.ceil(total / size))
    chunk = rows[(page - 1) * size: page * size]
    headers = {"X-Count-Per-Page": str(size), "X-Current-Page": str(page), "X-Total-Count": str(total),
               "X-Total-Pages": str(pages)}
    return JSONResponse(chunk, headers=headers)
