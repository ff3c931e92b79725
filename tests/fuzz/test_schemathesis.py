"""Schemathesis against the whole OpenAPI document: no request, however odd, may get a server error.

The app runs under a real uvicorn on 127.0.0.1 inside the test's event loop, where the services,
actors and store of the `api` fixture live (an ASGI test client would run the app on a loop of its
own, in another thread); requests also go through a real HTTP server's parsing that way. Schemathesis' engine — what `st run` drives — runs in a worker thread with every
phase (examples, coverage, fuzzing, stateful), once with a customer-admin token and once with an
operator token; a fixed seed, deterministic generation and a small example budget per operation
keep it reproducible and within a few minutes.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import schemathesis
import uvicorn
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NOT_SET
from schemathesis.engine import Status, events, from_schema

from pulse.serve.app import create_app
from tests.conftest import DB_KINDS
from tests.integrations.carriers.helpers import fast_carrier_retries

MAX_EXAMPLES = 5
SEED = 9
PHASES = ["examples", "coverage", "fuzzing", "stateful"]
SSE_PATH = "/api/v1/customer/telemetry/stream/sse"


@pytest.fixture
async def base_url(api) -> AsyncIterator[str]:
    app = create_app()
    app.state.services = fast_carrier_retries(api).services
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _config(base_url: str, token: str) -> SchemathesisConfig:
    """The run as a schemathesis.toml would say it (the documented configuration keys)."""
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "base-url": base_url,
        "headers": {"Authorization": f"Bearer {token}"},
        "request-timeout": 30,
        "phases": {name: {"enabled": True} for name in PHASES},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
        # Routes that call a carrier answer 502/503 when it refuses or cannot be reached (docs/carriers.md);
        # the fuzzer's integrations point at carriers this sandbox cannot reach. A 500 still fails there.
        "operations": [{"include-path-regex": "carrier",
                        "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", 502, 503]}}}],
    })


def _failures(openapi: dict, base_url: str, token: str) -> list[str]:
    """One line per failed check or engine error: the phase, the request, the status and its detail."""
    schema = schemathesis.openapi.from_dict(openapi, config=_config(base_url, token))
    found: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status in (Status.FAILURE, Status.ERROR):
            found += [_describe(event, case_id) for case_id, checks in event.recorder.checks.items()
                      if any(check.status == Status.FAILURE for check in checks)]
        elif isinstance(event, events.NonFatalError):
            found.append(f"engine error in {event.label}: {event.info}")
        elif isinstance(event, events.FatalError):
            found.append(f"engine stopped: {event.exception!r}")
    return found


def _describe(event: events.ScenarioFinished, case_id: str) -> str:
    case = event.recorder.cases[case_id].value
    interaction = event.recorder.interactions.get(case_id)
    response = interaction.response if interaction else None
    outcome = f"{response.status_code} {response.content[:200]!r}" if response else "no response"
    body = "" if case.body is NOT_SET else f" body={case.body!r:.300}"
    return f"{event.phase.value}: {case.method} {case.formatted_path} query={case.query}{body} -> {outcome}"


@pytest.mark.slow  # 30-60 s per token
# One store: PostgreSQL when configured (as in CI), the stricter of the two (int4 ids, no NUL in text).
@pytest.mark.parametrize("db_url", DB_KINDS[-1:], indirect=True)
@pytest.mark.parametrize("tenant,role", [("acme", "customer_admin"), (None, "operator_admin")])
async def test_no_request_gets_a_server_error(api, base_url: str, tenant: str | None, role: str) -> None:
    openapi = create_app().openapi()
    # An SSE stream never ends, so a request/response fuzzer would wait on it forever; its parameters
    # and refusals are tested in tests/serve/test_live_api.py.
    openapi["paths"].pop(SSE_PATH)
    failures = await asyncio.to_thread(_failures, openapi, base_url, api.token(tenant, role))
    assert not failures, "\n".join(failures)
