"""The sections of gateway.yaml other than subscriptions: server, store, producers, dispatch,
limits."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from pathlib import Path
from typing import Any

from gateway.config import fields as f
from gateway.config import spec
from gateway.config.expand import Parts
from gateway.config.fields import Source
from gateway.config.files import join
from gateway.config.model import TLS, Admin, Dispatch, Producer, Server
from gateway.egress import EgressPolicy, Network
from gateway.limits import Limits

SERVER_KEYS = spec.keys(spec.SERVER)
TLS_KEYS = spec.keys(spec.TLS)
PRODUCER_KEYS = spec.keys(spec.PRODUCER)
# CE core: extension names are [a-z0-9]+; the producer stamp must not shadow a core attribute.
EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")
CORE_ATTRIBUTES = frozenset(
    ("id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time",
     "data", "data_base64")
)  # fmt: skip
ADMIN_KEYS = spec.keys(spec.ADMIN)
EGRESS_KEYS = spec.keys(spec.EGRESS)
DISPATCH_KEYS = spec.keys(spec.DISPATCH)
POSTGRES_SCHEMES = ("postgresql", "postgres")
LIMITS_KEYS = spec.keys(spec.LIMITS)
MIN_ATTRIBUTE_BYTES = spec.MIN_ATTRIBUTE_BYTES


def read_server(src: Source, value: Any, base: Path) -> Server:
    parts: Parts = ("server",)
    raw = f.section(src, value, parts, SERVER_KEYS)
    kw: dict[str, Any] = {}
    for key, node in spec.SERVER.keys.items():
        if key not in raw:
            continue
        if key == "tls":
            kw[key] = _tls(src, raw[key], (*parts, key), base)
        else:
            kw[key] = f.scalar(src, node, raw[key], (*parts, key))
    return Server(**{k: v for k, v in kw.items() if v is not None})


def _tls(src: Source, value: Any, parts: Parts, base: Path) -> TLS | None:
    raw = f.mapping(src, value, parts)
    if raw is None:
        return None
    f.check_keys(src, raw, parts, TLS_KEYS)
    files: dict[str, Path | None] = {}
    for key in TLS_KEYS:
        if key not in raw:
            if key != "client_ca":
                src.report(parts, f"missing required key '{key}'")
            files[key] = None
            continue
        name = f.string(src, raw[key], (*parts, key))
        path = None if name is None else join(base, name)
        if path is not None and not path.is_file():
            src.report((*parts, key), "file not found")
        files[key] = path
    cert, private = files["cert"], files["key"]
    if cert is None or private is None:
        return None
    _check_tls_files(src, parts, cert, private, files["client_ca"])
    return TLS(cert, private, files["client_ca"])


def _check_tls_files(
    src: Source, parts: Parts, cert: Path, key: Path, client_ca: Path | None
) -> None:
    """Load the files as `serve` will, so that a bad pair fails `check`, not the start."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if cert.is_file() and key.is_file():
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError):
            message = "cannot load: not a readable PEM certificate with its matching private key"
            src.report((*parts, "cert"), message)
    if client_ca is not None and client_ca.is_file():
        try:
            context.load_verify_locations(client_ca)
        except (ssl.SSLError, OSError):
            src.report((*parts, "client_ca"), "cannot load: not readable PEM CA certificates")


def read_store(src: Source, value: Any, base: Path) -> dict[str, str]:
    """`store` (the URL as written) and `store_url` (with a sqlite path made absolute)."""
    parts: Parts = ("store",)
    text = f.string(src, value, parts)
    if text is None:
        return {}
    scheme, sep, rest = text.partition("://")
    if not sep:
        src.report(parts, "must be a URL like sqlite:///data/gateway.db or postgresql://...")
        return {}
    if scheme.lower() in POSTGRES_SCHEMES:
        return {"store": text, "store_url": text}
    if scheme.lower() != "sqlite":
        src.report(parts, f"unsupported store scheme '{scheme}' (supported: sqlite, postgresql)")
        return {}
    path, question, query = rest.partition("?")
    if path == ":memory:":
        return {"store": text, "store_url": text}
    # Three slashes: relative to gateway.yaml's folder; four: an absolute path.
    if not path.startswith("/") or path == "/" or path.endswith("/"):
        src.report(parts, "must be sqlite:///relative/file.db or sqlite:////absolute/file.db")
        return {}
    absolute = os.path.abspath(join(base, path[1:]))
    return {"store": text, "store_url": f"sqlite:///{absolute}{question}{query}"}


