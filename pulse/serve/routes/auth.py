"""Local login: sets the pulse_session cookie and returns the same JWT (HTTP only)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from pulse.serve.auth import COOKIE
from pulse.serve.deps import services
from pulse.serve.schemas.auth import LoggedOut, LoginBody, Session
from pulse.services import auth as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=Session)
async def login(body: LoginBody, request: Request, response: Response,
                svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    session = await service.login(svc, body.email, body.password, request.client.host if request.client else "")
    response.set_cookie(COOKIE, session.token, max_age=session.ttl_s, httponly=True, samesite="lax")
    return {"access_token": session.token, "token_type": "bearer", "expires_in": session.ttl_s,
            "tenant_id": session.tenant_id, "role": session.role}


@router.post("/logout", response_model=LoggedOut)
async def logout(response: Response) -> dict[str, Any]:
    """Signs a browser out: its session cookie is HttpOnly, so only the server can clear it. The JWT
    itself stays valid until it expires (tokens are stateless); a Bearer client just forgets it."""
    response.delete_cookie(COOKIE, httponly=True, samesite="lax")
    return {"ok": True}
