"""Problems found in configuration and schema files, reported as `FILE:LINE: path: message`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    path: str  # key path inside the file, e.g. "subscriptions[0].delivery.retry.max_attempts"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


def format_path(parts: tuple[str | int, ...]) -> str:
    """`("subscriptions", 0, "sink")` -> `subscriptions[0].sink`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
