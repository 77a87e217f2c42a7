"""`gateway status`, `deadletters`, `redrive`, `replay`, `pause`, `resume`, `reload` and
`gateway events show` (CONTRACT 6): arguments, the calls to the admin API, and what is printed.
`--json` prints the answer as one JSON document; long redrives and replays show a progress bar
on a terminal and a one-line summary otherwise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.admin.client import Client, Failed, locate

PAGE = 500  # rows per request while a progress bar is shown
Run = Callable[[Client, argparse.Namespace], int]


def _emit(body: Any) -> None:
    print(orjson.dumps(body).decode())


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# -- the commands -------------------------------------------------------------------------------


def status(client: Client, args: argparse.Namespace) -> int:
    body = client.call("GET", "/status")
    if args.json:
        _emit(body)
        return 0
    config = body["config"]
    print(f"config generation {config['generation']}, loaded {config['loaded_at']}")
    if config["last_error"]:
        print(f"last reload: {config['last_error']}")
    replicas = config.get("replicas", [])
    if len({r["generation"] for r in replicas}) > 1:  # drift: say which replica runs what
        for r in replicas:
            print(f"  replica {r['replica']}: generation {r['generation']}, "
                  f"loaded {r['loaded_at']}")  # fmt: skip
    rows = [["SUBSCRIPTION", "STATE", "BACKLOG", "OLDEST", "DELIVERED", "FAILED", "DEAD",
             "LAST ERROR"]]  # fmt: skip
    for sub in body["subscriptions"]:
        rows.append([
            sub["name"], sub["state"], str(sub["backlog"]), _age(sub["oldest_pending_seconds"]),
            str(sub["delivered"]), str(sub["failed"]), str(sub["dead_letters"]),
            sub["last_error"] or "-",
        ])  # fmt: skip
    _table(rows)
    return 0


def deadletters(client: Client, args: argparse.Namespace) -> int:
    query = {"subscription": args.subscription, "since": args.since, "limit": str(args.limit)}
    body = client.call("GET", "/deadletters", query=query)
    if args.json:
        _emit(body)
        return 0
    found = body["dead_letters"]
    if not found:
        print("no dead letters")
        return 0
    rows = [["TIME", "SUBSCRIPTION", "REASON", "STATUS", "ATTEMPTS", "SOURCE", "ID", "TYPE"]]
    for d in found:
        rows.append([
            d["time"], d["subscription"], d["reason"] or "-", str(d["status"] or "-"),
            str(d["attempts"]), d["source"], d["id"], d["type"],
        ])  # fmt: skip
    _table(rows)
    return 0


def _counted(client: Client, args: argparse.Namespace, verb: str, body: dict[str, Any]) -> int:
    path = f"/subscriptions/{args.subscription}/{verb}"
    if args.json or body.get("dry_run") or not sys.stdout.isatty():
        answer = client.call("POST", path, body)
        if args.json:
            _emit({k: answer[k] for k in ("matched", "queued", "dry_run")})
        else:
            print(_summary(verb, args.subscription, answer))
        return 0
    # A terminal: count first, then page through with a progress bar.
    total = client.call("POST", path, {**body, "dry_run": True})["matched"]
    if not total:
        print(_summary(verb, args.subscription, {"matched": 0, "queued": 0, "dry_run": False}))
        return 0
    from rich.progress import Progress

    matched = queued = 0
    after: int | None = 0
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{verb} {args.subscription}", total=total)
        while after is not None:
            answer = client.call("POST", path, {**body, "after": after, "limit": PAGE})
            matched += answer["matched"]
            queued += answer["queued"]
            after = answer["next"]
            progress.update(task, completed=min(queued, total))
    print(_summary(verb, args.subscription,
                   {"matched": matched, "queued": queued, "dry_run": False}))  # fmt: skip
    return 0


def _summary(verb: str, subscription: str, answer: dict[str, Any]) -> str:
    if answer["dry_run"]:
        return f"{verb} {subscription}: {answer['matched']} matched (dry run: nothing queued)"
    return f"{verb} {subscription}: {answer['matched']} matched, {answer['queued']} queued"


def redrive(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"dry_run": args.dry_run}
    for key in ("since", "until", "filter"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.id:
        body["ids"] = args.id
    return _counted(client, args, "redrive", body)


def replay(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"since": args.since, "dry_run": args.dry_run}
    # The window's end is fixed now, so that pages and the count agree.
    body["until"] = args.until or datetime.now(UTC).isoformat()
    if args.filter is not None:
        body["filter"] = args.filter
    return _counted(client, args, "replay", body)


def _switch(verb: str) -> Run:
    def run(client: Client, args: argparse.Namespace) -> int:
        body = client.call("POST", f"/subscriptions/{args.subscription}/{verb}", {})
        if args.json:
            _emit(body)
        else:
            print(f"{body['name']}: {verb}d")
        return 0

    return run


def reload(client: Client, args: argparse.Namespace) -> int:
    try:
        body = client.call("POST", "/reload", {})
    except Failed as exc:
        if exc.body is None or "problems" not in exc.body:
            raise
        body = exc.body
    if args.json:
        _emit(body)
        return 0 if body["ok"] else 1
    for problem in body["problems"]:
        print(_problem(problem))
    if not body["ok"]:
        errors = sum(1 for p in body["problems"] if p["severity"] == "error")
        print(f"reload refused: {errors} error(s); the running config is unchanged",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"reloaded: config generation {body['generation']}")
    return 0


def _problem(p: dict[str, Any]) -> str:
    """As `gateway check` prints a problem: FILE:LINE: path: message."""
    where = f"{p['file']}:{p['line']}" if p["line"] else p["file"]
    text = f"{p['path']}: {p['message']}" if p["path"] else p["message"]
    if p["severity"] != "error":
        text = f"{p['severity']}: {text}"
    return f"{where}: {text}"


def event_show(client: Client, args: argparse.Namespace) -> int:
    body = client.call("GET", "/events", query={"source": args.source, "id": args.id})
    if args.json:
        _emit(body)
        return 0
    event = body["event"]
    by = f", producer {body['producer']}" if body["producer"] else ""
    print(f"event {event.get('source')} {event.get('id')} ({event.get('type')}), "
          f"received {body['received_at']}{by}")  # fmt: skip
    for d in body["deliveries"]:
        kind = " (dead-letter notice)" if d["kind"] == "dead_letter" else ""
        why = f" ({d['reason']})" if d["reason"] else ""
        nxt = f", next attempt {d['next_attempt']}" if d["next_attempt"] else ""
        print(f"  {d['subscription']}{kind}: {d['state']}{why}{nxt}")
        for t in d["attempts"]:
            status = f"HTTP {t['status']}" if t["status"] is not None else "no response"
            error = f"  {t['error']}" if t["error"] else ""
            print(f"    #{t['attempt']} {t['time']}  {status}  {t['latency_ms']:.1f} ms{error}")
    return 0


# -- arguments ----------------------------------------------------------------------------------


def _runner(run: Run, config_path: Callable[[str | None], Path]) -> Callable[..., int]:
    def main(args: argparse.Namespace) -> int:
        try:
            client = locate(config_path(args.config), args.url, args.token)
            return run(client, args)
        except Failed as exc:
            print(f"gateway {args.command}: {exc.message}", file=sys.stderr)
            return exc.code

    return main


def add_commands(
    commands: Any, common: argparse.ArgumentParser, config_path: Callable[[str | None], Path]
) -> None:
    """Register the admin commands on the `gateway` parser."""
    admin = argparse.ArgumentParser(add_help=False, parents=[common])
    admin.add_argument("--url", help="the admin API (default: the config's admin host and port)")
    admin.add_argument("--token", help="admin token (default: the config's admin.token)")
    admin.add_argument("--json", action="store_true", help="one JSON document")

    def add(name: str, run: Run, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, parents=[admin], help=text)
        p.set_defaults(run=_runner(run, config_path))
        return p

    add("status", status, "state, backlog and counters of every subscription")
    p = add("deadletters", deadletters, "list dead letters")
    p.add_argument("subscription", nargs="?", metavar="SUB")
    p.add_argument("--since", metavar="T", help="RFC 3339 time or a duration back (2h)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    p = add("redrive", redrive, "dead letters of SUB back into delivery")
    p.add_argument("subscription", metavar="SUB")
    p.add_argument("--since", metavar="T")
    p.add_argument("--until", metavar="T")
    p.add_argument("--filter", metavar="CESQL")
    p.add_argument("--id", action="append", metavar="ID", help="only this event id (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="only count")
    p = add("replay", replay, "deliver the events of a window to SUB again")
    p.add_argument("subscription", metavar="SUB")
    p.add_argument("--since", metavar="T", required=True)
    p.add_argument("--until", metavar="T")
    p.add_argument("--filter", metavar="CESQL")
    p.add_argument("--dry-run", action="store_true", help="only count")
    for verb in ("pause", "resume"):
        p = add(verb, _switch(verb), f"{verb} attempts to SUB")
        p.add_argument("subscription", metavar="SUB")
    add("reload", reload, "load the config again (same as SIGHUP)")
    events = commands.add_parser("events", help="stored events")
    shows = events.add_subparsers(dest="events_command", required=True)
    p = shows.add_parser("show", parents=[admin], help="one event's deliveries and attempts")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=_runner(event_show, config_path))
