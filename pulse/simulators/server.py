"""Running an external-API simulator as a real HTTP server on 127.0.0.1, with injectable faults.

Each simulator (ThingSpace, 1NCE, Telemetron) is a `Simulator` subclass that adds the real
service's routes to a FastAPI app and keeps its state in memory. `SimServer` runs it under
uvicorn in its own thread and event loop, so sync tests, async tests and Ray actors in other
processes all reach it the same way: by URL. Faults are queued through `sim.faults` in-process,
or through `POST /_sim/faults` from another process (the README walkthrough uses that).
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field


class FaultSpec(BaseModel):
    """One injected failure, used `times` times for requests whose path starts with `path`."""
    status: int = Field(503, ge=400, le=599)
    times: int = Field(1, ge=1, le=10_000)
    path: str = ""
    delay_s: float = Field(0.0, ge=0, le=120)  # sleep before answering: a client timeout when large
    retry_after_s: int | None = Field(None, ge=0, le=3600)


@dataclass
class _Fault:
    spec: FaultSpec
    left: int


class Faults:
    """A queue of failures the next matching requests get instead of the real answer."""

    def __init__(self) -> None:
        self._queue: list[_Fault] = []
        self._lock = threading.Lock()

    def add(self, status: int = 503, times: int = 1, path: str = "", delay_s: float = 0.0,
            retry_after_s: int | None = None) -> None:
        spec = FaultSpec(status=status, times=times, path=path, delay_s=delay_s, retry_after_s=retry_after_s)
        with self._lock:
            self._queue.append(_Fault(spec, spec.times))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, path: str) -> FaultSpec | None:
        with self._lock:
            for f in self._queue:
                if path.startswith(f.spec.path):
                    f.left -= 1
                    if f.left <= 0:
                        self._queue.remove(f)
                    return f.spec
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.left for f in self._queue)


class Simulator:
    """Base of the API simulators: a FastAPI app, a fault queue, a request log and control routes."""

    name: ClassVar[str] = "simulator"

    def __init__(self) -> None:
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, faults included
        self.app = FastAPI(title=f"{self.name} simulator", docs_url=None, redoc_url=None)
        self.app.middleware("http")(self._middleware)
        self._control_routes()
        self.setup(self.app)

    def setup(self, app: FastAPI) -> None:
        """Add the real service's routes."""
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> Response:
        """An error in the simulated API's own body shape (overridden per API)."""
        return JSONResponse({"error": message}, status_code=status)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    async def _middleware(self, request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith("/_sim/"):
            return await call_next(request)
        self.requests.append((request.method, path))
        fault = self.faults.take(path)
        if fault is None:
            return await call_next(request)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        response = self.error_response(fault.status, f"simulated failure ({fault.status})")
        if fault.retry_after_s is not None:
            response.headers["Retry-After"] = str(fault.retry_after_s)
        return response

    def _control_routes(self) -> None:
        @self.app.post("/_sim/faults", status_code=204)
        async def add_fault(spec: FaultSpec) -> None:
            self.faults.add(**spec.model_dump())

        @self.app.delete("/_sim/faults", status_code=204)
        async def clear_faults() -> None:
            self.faults.clear()

        @self.app.get("/_sim/requests")
        async def request_log() -> dict[str, Any]:
            return {"total": len(self.requests), "pending_faults": self.faults.pending(),
                    "requests": [f"{m} {p}" for m, p in self.requests[-200:]]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimServer:
    """A simulator served by uvicorn on 127.0.0.1 in a background thread.

    Stopping and starting again keeps the port and the simulator's state: that is how tests
    stage an outage of the remote service."""

    def __init__(self, sim: Simulator, port: int = 0) -> None:
        self.sim = sim
        self.port = port or _free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "SimServer":
        if self._thread is not None:
            return self
        config = uvicorn.Config(self.sim.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"sim-{self.sim.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.sim.name} simulator did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
