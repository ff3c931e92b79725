"""Telemetron: an alert on an owned device opens a support ticket for the device's owner.

The channel holds no secret: it acts through the tenant's Telemetron integration (base URL and
API key, `PUT /api/v1/customer/integrations/telemetron`), which it reads from the store in the
delivery context. The ticket is for the device's first owner — by Telemetron customer id when the
sync has mapped one, else by e-mail (Telemetron then creates the customer). Decisions:
- OPEN and ESCALATED open a ticket; ACKNOWLEDGED and CLOSED have nothing to do (Telemetron has no
  ticket update call) and end as delivered with `extra.skipped`;
- a device without an owner is a permanent failure: Telemetron needs a customer for a ticket;
- no enabled integration, a refused key or a 4xx are permanent; Telemetron down or 5xx retries
  (the notifier's backoff — the client itself makes one attempt);
- a test send only checks that the key is accepted (it opens no ticket).
Priority from severity: critical -> urgent, major -> high, minor -> medium, warning/info -> low.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from pulse.domain.channels import TEST_EVENT
from pulse.integrations.channels.base import (BlockedTarget, ChannelConfig, DeliveryContext, DeliveryResult, Message,
                                              check_target, clip)
from pulse.integrations.http import RetryPolicy, Unavailable
from pulse.integrations.telemetron import TelemetronAuthError, TelemetronClient, TelemetronError, TicketCreate
from pulse.storage import telemetron as store

TICKET_EVENTS = ("OPEN", "ESCALATED")
PRIORITIES = {5: "urgent", 4: "high", 3: "medium", 2: "low", 1: "low"}
_PROBE_ID = "pulse-connection-check"


class TelemetronConfig(ChannelConfig):
    category: str | None = Field(None, min_length=1, max_length=100,
                                 description="a ticket category of the organisation; unset: Telemetron picks")


def priority(severity: int) -> str:
    """Pulse 1..5 (higher = worse) -> Telemetron's low | medium | high | urgent."""
    return PRIORITIES.get(max(1, min(5, int(severity))), "medium")


def ticket(message: Message, config: TelemetronConfig, customer: dict[str, Any] | None = None) -> TicketCreate:
    """The ticket for an alert event; `customer` = {email, telemetron_customer_id?} of the owner."""
    lines = [f"{k}: {v}" for k, v in message.facts()]
    details = message.alert.get("details")
    if details:
        lines.append(f"Details: {details}")
    body: dict[str, Any] = {"title": message.title[:255], "description": "\n".join(lines),
                            "priority": priority(message.severity), "category": config.category}
    if customer:
        if customer.get("telemetron_customer_id"):
            body["customerId"] = customer["telemetron_customer_id"]
        else:
            body["customerEmail"] = customer["email"]
    return TicketCreate.model_validate(body)


def _failed(start: float, error: str, retryable: bool = False, status: int | None = None) -> DeliveryResult:
    return DeliveryResult(ok=False, retryable=retryable, status_code=status, error=clip(error),
                          duration_ms=int((time.monotonic() - start) * 1000))


class TelemetronChannel:
    type: ClassVar[str] = "telemetron"
    Config: ClassVar = TelemetronConfig
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def build(self, message: Message, config: TelemetronConfig) -> dict[str, Any]:
        """The ticket body before the owner is resolved (at send time, from the store)."""
        return ticket(message, config).model_dump(exclude_none=True)

    async def send(self, message: Message, config: TelemetronConfig, ctx: DeliveryContext) -> DeliveryResult:
        start = time.monotonic()
        if ctx.db is None or ctx.secrets is None:
            return _failed(start, "telemetron channel: no store in the delivery context")
        if message.event not in TICKET_EVENTS and message.event != TEST_EVENT:
            return DeliveryResult(ok=True, extra={"skipped": f"{message.event}: tickets are opened on "
                                                             f"{' and '.join(TICKET_EVENTS)} only"})
        integration = await store.integration_for_delivery(ctx.db, ctx.secrets, message.tenant_id)
        if integration is None or not integration["api_key"]:
            return _failed(start, "no enabled Telemetron integration with a readable API key "
                                  "(PUT /api/v1/customer/integrations/telemetron)")
        customer = None
        if not message.test:
            customer = await store.ticket_customer(ctx.db, message.tenant_id, message.device_id)
            if customer is None:
                return _failed(start, f"device {message.device_id} has no owner: a Telemetron ticket needs a customer "
                                      "(PUT /api/v1/customer/devices/{device_id}/owners)")
        try:
            parts = urlsplit(integration["base_url"])
            await check_target(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), ctx)
            client = TelemetronClient(integration["base_url"], integration["api_key"], timeout_s=ctx.timeout_s,
                                      policy=RetryPolicy(attempts=1), http=ctx.http)
            if message.test:
                await client.get_customer(_PROBE_ID)  # 404 is fine: the key was accepted
                return DeliveryResult(ok=True, duration_ms=int((time.monotonic() - start) * 1000),
                                      extra={"check": "API key accepted"})
            ticket_id = await client.create_ticket(ticket(message, config, customer))
        except BlockedTarget as e:
            return _failed(start, str(e))
        except TelemetronAuthError as e:
            return _failed(start, f"Telemetron refused the API key: {e.message}", status=e.status)
        except TelemetronError as e:
            return _failed(start, str(e), status=e.status)
        except Unavailable as e:
            return _failed(start, str(e), retryable=True, status=e.status)
        except OSError as e:  # the SSRF guard could not resolve the host
            return _failed(start, f"{type(e).__name__}: {e}", retryable=True)
        return DeliveryResult(ok=True, status_code=200, duration_ms=int((time.monotonic() - start) * 1000),
                              extra={"ticket_id": ticket_id, "priority": priority(message.severity)})
