"""The command line's client of the admin API: where it is (the config's `admin` section, or
`--url`/`--token`), one JSON request at a time, and what a failure means for the exit code
(CONTRACT 6: 0 ok, 1 refused or invalid, 2 cannot reach the gateway)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from gateway.config.files import display, read
from gateway.config.sections import read_admin

TIMEOUT = 120.0  # seconds: a redrive of many rows answers once they are all queued
ENABLE = (
    "no admin listener is configured: add `admin: {host: 127.0.0.1, port: 8081}` to {file} "
    "(and restart the gateway), or name one with --url"
)


class Failed(Exception):
    """A request that did not succeed; `code` is the exit code it stands for."""

    def __init__(self, message: str, code: int, body: Any = None) -> None:
        super().__init__(message)
        self.message, self.code, self.body = message, code, body


@dataclass(frozen=True, slots=True)
class Client:
    url: str  # http://host:port, without the /admin/v1 prefix
    token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str | None] | None = None,
    ) -> Any:
        target = f"{self.url}/admin/v1{path}"
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = orjson.dumps(dict(body))
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(target, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = orjson.loads(raw)
            except orjson.JSONDecodeError:
                answer = None
            if exc.code == 422 and isinstance(answer, dict) and "problems" in answer:
                raise Failed("refused", 1, answer) from None
            detail = answer.get("detail") if isinstance(answer, dict) else None
            code = 2 if exc.code >= 500 else 1
            raise Failed(f"{exc.code}: {detail or exc.reason}", code, answer) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Failed(f"cannot reach the gateway at {self.url}: {reason}", 2) from None


def locate(config: Path, url: str | None, token: str | None) -> Client:
    """The admin API named by `--url`/`--token` or by the config's `admin` section. Only that
    section is read, so that a config broken by an edit can still be reloaded (and refused)."""
    admin = None
    src, ok = read(config, os.environ)
    raw = src.located.value if ok else None
    if isinstance(raw, dict) and raw.get("admin") is not None:
        admin = read_admin(src, raw["admin"])
    if url is None:
        if admin is None:
            if not config.exists():
                raise Failed(
                    f"{display(config)}: file not found; name the config with -c FILE or "
                    "$GATEWAY_CONFIG, or the admin API with --url", 2
                )  # fmt: skip
            raise Failed(ENABLE.replace("{file}", display(config)), 2)
        host = f"[{admin.host}]" if ":" in admin.host else admin.host
        url = f"http://{host}:{admin.port}"
    if token is None and admin is not None:
        token = admin.token
    return Client(url.rstrip("/"), token)
