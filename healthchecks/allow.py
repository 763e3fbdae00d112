"""Which addresses a checker may probe: its allow list, and what is never probed unasked.

A checker must not become a tool for reaching what its network can reach but the internet
should not: a zone writer could name any address as a member. With `--allow-targets`, only
members inside those networks are probed. Whatever the list, link-local addresses and the
cloud metadata services (169.254.0.0/16 — 169.254.169.254 among them —, fe80::/10,
fd00:ec2::254) are refused unless a network of the allow list names them explicitly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NEVER_UNASKED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")
)


class TargetPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in allow)

    def permits(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False
        allowed = [n for n in self.allow if n.version == ip.version and ip in n]
        if any(n.version == ip.version and ip in n for n in NEVER_UNASKED):
            # Only a network of the list that lies inside those ranges names them: a
            # catch-all such as 0.0.0.0/0 does not.
            return any(_inside(n, NEVER_UNASKED) for n in allowed)
        return bool(allowed) or not self.allow


def _inside(network: Network, ranges: tuple[Network, ...]) -> bool:
    return any(
        network.version == r.version and network.subnet_of(r)  # type: ignore[arg-type]
        for r in ranges
    )
