"""Telemetron ext-v1 simulator: customers, devices, device↔customer assignments and tickets, in memory.

Serves `/api/ext-v1/...` as seed 002 and reference §C describe it: `x-api-key` auth (401), the
success envelope `{"success": true, "message", "data"}`, errors as `{"error": ...}` with 400
(missing or invalid fields), 404 (unknown customer/device), 409 (creating a customer whose
e-mail exists). Where the public docs are silent the simulator picks the harmless answer a sync
needs to be idempotent: assigning an assigned pair is a no-op (200), and so is unassigning a
pair that is not assigned (200, "not assigned"); both records must still exist (else 404).

`TelemetronSim()` accepts the demo key `DEMO_API_KEY`; `pulse sim telemetron` serves it.
Tests read the state directly: `customers`, `devices`, `assignments`, `tickets`, and
`request_counts()` per "METHOD path".
"""
from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulse.simulators.server import Simulator

API_PREFIX = "/api/ext-v1"
DEMO_API_KEY = "tmk_demo_7f3a9c2e51b84d06"  # documented in docs/telemetron.md; never a real key
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def normal_email(value: str) -> str | None:
    """Trimmed and lower-cased, or None when it is not an e-mail address (Telemetron skips those)."""
    email = value.strip().lower()
    return email if len(email) <= 320 and _EMAIL.match(email) else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


# ---- request bodies (extra fields are ignored, as a JSON API tolerates them) -----------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CustomerBody(_Body):
    email: str = Field(min_length=1)
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    telemetronCustomerId: str | None = None


class EmailBody(_Body):
    email: str = Field(min_length=1)


class DeviceBody(_Body):
    identifier: str = Field(min_length=1, max_length=255)
    type: str | None = Field(None, min_length=1, max_length=100)
    properties: dict[str, Any] | None = None


class AssignToOwnersBody(_Body):
    deviceIdentifier: str = Field(min_length=1, max_length=255)
    customerEmails: list[str] = Field(min_length=1)
    autoCreateDevice: bool = False
    deviceType: str | None = None


class AssignToOwnerBody(_Body):
    customerEmail: str = Field(min_length=1)
    deviceIdentifiers: list[str] = Field(min_length=1)
    autoCreateDevices: bool = False
    deviceType: str | None = None


class UnassignOneBody(_Body):
    deviceIdentifier: str = Field(min_length=1)
    customerEmail: str = Field(min_length=1)


class UnassignManyBody(_Body):
    customerEmail: str = Field(min_length=1)
    deviceIdentifiers: list[str] = Field(min_length=1)


class TicketMessage(_Body):
    role: Literal["customer", "agent", "bot"]
    content: str


class TicketBody(_Body):
    title: str = Field(min_length=1, max_length=255)
    description: str | None = None
    priority: Literal["low", "medium", "high", "urgent"] = "medium"
    customerEmail: str | None = None
    customerId: str | None = None
    category: str | None = None
    messages: list[TicketMessage] = Field(default_factory=list)


def _ok(message: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "message": message, "data": data}


async def _parse(request: Request, model: type[_Body]) -> Any:
    try:
        raw = await request.json()
    except ValueError:
        raise ApiError(400, "Request body must be JSON") from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise ApiError(400, f"{where}: {first['msg']}" if where else first["msg"]) from None


