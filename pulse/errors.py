"""Domain errors raised by services and storage; `pulse.serve.errors` maps them to HTTP."""
from __future__ import annotations


class PulseError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(PulseError):
    status_code = 404


class Conflict(PulseError):
    status_code = 409


class Forbidden(PulseError):
    status_code = 403


class Unauthorized(PulseError):
    status_code = 401


class Invalid(PulseError):
    status_code = 422
