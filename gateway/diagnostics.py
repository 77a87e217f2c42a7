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
    severity: str = "error"  # error | warning | info; only errors fail `gateway check`

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.severity != "error":
            text = f"{self.severity}: {text}"
        return f"{where}: {text}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }

    def github(self) -> str:
        """A GitHub Actions workflow command that annotates the file and line."""
        level = {"error": "error", "warning": "warning"}.get(self.severity, "notice")
        props = f"file={_escape(self.file, True)}"
        if self.line:
            props += f",line={self.line}"
        if self.path:
            props += f",title={_escape(self.path, True)}"
        return f"::{level} {props}::{_escape(self.message, False)}"


def _escape(text: str, property_value: bool) -> str:
    # GitHub Actions workflow commands: %, CR and LF always; ':' and ',' in property values.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_path(parts: tuple[str | int, ...]) -> str:
    """`("subscriptions", 0, "sink")` -> `subscriptions[0].sink`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
