"""Load the configuration: gateway.yaml plus every subscription (and source) file it names.

`collect` gathers every problem in every file rather than stopping at the first, so that
`gateway check` can list them all; `load` raises them together as one `ConfigError`.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config import fields as f
from gateway.config import spec
from gateway.config.durations import parse_duration
from gateway.config.fields import Source
from gateway.config.files import discover, join, read, top
from gateway.config.model import Config, Subscription
from gateway.config.model import Source as SourceSpec
from gateway.config.sections import (
    read_admin,
    read_dispatch,
    read_egress,
    read_limits,
    read_producer_attribute,
    read_producers,
    read_server,
    read_store,
)
from gateway.config.sources import Seen, read_sources
from gateway.config.subscriptions import Headers, Layer, read_headers, read_layer, read_subscription
from gateway.diagnostics import Problem
from gateway.errors import ConfigError

__all__ = ["collect", "load", "parse_duration", "schemas_folder"]

GATEWAY_KEYS = spec.keys(spec.GATEWAY)
DEFAULTS_KEYS = spec.keys(spec.DEFAULTS)
VALIDATION_KEYS = spec.keys(spec.VALIDATION)
# CONTRACT 1: the layout puts schemas/ beside config/, sources/ and subscriptions/ inside it.
DEFAULT_SCHEMAS = "../schemas"
DEFAULT_SOURCES = "sources/"
DEFAULT_SUBSCRIPTIONS = "subscriptions/"
DEFAULT_STORE = Config(Path()).store
_DNS_NAME = re.compile(spec.DNS_NAME)


def load(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read gateway.yaml and every subscription file; raise ConfigError listing every problem."""
    config, problems = collect(path, env)
    if config is None:
        raise ConfigError(problems)
    return config


def collect(
    path: Path, env: Mapping[str, str] | None = None
) -> tuple[Config | None, list[Problem]]:
    """Like `load`, but return the problems; the config is None whenever there is one."""
    env = os.environ if env is None else env
    main, ok = read(path, env)
    files = [main]
    config = _build(main, path, env, files) if ok else None
    problems = [p for src in files for p in sorted(src.problems, key=lambda p: p.line)]
    return (None, problems) if problems or config is None else (config, [])


