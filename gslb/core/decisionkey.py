"""The client's decision key: how much of the client a dynamic answer depends on.

A dynamic reply is cached per client *network*, not per client: the GeoIP record's network
the decision used, a sticky /24 or /56, the longest topology CIDR rule, or nothing at all for
pools that never look at the client. That network is also the EDNS Client Subnet scope the
reply announces (RFC 7871 §7.2.1). The address decisions use is the Client Subnet when given
(and not /0), else the resolver's own (§7.1.1).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, NamedTuple

from gslb.core.location import ClientInfo, IPAddress, Location
from gslb.core.query import Query
from gslb.core.snapshot import Snapshot

if TYPE_CHECKING:
    from gslb.core.replycache import Route


class Client(NamedTuple):
    """Who asked: the resolver's address and port, and whether over TCP."""

    address: str
    port: int
    tcp: bool = False


BLIND = ClientInfo(ipaddress.IPv4Address(0), None)  # for pools that never look at the client


def _client_bits(query: Query, client: Client) -> tuple[int, int, int | None]:
    """(IP version, address as an integer, ECS source prefix or None): the address decisions
    use is the EDNS Client Subnet when given (and not /0), else the resolver's own address
    (RFC 7871 §7.1.1)."""
    ecs = query.edns.ecs if query.edns is not None else None
    if ecs is not None and ecs.source > 0:
        size = 4 if ecs.family == 1 else 16
        value = int.from_bytes(ecs.address, "big") << (8 * (size - len(ecs.address)))
        return (4 if size == 4 else 6), value, ecs.source
    host = client.address
    if ":" in host:
        return (
            6,
            int.from_bytes(socket.inet_pton(socket.AF_INET6, host.partition("%")[0]), "big"),
            None,
        )
    return 4, int.from_bytes(socket.inet_aton(host), "big"), None


def client_info(query: Query, client: Client) -> ClientInfo:
    version, value, source = _client_bits(query, client)
    return ClientInfo(_address(version, value), source)


def _address(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def client_decision(
    route: Route, query: Query, client: Client, snapshot: Snapshot
) -> tuple[ClientInfo, bytes, int]:
    """(client info, decision key, ECS scope) for a dynamic route.

    The decision key is the client's address cut to the prefix the decision depends on (the
    GeoIP record's network, a sticky /24 or /56, topology CIDR rules), as
    `version, prefix, network bits`; client-blind routes share the empty key.
    """
    needs = route.precision
    if needs.blind:
        return BLIND, b"", 0
    version, value, source = _client_bits(query, client)
    bits = 32 if version == 4 else 128
    address = _address(version, value)
    prefix = 0
    location: Location | None = None
    if needs.geo and snapshot.locator is not None:
        location = snapshot.locator.locate(address)
        if location is not None:
            prefix = location.network.prefixlen
    prefix = max(prefix, needs.ipv4 if version == 4 else needs.ipv6)
    network = (value >> (bits - prefix)) << (bits - prefix) if prefix else 0
    key = bytes((version, prefix)) + network.to_bytes(bits // 8, "big")
    return ClientInfo(address, source, location), key, prefix
