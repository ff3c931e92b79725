"""HTTP to external APIs (carriers, Telemetron): bounded retries of what may work later.

Retried, with exponential backoff that honours a `Retry-After` header (capped):
- whatever the request, what the server certainly did not act on: a connection that could not be
  made, and 429;
- only when repeating the request is harmless (an idempotent method, a call its client declares
  idempotent such as a query sent by POST, or one carrying an `Idempotency-Key` header), what may
  have been acted on: timeouts and broken connections after sending, and 5xx. A carrier action
  (activate, SMS) that timed out is not sent twice: the caller gets `Unavailable` at once.
Never retried: any other status — above all 401/403, because repeating a refused login is how
accounts get locked. The caller decides what a final status means.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Self

import httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
NOT_ACTED_ON_STATUS = frozenset({429})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# raised before a byte of the request left: the server cannot have acted on it
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class HttpClientOwner:
    """The lifecycle the API clients share: an httpx client passed in stays the caller's (one pool
    shared by many clients, closed by its owner); one a client made for itself is closed by
    `aclose()` or at the end of `async with`."""

    _made_http: httpx.AsyncClient | None = None

    def _adopt_http(self, http: httpx.AsyncClient | None, **own: Any) -> httpx.AsyncClient:
        """`http`, or else a new client made with `own` (and closed here)."""
        if http is not None:
            return http
        self._made_http = httpx.AsyncClient(**own)
        return self._made_http

    async def aclose(self) -> None:
        if self._made_http is not None:
            await self._made_http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class Unavailable(Exception):
    """The remote service did not answer usefully after every attempt (down, timing out, throttling)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.1  # ± fraction, so many clients do not retry in step

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        backoff *= 1 + random.uniform(-self.jitter, self.jitter)
        return min(max(backoff, retry_after or 0.0), self.max_delay_s)


def retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return None


def _repeatable(method: str, idempotent: bool | None, headers: Any) -> bool:
    if idempotent is not None:
        return idempotent
    return method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in httpx.Headers(headers or {})


def _not_repeated(method: str, url: str, last: str, status: int | None) -> Unavailable:
    return Unavailable(f"{method} {url} failed and was not repeated: it may have been acted on ({last})", status)


async def send(client: httpx.AsyncClient, method: str, url: str, policy: RetryPolicy = RetryPolicy(),
               idempotent: bool | None = None, **kwargs: Any) -> httpx.Response:
    """The first response that is not worth retrying, or `Unavailable` once attempts run out (or
    when a request that must not be repeated timed out or met a 5xx). `idempotent`: None = judged by
    the method and an `Idempotency-Key` header (module docstring)."""
    repeatable = _repeatable(method, idempotent, kwargs.get("headers"))
    last = ""
    status: int | None = None
    for attempt in range(1, policy.attempts + 1):
        wait: float | None = None
        try:
            response = await client.request(method, url, **kwargs)
        except (httpx.TimeoutException, httpx.TransportError) as e:
            last, status = f"{type(e).__name__}: {e}".rstrip(": "), None
            if not repeatable and not isinstance(e, _NOT_SENT):
                raise _not_repeated(method, url, last, None)
        else:
            if response.status_code not in RETRYABLE_STATUS:
                return response
            last, status = f"HTTP {response.status_code}", response.status_code
            if not repeatable and status not in NOT_ACTED_ON_STATUS:
                raise _not_repeated(method, url, last, status)
            wait = retry_after_s(response)
        if attempt < policy.attempts:
            await asyncio.sleep(policy.delay(attempt, wait))
    raise Unavailable(f"{method} {url} failed after {policy.attempts} attempts ({last})", status)
