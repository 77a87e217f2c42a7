"""The egress guard: the policy table, and the resolver that applies it at connect time."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.delivery.egress import EgressRefused, GuardedResolver, literal_refusal
from gateway.egress import EgressPolicy, literal_address, refusal


def nets(*texts: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


DEFAULT = EgressPolicy()
PRIVATE = EgressPolicy(deny_private=True)


@pytest.mark.parametrize(
    ("address", "policy", "refused"),
    [
        ("93.184.216.34", DEFAULT, None),
        ("127.0.0.1", DEFAULT, None),  # loopback is fine unless deny_private
        ("10.1.2.3", DEFAULT, None),
        ("169.254.169.254", DEFAULT, "link-local (cloud metadata), denied by default"),
        ("169.254.10.1", DEFAULT, "link-local"),
        ("::ffff:169.254.169.254", DEFAULT, "link-local"),  # IPv4-mapped is the same address
        ("fe80::1", DEFAULT, "link-local"),
        ("fd00:ec2::254", DEFAULT, "cloud metadata (AWS IPv6)"),
        ("100.100.100.200", DEFAULT, "Alibaba"),
        ("127.0.0.1", PRIVATE, "not a public address"),
        ("::1", PRIVATE, "not a public address"),
        ("10.1.2.3", PRIVATE, "not a public address"),
        ("192.168.1.1", PRIVATE, "not a public address"),
        ("100.64.0.1", PRIVATE, "not a public address"),  # shared address space (RFC 6598)
        ("93.184.216.34", PRIVATE, None),
        ("10.1.2.3", EgressPolicy(deny=nets("10.0.0.0/8")), "egress.deny (10.0.0.0/8)"),
        # allow wins over deny, the built-in list and deny_private
        ("10.1.2.3", EgressPolicy(allow=nets("10.1.0.0/16"), deny=nets("10.0.0.0/8")), None),
        ("169.254.169.254", EgressPolicy(allow=nets("169.254.169.254/32")), None),
        ("127.0.0.1", EgressPolicy(allow=nets("127.0.0.1/32"), deny_private=True), None),
        ("::1", EgressPolicy(allow=nets("127.0.0.0/8"), deny_private=True), "not a public"),
    ],
)
def test_refusal(address: str, policy: EgressPolicy, refused: str | None) -> None:
    why = refusal(address, policy)
    if refused is None:
        assert why is None
    else:
        assert why is not None
        assert refused in why


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("::1", "::1"), ("example.com", None),
     ("2130706433", None)],
)
def test_literal_address(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (None if found is None else str(found)) == address


def test_literal_refusal_reads_the_sink_url() -> None:
    deny_loopback = EgressPolicy(deny=nets("127.0.0.0/8", "::1/128"))
    assert literal_refusal("http://127.0.0.1:9/hook", deny_loopback) is not None
    assert literal_refusal("http://[::1]:9/hook", deny_loopback) is not None
    assert literal_refusal("http://localhost:9/hook", deny_loopback) is None  # the resolver's
    assert literal_refusal("http://169.254.169.254/latest", DEFAULT) is not None


class Answers(AbstractResolver):
    """Stands in for DNS, which cannot be made to answer a metadata address on this machine."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_the_resolver_drops_refused_addresses_and_keeps_the_rest() -> None:
    resolver = GuardedResolver(DEFAULT, Answers("169.254.169.254", "93.184.216.34"))
    kept = await resolver.resolve("sink.example", 443)
    assert [r["host"] for r in kept] == ["93.184.216.34"]


async def test_a_name_that_resolves_only_to_refused_addresses_fails_with_the_reason() -> None:
    resolver = GuardedResolver(DEFAULT, Answers("169.254.169.254"))
    with pytest.raises(EgressRefused, match=r"egress refused: rebound\.example resolves to "
                                            r"169\.254\.169\.254 is link-local"):
        await resolver.resolve("rebound.example", 80)
