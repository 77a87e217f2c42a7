"""Durations as written in the configuration (`250ms`, `10s`, `5m`, `2h`, `1d`) -> float seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """Seconds in `text`: `250ms`, `10s`, `5m`, `2h`, `1d`, compounds such as `1h30m`, or a bare
    number of seconds (`1.5`). Raises ValueError for anything else, negatives included."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    total = 0.0
    pos = 0
    for part in _PART.finditer(text):
        if part.start() != pos:
            break
        total += float(part.group(1)) * _UNITS[part.group(2)]
        pos = part.end()
    if pos == 0 or pos != len(text) or not math.isfinite(total):
        raise ValueError(f"not a duration: {text!r}")
    return total
