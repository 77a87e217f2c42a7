"""Which addresses delivery may connect to (CONTRACT 5, egress guard): a pure policy check.

The check runs on the address a sink resolves to, at connect time (see
`gateway.delivery.egress`), so a name that resolves elsewhere later (DNS rebinding) is checked
again. Order: an address in `allow` is permitted; otherwise one in `deny`, in the built-in list
(link-local and cloud metadata addresses), or, with `deny_private`, in a private, loopback or
otherwise non-public range is refused.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused unless allowed: link-local (which holds 169.254.169.254, the metadata address of AWS,
# GCP, Azure, OpenStack and others) and the metadata addresses outside it.
BUILT_IN_DENY: tuple[tuple[Network, str], ...] = (
    (ipaddress.ip_network("169.254.0.0/16"), "link-local (cloud metadata)"),
    (ipaddress.ip_network("fe80::/10"), "link-local"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "cloud metadata (AWS IPv6)"),
    (ipaddress.ip_network("100.100.100.200/32"), "cloud metadata (Alibaba Cloud)"),
    (ipaddress.ip_network("168.63.129.16/32"), "cloud platform address (Azure)"),
)


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    deny_private: bool = False


def refusal(address: str | Address, policy: EgressPolicy) -> str | None:
    """Why delivery may not connect to `address`, or None when it may."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    if any(ip in net for net in policy.allow if net.version == ip.version):
        return None
    for net in policy.deny:
        if net.version == ip.version and ip in net:
            return f"{ip} is in egress.deny ({net})"
    for net, what in BUILT_IN_DENY:
        if net.version == ip.version and ip in net:
            return f"{ip} is {what}, denied by default"
    if policy.deny_private and not ip.is_global:
        return f"{ip} is not a public address (egress.deny_private)"
    return None


def literal_address(host: str) -> Address | None:
    """The address a URL's host names literally (`[::1]` too), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
