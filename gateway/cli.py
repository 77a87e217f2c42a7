"""The `gateway` command: serve, check, route. Parses arguments and calls into the rest."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from gateway import __version__
from gateway.config.loader import collect
from gateway.config.model import Config
from gateway.diagnostics import Problem
from gateway.errors import GatewayError
from gateway.event import Event
from gateway.ingest.modes import parse_structured
from gateway.routing.filters import explain
from gateway.schemas import SchemaRegistry

log = logging.getLogger("gateway")


def _config_path(value: str | None) -> Path:
    return Path(value or os.environ.get("GATEWAY_CONFIG") or "config/gateway.yaml")


def load_all(path: Path) -> tuple[Config | None, SchemaRegistry | None, list[Problem]]:
    """The config, the schema registry and every problem found in either."""
    config, problems = collect(path)
    registry = None
    if config is not None:
        registry, schema_problems = SchemaRegistry.load(config.schemas)
        problems = [*problems, *schema_problems]
    return config, registry, sorted(problems)


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


# -- check ------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    _, _, problems = load_all(_config_path(args.config))
    if args.json:
        print(orjson.dumps({"ok": not problems, "problems": [p.as_json() for p in problems]})
              .decode())
    elif problems:
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


# -- route ------------------------------------------------------------------------------------


def _route_report(config: Config, registry: SchemaRegistry, event: Event) -> dict[str, Any]:
    verdict = registry.verdict(event, config.unknown_types)
    subs = []
    for sub in config.subscriptions:
        matched, reason = explain(sub, event)
        subs.append({"name": sub.name, "matched": matched, "reason": reason})
    return {
        "schema": {
            "valid": verdict.valid,
            "schema": verdict.schema,
            "errors": [e.as_json() for e in verdict.errors],
        },
        "subscriptions": subs,
    }


def cmd_route(args: argparse.Namespace) -> int:
    config, registry, problems = load_all(_config_path(args.config))
    if problems or config is None or registry is None:
        _print_problems(problems)
        return 1
    try:
        event = parse_structured(orjson.loads(Path(args.event).read_bytes()))
    except OSError as exc:
        print(f"{args.event}: {exc.strerror}", file=sys.stderr)
        return 1
    except orjson.JSONDecodeError as exc:
        print(f"{args.event}: not JSON: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"{args.event}: invalid CloudEvent: {exc.detail}", file=sys.stderr)
        return 1
    report = _route_report(config, registry, event)
    if args.json:
        print(orjson.dumps(report).decode())
    else:
        schema = report["schema"]
        state = "valid" if schema["valid"] else "INVALID"
        print(f"schema: {state} ({schema['schema'] or 'no schema for this type'})")
        for error in schema["errors"]:
            print(f"  {error['pointer'] or '/'}: {error['detail']}")
        for sub in report["subscriptions"]:
            mark = "matched    " if sub["matched"] else "not matched"
            print(f"{mark} {sub['name']}: {sub['reason']}")
    return 0 if report["schema"]["valid"] else 1


# -- serve ------------------------------------------------------------------------------------


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    tls = config.server.tls
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    if tls.client_ca is not None:
        context.load_verify_locations(tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve(config: Config, registry: SchemaRegistry) -> None:
    """Run until SIGTERM/SIGINT: stop accepting, let in-flight work finish, stop."""
    from gateway.app import assemble, build

    gw = assemble(config, registry)
    runner = web.AppRunner(build(gw), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(
            runner,
            config.server.host,
            config.server.port,
            ssl_context=_ssl_context(config),
            shutdown_timeout=config.server.shutdown_grace,
            reuse_address=True,
        )
        await site.start()
        log.info("gateway %s listening on %s", __version__, site.name)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping: no new requests; draining in-flight deliveries")
    finally:
        await runner.cleanup()
    log.info("stopped")


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.ops.logs import configure

    configure(logging.DEBUG if args.verbose else logging.INFO)
    config, registry, problems = load_all(_config_path(args.config))
    if problems or config is None or registry is None:
        _print_problems(problems)
        return 1
    try:
        asyncio.run(serve(config, registry))
    except GatewayError as exc:
        print(f"gateway: {exc.detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


# -- arguments --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", help="config/gateway.yaml (default: $GATEWAY_CONFIG, then that)"
    )
    top = argparse.ArgumentParser(prog="gateway", description="CloudEvents gateway")
    top.add_argument("--version", action="version", version=f"gateway {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    serve_p = commands.add_parser("serve", parents=[common], help="run the gateway")
    serve_p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve_p.set_defaults(run=cmd_serve)
    check_p = commands.add_parser("check", parents=[common], help="validate config and schemas")
    check_p.add_argument("--json", action="store_true", help="machine-readable output")
    check_p.set_defaults(run=cmd_check)
    route_p = commands.add_parser("route", parents=[common], help="dry-run one event")
    route_p.add_argument("event", metavar="EVENT.json", help="a structured-mode CloudEvent")
    route_p.add_argument("--json", action="store_true", help="machine-readable output")
    route_p.set_defaults(run=cmd_route)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        return int(args.run(args))
    return 1


if __name__ == "__main__":
    sys.exit(main())
