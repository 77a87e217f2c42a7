"""Log lines with stable `key=value` fields (event_id, subscription, attempt, status, ...)."""

from __future__ import annotations

import logging
import sys

from gateway.redact import CLIP, clip

FIELDS = ("event_id", "subscription", "kind", "attempt", "status", "latency_ms", "error")
ERROR_CHARS = 512  # an error description is longer than an identifier, but still bounded


class FieldFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [
            f"{name}={clip(str(value), ERROR_CHARS if name == 'error' else CLIP)}"
            for name in FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        return f"{line} {' '.join(extra)}" if extra else line


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