def read_producers(src: Source, value: Any) -> tuple[Producer, ...]:
    parts: Parts = ("producers",)
    items = f.sequence(src, value, parts) or []
    producers: list[Producer] = []
    owners: dict[str, str] = {}  # token -> producer name, to catch a token given twice
    for i, item in enumerate(items):
        at: Parts = (*parts, i)
        raw = f.mapping(src, item, at)
        if raw is None:
            continue
        f.check_keys(src, raw, at, PRODUCER_KEYS)
        name = f.string(src, raw["name"], (*at, "name")) if "name" in raw else None
        if "name" not in raw:
            src.report(at, "missing required key 'name'")
        elif name is not None and any(p.name == name for p in producers):
            src.report((*at, "name"), f"duplicate producer name '{name}'")
        client_cn = (
            f.string(src, raw["client_cn"], (*at, "client_cn")) if "client_cn" in raw else None
        )
        tokens = _tokens(src, raw, at, required=client_cn is None)
        for token in tokens:
            if token in owners:
                src.report((*at, "token"), f"the same token is given to producer '{owners[token]}'")
            owners[token] = name or ""
        globs = {k: _globs(src, raw, at, k) for k in ("sources", "types")}
        if name is not None:
            producers.append(
                Producer(name, tokens, globs["sources"], globs["types"], client_cn or None)
            )
    return tuple(producers)


def read_producer_attribute(src: Source, value: Any) -> str | None:
    name = f.string(src, value, ("producer_attribute",))
    if name is None:
        return None
    if not EXTENSION_NAME.match(name) or name in CORE_ATTRIBUTES:
        src.report(
            ("producer_attribute",),
            "must be an extension attribute name ([a-z0-9]+, not a core attribute)",
        )
        return None
    return name


def _tokens(src: Source, raw: dict[str, Any], parts: Parts, *, required: bool) -> tuple[str, ...]:
    if "token" not in raw:
        if required:
            src.report(parts, "missing required key 'token' (or 'client_cn')")
        return ()
    value, at = raw["token"], (*parts, "token")
    if isinstance(value, list):
        if not value:
            src.report(at, "must list at least one token")
        return f.strings(src, value, at) or ()
    token = f.string(src, value, at)
    return () if token is None else (token,)


def _globs(src: Source, raw: dict[str, Any], parts: Parts, key: str) -> tuple[str, ...]:
    if key not in raw:
        return ()
    return f.strings(src, raw[key], (*parts, key)) or ()


def read_egress(src: Source, value: Any) -> EgressPolicy:
    """`egress: {allow: [CIDR...], deny: [CIDR...], deny_private: false}` (CONTRACT 5)."""
    parts: Parts = ("egress",)
    raw = f.section(src, value, parts, EGRESS_KEYS)
    networks: dict[str, tuple[Network, ...]] = {}
    for key in ("allow", "deny"):
        found: list[Network] = []
        written = f.strings(src, raw[key], (*parts, key)) if key in raw else ()
        for i, text in enumerate(written or ()):
            try:
                found.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                src.report((*parts, key, i), "must be an IP address or CIDR range like 10.0.0.0/8")
        networks[key] = tuple(found)
    deny_private = False
    if "deny_private" in raw:
        if isinstance(raw["deny_private"], bool):
            deny_private = raw["deny_private"]
        else:
            src.report((*parts, "deny_private"), "must be true or false")
    return EgressPolicy(networks["allow"], networks["deny"], deny_private)


def read_dispatch(src: Source, value: Any) -> Dispatch:
    parts: Parts = ("dispatch",)
    raw = f.section(src, value, parts, DISPATCH_KEYS)
    kw: dict[str, Any] = {}
    for key, node in spec.DISPATCH.keys.items():
        if key in raw:
            kw[key] = f.scalar(src, node, raw[key], (*parts, key))
    return Dispatch(**{k: v for k, v in kw.items() if v is not None})


def read_limits(src: Source, value: Any) -> Limits:
    parts: Parts = ("limits",)
    raw = f.section(src, value, parts, LIMITS_KEYS)
    kw: dict[str, Any] = {}
    for key in LIMITS_KEYS:
        if key in raw:
            kw[key] = f.integer(src, raw[key], (*parts, key), MIN_ATTRIBUTE_BYTES)
    limits = Limits(**{k: v for k, v in kw.items() if v is not None})
    if limits.max_attribute_bytes > limits.max_attributes_bytes:
        src.report(
            (*parts, "max_attribute_bytes"),
            "must be <= limits.max_attributes_bytes (the limit for all attributes together)",
        )
    return limits


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_admin(src: Source, value: Any) -> Admin | None:
    """CONTRACT 6: `admin: {host, port, token}`; a token is required off loopback."""
    parts: Parts = ("admin",)
    raw = f.section(src, value, parts, ADMIN_KEYS)
    kw: dict[str, Any] = {}
    if "host" in raw:
        kw["host"] = f.string(src, raw["host"], (*parts, "host"))
    if "port" in raw:
        kw["port"] = f.integer(src, raw["port"], (*parts, "port"), 0, 65535)
    if raw.get("token") not in (None, ""):  # empty (an unset `${VAR:-}`): no token
        kw["token"] = f.string(src, raw["token"], (*parts, "token"))
    admin = Admin(**{k: v for k, v in kw.items() if v is not None})
    if admin.token is None and not loopback(admin.host) and raw.get("token") in (None, ""):
        src.report((*parts, "host"), "a token is required when the admin host is not loopback")
    return admin
