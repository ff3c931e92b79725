"""The API through Ray Serve's direct ingress: the one replica listens on the API port itself, and a
replica that dies is replaced on that same port (clients keep their URL; docs/operations.md)."""
from __future__ import annotations

import os
import signal

import httpx
import psutil
import pytest

from tests.e2e.test_node import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def replica_pid(stack) -> int | None:
    """The pid of the process that owns the API's listening socket: the Serve replica, not a proxy."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == stack.settings.http_port:
            return conn.pid
    return None


def answers(stack) -> bool:
    try:  # a fresh connection each time: the keep-alive ones died with the replica
        return httpx.get(f"http://127.0.0.1:{stack.settings.http_port}/api/v1/customer/devices", timeout=5,
                         headers={"Authorization": f"Bearer {stack.token}"}).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_api_replica_is_replaced_on_the_same_port(stack):
    stack.create_device("ingress-1")
    pid = replica_pid(stack)
    assert pid is not None
    assert "ServeReplica" in " ".join(psutil.Process(pid).cmdline())
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: answers(stack), timeout=120, interval=0.5)
    new_pid = replica_pid(stack)
    assert new_pid not in (None, pid)
    assert "ServeReplica" in " ".join(psutil.Process(new_pid).cmdline())
    # the shared client's pooled connections died with the old replica; it reconnects by itself
    r = stack.http.get("/api/v1/customer/devices/ingress-1")
    assert r.status_code == 200 and r.json()["device_id"] == "ingress-1"
