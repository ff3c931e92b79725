"""The carrier provider interface: one shape for every connectivity-management API Pulse is a client of.

A provider turns its carrier's API into these normalized results. What a carrier cannot do
raises `NotSupported` (the API answers 501 with the reason); `list_plans` is the exception and
returns an empty list where the carrier sells no per-SIM plans (1NCE). Transport problems that
survived the retries of `pulse.integrations.http` arrive as `Unavailable`; refused credentials as
`CarrierAuthError` (never retried: repeated bad logins lock carrier accounts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, AsyncIterator, ClassVar, Literal

import httpx

from pulse.domain.carriers import used_pct
from pulse.integrations.http import HttpClientOwner, RetryPolicy, Unavailable

SimStatus = Literal["active", "suspended", "deactivated", "preactive", "pending", "unknown"]
Action = Literal["activate", "suspend", "restore", "deactivate"]
RequestState = Literal["pending", "succeeded", "failed"]

__all__ = ["Action", "ActionResult", "CallbackEvent", "CarrierAuthError", "CarrierError", "CarrierProvider",
           "Credentials", "DeviceInfo", "Diagnostics", "NotSupported", "Plan", "RequestState", "SimStatus",
           "Unavailable", "Usage"]


class CarrierError(Exception):
    """The carrier refused the request (bad input, unknown device, wrong state). `code` is the carrier's."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class CarrierAuthError(CarrierError):
    """Credentials refused (or the account is locked): fix the integration; Pulse does not retry."""


class NotSupported(CarrierError):
    """This carrier has no such operation."""


@dataclass(frozen=True)
class Credentials:
    """What an integration stores (encrypted at rest). `config` holds carrier-specific extras,
    e.g. ThingSpace's `username`/`password` for the session login and its `account_name`."""
    api_base_url: str
    api_key: str = ""
    api_secret: str = ""
    account_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeviceInfo:
    carrier_device_id: str  # the id the carrier addresses the line by (ICCID for both carriers here)
    iccid: str | None
    sim_status: SimStatus
    network_status: str | None = None  # e.g. ONLINE | ATTACHED | OFFLINE; None when the carrier does not say
    ip_address: str | None = None
    network_type: str | None = None
    last_connection: datetime | None = None
    signal_strength: int | None = None  # 0–100
    plan: str | None = None
    msisdn: str | None = None
    imei: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    carrier_device_id: str
    data_used_bytes: int
    data_limit_bytes: int | None = None
    sms_count: int = 0
    billing_cycle_start: datetime | None = None
    billing_cycle_end: datetime | None = None
    sessions: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def data_used_pct(self) -> float | None:
        """Share of the plan's data used (what data-usage alert thresholds compare against)."""
        return used_pct(self.data_used_bytes, self.data_limit_bytes)


@dataclass
class Diagnostics:
    carrier_device_id: str
    data: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    plan_id: str
    name: str
    data_limit_bytes: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionResult:
    """A carrier operation: finished (`succeeded`/`failed`) or still running under `request_id`."""
    state: RequestState
    request_id: str | None = None
    detail: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallbackEvent:
    """An inbound carrier callback, verified and normalized. Unknown kinds keep `kind="unknown"`."""
    kind: str  # "request_result" | "usage" | "unknown"
    request_id: str | None = None
    carrier_device_ids: list[str] = field(default_factory=list)
    state: RequestState | None = None
    detail: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class CarrierProvider(HttpClientOwner):
    """Base of the providers. Subclasses set `name` and implement what their carrier offers."""

    name: ClassVar[str]
    polled_actions: ClassVar[frozenset[str] | None] = None  # actions `request_status` answers for; None: all

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Raise CarrierError(422) for an integration `config` value this carrier cannot use."""

    @classmethod
    def polls(cls, action: str) -> bool:
        """Whether the carrier answers `request_status` for a request of this (Pulse) action."""
        return cls.polled_actions is None or action in cls.polled_actions

    def __init__(self, credentials: Credentials, http: httpx.AsyncClient | None = None,
                 retry: RetryPolicy = RetryPolicy(), timeout_s: float = 15.0) -> None:
        self.credentials = credentials
        self.retry = retry
        self.http = self._adopt_http(http, base_url=credentials.api_base_url.rstrip("/"), timeout=timeout_s)

    def _unsupported(self, what: str) -> NotSupported:
        return NotSupported(f"{self.name} does not support {what}", status=501)

    # ---- reads -----------------------------------------------------------------------------
    async def list_devices(self) -> AsyncIterator[DeviceInfo]:
        raise self._unsupported("listing devices")
        yield  # pragma: no cover - makes this an async generator

    async def get_device_info(self, carrier_device_id: str) -> DeviceInfo:
        raise NotImplementedError

    async def get_usage(self, carrier_device_id: str) -> Usage:
        raise NotImplementedError

    async def get_bulk_usage(self, carrier_device_ids: list[str]) -> dict[str, Usage]:
        """Usage of many lines; carriers with a bulk call override this one-by-one fallback."""
        return {cid: await self.get_usage(cid) for cid in carrier_device_ids}

    async def get_diagnostics(self, carrier_device_id: str) -> Diagnostics:
        raise self._unsupported("diagnostics")

    async def list_plans(self) -> list[Plan]:
        return []

    # ---- changes ---------------------------------------------------------------------------
    async def action(self, carrier_device_id: str, action: Action) -> ActionResult:
        raise self._unsupported(action)

    async def change_plan(self, carrier_device_id: str, plan_id: str) -> ActionResult:
        raise self._unsupported("changing plans")

    async def send_sms(self, carrier_device_id: str, text: str) -> ActionResult:
        raise self._unsupported("SMS")

    async def claim_sim(self, iccid: str, plan_id: str | None = None) -> DeviceInfo:
        """Bring a SIM under this account (activating it where the carrier needs that)."""
        raise self._unsupported("provisioning")

    async def request_status(self, request_id: str) -> ActionResult:
        """Where an asynchronous request stands; carriers that answer synchronously never have one."""
        raise self._unsupported("asynchronous requests")

    # ---- callbacks -------------------------------------------------------------------------
    async def register_callback(self, service: str, url: str, username: str, password: str) -> None:
        raise self._unsupported("callbacks")

    def parse_callback(self, body: dict[str, Any], username: str, password: str) -> CallbackEvent:
        """Verify (echoed credentials) and normalize one callback; `CarrierAuthError` if they do not match."""
        raise self._unsupported("callbacks")
