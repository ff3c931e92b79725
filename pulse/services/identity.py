"""Identity: signed session tokens (HS256) and their verification, also of OIDC RS256 tokens."""
from __future__ import annotations

import time
from collections import OrderedDict

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


CACHED_TOKENS = 4096  # verified tokens remembered per process (LRU)


class TokenDecoder:
    """HS256 with the configured secret; RS256 through an OIDC JWKS URL when one is set.

    An identity provider signs tokens for many applications: an RS256 token counts only when it
    names the configured issuer and this API as its audience (both required with a JWKS URL).

    A client sends the same token with every request, so a verified token is remembered (its
    principal, until its `exp`): verifying the signature again costs ~70 us a request and can only
    give the same answer. A token is never remembered past its expiry, so it stops working on time."""

    def __init__(self, settings: Settings) -> None:
        self.verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self.secret = settings.resolved_jwt_secret()
        self.issuer, self.audience = settings.oidc_issuer, settings.oidc_audience
        self.jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True) if settings.oidc_jwks_url else None
        if self.jwks is not None and not (self.issuer and self.audience):
            raise ValueError("PULSE_OIDC_ISSUER and PULSE_OIDC_AUDIENCE are required with PULSE_OIDC_JWKS_URL")

    def decode(self, token: str) -> Principal:
        hit = self.verified.get(token)
        if hit is not None and hit[1] > time.time():
            self.verified.move_to_end(token)
            return hit[0]
        principal, exp = self._verify(token)
        if exp is not None:
            self.verified[token] = (principal, exp)
            if len(self.verified) > CACHED_TOKENS:
                self.verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float | None]:
        """The principal of a token whose signature and claims check, and its expiry (if it has one)."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self.jwks is not None:
                key = self.jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer,
                                    options={"require": ["exp", "iss", "aud", "sub"]})
            else:
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {e}") from None
        role, sub = claims.get("role"), claims.get("sub")
        if role not in ROLES or not sub:
            raise Unauthorized("token lacks a known role or subject")
        exp = claims.get("exp")
        return (Principal(sub=str(sub), tenant_id=claims.get("tenant_id"), role=role),
                float(exp) if isinstance(exp, (int, float)) else None)
