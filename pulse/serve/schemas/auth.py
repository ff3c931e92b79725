"""HTTP bodies and answers of local login."""
from __future__ import annotations

from pydantic import BaseModel, Field


class LoginBody(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class Session(BaseModel):
    access_token: str = Field(description="the JWT, also set as the pulse_session cookie")
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")
    tenant_id: str | None
    role: str


class LoggedOut(BaseModel):
    ok: bool = True
