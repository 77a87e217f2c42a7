"""Times in admin requests and answers: `T` is an RFC 3339 time or a duration back from now
(`2h`); answers carry RFC 3339 UTC times."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.config.durations import parse_duration
from gateway.errors import BadRequest


def parse_time(text: str, now: float, what: str) -> float:
    """Unix seconds of `text`: an RFC 3339 time, or `now` minus a duration."""
    text = text.strip()
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{what}: {text!r} is neither an RFC 3339 time nor a duration such as 2h"
        ) from None
    if moment.tzinfo is None:
        raise BadRequest(f"{what}: {text!r} has no UTC offset (add Z or +hh:mm)")
    return moment.timestamp()


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
