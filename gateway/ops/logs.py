"""Log lines with stable `key=value` fields (event_id, subscription, attempt, status, ...)."""

from __future__ import annotations

import logging
import sys
import time

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


class Throttled:
    """One WARNING per `interval` for a repeated event, with how many happened since the last
    line (an outage must not write a line per refused request)."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._log = logger
        self._interval = interval
        self._last = float("-inf")
        self._count = 0

    def warning(self, message: str, *args: object) -> None:
        """Log `message % args` now, or count it towards the next line."""
        self._count += 1
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        count, since, self._count, self._last = self._count, now - self._last, 0, now
        suffix = f" ({count} times in the last {since:.0f}s)" if count > 1 else ""
        self._log.warning(message + suffix, *args)
