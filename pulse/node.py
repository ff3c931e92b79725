"""One Pulse node: Ray, the embedded broker, actors, ingest bridges and the Serve API.

`pulse up` runs `Node.start()`, prints the admin token and waits for Ctrl-C.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import httpx

from pulse.actors.ingest import BridgeRef, deploy_bridges, retire_sessions
from pulse.actors.runtime import NAMESPACE, RayRuntime
from pulse.actors.scheduler import Scheduler
from pulse.broker.embedded import EmbeddedBroker
from pulse.config.settings import Settings
from pulse.services import bootstrap

log = logging.getLogger(__name__)


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = RayRuntime(settings)
        self.broker: Any = None
        self.bridges: list[BridgeRef] = []
        self.scheduler: Any = None
        self.started_ray = False

    def _options(self, name: str) -> dict[str, Any]:
        return {"name": name, "namespace": NAMESPACE, "lifetime": "detached", "get_if_exists": True,
                "num_cpus": 0, "runtime_env": {"env_vars": self.settings.env()}}

    def start_ray(self) -> None:
        import ray

        s = self.settings
        if ray.is_initialized():
            return
        # Serve's controller and HTTP proxy inherit this job's environment: the proxy sheds load
        # before the replica hop (`pulse.deployment.proxy_middlewares`, docs/operations.md)
        env = {"env_vars": serve_env(s)}
        if s.ray_address:
            ray.init(address=s.ray_address, namespace=NAMESPACE, log_to_driver=False, runtime_env=env)
        else:
            ray.init(namespace=NAMESPACE, include_dashboard=s.dashboard_enabled, dashboard_host=s.dashboard_host,
                     dashboard_port=s.dashboard_port, log_to_driver=False, runtime_env=env,
                     _system_config=RAY_SYSTEM_CONFIG)
        self.started_ray = True

    def start(self) -> dict[str, Any]:
        """Everything up and /healthz green; returns what the operator needs to know."""
        import ray
        from ray import serve

        from pulse.deployment import application  # lazy like ray itself: importing Serve is slow

        s = self.settings
        s.ensure_dirs()
        info = asyncio.run(bootstrap.first_start(s))
        self.start_ray()
        if s.uses_embedded_broker:
            self.broker = ray.remote(EmbeddedBroker).options(**self._options("mqtt-broker")).remote(s)
            ray.get(self.broker.start.remote(), timeout=60)
        self.runtime.deploy()
        asyncio.run(self.runtime.start())
        self.scheduler = ray.remote(Scheduler).options(max_restarts=-1, **self._options("scheduler")).remote(s)
        if not s.uses_embedded_broker:  # amqtt keeps no offline sessions to retire
            asyncio.run(retire_sessions(s, self.runtime))
        self.bridges = deploy_bridges(s, self.runtime.device_refs, self._options)
        self.supervise()
        # with direct ingress the replica takes http_port and the idle proxy any free port
        serve.start(http_options={"host": s.http_host, "port": 0 if direct_ingress(s) else s.http_port},
                    logging_config={"enable_access_log": s.serve_access_log})
        serve.run(application(s), name="pulse", route_prefix="/")
        self.wait_healthy()
        return info

    def supervise(self) -> None:
        """(Re)start every bridge; idempotent, called at start and periodically by `pulse up` (Ray
        restarts a crashed bridge or shard, this reconnects the bridge to the broker)."""
        import ray

        ray.get([b.start() for b in self.bridges] + [self.scheduler.start.remote()], timeout=60)
        s = self.settings
        if s.background_nice and self.started_ray and not s.ray_address:  # also a process Ray restarted since
            lower_priority(background_processes(), s.background_nice)

    def wait_healthy(self, timeout_s: float = 90.0) -> None:
        wait_for_200(f"http://{self.settings.http_host}:{self.settings.http_port}/healthz", timeout_s)

    def stop(self) -> None:
        import ray
        from ray import serve

        if not ray.is_initialized():
            return
        try:
            serve.shutdown()
        except Exception:  # noqa: BLE001 - keep stopping the rest
            log.exception("serve shutdown")
        for b in self.bridges:
            _quietly(lambda: ray.get(b.stop(), timeout=30))
            if b.actor is not None:
                _quietly(lambda: ray.kill(b.actor, no_restart=True))
        if self.scheduler is not None:
            _quietly(lambda: ray.get(self.scheduler.stop.remote(), timeout=30))
            _quietly(lambda: ray.kill(self.scheduler, no_restart=True))
        _quietly(lambda: asyncio.run(self.runtime.stop()))
        if self.broker is not None:
            _quietly(lambda: ray.get(self.broker.stop.remote(), timeout=30))
            _quietly(lambda: ray.kill(self.broker, no_restart=True))
        if self.started_ray:
            ray.shutdown()


# Ray's settings for a node Pulse starts itself. Ray runs every worker (each actor: the API replica,
# the shards, the bridges) at niceness 15 by default, below its own agents, the dashboard and the
# driver; on a busy node the API then waited behind the dashboard agent's metrics bursts. Pulse's
# actors run at the normal priority instead, and the background ones are lowered on their own
# (`lower_priority`, docs/operations.md).
RAY_SYSTEM_CONFIG = {"worker_niceness": 0}

# what Serve's proxy needs of the settings to shed load (pulse.deployment.proxy_middlewares)
SHED_SETTINGS = ("PULSE_API_MAX_IN_FLIGHT", "PULSE_API_MAX_IN_FLIGHT_BURST", "PULSE_API_QUEUE_TARGET_MS",
                 "PULSE_API_SHED_RETRY_AFTER_S", "PULSE_SERVE_REPLICAS")

# Ray Serve's request path tuned for a small node (documented in Ray's serve constants; measured
# with bench_serve, docs/operations.md): the app's code on the replica's own event loop (Pulse's
# handlers are async and offload blocking work, so no thread hop per request), the proxy's router
# on its main loop, and gRPC rather than actor calls from proxy to replica.
SERVE_REQUEST_PATH = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
                      "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1",
                      # Serve's controller reconciles every 0.1 s by default, ~4.5 % of a core on an idle
                      # node; a fixed single-replica app needs no faster reaction than twice a second
                      "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5"}


def direct_ingress(settings: Settings) -> bool:
    """One replica answers on the API port itself; Serve's proxy only stands by (docs/operations.md)."""
    return settings.serve_direct_ingress and settings.serve_replicas == 1


