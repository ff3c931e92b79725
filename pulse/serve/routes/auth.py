"""Local login: sets the pulse_session cookie and returns the same JWT."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from pulse.errors import Unauthorized
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import COOKIE
from pulse.services.identity import issue_token
from pulse.serve.schemas.auth import LoginBody
from pulse.storage import tenants

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login")
async def login(body: LoginBody, response: Response, svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    user = await tenants.authenticate(svc.db, body.email, body.password)
    if user is None:
        raise Unauthorized("wrong email or password")
    ttl = svc.settings.jwt_ttl_seconds
    token = issue_token(svc.settings, user["email"], user["tenant_id"], user["role"], ttl)
    response.set_cookie(COOKIE, token, max_age=ttl, httponly=True, samesite="lax")
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl,
            "tenant_id": user["tenant_id"], "role": user["role"]}
