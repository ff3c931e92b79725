"""The `pulse` command: up | token | openapi | simulate | sim | migrate."""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading


def cmd_up(args: argparse.Namespace) -> int:
    from pulse.config.settings import load_settings
    from pulse.node import Node

    settings = load_settings()
    node = Node(settings)
    stop = threading.Event()
    try:
        info = node.start()
        # after start: ray.init installs handlers of its own, ours must win
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        s = settings
        print(f"""
Pulse is up.
  API        http://{s.http_host}:{s.http_port}   (OpenAPI: /docs, health: /healthz)
  Dashboard  http://{s.dashboard_host}:{s.dashboard_port}
  MQTT       {"embedded broker on " + s.mqtt_host + ":" + str(s.mqtt_port) if s.uses_embedded_broker else s.mqtt_url}
  Data dir   {s.data_dir}
  Tenant     {info['tenant']}   admin {info['email']} / {info['password']}
  Admin token (Authorization: Bearer ...):
{info['token']}

Ctrl-C stops Pulse; data stays in the data dir.""", flush=True)
        while not stop.wait(5):
            try:
                node.supervise()
            except Exception as e:  # a bridge restarting: try again next tick
                print(f"supervise: {e}", file=sys.stderr, flush=True)
    finally:
        print("stopping Pulse...", file=sys.stderr, flush=True)
        node.stop()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from pulse.config.settings import load_settings
    from pulse.domain.permissions import ROLES
    from pulse.services.identity import issue_token
    from pulse.services.bootstrap import ensure_principal

    if args.role not in ROLES:
        print(f"unknown role {args.role!r}; one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    operator = args.role.startswith("operator")
    if not operator and not args.tenant:
        print("--tenant is required for customer roles", file=sys.stderr)
        return 2
    settings = load_settings()
    tenant = None if operator else args.tenant
    sub = args.sub or (f"{args.role}@{tenant}.local" if tenant else f"{args.role}@pulse.local")
    asyncio.run(ensure_principal(settings, tenant, args.role, sub))
    print(issue_token(settings, sub, tenant, args.role))
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from pulse.serve.app import create_app

    print(json.dumps(create_app().openapi(), indent=None))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pulse.config.settings import load_settings
    from pulse.storage.db import run_migrations

    settings = load_settings()
    settings.ensure_dirs()
    run_migrations(settings.db_url)
    print("schema is current")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from pulse.config.settings import load_settings
    from pulse.simulators.devices import simulate

    report = asyncio.run(simulate(load_settings(), tenant=args.tenant, devices=args.devices, rate=args.rate,
                                  seconds=args.seconds, api=args.api, prefix=args.prefix, ota=args.ota,
                                  job=args.job, fail_rate=args.fail_rate))
    print(json.dumps(report, indent=2))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """Serve one external-API simulator on 127.0.0.1 until interrupted."""
    import signal
    import threading
    from importlib import import_module

    from pulse.simulators import API_SIMULATORS
    from pulse.simulators.server import SimServer

    module, cls = API_SIMULATORS[args.api_name].split(":")
    sim = getattr(import_module(module), cls)()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SimServer(sim, args.port) as server:
        print(server.base_url, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pulse", description="Pulse IoT fleet platform")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start Pulse on this machine (Ray, broker, actors, API)").set_defaults(fn=cmd_up)
    t = sub.add_parser("token", help="print a signed JWT (creates the tenant/user if missing)")
    t.add_argument("--tenant")
    t.add_argument("--role", default="customer_admin")
    t.add_argument("--sub")
    t.set_defaults(fn=cmd_token)
    sub.add_parser("openapi", help="print the OpenAPI document (starts nothing)").set_defaults(fn=cmd_openapi)
    sub.add_parser("migrate", help="bring the SQL schema up to date").set_defaults(fn=cmd_migrate)
    s = sub.add_parser("simulate", help="register devices that publish telemetry over MQTT and answer commands, OTA and jobs")
    s.add_argument("--tenant", default="demo")
    s.add_argument("--devices", type=int, default=10)
    s.add_argument("--rate", type=float, default=1.0, help="messages per second per device")
    s.add_argument("--seconds", type=float, default=30.0)
    s.add_argument("--api", default=None, help="API base URL (default: from settings)")
    s.add_argument("--prefix", default="sim", help="device id prefix")
    s.add_argument("--ota", metavar="VERSION", help="also host a firmware image and run an OTA campaign over the devices")
    s.add_argument("--job", metavar="DOCUMENT_TYPE", help="also send a job to the devices")
    s.add_argument("--fail-rate", type=float, default=0.0, help="share of installs and jobs that fail")
    s.set_defaults(fn=cmd_simulate)
    from pulse.simulators import API_SIMULATORS

    sim = sub.add_parser("sim", help="serve a simulator of an external API on 127.0.0.1 and print its URL")
    sim.add_argument("api_name", choices=sorted(API_SIMULATORS))
    sim.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    sim.set_defaults(fn=cmd_sim)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
