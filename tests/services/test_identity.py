"""Session and OIDC tokens: an RS256 token must name the configured issuer and audience."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pulse.config.settings import Settings
from pulse.errors import Unauthorized
from pulse.services.identity import TokenDecoder, issue_token

ISSUER, AUDIENCE = "https://idp.example/realms/pulse", "pulse-api"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """A real JWKS endpoint on 127.0.0.1 serving KEY's public half."""
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "k1", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks"
    server.shutdown()


def oidc_token(**claims) -> str:
    now = int(time.time())
    base = {"sub": "ann@acme", "tenant_id": "acme", "role": "customer_admin", "iat": now, "exp": now + 60,
            "iss": ISSUER, "aud": AUDIENCE}
    body = {k: v for k, v in {**base, **claims}.items() if v is not None}
    return jwt.encode(body, KEY, algorithm="RS256", headers={"kid": "k1"})


def test_an_oidc_token_must_name_the_configured_issuer_and_audience(jwks_url, tmp_path):
    decoder = TokenDecoder(Settings(data_dir=tmp_path, oidc_jwks_url=jwks_url, oidc_issuer=ISSUER,
                                    oidc_audience=AUDIENCE))
    assert decoder.decode(oidc_token()).tenant_id == "acme"
    for claims in ({"iss": "https://evil.example"}, {"iss": None}, {"aud": "other-app"}, {"aud": None}):
        with pytest.raises(Unauthorized):
            decoder.decode(oidc_token(**claims))


def test_oidc_without_an_issuer_or_audience_is_a_configuration_error(jwks_url, tmp_path):
    for missing in ({"oidc_issuer": ISSUER}, {"oidc_audience": AUDIENCE}):
        with pytest.raises(ValueError, match="PULSE_OIDC_ISSUER and PULSE_OIDC_AUDIENCE"):
            TokenDecoder(Settings(data_dir=tmp_path, oidc_jwks_url=jwks_url, **missing))


def test_session_tokens_still_verify_alongside_oidc(jwks_url, tmp_path):
    settings = Settings(data_dir=tmp_path, oidc_jwks_url=jwks_url, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    assert TokenDecoder(settings).decode(issue_token(settings, "bob@acme", "acme", "customer_viewer")).sub == "bob@acme"


def test_a_remembered_token_still_stops_working_at_its_expiry(tmp_path):
    settings = Settings(data_dir=tmp_path)
    decoder = TokenDecoder(settings)
    token = issue_token(settings, "ann@acme.test", "acme", "customer_admin", ttl_s=1)
    first = decoder.decode(token)
    assert decoder.decode(token) == first  # answered from memory: same principal
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.05)
    with pytest.raises(Unauthorized):
        decoder.decode(token)


def test_a_forged_token_is_refused_even_after_the_real_one_was_accepted(tmp_path):
    settings = Settings(data_dir=tmp_path)
    decoder = TokenDecoder(settings)
    token = issue_token(settings, "ann@acme.test", "acme", "customer_admin")
    decoder.decode(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "operator_admin"}, "not-the-secret", algorithm="HS256")
    with pytest.raises(Unauthorized):
        decoder.decode(forged)
