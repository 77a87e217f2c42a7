"""The `gateway` command and its subcommands. Parses arguments and calls into the rest."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from gateway import __version__, eventloop
from gateway.checks import sinks_against_egress, subscriptions_against_schemas
from gateway.config.files import display
from gateway.config.loader import collect, schemas_folder
from gateway.config.model import Config
from gateway.delivery import render
from gateway.diagnostics import Problem
from gateway.errors import GatewayError
from gateway.event import Event
from gateway.ingest.modes import parse_structured
from gateway.ingest.sources.dryrun import preview
from gateway.routing.filters import explain
from gateway.schemas import SchemaRegistry, compat

log = logging.getLogger("gateway")


def _config_path(value: str | None) -> Path:
    return Path(value or os.environ.get("GATEWAY_CONFIG") or "config/gateway.yaml")


def _missing(path: Path) -> Problem:
    return Problem(
        display(path), 0, "",
        "file not found; name the config with -c FILE or $GATEWAY_CONFIG "
        "(default: config/gateway.yaml in the current directory)",
    )


def load_all(path: Path) -> tuple[Config | None, SchemaRegistry | None, list[Problem]]:
    """The config, the schema registry and every problem found in either or between them
    (warnings included: callers decide with `Problem.is_error`)."""
    config, registry, _, problems = _load(path)
    return config, (registry if config is not None else None), problems


def _load(path: Path) -> tuple[Config | None, SchemaRegistry | None, Path | None, list[Problem]]:
    """`load_all`, plus the schemas folder; the schemas are loaded and checked even when the
    config has problems, wherever gateway.yaml still says where they are (CONTRACT 2, check)."""
    if not path.exists():
        return None, None, None, [_missing(path)]
    config, problems = collect(path)
    folder = config.schemas if config is not None else schemas_folder(path)
    if folder is None:
        return config, None, None, problems
    registry, schema_problems = SchemaRegistry.load(folder)
    problems = [*problems, *schema_problems]
    if config is not None:
        problems += subscriptions_against_schemas(config, registry.types())
        problems += sinks_against_egress(config)
    return config, registry, folder, sorted(problems)


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _fatal(problems: Sequence[Problem]) -> bool:
    """Print what was found; True when any of it is an error."""
    _print_problems(problems)
    return any(p.is_error for p in problems)


# -- check ------------------------------------------------------------------------------------


def _summary(config: Config, registry: SchemaRegistry | None) -> str:
    schemas = 0 if registry is None else registry.files
    return (
        f"ok: {_count(len(config.files), 'file')}, "
        f"{_count(len(config.subscriptions), 'subscription')}, "
        f"{_count(len(config.sources), 'source')}, {_count(schemas, 'schema')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_check(args: argparse.Namespace) -> int:
    config, registry, folder, problems = _load(_config_path(args.config))
    if args.against:
        if folder is None:
            print("gateway check: --against: no schemas folder to compare", file=sys.stderr)
        else:
            try:
                problems = sorted(problems + compat.against(args.against, folder))
            except compat.GitError as exc:
                print(f"gateway check: --against {args.against}: {exc}", file=sys.stderr)
                return 1
    if args.catalog and config is not None:
        from gateway import catalog

        found = catalog.stale(config, Path(args.catalog), args.catalog)
        problems = sorted([*problems, found]) if found else problems
    failed = any(p.is_error for p in problems)
    output = "json" if args.json else args.format
    if output == "json":
        body = {"ok": not failed, "problems": [p.as_json() for p in problems]}
        print(orjson.dumps(body).decode())
    else:
        for problem in problems:
            print(problem.github() if output == "github" else problem)
        errors = sum(1 for p in problems if p.is_error)
        if problems:
            print(f"{errors} error(s), {len(problems) - errors} other finding(s)", file=sys.stderr)
        if not failed and config is not None:
            print(_summary(config, registry), file=sys.stderr)
    return 1 if failed else 0


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


def _headers(pairs: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header {pair!r} is not NAME:VALUE")
        headers[name.strip()] = value.strip()
    return headers


def _event_for(args: argparse.Namespace, config: Config) -> Event:
    """The event to dry-run: a structured-mode file, or what a source makes of a request."""
    if args.source:
        if not args.body:
            raise ValueError("--source needs --body FILE")
        body = Path(args.body).read_bytes()
        return preview(config, args.source, body, _headers(args.header or []))
    if not args.event:
        raise ValueError("give EVENT.json, or --source NAME --body FILE")
    return parse_structured(orjson.loads(Path(args.event).read_bytes()))


def cmd_route(args: argparse.Namespace) -> int:
    config, registry, problems = load_all(_config_path(args.config))
    if _fatal(problems) or config is None or registry is None:
        return 1
    try:
        event = _event_for(args, config)
    except OSError as exc:
        print(f"gateway route: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except (orjson.JSONDecodeError, ValueError) as exc:
        print(f"gateway route: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"gateway route: the request would be refused ({exc.status}): {exc.detail}",
              file=sys.stderr)
        for error in exc.errors:
            print(f"  {error.pointer or '/'}: {error.detail}", file=sys.stderr)
        return 1
    report = _route_report(config, registry, event)
    if args.source:
        report["event"] = orjson.loads(render.structured(event).body)
    if args.json:
        print(orjson.dumps(report).decode())
        return 0 if report["schema"]["valid"] else 1
    if args.source:
        print("event:", orjson.dumps(report["event"], option=orjson.OPT_INDENT_2).decode())
    schema = report["schema"]
    state = "valid" if schema["valid"] else "INVALID"
    print(f"schema: {state} ({schema['schema'] or 'no schema for this type'})")
    for error in schema["errors"]:
        print(f"  {error['pointer'] or '/'}: {error['detail']}")
    for sub in report["subscriptions"]:
        mark = "matched    " if sub["matched"] else "not matched"
        print(f"{mark} {sub['name']}: {sub['reason']}")
    return 0 if schema["valid"] else 1


# -- schema, catalog ----------------------------------------------------------------------------


def cmd_schema(args: argparse.Namespace) -> int:
    from gateway.config import schemagen

    if args.write:
        for path in schemagen.write(Path(args.write)):
            print(path)
        return 0
    print(schemagen.text(args.kind), end="")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from gateway import catalog

    config, _, problems = load_all(_config_path(args.config))
    if _fatal(problems) or config is None:
        return 1
    text = catalog.render(config, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def _add_editing(commands: Any, common: argparse.ArgumentParser) -> None:
    schema_p = commands.add_parser("schema", help="print the JSON Schema of a config file kind")
    schema_p.add_argument(
        "kind", nargs="?", default="config", choices=("config", "subscriptions", "sources"),
        help="config (gateway.yaml), subscriptions or sources (default: config)",
    )
    schema_p.add_argument("--write", metavar="DIR", help="write every kind as DIR/<kind>.json")
    schema_p.set_defaults(run=cmd_schema)
    catalog_p = commands.add_parser("catalog", parents=[common], help="write the event catalog")
    catalog_p.add_argument("--format", choices=("asyncapi", "markdown", "json"), default="markdown")
    catalog_p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    catalog_p.set_defaults(run=cmd_catalog)


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


async def serve(config: Config, registry: SchemaRegistry, worker: int | None = None) -> None:
    """Run until SIGTERM/SIGINT: stop accepting, let in-flight work finish, stop. A `worker` of
    `serve --workers` shares the port (SO_REUSEPORT) and has its own replica identity."""
    from gateway.app import assemble, build, build_admin, operate
    from gateway.ops.connections import GatewayRunner
    from gateway.store.pgurl import for_worker

    if worker is not None:
        config = dataclasses.replace(config, store_url=for_worker(config.store_url, worker))

    # Before anything listens: a stop asked for during startup is a clean stop once started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the config is being loaded anyway
    gw = assemble(config, registry)
    app = build(gw)
    control = operate(gw, app, load_all)
    runner = GatewayRunner(app, config.server, gw.metrics, handle_signals=False, access_log=None)
    gw.metrics.gauge("gateway_connections_open", "HTTP connections open", lambda: runner.gate.open)
    admin = None
    if config.admin is not None:
        admin = web.AppRunner(build_admin(control, config.admin), handle_signals=False,
                              access_log=None)  # fmt: skip
        await admin.setup()
    await runner.setup()
    try:
        # The admin listener first: once ingest answers (/readyz), the admin API does too.
        if admin is not None and config.admin is not None:
            admin_site = web.TCPSite(admin, config.admin.host, config.admin.port,
                                     reuse_address=True)  # fmt: skip
            await admin_site.start()
            log.info("admin API listening on %s", admin_site.name)
        site = web.TCPSite(
            runner,
            config.server.host,
            config.server.port,
            ssl_context=_ssl_context(config),
            shutdown_timeout=config.server.shutdown_grace,
            reuse_address=True,
            reuse_port=worker is not None,
        )
        await site.start()
        log.info(
            "gateway %s listening on %s (event loop: %s)", __version__, site.name, eventloop.name()
        )
        loop.add_signal_handler(signal.SIGHUP, control.reload_soon)  # CONTRACT 6: reload
        await stop.wait()
        log.info("stopping: no new requests; draining in-flight deliveries")
    finally:
        await control.stop()
        if admin is not None:
            await admin.cleanup()
        await runner.cleanup()
    log.info("stopped")


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.ops.logs import configure

    configure(logging.DEBUG if args.verbose else logging.INFO)
    path = _config_path(args.config)
    config, registry, problems = load_all(path)
    if _fatal(problems) or config is None or registry is None:
        return 1
    if args.workers > 1:
        return _supervise(config, str(path), args)
    from gateway.ops import tracing

    if exporters := tracing.configure(os.environ):
        log.info("tracing: spans exported to %s", exporters)
    try:
        with asyncio.Runner(loop_factory=eventloop.factory()) as runner:
            runner.run(serve(config, registry, args.worker))
    except GatewayError as exc:
        print(f"gateway: {exc.detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway: cannot listen: {exc}", file=sys.stderr)
        return 1
    finally:
        tracing.shutdown()
    return 0


def _supervise(config: Config, path: str, args: argparse.Namespace) -> int:
    from gateway.workers import Supervisor, command

    if urlsplit(config.store_url or config.store).scheme not in ("postgresql", "postgres"):
        print(
            "gateway serve: --workers needs a PostgreSQL store: a SQLite file is owned by one "
            "process (it holds a lock on it), so run one worker, or use store: postgresql://...",
            file=sys.stderr,
        )
        return 1
    return Supervisor(command(path, args.verbose), args.workers, config.server.shutdown_grace).run()


def _workers(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return count


# -- send, sink -------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    from gateway.devtools import send

    path = _config_path(args.config)
    config = None
    # With --url the config only supplies a token, and only when there is one to read.
    if args.url is None or args.config or os.environ.get("GATEWAY_CONFIG") or path.exists():
        config, _, problems = load_all(path)
        if _fatal(problems) or config is None:
            return 1
    options = send.Options(
        type=args.type, source=args.source, data=args.data, id=args.id, mode=args.mode,
        token=args.token, url=args.url,
    )
    return asyncio.run(send.send(config, options))


def cmd_sink(args: argparse.Namespace) -> int:
    from gateway.devtools import sink

    ports = tuple(dict.fromkeys(args.port)) if args.port else sink.DEFAULT_PORTS
    return sink.main(sink.Settings(ports=ports, status=args.status, secret=args.secret))


def _sink_secret(value: str) -> str:
    from gateway.devtools.sink import check_secret

    try:
        check_secret(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _sink_status(value: str) -> int:
    from gateway.devtools.sink import check_status

    try:
        check_status(code := int(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return code


def _add_devtools(commands: Any, common: argparse.ArgumentParser) -> None:
    send_p = commands.add_parser("send", parents=[common], help="publish one event")
    send_p.add_argument("--type", required=True, help="the event's type")
    send_p.add_argument("--source", required=True, help="the event's source")
    send_p.add_argument("--data", metavar="JSON|@FILE", help="JSON data, or @file holding it")
    send_p.add_argument("--id", help="the event's id (default: a fresh uuid4)")
    send_p.add_argument("--mode", choices=("binary", "structured"), default="binary")
    send_p.add_argument("--token", help="bearer token (default: the config's first producer's)")
    send_p.add_argument("--url", help="POST here (default: the config's server address/events)")
    send_p.set_defaults(run=cmd_send)
    sink_p = commands.add_parser("sink", help="print every request received (development)")
    sink_p.add_argument(
        "--port", type=int, nargs="+", action="extend",
        help="port(s) to listen on, 127.0.0.1 (default: 9001 9002 9003)",
    )
    sink_p.add_argument("--secret", type=_sink_secret, help="whsec_... to verify signatures")
    sink_p.add_argument("--status", type=_sink_status, default=200, help="the answer (default 200)")
    sink_p.set_defaults(run=cmd_sink)


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
    serve_p.add_argument(
        "--workers", type=_workers, default=1,
        help="processes sharing the port and the database (PostgreSQL store only)",
    )
    serve_p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    serve_p.set_defaults(run=cmd_serve)
    check_p = commands.add_parser("check", parents=[common], help="validate config and schemas")
    check_p.add_argument("--json", action="store_true", help="same as --format json")
    check_p.add_argument(
        "--format", choices=("text", "json", "github"), default="text",
        help="text (FILE:LINE: path: message), json, or GitHub Actions annotations",
    )
    check_p.add_argument(
        "--against", metavar="GIT_REF",
        help="also report schema changes since GIT_REF that break consumers",
    )
    check_p.add_argument(
        "--catalog", metavar="FILE", help="also fail when this committed catalog is out of date"
    )
    check_p.set_defaults(run=cmd_check)
    route_p = commands.add_parser("route", parents=[common], help="dry-run one event")
    route_p.add_argument(
        "event", metavar="EVENT.json", nargs="?", help="a structured-mode CloudEvent"
    )
    route_p.add_argument("--source", metavar="NAME", help="map a request at this source instead")
    route_p.add_argument("--body", metavar="FILE", help="with --source: the request body")
    route_p.add_argument(
        "--header", metavar="K:V", action="append", help="with --source: a request header"
    )
    route_p.add_argument("--json", action="store_true", help="machine-readable output")
    route_p.set_defaults(run=cmd_route)
    _add_devtools(commands, common)
    _add_editing(commands, common)
    from gateway.admin.commands import add_commands

    add_commands(commands, common, _config_path)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        return int(args.run(args))
    return 1


if __name__ == "__main__":
    sys.exit(main())
