"""E-mail over SMTP: multipart/alternative with a plain-text and an HTML part.

smtplib runs in a worker thread (one connection per message; alert mail is low volume). SMTP 5xx
and refused authentication are permanent, 4xx and connection failures are retried.
"""
from __future__ import annotations

import asyncio
import html
import re
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from pulse.integrations.channels.base import (SEVERITY_COLORS, BlockedTarget, ChannelConfig, DeliveryContext,
                                              DeliveryResult, Message, check_target, clip)

_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]+\]?$")


def _address(v: str) -> str:
    if not _ADDRESS.match(v):
        raise ValueError(f"invalid e-mail address {v[:80]!r}")
    return v


class EmailConfig(ChannelConfig):
    smtp_host: str = Field(min_length=1, max_length=253)
    smtp_port: int = Field(ge=1, le=65535)
    username: str | None = Field(None, min_length=1, max_length=320)
    password: str | None = Field(None, min_length=1, max_length=1024, description="write-only")
    starttls: bool = False
    ssl: bool = Field(False, description="implicit TLS (SMTPS, usually port 465)")
    from_: str = Field(alias="from")
    recipients: list[str] = Field(min_length=1, max_length=50)

    @field_validator("smtp_host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not _HOST.match(v):
            raise ValueError("invalid host name")
        return v

    @field_validator("from_")
    @classmethod
    def _from(cls, v: str) -> str:
        return _address(v)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(_address(a) for a in v))

    @model_validator(mode="after")
    def _tls_once(self) -> "EmailConfig":
        if self.ssl and self.starttls:
            raise ValueError("choose one of ssl (implicit TLS) and starttls")
        if self.password and not self.username:
            raise ValueError("password needs a username")
        return self


def subject(message: Message) -> str:
    device = f" ({message.device_id})" if message.device_id else ""
    return f"[Pulse] {message.title}{device}"[:250]


def text_body(message: Message) -> str:
    lines = [message.title, "", message.summary, ""]
    lines += [f"{k}: {v}" for k, v in message.facts()]
    lines += ["", f"Delivery {message.delivery_id} — sent by Pulse."]
    return "\n".join(lines) + "\n"


def html_body(message: Message) -> str:
    e = html.escape
    color = SEVERITY_COLORS.get(message.severity, "808080")
    rows = "".join(f"<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">{e(k)}</th><td>{e(v)}</td></tr>"
                   for k, v in message.facts())
    return (f"<!DOCTYPE html><html><body style=\"font-family:sans-serif\">"
            f"<h2 style=\"border-left:6px solid #{color};padding-left:8px\">{e(message.title)}</h2>"
            f"<p>{e(message.summary)}</p><table>{rows}</table>"
            f"<p style=\"color:#888;font-size:small\">Delivery {e(message.delivery_id)} — sent by Pulse.</p>"
            f"</body></html>")


def build_email(message: Message, config: EmailConfig) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = subject(message)
    mail["From"] = config.from_
    mail["To"] = ", ".join(config.recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=config.from_.rsplit("@", 1)[1])
    mail["X-Pulse-Delivery"] = message.delivery_id
    mail["X-Pulse-Event"] = message.event
    mail.set_content(text_body(message))
    mail.add_alternative(html_body(message), subtype="html")
    return mail


def plain_email(config: EmailConfig, subject_line: str, text: str, html_text: str) -> EmailMessage:
    """A non-alert mail (the digest) from the channel's sender to its recipients."""
    mail = EmailMessage()
    mail["Subject"] = subject_line
    mail["From"] = config.from_
    mail["To"] = ", ".join(config.recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=config.from_.rsplit("@", 1)[1])
    mail.set_content(text)
    mail.add_alternative(html_text, subtype="html")
    return mail


def send_mail(config: EmailConfig, mail: EmailMessage, timeout: float) -> dict:
    context = ssl.create_default_context()
    smtp_cls = smtplib.SMTP_SSL if config.ssl else smtplib.SMTP
    kwargs = {"context": context} if config.ssl else {}
    with smtp_cls(config.smtp_host, config.smtp_port, timeout=timeout, **kwargs) as smtp:
        smtp.ehlo()
        if config.starttls:
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, config.password or "")
        return smtp.send_message(mail, from_addr=config.from_, to_addrs=config.recipients)


class EmailChannel:
    type: ClassVar[str] = "email"
    Config: ClassVar = EmailConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    def build(self, message: Message, config: EmailConfig) -> EmailMessage:
        return build_email(message, config)

    async def send(self, message: Message, config: EmailConfig, ctx: DeliveryContext) -> DeliveryResult:
        start = time.monotonic()

        def done(**kw) -> DeliveryResult:
            return DeliveryResult(duration_ms=int((time.monotonic() - start) * 1000), **kw)

        try:
            await check_target(config.smtp_host, config.smtp_port, ctx)
            refused = await asyncio.to_thread(send_mail, config, self.build(message, config), ctx.timeout_s)
        except BlockedTarget as e:
            return done(ok=False, error=str(e))
        except smtplib.SMTPAuthenticationError as e:
            return done(ok=False, status_code=e.smtp_code, error=clip(f"SMTP authentication refused: {e.smtp_code}"))
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            return done(ok=False, retryable=all(400 <= c < 500 for c in codes), status_code=codes[0] if codes else None,
                        error=clip(f"all recipients refused: {sorted(e.recipients)}"))
        except smtplib.SMTPResponseException as e:
            return done(ok=False, retryable=400 <= e.smtp_code < 500, status_code=e.smtp_code,
                        error=clip(f"SMTP {e.smtp_code}: {e.smtp_error.decode(errors='replace') if isinstance(e.smtp_error, bytes) else e.smtp_error}"))
        except (smtplib.SMTPException, OSError, TimeoutError) as e:  # disconnects, refused connections, timeouts
            return done(ok=False, retryable=True, error=clip(f"{type(e).__name__}: {e}"))
        if refused:
            return done(ok=True, status_code=250, error=clip(f"some recipients refused: {sorted(refused)}"))
        return done(ok=True, status_code=250)