def serve_env(settings: Settings) -> dict[str, str]:
    """What Ray Serve's controller, proxy and replicas need: the request-path settings above, and either
    direct ingress on the API port or, through the proxy, the load-shedding callback it imports."""
    from pulse.deployment import PROXY_CALLBACK  # lazy like ray itself: importing Serve is slow

    shed = {k: v for k, v in settings.env().items()
            if k in SHED_SETTINGS}
    if not direct_ingress(settings):
        return {**SERVE_REQUEST_PATH, "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": PROXY_CALLBACK, **shed}
    # Serve allocates a direct-ingress replica's port from this range: one port, the API's. A freed port
    # is reused at once (no quarantine: no load balancer in front to forget it) and a stopping replica
    # only drains its requests (no balancer to deregister from). The app sheds load itself.
    port = settings.http_port
    return {**SERVE_REQUEST_PATH, **shed, "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port), "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),
            "RAY_SERVE_PORT_QUARANTINE_S": "0", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0"}


# Processes no request or message waits on, by command line: Ray's per-node helpers (metrics and
# stats, runtime environments, the dashboard, log tailing, the autoscaler monitor) and Pulse's
# scheduled work (notifications, carrier and Telemetron syncs, the scheduler's periodic jobs).
BACKGROUND_MARKERS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray/dashboard/dashboard.py",
                      "ray/_private/log_monitor.py", "ray/autoscaler/_private/monitor.py",
                      "ray::Notifier", "ray::CarrierSync", "ray::TelemetronSync", "ray::Scheduler")


def background_processes() -> list[int]:
    """Pids of this process's descendants that do background work, and of their own children."""
    import psutil

    out: set[int] = set()
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(m in " ".join(p.cmdline()[:3]) for m in BACKGROUND_MARKERS):
                out |= {p.pid, *(c.pid for c in p.children(recursive=True))}  # the dashboard's modules
    return sorted(out)


def lower_priority(pids: list[int], nice: int) -> None:
    """Raise the niceness of every thread of `pids` to at least `nice` (Linux keeps it per thread;
    threads started later inherit it from the thread that starts them). No privilege is needed to
    lower a priority, and none is ever raised; a process gone meanwhile is skipped."""
    import psutil

    for pid in pids:
        with contextlib.suppress(psutil.Error, OSError):
            for t in psutil.Process(pid).threads():
                os.setpriority(os.PRIO_PROCESS, t.id, max(nice, os.getpriority(os.PRIO_PROCESS, t.id)))


def wait_for_200(url: str, timeout_s: float = 90.0) -> None:
    """Poll until `url` answers 200 (e.g. /healthz once every actor is ready)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f}s")


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - shutdown goes on; the cause is logged
        log.exception("while stopping")
