"""Notification test kit: real targets on 127.0.0.1 (a tiny asyncio HTTP/1.1 server that records what it
receives and answers from a script; an aiosmtpd SMTP server that keeps the mail), a Notifier fixture
with fast retries, and builders for channels and alerts."""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from pulse.services.notifier import Notifier
from pulse.config.settings import Settings
from pulse.services import notifications as service
from pulse.storage import notifications as store
from pulse.storage import tenants
from tests.broker.fixtures import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class HttpTarget:
    """Answers each request with the next scripted reply, then with `default`; records them all."""

    def __init__(self, *script: int | Reply, default: int | Reply = 200, port: int | None = None) -> None:
        self.script = [r if isinstance(r, Reply) else Reply(r) for r in script]
        self.default = default if isinstance(default, Reply) else Reply(default)
        self.port = port or free_port()
        self.requests: list[Received] = []
        self._server: asyncio.AbstractServer | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> "HttpTarget":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.requests) >= n), timeout)
        return self.requests

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            reply = self.script.pop(0) if self.script else self.default
            async with self._arrived:
                self.requests.append(Received(method, path, headers, body))
                self._arrived.notify_all()
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            writer.write(f"HTTP/1.1 {reply.status} X\r\nContent-Length: {len(reply.body)}\r\n"
                         f"Content-Type: text/plain\r\nConnection: close\r\n{extra}\r\n".encode() + reply.body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class SmtpTarget:
    """aiosmtpd on 127.0.0.1 (its own thread); optional AUTH PLAIN/LOGIN over plain text for tests."""

    def __init__(self, user: str | None = None, password: str | None = None, refuse_rcpt: str | None = None) -> None:
        self.user, self.password, self.refuse_rcpt = user, password, refuse_rcpt
        self.port = free_port()
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self._controller = None

    def start(self) -> "SmtpTarget":
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        target = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if target.refuse_rcpt and address == target.refuse_rcpt:
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                mail = message_from_bytes(envelope.content, policy=policy.default)
                target.messages.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
                return "250 Message accepted"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode(), auth_data.password.decode()) == (self.user, self.password)
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        kwargs: dict[str, Any] = {}
        if self.user:
            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# ---- builders and fixtures ---------------------------------------------------------------------
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # a Monday
FAST = dict(notifier_backoff_base_s=1.0, notifier_backoff_max_s=8.0, notifier_max_attempts=4, notifier_timeout_s=2.0,
            notifier_poll_interval_s=0.05, notifier_rate_per_minute=6000.0, notifier_rate_burst=100)


def sample_alert(alert_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {"alert_id": alert_id, "device_id": "boiler-7", "rule_id": "r1", "alert_type": "THRESHOLD",
            "fingerprint": "RULE:r1:boiler-7", "severity": 4, "summary": "temp=91 GT 80", "status": "OPEN",
            "metric": "temp", "trigger_value": 91.0, "triggered_at": T0, "details": {"threshold": 80}, **fields}


async def make_channel(notifier: Notifier, channel_type: str, config: dict[str, Any], tenant: str = "acme",
                       **fields: Any) -> dict[str, Any]:
    return await service.create_channel(notifier.db, notifier.settings, tenant, {
        "name": f"{channel_type}-{uuid.uuid4().hex[:6]}", "channel_type": channel_type, "config": config, **fields})


async def jobs_of(notifier: Notifier, tenant: str = "acme", **filters: Any) -> list[dict[str, Any]]:
    items, _ = await store.list_jobs(notifier.db, tenant, limit=1000, **filters)
    return sorted(items, key=lambda j: j["job_id"])


async def notifier_for(settings: Settings, db) -> Notifier:
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    return Notifier(settings, db)


@pytest.fixture
async def notifier(broker_db, tmp_path) -> Any:
    """A Notifier on a fresh store (SQLite, and PostgreSQL in CI) with fast retry settings; not started."""
    n = await notifier_for(Settings(data_dir=tmp_path / "pulse", database_url=broker_db.url, **FAST), broker_db)
    try:
        yield n
    finally:
        await n.stop()


@pytest.fixture
async def http_targets() -> Any:
    """`await http_targets(503, 200, default=..., start=True)` -> a running HttpTarget, stopped afterwards."""
    made: list[HttpTarget] = []

    async def make(*script: int | Reply, default: int | Reply = 200, start: bool = True) -> HttpTarget:
        target = HttpTarget(*script, default=default)
        made.append(target)
        return await target.start() if start else target

    yield make
    for t in made:
        await t.stop()
