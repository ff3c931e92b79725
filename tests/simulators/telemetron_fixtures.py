"""The Telemetron simulator on 127.0.0.1 for tests (a pytest plugin, enabled in the top-level conftest).

Client, API and simulator tests all talk to the same simulator; starting a server per test is slow,
so one runs per test module and `telemetron_server` empties it before each test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from pulse.simulators.server import SimServer
from pulse.simulators.telemetron import TelemetronSim


@pytest.fixture(scope="module")
def telemetron_served() -> Iterator[SimServer]:
    with SimServer(TelemetronSim()) as server:
        yield server


@pytest.fixture
def telemetron_server(telemetron_served: SimServer) -> SimServer:
    """The module's simulator server; each test starts from an empty state."""
    telemetron_served.sim.reset()
    return telemetron_served
