"""Byte sizes as written in the configuration (`1MiB`, `512KiB`, `64kB`, `1000`) -> bytes."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
          "gb": 1000**3, "gib": 1024**3}  # fmt: skip
# The pattern the JSON Schema also uses (`gateway.config.spec.SIZE`).
SIZE = r"^[0-9]+ ?([kKmMgG]i?[bB]|[bB])?$"
_SIZE = re.compile(r"([0-9]+) ?([kKmMgG]i?[bB]|[bB])?")


def parse_size(text: str) -> int:
    """Bytes in `text`: a whole number with an optional unit (B, kB/KiB, MB/MiB, GB/GiB; the
    `i` forms are powers of 1024). Raises ValueError for anything else."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"not a size: {text!r}")
    return int(found.group(1)) * _UNITS[(found.group(2) or "").lower()]