def schemas_folder(path: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """The schemas folder gateway.yaml names (or the default one), found even when another part
    of the config is broken, so that `gateway check` still checks the schemas (CONTRACT 2: a
    broken subscription file does not hide a broken schema). None when gateway.yaml cannot say
    or the folder does not exist (both reported by `collect`)."""
    main, ok = read(path, os.environ if env is None else env)
    document = main.located.value if ok else None
    if document is not None and not isinstance(document, dict):
        return None
    folder = _schemas(main, document or {}, path.parent)
    return folder if folder is not None and folder.is_dir() else None


def _build(main: Source, path: Path, env: Mapping[str, str], files: list[Source]) -> Config | None:
    document = main.located.value
    raw = {} if document is None else f.mapping(main, document, ())
    if raw is None:
        return None
    f.check_keys(main, raw, (), GATEWAY_KEYS)
    settings = _settings(main, raw, path.parent)
    subscriptions = _subscriptions(main, raw, path, env, files)
    sources = _sources(main, raw, path, env, files)
    shown = tuple(src.file for src in files)
    return Config(path=path, subscriptions=subscriptions, sources=sources, files=shown, **settings)


def _settings(main: Source, raw: dict[str, Any], base: Path) -> dict[str, Any]:
    kw: dict[str, Any] = {"server": read_server(main, raw.get("server"), base)}
    kw.update(read_store(main, raw.get("store", DEFAULT_STORE), base))
    kw["schemas"] = _schemas(main, raw, base)
    validation = f.section(main, raw.get("validation"), ("validation",), VALIDATION_KEYS)
    if "unknown_types" in validation:
        at = ("validation", "unknown_types")
        kw["unknown_types"] = f.scalar(
            main, spec.VALIDATION.keys["unknown_types"], validation["unknown_types"], at
        )
    for key in ("dedupe_window", "retention"):
        if key in raw:
            kw[key] = f.scalar(main, spec.GATEWAY.keys[key], raw[key], (key,))
    if "producers" in raw:
        kw["producers"] = read_producers(main, raw["producers"])
    if "producer_attribute" in raw:
        kw["producer_attribute"] = read_producer_attribute(main, raw["producer_attribute"])
    kw["dispatch"] = read_dispatch(main, raw.get("dispatch"))
    kw["egress"] = read_egress(main, raw.get("egress"))
    kw["limits"] = read_limits(main, raw.get("limits"))
    if "admin" in raw:
        kw["admin"] = read_admin(main, raw["admin"])
    kw["origin"] = _origin(main, raw)
    return {k: v for k, v in kw.items() if v is not None}


def _origin(main: Source, raw: dict[str, Any]) -> str | None:
    """`origin:` (CE webhook 4, WebHook-Request-Origin): a DNS name; by default the machine's
    fully qualified host name."""
    if "origin" not in raw:
        found = socket.getfqdn()
        return found if _DNS_NAME.fullmatch(found) else "localhost"
    name = f.string(main, raw["origin"], ("origin",))
    if name is not None and not _DNS_NAME.fullmatch(name):
        main.report(("origin",), "must be a DNS name like events.example.com")
        return None
    return name


def _schemas(main: Source, raw: dict[str, Any], base: Path) -> Path | None:
    if "schemas" not in raw:
        return join(base, DEFAULT_SCHEMAS)
    name = f.string(main, raw["schemas"], ("schemas",))
    if name is None:
        return None
    folder = join(base, name)
    if not folder.is_dir():
        main.report(("schemas",), "folder not found")
    return folder


def _defaults(main: Source, value: Any) -> tuple[Layer, Headers]:
    raw = f.section(main, value, ("defaults",), DEFAULTS_KEYS)
    layer, headers = Layer(), {}
    if "delivery" in raw:
        layer = read_layer(main, raw["delivery"], ("defaults", "delivery"))
    if "headers" in raw:
        headers = read_headers(main, raw["headers"], ("defaults", "headers"))
    return layer, headers


def _files(main: Source, raw: dict[str, Any], key: str, default: str, path: Path) -> list[Path]:
    found = discover(main, raw.get(key, default), (key,), path.parent)
    itself = path.resolve()
    return [p for p in found if p.resolve() != itself]


def _subscriptions(
    main: Source, raw: dict[str, Any], path: Path, env: Mapping[str, str], files: list[Source]
) -> tuple[Subscription, ...]:
    layer, headers = _defaults(main, raw.get("defaults"))
    out: list[Subscription] = []
    first: dict[str, str] = {}  # name -> "file:line" where it is first declared
    for file in _files(main, raw, "subscriptions", DEFAULT_SUBSCRIPTIONS, path):
        src, ok = read(file, env)
        files.append(src)
        value = top(src, "subscriptions") if ok else None
        items = [] if value is None else f.sequence(src, value, ("subscriptions",)) or []
        for i, item in enumerate(items):
            parts = ("subscriptions", i)
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name in first:
                src.report(
                    (*parts, "name"),
                    f"duplicate subscription name '{name}' (first at {first[name]})",
                )
            elif isinstance(name, str):
                first[name] = f"{src.file}:{src.located.line(parts)}"
            sub = read_subscription(src, item, parts, layer, headers)
            if sub is not None:
                out.append(sub)
    return tuple(out)


def _sources(
    main: Source, raw: dict[str, Any], path: Path, env: Mapping[str, str], files: list[Source]
) -> tuple[SourceSpec, ...]:
    seen = Seen()  # names and paths are unique across every sources file
    out: list[SourceSpec] = []
    for file in _files(main, raw, "sources", DEFAULT_SOURCES, path):
        src, ok = read(file, env)
        files.append(src)
        value = top(src, "sources") if ok else None
        items = [] if value is None else f.sequence(src, value, ("sources",)) or []
        out.extend(read_sources(src, items, seen))
    return tuple(out)
