"""Load shedding on a real node (direct ingress: the replica itself sheds): with requests held in
progress, one is answered 503 + Retry-After + JSON detail (past `api_max_in_flight`, at the latest at
`api_max_in_flight_burst`); the health check is not, and the held requests finish normally."""
from __future__ import annotations

import socket
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]

DEVICES = "/api/v1/customer/devices"
BODY = b'{"device_id": }'  # not JSON: finishing a held request is a 422, nothing created


def hold(stack) -> socket.socket:
    """A POST whose body has not fully arrived: it stays in progress until the rest is sent."""
    sock = socket.create_connection(("127.0.0.1", stack.settings.http_port), timeout=30)
    sock.sendall(f"POST {DEVICES} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {stack.token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:5])
    return sock


def test_a_node_sheds_past_the_limit_and_health_checks_pass(stack):
    # one at a time until a GET is refused: a request left over from an earlier test may hold a slot
    # for a moment, so the limit can be reached with fewer held here (never more)
    # past the steady bound, the replica's CPU per request decides; the burst bound at the latest
    steady = stack.settings.api_max_in_flight * stack.settings.serve_replicas
    limit = stack.settings.api_max_in_flight_burst * stack.settings.serve_replicas
    held: list[socket.socket] = []
    r = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(held) < limit:
                held.append(hold(stack))
            time.sleep(0.1)  # the held request reaches the app asynchronously
            r = stack.http.get(DEVICES)
            if r.status_code == 503:
                break
        assert r is not None and r.status_code == 503, r and r.text
        assert len(held) >= steady - 1
        assert int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["detail"]
        assert stack.http.get("/healthz").status_code == 200
    finally:
        for sock in held:
            sock.sendall(BODY[5:])
        answers = [sock.recv(64) for sock in held]
        for sock in held:
            sock.close()
    # a held request is answered 422 once its body is complete; one that met a leftover request's slot
    # may have been shed at once
    assert all(b" 422 " in a or b" 503 " in a for a in answers), answers
    assert sum(b" 422 " in a for a in answers) >= len(held) - 1, answers
    assert stack.http.get(DEVICES).status_code == 200
