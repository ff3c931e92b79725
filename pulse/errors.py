"""Domain errors raised by services and storage; `pulse.serve.errors` maps them to HTTP."""
from __future__ import annotations

from typing import Any


class PulseError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __reduce__(self) -> tuple:
        """Pickled with its attributes, not by calling `__init__` again: a subclass may take more
        arguments (`RateLimited`), and errors travel from the shards to the API."""
        return _restore, (type(self), self.detail, self.__dict__)


def _restore(cls: type[PulseError], detail: str, state: dict[str, Any]) -> PulseError:
    error = cls.__new__(cls)
    Exception.__init__(error, detail)
    error.__dict__.update(state)
    return error


class NotFound(PulseError):
    status_code = 404


class Conflict(PulseError):
    status_code = 409


class PreconditionRequired(PulseError):
    """A write that must name the version it changes (If-Match) came without one."""

    status_code = 428


class Forbidden(PulseError):
    status_code = 403


class Unauthorized(PulseError):
    status_code = 401


class RateLimited(PulseError):
    """Too many attempts: refused without trying; `retry_after_s` says when to try again."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class BadRequest(PulseError):
    """A parameter the documented system refuses with 400 rather than 422 (e.g. a malformed id)."""

    status_code = 400


class Gone(PulseError):
    """The resource existed but is no longer available (an expired export file)."""

    status_code = 410


class Invalid(PulseError):
    status_code = 422

    @classmethod
    def first_of(cls, errors: list[Any], prefix: str = "") -> Invalid:
        """The first of a pydantic `ValidationError.errors()` as one detail: `prefix.field.path: message`."""
        first = errors[0] if errors else {"loc": (), "msg": "invalid value"}
        where = ".".join(str(x) for x in (prefix, *first.get("loc", ())) if x != "")
        return cls(f"{where or 'value'}: {first['msg'].removeprefix('Value error, ')}")


class TooLarge(PulseError):
    """A request body over a configured size limit (a firmware image)."""

    status_code = 413


class UnsupportedMediaType(PulseError):
    """A body in a format the route does not take (a firmware image sent as a form)."""

    status_code = 415


class Unsupported(PulseError):
    """The operation exists, but not for this case (e.g. a carrier without diagnostics)."""

    status_code = 501


class BadGateway(PulseError):
    """An external service Pulse relies on answered wrongly or refused Pulse's credentials."""

    status_code = 502


class ServiceUnavailable(PulseError):
    """An external service Pulse relies on cannot be reached now; trying again later may work."""

    status_code = 503
