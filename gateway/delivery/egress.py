"""The egress guard at connect time (CONTRACT 5): a resolver that drops refused addresses.

aiohttp resolves a sink's host name through the connector's resolver on every new connection
(its DNS cache aside), so filtering there checks the address actually connected to: a name that
later resolves to a metadata address (DNS rebinding) is refused then. Hosts written as literal
addresses skip resolvers; the sender checks those itself (`literal_refusal`).
"""

from __future__ import annotations

import socket
from functools import lru_cache

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from gateway.egress import EgressPolicy, literal_address, refusal


class EgressRefused(OSError):
    """Every address of a sink is refused by the egress policy; the message says why."""


class GuardedResolver(AbstractResolver):
    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for result in found:
            why = refusal(result["host"], self._policy)
            if why is None:
                kept.append(result)
            else:
                reasons.append(why)
        if not kept:
            raise EgressRefused(f"egress refused: {host} resolves to {'; '.join(reasons)}")
        return kept

    async def close(self) -> None:
        await self._inner.close()


@lru_cache(maxsize=1024)
def literal_refusal(url: str, policy: EgressPolicy) -> str | None:
    """Why a sink whose host is a literal address is refused, or None (also for names)."""
    try:
        host = URL(url).raw_host
    except (ValueError, TypeError):
        return None  # the request itself will fail, with its own reason
    address = None if host is None else literal_address(host)
    if address is None:
        return None
    why = refusal(address, policy)
    return None if why is None else f"egress refused: {why}"
