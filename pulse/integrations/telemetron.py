"""Client of the Telemetron External API (ext-v1, seed 002, reference §C).

One method per route; request bodies are pydantic models (`model_dump(exclude_none=True)`, so an
unset optional field is never sent as null). Answers are read leniently: the documented fields
may sit at the top level or inside the `data` envelope (the docs show both), so `_fields` merges
the two. Failures:
- 401 -> `TelemetronAuthError` (never retried: fix the API key);
- 5xx, 429, timeouts, refused connections -> retried by `pulse.integrations.http.send` (timeouts and
  5xx only for the upserts and queries, never a ticket), then `Unavailable` (any 5xx, including ones
  `send` does not retry, ends as `Unavailable`);
- any other status -> `TelemetronError(status, message)` with Telemetron's `error` text.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from pulse.domain.telemetron import device_payload
from pulse.integrations.http import HttpClientOwner, RetryPolicy, Unavailable, send

Priority = Literal["low", "medium", "high", "urgent"]

__all__ = ["CustomerUpsert", "DeviceAssignment", "DeviceUnassignment", "DeviceUpsert",
           "DevicesAssignment", "DevicesUnassignment", "TelemetronAuthError", "TelemetronClient", "TelemetronError",
           "TicketCreate", "TicketMessage", "Unavailable", "device_record"]


class TelemetronError(Exception):
    """Telemetron refused the request (`status` is its HTTP status; None for an unreadable answer)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"Telemetron {status}: {message}" if status else f"Telemetron: {message}")
        self.status = status
        self.message = message


class TelemetronAuthError(TelemetronError):
    """The API key was refused (401)."""


# ---- request bodies ------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerUpsert(_Body):
    """No `telemetronCustomerId`: create (409 if the e-mail exists); with it: update that customer."""
    email: str = Field(min_length=3, max_length=320)
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    address: str | None = Field(None, max_length=500)
    telemetronCustomerId: str | None = None


class DeviceUpsert(_Body):
    identifier: str = Field(min_length=1, max_length=255)
    type: str | None = Field(None, min_length=1, max_length=100)  # required by Telemetron when creating
    properties: dict[str, Any] = Field(default_factory=dict)


class DeviceAssignment(_Body):
    deviceIdentifier: str = Field(min_length=1, max_length=255)
    customerEmails: list[str] = Field(min_length=1)
    autoCreateDevice: bool = False
    deviceType: str | None = None


class DevicesAssignment(_Body):
    customerEmail: str = Field(min_length=3, max_length=320)
    deviceIdentifiers: list[str] = Field(min_length=1)
    autoCreateDevices: bool = False
    deviceType: str | None = None


class DeviceUnassignment(_Body):
    deviceIdentifier: str = Field(min_length=1, max_length=255)
    customerEmail: str = Field(min_length=3, max_length=320)


class DevicesUnassignment(_Body):
    customerEmail: str = Field(min_length=3, max_length=320)
    deviceIdentifiers: list[str] = Field(min_length=1)


class TicketMessage(_Body):
    role: Literal["customer", "agent", "bot"]
    content: str


class TicketCreate(_Body):
    title: str = Field(min_length=1, max_length=255)
    description: str | None = None
    priority: Priority = "medium"
    customerEmail: str | None = None
    customerId: str | None = None
    category: str | None = None
    messages: list[TicketMessage] | None = None


def device_record(device: Mapping[str, Any]) -> DeviceUpsert:
    """A Pulse device row -> the Telemetron device, validated (the mapping: pulse.domain.telemetron)."""
    return DeviceUpsert.model_validate(device_payload(device))


def _fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    data = body.get("data")
    return {**body, **data} if isinstance(data, dict) else dict(body)


