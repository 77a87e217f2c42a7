"""The gateway's own options on a `postgresql://` store URL, taken off before the driver sees it.

`pool_min`, `pool_max`, `timeout`, `max_waiting` and `replica` (see `PoolSettings`); everything
else goes to the driver. Errors never repeat the URL (it may hold a password).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.errors import StoreUnavailable

OPTIONS = ("pool_min", "pool_max", "timeout", "max_waiting", "replica")
# Session settings unless the URL names them: how operators find the gateway in pg_stat_activity.
DRIVER_DEFAULTS = (("application_name", "gateway"),)


@dataclass(frozen=True, slots=True)
class PoolSettings:
    pool_min: int = 1
    pool_max: int = 10
    timeout: float = 10.0
    max_waiting: int = 1000  # ingest requests queued for the group commit; more answer 429
    replica: str = ""  # this replica's identity; "" = the host name


def parse_url(url: str) -> tuple[str, PoolSettings]:
    """Take the gateway's options off a `postgresql://` URL: the driver's URL and the settings.

    Errors never repeat the URL (it may hold a password).
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in OPTIONS}
    rest = [(key, value) for key, value in query if key not in ours]
    defaults = PoolSettings()
    try:
        settings = PoolSettings(
            pool_min=int(ours.get("pool_min", defaults.pool_min)),
            pool_max=int(ours.get("pool_max", defaults.pool_max)),
            timeout=float(ours.get("timeout", defaults.timeout)),
            max_waiting=int(ours.get("max_waiting", defaults.max_waiting)),
            replica=ours.get("replica", defaults.replica),
        )
    except ValueError:
        raise StoreUnavailable(
            "store unavailable: pool_min, pool_max and max_waiting must be whole numbers, "
            "timeout seconds"
        ) from None
    if not 0 <= settings.pool_min <= settings.pool_max or settings.pool_max < 1:
        raise StoreUnavailable(
            "store unavailable: need 0 <= pool_min <= pool_max and pool_max >= 1"
        )
    if not settings.timeout > 0:
        raise StoreUnavailable("store unavailable: timeout must be more than 0 seconds")
    if settings.max_waiting < 1:
        raise StoreUnavailable("store unavailable: max_waiting must be at least 1")
    given = {key for key, _ in rest}
    for key, value in DRIVER_DEFAULTS:
        if key not in given:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), settings




def for_worker(url: str, index: int) -> str:
    """The store URL of worker `index` of `gateway serve --workers`: the same database, its own
    replica identity (`<replica or host name>-w<index>`)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    replica = dict(query).get("replica") or socket.gethostname()
    query = [(key, value) for key, value in query if key != "replica"]
    query.append(("replica", f"{replica}-w{index}"))
    return urlunsplit(parts._replace(query=urlencode(query)))
