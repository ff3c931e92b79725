"""Identity: signed session tokens (HS256) and their verification, also of OIDC RS256 tokens."""
from __future__ import annotations

import time

import jwt

from pulse.config.settings import Settings
from pulse.domain.permissions import ROLES, Principal
from pulse.errors import Unauthorized


def issue_token(settings: Settings, sub: str, tenant_id: str | None, role: str, ttl_s: int | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + (ttl_s or settings.jwt_ttl_seconds)}
    if tenant_id:
        claims["tenant_id"] = tenant_id
    return jwt.encode(claims, settings.resolved_jwt_secret(), algorithm="HS256")


class TokenDecoder:
    """HS256 with the configured secret; RS256 through an OIDC JWKS URL when one is set."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.resolved_jwt_secret()
        self.audience = settings.oidc_audience
        self.jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True) if settings.oidc_jwks_url else None

    def decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self.jwks is not None:
                key = self.jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience,
                                    options={"verify_aud": self.audience is not None})
            else:
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {e}") from None
        role, sub = claims.get("role"), claims.get("sub")
        if role not in ROLES or not sub:
            raise Unauthorized("token lacks a known role or subject")
        return Principal(sub=str(sub), tenant_id=claims.get("tenant_id"), role=role)
