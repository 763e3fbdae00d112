"""Where a client is: the answer to "which network, where on Earth, which AS".

The core only knows the `Locator` protocol; the shell implements it over GeoIP2 databases.
A `Location` carries the GeoIP record's own network, which is what the answer depends on and
so the EDNS Client Subnet scope to announce (RFC 7871 §7.2.1).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Location:
    network: IPNetwork
    lat: float | None = None
    lon: float | None = None
    country: str | None = None
    continent: str | None = None
    asn: int | None = None
    city: str | None = None
    subdivision: str | None = None  # ISO 3166-2, country first (US-CA): the first level


class Locator(Protocol):
    def locate(self, address: IPAddress) -> Location | None: ...


@dataclass(frozen=True, slots=True)
class ClientInfo:
    address: IPAddress  # the ECS address when given, else the resolver's
    source_prefix: int | None  # the ECS source prefix, None without ECS
    location: Location | None = None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