class TelemetronSim(Simulator):
    name = "telemetron"

    def __init__(self, api_key: str = DEMO_API_KEY, organization_id: str = "org_demo") -> None:
        self.api_key = api_key
        self.organization_id = organization_id
        self.customers: dict[str, dict[str, Any]] = {}  # telemetronCustomerId -> record
        self.devices: dict[str, dict[str, Any]] = {}  # identifier -> {deviceId, identifier, type, properties}
        self.assignments: set[tuple[str, str]] = set()  # (device identifier, telemetronCustomerId)
        self.tickets: list[dict[str, Any]] = []
        self._lock = threading.RLock()  # handlers run in the server thread; tests read and seed from theirs
        super().__init__()

    # ---- state helpers (also for tests) -----------------------------------------------------------
    def reset(self) -> None:
        """Forget every record, request and queued fault (one server can serve many tests)."""
        with self._lock:
            for state in (self.customers, self.devices, self.assignments, self.tickets, self.requests):
                state.clear()
        self.faults.clear()

    def request_counts(self) -> dict[str, int]:
        """"METHOD /api/ext-v1/..." -> requests received (faulted ones included)."""
        return dict(Counter(f"{m} {p}" for m, p in self.requests))

    def hits(self, route: str, method: str = "POST") -> int:
        """Requests to one route, given relative to the API prefix (e.g. "/device")."""
        return self.request_counts().get(f"{method} {API_PREFIX}{route}", 0)

    def customer_by_email(self, email: str) -> dict[str, Any] | None:
        email = email.strip().lower()
        with self._lock:
            return next((c for c in self.customers.values() if c["email"] == email), None)

    def owners_of(self, identifier: str) -> set[str]:
        """E-mails of the customers a device is assigned to."""
        with self._lock:
            return {self.customers[c]["email"] for d, c in self.assignments if d == identifier}

    def add_customer(self, email: str, name: str | None = None, phone: str | None = None,
                     address: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self._create_customer(email, name, phone, address)

    def _create_customer(self, email: str, name: str | None = None, phone: str | None = None,
                         address: str | None = None) -> dict[str, Any]:
        cid = f"cus_{uuid.uuid4().hex[:16]}"
        record = {"id": cid, "organizationId": self.organization_id, "name": name or email.split("@")[0],
                  "email": email, "phone": phone, "address": address, "orders": [], "metadata": {},
                  "createdAt": _now(), "updatedAt": _now()}
        self.customers[cid] = record
        return record

    def _customer_or_create(self, email: str) -> tuple[dict[str, Any], bool]:
        found = self.customer_by_email(email)
        return (found, False) if found else (self._create_customer(email), True)

    def _create_device(self, identifier: str, device_type: str, properties: dict[str, Any] | None) -> dict[str, Any]:
        device = {"deviceId": f"dev_{uuid.uuid4().hex[:16]}", "identifier": identifier, "type": device_type,
                  "properties": properties or {}, "createdAt": _now(), "updatedAt": _now()}
        self.devices[identifier] = device
        return device

    def _record(self, customer: dict[str, Any]) -> dict[str, Any]:
        return ({k: v for k, v in customer.items() if k not in ("createdAt", "updatedAt")}
                | {"devices": self._devices_of(customer["id"])})

    def _devices_of(self, customer_id: str) -> list[str]:
        return sorted(d for d, c in self.assignments if c == customer_id)

    # ---- HTTP -------------------------------------------------------------------------------------
    def error_response(self, status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    def _auth(self, request: Request) -> None:
        key = request.headers.get("x-api-key")
        if not key:
            raise ApiError(401, "Missing API key (x-api-key header)")
        if key != self.api_key:
            raise ApiError(401, "Invalid API key")

    async def _authorized_body(self, request: Request, model: type[_Body]) -> Any:
        """The request body as `model`, once the API key is checked (a bad key is a 401 before any 400)."""
        self._auth(request)
        return await _parse(request, model)

    def setup(self, app: FastAPI) -> None:
        @app.exception_handler(ApiError)
        async def _api_error(_: Request, exc: ApiError) -> Response:
            return self.error_response(exc.status, exc.message)

        @app.exception_handler(StarletteHTTPException)
        async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
            return self.error_response(exc.status_code, "Not found" if exc.status_code == 404 else str(exc.detail))

        @app.exception_handler(RequestValidationError)
        async def _invalid(_: Request, exc: RequestValidationError) -> Response:
            return self.error_response(400, "Invalid request")

        self._customer_routes(app)
        self._device_routes(app)
        self._assignment_routes(app)
        self._ticket_routes(app)

    def _customer_routes(self, app: FastAPI) -> None:
        @app.post(f"{API_PREFIX}/customer/createOrUpdateCustomer")
        async def create_or_update(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, CustomerBody)
            email = normal_email(body.email)
            if email is None:
                raise ApiError(400, "email: invalid e-mail address")
            with self._lock:
                return self._upsert_customer(body, email)

        @app.post(f"{API_PREFIX}/customer/queryCustomer")
        async def query(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, EmailBody)
            customer = self.customer_by_email(body.email)
            if customer is None:
                raise ApiError(404, "Customer not found")
            return _ok("Customer found", self._record(customer))

        @app.get(f"{API_PREFIX}/customer/getCustomer/{{customer_id}}")
        async def get(customer_id: str, request: Request) -> dict[str, Any]:
            self._auth(request)
            customer = self.customers.get(customer_id)
            if customer is None:
                raise ApiError(404, "Customer not found")
            return _ok("Customer found", self._record(customer))

    def _upsert_customer(self, body: CustomerBody, email: str) -> dict[str, Any]:
        same_email = self.customer_by_email(email)
        if body.telemetronCustomerId is None:
            if same_email is not None:
                raise ApiError(409, "A customer with this email already exists")
            customer = self._create_customer(email, body.name, body.phone, body.address)
            return _ok("Customer created", {"telemetronCustomerId": customer["id"]})
        customer = self.customers.get(body.telemetronCustomerId)
        if customer is None:
            raise ApiError(404, "Customer not found")
        if same_email is not None and same_email["id"] != customer["id"]:
            raise ApiError(409, "Another customer has this email")
        customer["email"] = email
        for field in ("name", "phone", "address"):
            if getattr(body, field) is not None:
                customer[field] = getattr(body, field)
        customer["updatedAt"] = _now()
        return _ok("Customer updated", {"telemetronCustomerId": customer["id"]})

    def _device_routes(self, app: FastAPI) -> None:
        @app.post(f"{API_PREFIX}/device")
        async def upsert_device(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, DeviceBody)
            with self._lock:
                device = self.devices.get(body.identifier)
                if device is None:
                    if body.type is None:
                        raise ApiError(400, "type: required when creating a device")
                    device, message = self._create_device(body.identifier, body.type, body.properties), "Device created"
                else:
                    if body.type is not None:
                        device["type"] = body.type
                    if body.properties is not None:
                        device["properties"] = body.properties
                    device["updatedAt"], message = _now(), "Device updated"
            return _ok(message, {"deviceId": device["deviceId"], "identifier": device["identifier"],
                                 "type": device["type"]})

    def _assignment_routes(self, app: FastAPI) -> None:
        base = f"{API_PREFIX}/deviceAssignment"

        @app.post(f"{base}/assignDeviceToOwners")
        async def assign_to_owners(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, AssignToOwnersBody)
            with self._lock:
                return self._assign_to_owners(body)

        @app.post(f"{base}/assignDevicesToOwner")
        async def assign_to_owner(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, AssignToOwnerBody)
            with self._lock:
                return self._assign_to_owner(body)

        @app.post(f"{base}/unassignDeviceFromOwner")
        async def unassign_one(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, UnassignOneBody)
            with self._lock:
                if body.deviceIdentifier not in self.devices:
                    raise ApiError(404, "Device not found")
                customer = self.customer_by_email(body.customerEmail)
                if customer is None:
                    raise ApiError(404, "Customer not found")
                pair = (body.deviceIdentifier, customer["id"])
                linked = pair in self.assignments
                message = "Device unassigned" if linked else "Device was not assigned to this customer"
                self.assignments.discard(pair)
                return _ok(message, {"customerId": customer["id"], "deviceIdentifier": body.deviceIdentifier,
                                     "devicesRemaining": self._devices_of(customer["id"])})

        @app.post(f"{base}/unassignDevicesFromOwner")
        async def unassign_many(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, UnassignManyBody)
            with self._lock:
                customer = self.customer_by_email(body.customerEmail)
                if customer is None:
                    raise ApiError(404, "Customer not found")
                done, skipped = [], []
                for identifier in body.deviceIdentifiers:
                    pair = (identifier, customer["id"])
                    (done if pair in self.assignments else skipped).append(identifier)
                    self.assignments.discard(pair)
                return _ok(f"{len(done)} device(s) unassigned", {
                    "customerId": customer["id"], "unassignedDevices": done, "skipped": skipped,
                    "devicesRemaining": self._devices_of(customer["id"])})

    def _assign_to_owners(self, body: AssignToOwnersBody) -> dict[str, Any]:
        device, created = self.devices.get(body.deviceIdentifier), False
        if device is None:
            if not body.autoCreateDevice:
                raise ApiError(404, "Device not found")
            if not body.deviceType:
                raise ApiError(400, "deviceType: required when autoCreateDevice is true")
            device, created = self._create_device(body.deviceIdentifier, body.deviceType, None), True
        emails = list(dict.fromkeys(e for e in map(normal_email, body.customerEmails) if e))
        if not emails:
            raise ApiError(400, "customerEmails: no valid e-mail address")
        assigned = []
        for email in emails:
            customer, was_created = self._customer_or_create(email)
            self.assignments.add((device["identifier"], customer["id"]))
            assigned.append({"email": email, "customerId": customer["id"], "wasCreated": was_created})
        return _ok(f"Device assigned to {len(assigned)} customer(s)", {
            "deviceId": device["deviceId"], "deviceWasCreated": created, "assignedCustomers": assigned})

    def _assign_to_owner(self, body: AssignToOwnerBody) -> dict[str, Any]:
        email = normal_email(body.customerEmail)
        if email is None:
            raise ApiError(400, "customerEmail: invalid e-mail address")
        if body.autoCreateDevices and not body.deviceType:
            raise ApiError(400, "deviceType: required when autoCreateDevices is true")
        customer, customer_created = self._customer_or_create(email)
        assigned, already, skipped = [], [], []
        for identifier in dict.fromkeys(body.deviceIdentifiers):
            device, created = self.devices.get(identifier), False
            if device is None:
                if not body.autoCreateDevices:
                    skipped.append(identifier)
                    continue
                device, created = self._create_device(identifier, body.deviceType or "", None), True
            pair = (identifier, customer["id"])
            entry = {"identifier": identifier, "deviceId": device["deviceId"], "wasCreated": created}
            (already if pair in self.assignments else assigned).append(entry)
            self.assignments.add(pair)
        return _ok(f"{len(assigned)} device(s) assigned", {
            "customerId": customer["id"], "customerWasCreated": customer_created, "assignedDevices": assigned,
            "alreadyAssigned": already, "skipped": skipped})

    def _ticket_routes(self, app: FastAPI) -> None:
        @app.post(f"{API_PREFIX}/ticket/createTicket")
        async def create_ticket(request: Request) -> dict[str, Any]:
            body = await self._authorized_body(request, TicketBody)
            with self._lock:
                customer = self._ticket_customer(body)
                ticket = {"id": f"tkt_{uuid.uuid4().hex[:16]}", "title": body.title, "description": body.description,
                          "priority": body.priority, "customerId": customer["id"], "category": body.category,
                          "messages": [m.model_dump() for m in body.messages], "createdAt": _now()}
                self.tickets.append(ticket)
            return _ok("Ticket created", {"ticketId": ticket["id"]})

    def _ticket_customer(self, body: TicketBody) -> dict[str, Any]:
        if body.customerId:
            customer = self.customers.get(body.customerId)
            if customer is None:
                raise ApiError(404, "Customer not found")
            return customer
        if not body.customerEmail:
            raise ApiError(400, "customerEmail or customerId is required")
        email = normal_email(body.customerEmail)
        if email is None:
            raise ApiError(400, "customerEmail: invalid e-mail address")
        return self._customer_or_create(email)[0]