class TelemetronClient(HttpClientOwner):
    """`http` may be a shared client (the caller closes it); otherwise one is made and closed here."""

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 15.0,
                 policy: RetryPolicy = RetryPolicy(attempts=3), http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.policy = policy
        self._http = self._adopt_http(http, timeout=timeout_s, follow_redirects=False)

    async def _call(self, method: str, path: str, body: BaseModel | None = None,
                    upsert: bool = False) -> dict[str, Any]:
        """`upsert`: a POST that sets state (create-or-update, query, assign), so `send` may repeat it after
        a timeout or 5xx; any other POST (a ticket) is sent once."""
        kwargs: dict[str, Any] = {"headers": {"x-api-key": self.api_key, "Accept": "application/json"},
                                  "timeout": self.timeout_s}
        if body is not None:
            kwargs["json"] = body.model_dump(exclude_none=True)
        response = await send(self._http, method, f"{self.base_url}{path}", self.policy, upsert or None, **kwargs)
        status = response.status_code
        if status >= 500:  # one `send` does not retry (501, 505, ...): still the service's fault
            raise Unavailable(f"{method} {path}: HTTP {status}", status)
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if 200 <= status < 300:
            if not isinstance(parsed, dict):
                raise TelemetronError(status, f"{method} {path}: answer is not a JSON object")
            return _fields(parsed)
        message = str(parsed.get("error") or parsed.get("message") or "") if isinstance(parsed, dict) else ""
        message = message or response.text.strip()[:200] or f"HTTP {status}"
        if status == 401:
            raise TelemetronAuthError(status, message)
        raise TelemetronError(status, message)

    # ---- customers -----------------------------------------------------------------------------
    async def create_or_update_customer(self, customer: CustomerUpsert) -> str:
        """The customer's `telemetronCustomerId` (409 -> TelemetronError: the e-mail exists)."""
        fields = await self._call("POST", "/customer/createOrUpdateCustomer", customer, upsert=True)
        cid = fields.get("telemetronCustomerId") or fields.get("id") or customer.telemetronCustomerId
        if not cid:
            raise TelemetronError(None, "createOrUpdateCustomer answered without telemetronCustomerId")
        return str(cid)

    async def query_customer(self, email: str) -> dict[str, Any] | None:
        """The customer record with this e-mail, or None (404)."""
        try:
            record = await self._call("POST", "/customer/queryCustomer", _EmailQuery(email=email), upsert=True)
        except TelemetronError as e:
            if e.status == 404:
                return None
            raise
        return _customer(record)

    async def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        try:
            record = await self._call("GET", f"/customer/getCustomer/{quote(customer_id, safe='')}")
        except TelemetronError as e:
            if e.status == 404:
                return None
            raise
        return _customer(record)

    # ---- devices and assignments ---------------------------------------------------------------
    async def upsert_device(self, device: DeviceUpsert) -> dict[str, Any]:
        return await self._call("POST", "/device", device, upsert=True)

    async def assign_device_to_owners(self, body: DeviceAssignment) -> dict[str, Any]:
        return await self._call("POST", "/deviceAssignment/assignDeviceToOwners", body, upsert=True)

    async def assign_devices_to_owner(self, body: DevicesAssignment) -> dict[str, Any]:
        return await self._call("POST", "/deviceAssignment/assignDevicesToOwner", body, upsert=True)

    async def unassign_device_from_owner(self, body: DeviceUnassignment) -> dict[str, Any]:
        return await self._call("POST", "/deviceAssignment/unassignDeviceFromOwner", body, upsert=True)

    async def unassign_devices_from_owner(self, body: DevicesUnassignment) -> dict[str, Any]:
        return await self._call("POST", "/deviceAssignment/unassignDevicesFromOwner", body, upsert=True)

    # ---- tickets -------------------------------------------------------------------------------
    async def create_ticket(self, ticket: TicketCreate) -> str:
        if not (ticket.customerEmail or ticket.customerId):
            raise ValueError("a ticket needs customerEmail or customerId")
        fields = await self._call("POST", "/ticket/createTicket", ticket)
        if not fields.get("ticketId"):
            raise TelemetronError(None, "createTicket answered without ticketId")
        return str(fields["ticketId"])


class _EmailQuery(_Body):
    email: str = Field(min_length=3, max_length=320)


def _customer(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in ("success", "message", "data")}
