"""Ray Serve wiring: the ingress deployment builds the FastAPI app, and its services, in each replica.

Composition, not HTTP: this is where the Ray runtime is handed to the services as their `Runtime`."""
from __future__ import annotations

from ray import serve
from starlette.middleware import Middleware

from pulse.mqtt.publisher import Downlink
from pulse.actors.runtime import RayRuntime
from pulse.broker.credentials import credentials_for
from pulse.config.settings import Settings, load_settings
from pulse.pipelines.telemetry import LakeReader
from pulse.serve.app import create_app
from pulse.serve.shedding import LoadShedding
from pulse.services.commands import delivery_recorder
from pulse.services.context import ServiceContext
from pulse.services.identity import TokenDecoder
from pulse.storage.db import Database


async def build_services(settings: Settings) -> ServiceContext:
    runtime = RayRuntime(settings)
    runtime.connect()
    db = Database(settings.db_url)
    return ServiceContext(settings=settings, db=db, runtime=runtime, lake=LakeReader(settings.lake_dir),
                          downlink=Downlink(settings, on_sent=delivery_recorder(db)),
                          credentials=credentials_for(settings), decoder=TokenDecoder(settings))


async def close_services(svc: ServiceContext) -> None:
    await svc.close()


def build_app():
    """Runs in the replica: settings come from the PULSE_* variables of its runtime_env."""
    settings = load_settings()
    # Serve runs the app's lifespan (building the services) before it collects and freezes the
    # replica's startup heap (RAY_SERVE_FREEZE_GC_ON_STARTUP, on by default): full collections under
    # load do not walk the services' long-lived objects.
    return create_app(lambda: build_services(settings), close_services)


@serve.deployment(name="PulseIngress", ray_actor_options={"num_cpus": 0})
@serve.ingress(build_app)
class PulseIngress:
    """All routes live on the app built by `build_app`; this class only hosts it."""


# Ray Serve's proxy imports this (RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH, set by `pulse.node`)
PROXY_CALLBACK = "pulse.deployment.proxy_middlewares"


def proxy_middlewares() -> list[Middleware]:
    """Load shedding in Serve's HTTP proxy, before the hop to a replica: a request refused there
    costs no replica work. A plain count of the replicas' steady bounds together (docs/operations.md)."""
    settings = load_settings()
    if not settings.api_max_in_flight:
        return []
    return [Middleware(LoadShedding, settings=settings, scale=settings.serve_replicas, burst=False)]


def application(settings: Settings):
    return PulseIngress.options(
        num_replicas=settings.serve_replicas,
        # every open WebSocket/SSE stream holds one request slot for its whole life (docs/live.md)
        max_ongoing_requests=settings.serve_max_ongoing_requests + settings.live_max_subscribers,
        logging_config={"enable_access_log": settings.serve_access_log},
        # replicas build their settings from these, so they share the node's data dir and secrets
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": settings.env()}},
    ).bind()
