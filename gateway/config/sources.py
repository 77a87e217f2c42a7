"""Any-format sources, read from `config/sources/*.yaml` (CONTRACT 1, config/sources).

Each entry names a source, optionally a preset, its path (default `/sources/<name>`), how its
requests are verified and the templates that build each CloudEvent attribute. A preset's
`verify` keys are laid under the source's own (unless the source names another `kind`) and its
`event` templates are replaced attribute by attribute (`null` drops one). Templates are compiled
here, so a syntax error is reported with its file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway.config import fields as f
from gateway.config import spec
from gateway.config.expand import UNRESOLVED, Parts
from gateway.config.fields import Source as File
from gateway.config.model import Source, Verify
from gateway.sources.kinds import (
    ALGORITHMS,
    ENCODINGS,
    KINDS,
    STANDARD_WEBHOOKS_TOLERANCE,
    is_standard_webhooks_secret,
)
from gateway.sources.presets import PRESETS, SCHEMES, Preset
from gateway.sources.templates import (
    ATTRIBUTE_ROOTS,
    SIGNATURE_ROOTS,
    TIMESTAMP,
    Template,
    TemplateError,
    compile_template,
    literal,
)

SOURCE_KEYS = spec.keys(spec.SOURCE)
VERIFY_KEYS = spec.VERIFY_KEYS
# Paths the gateway serves itself (CONTRACT 3).
RESERVED_PATHS = ("/events", "/healthz", "/readyz", "/metrics")
# CE core: attribute names; these are set by the gateway, not by templates.
_NOT_TEMPLATED = {
    "specversion": "is always 1.0",
    "datacontenttype": "is the request's Content-Type",
    "data": "is the request body",
}
assert tuple(_NOT_TEMPLATED) == spec.NOT_TEMPLATED
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_ATTRIBUTE = re.compile(r"[a-z0-9]+")
_HEADER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2 token
_PATH = re.compile(r"(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+")


@dataclass
class Seen:
    """Names and paths declared so far across every sources file: "file:line" of the first."""

    names: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)


def read_sources(src: File, items: list[Any], seen: Seen) -> list[Source]:
    """Every `sources[i]` entry of one file that has no problem."""
    out: list[Source] = []
    for i, item in enumerate(items):
        source = read_source(src, item, ("sources", i), seen)
        if source is not None:
            out.append(source)
    return out


def read_source(src: File, value: Any, parts: Parts, seen: Seen) -> Source | None:
    """One `sources[i]` entry, or None after reporting its problems."""
    raw = f.mapping(src, value, parts)
    if raw is None:
        return None
    before = len(src.problems)
    f.check_keys(src, raw, parts, SOURCE_KEYS)
    name = _name(src, raw, parts)
    preset = _preset(src, raw, parts)
    path = _path(src, raw, parts, name)
    _remember(src, parts, seen, (name, path), explicit="path" in raw)
    if "preset" in raw and preset is None:
        return None  # its verify and event would be measured against nothing
    verify = _verify(src, raw, parts, preset)
    event = _event(src, raw, parts, preset, name)
    payload = preset.payload_field if preset else None
    if "payload_field" in raw:
        payload = f.string(src, raw["payload_field"], (*parts, "payload_field"))
    if name is None or path is None or verify is None or event is None:
        return None
    if len(src.problems) > before:
        return None
    return Source(
        name=name,
        path=path,
        verify=verify,
        event=event,
        preset=raw.get("preset"),
        payload_field=payload,
        handshake=preset.handshake if preset else None,
        file=src.file,
        line=src.located.line(parts),
    )


def _name(src: File, raw: dict[str, Any], parts: Parts) -> str | None:
    if "name" not in raw:
        src.report(parts, "missing required key 'name'")
        return None
    name = f.string(src, raw["name"], (*parts, "name"))
    if name is not None and not _NAME.fullmatch(name):
        src.report((*parts, "name"), "must match [a-z0-9][a-z0-9_-]* (lower-case)")
        return None
    return name


def _preset(src: File, raw: dict[str, Any], parts: Parts) -> Preset | None:
    if "preset" not in raw:
        return None
    name = f.choice(src, raw["preset"], (*parts, "preset"), PRESETS)
    return None if name is None else PRESETS[name]


def _path(src: File, raw: dict[str, Any], parts: Parts, name: str | None) -> str | None:
    if "path" not in raw:
        return None if name is None else f"/sources/{name}"
    at = (*parts, "path")
    path = f.string(src, raw["path"], at)
    if path is None:
        return None
    if not _PATH.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        src.report(at, "must be a plain absolute path such as /sources/shop (no query, no "
                       "braces, no trailing slash)")  # fmt: skip
        return None
    for reserved in RESERVED_PATHS:
        if path == reserved or path.startswith(reserved + "/"):
            src.report(at, f"collides with the gateway's own endpoint {reserved}")
            return None
    return path


def _remember(
    src: File, parts: Parts, seen: Seen, key: tuple[str | None, str | None], *, explicit: bool
) -> None:
    name, path = key
    here = f"{src.file}:{src.located.line(parts)}"
    if name is not None:
        if name in seen.names:
            src.report((*parts, "name"), f"duplicate source name '{name}' (first at "
                                         f"{seen.names[name]})")  # fmt: skip
        else:
            seen.names[name] = here
    if path is not None:
        if path in seen.paths:
            at = (*parts, "path") if explicit else parts
            src.report(at, f"path {path} is already taken (first at {seen.paths[path]})")
        else:
            seen.paths[path] = here


# -- verify ----------------------------------------------------------------------------------


def _verify(src: File, raw: dict[str, Any], parts: Parts, preset: Preset | None) -> Verify | None:
    at = (*parts, "verify")
    own = f.mapping(src, raw["verify"], at) if "verify" in raw else {}
    if own is None:
        return None
    if preset is not None and "kind" not in own:
        merged = {**preset.verify, **own}
    elif "verify" in raw:
        merged = dict(own)
    else:
        src.report(parts, "missing required key 'verify' (write `verify: {kind: none}` to "
                          "accept unsigned requests)")  # fmt: skip
        return None
    if "kind" not in merged:
        src.report(at, "missing required key 'kind'")
        return None
    scheme = f.choice(src, merged["kind"], (*at, "kind"), (*KINDS, *SCHEMES))
    if scheme is None:
        return None
    if scheme in SCHEMES:
        merged = {**SCHEMES[scheme], **{k: v for k, v in merged.items() if k != "kind"}}
    kind = str(merged["kind"])
    f.check_keys(src, own, at, VERIFY_KEYS[kind])
    return _verify_fields(src, merged, at, kind, scheme)


def _verify_fields(
    src: File, raw: dict[str, Any], at: Parts, kind: str, scheme: str
) -> Verify | None:
    before = len(src.problems)
    kw: dict[str, Any] = {"kind": kind, "scheme": scheme}
    if kind != "none":
        kw["secrets"] = _secrets(src, raw, at, kind)
    if kind in ("hmac", "token") or (kind == "stripe" and "header" in raw):
        kw["header"] = _header(src, raw.get("header"), (*at, "header"))
    if kind in ("hmac", "token") and "prefix" in raw:
        kw["prefix"] = _text(src, raw["prefix"], (*at, "prefix"))
    if "tolerance" in raw and "tolerance" in VERIFY_KEYS[kind]:
        kw["tolerance"] = f.duration(src, raw["tolerance"], (*at, "tolerance"), positive=True)
        if kind == "standard-webhooks" and (kw["tolerance"] or 0) > STANDARD_WEBHOOKS_TOLERANCE:
            src.report((*at, "tolerance"), "must be <= 5m (the Standard Webhooks tolerance)")
    if kind == "basic" and "username" in raw:
        kw["username"] = f.string(src, raw["username"], (*at, "username"))
    if kind == "hmac":
        kw.update(_hmac_fields(src, raw, at))
    if len(src.problems) > before:
        return None
    return Verify(**kw)


def _hmac_fields(src: File, raw: dict[str, Any], at: Parts) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if "algorithm" in raw:
        kw["algorithm"] = f.choice(src, raw["algorithm"], (*at, "algorithm"), ALGORITHMS)
    if "encoding" in raw:
        kw["encoding"] = f.choice(src, raw["encoding"], (*at, "encoding"), ENCODINGS)
    if "timestamp_header" in raw:
        header = _header(src, raw["timestamp_header"], (*at, "timestamp_header"))
        kw["timestamp_header"] = header
    if "signed" in raw:
        signed = _template(src, raw["signed"], (*at, "signed"), SIGNATURE_ROOTS)
        if (
            signed is not None
            and "timestamp_header" not in raw
            and any(r.root == TIMESTAMP for r in signed.references)
        ):
            src.report((*at, "signed"), "uses {timestamp}: set timestamp_header too")
        kw["signed"] = signed
    return kw


def _secrets(src: File, raw: dict[str, Any], at: Parts, kind: str) -> tuple[str, ...]:
    if "secret" not in raw:
        src.report(at, "missing required key 'secret'")
        return ()
    value, parts = raw["secret"], (*at, "secret")
    if isinstance(value, list):
        if not value:
            src.report(parts, "must list at least one secret")
        secrets = f.strings(src, value, parts) or ()
    else:
        secret = f.string(src, value, parts)
        secrets = () if secret is None else (secret,)
    if kind == "standard-webhooks":
        for i, secret in enumerate(secrets):
            if not is_standard_webhooks_secret(secret):
                where = (*parts, i) if isinstance(value, list) else parts
                src.report(where, "must be 'whsec_' followed by base64")
    return secrets


def _header(src: File, value: Any, parts: Parts) -> str:
    if value is None:
        src.report(parts[:-1], f"missing required key '{parts[-1]}'")
        return ""
    name = f.string(src, value, parts)
    if name is not None and not _HEADER.fullmatch(name):
        src.report(parts, "is not a valid header name")
    return (name or "").lower()


def _text(src: File, value: Any, parts: Parts) -> str:
    """A string that may be empty (a prefix)."""
    if value is UNRESOLVED:
        return ""
    if not isinstance(value, str):
        src.report(parts, "must be a string")
        return ""
    return value


# -- event -----------------------------------------------------------------------------------

Event = tuple[tuple[str, tuple[Template, ...]], ...]


def _event(
    src: File, raw: dict[str, Any], parts: Parts, preset: Preset | None, name: str | None
) -> Event | None:
    at = (*parts, "event")
    own = f.mapping(src, raw["event"], at) if "event" in raw else {}
    if own is None:
        return None
    if preset is None and "event" not in raw:
        src.report(parts, "missing required key 'event'")
        return None
    merged = {**(preset.event if preset else {}), **own}
    if merged.get("type") is None:
        src.report(at, "missing required key 'type'")
    out: dict[str, tuple[Template, ...]] = {}
    if merged.get("source") is None and name is not None:
        out["source"] = (literal(f"/sources/{name}"),)
    for attribute, value in merged.items():
        where = (*at, attribute)
        if not _attribute_name(src, attribute, where) or value is None:
            continue
        templates = _templates(src, value, where)
        if templates is not None:
            out[attribute] = templates
    if "id" in out and all(not t.references for t in out["id"]):
        src.report((*at, "id"), "has no reference: every request would get the same id")
    return tuple(out.items())


def _attribute_name(src: File, name: str, parts: Parts) -> bool:
    if name in _NOT_TEMPLATED:
        src.report(parts, f"'{name}' {_NOT_TEMPLATED[name]} and cannot be set by a template")
        return False
    if not _ATTRIBUTE.fullmatch(name):
        src.report(parts, "is not a CloudEvents attribute name (lower-case a-z and 0-9 only)")
        return False
    return True


def _templates(src: File, value: Any, parts: Parts) -> tuple[Template, ...] | None:
    if isinstance(value, list):
        if not value:
            src.report(parts, "must list at least one template")
            return None
        found = [_template(src, v, (*parts, i), ATTRIBUTE_ROOTS) for i, v in enumerate(value)]
        return None if None in found else tuple(t for t in found if t is not None)
    template = _template(src, value, parts, ATTRIBUTE_ROOTS)
    return None if template is None else (template,)


def _template(src: File, value: Any, parts: Parts, roots: tuple[str, ...]) -> Template | None:
    text = f.string(src, value, parts)
    if text is None:
        return None
    try:
        return compile_template(text, roots)
    except TemplateError as exc:
        src.report(parts, f"invalid template: {exc}")
        return None
