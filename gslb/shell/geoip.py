"""Client location from GeoIP2 databases (City, optionally ASN), opened once.

The readers use libmaxminddb's memory map through the maxminddb C extension (geoip2's
`MODE_MMAP_EXT`); results are memoised per /24 (IPv4) or /48 (IPv6) whenever the database
record covers that whole block, else per address (ECS addresses are already cut to their
prefix, so there are few), and a busy query path pays the lookup once per client network.
Every `Location` carries the record's own network: the decision depends on exactly that block,
which is the EDNS Client Subnet scope to announce.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb

from gslb.core.location import IPAddress, IPNetwork, Location

MEMO_PREFIX = {4: 24, 6: 48}
MEMO_MAX = 100_000


class GeoIpError(Exception):
    pass


class GeoIpLocator:
    def __init__(self, city: Path, asn: Path | None = None) -> None:
        self.city_path = city
        self.asn_path = asn
        self._city = _open(city, "City")
        self._asn = _open(asn, "ASN") if asn is not None else None
        self._memo: dict[tuple[int, int], Location] = {}

    def describe(self) -> dict[str, str]:
        out = {"city": f"{self.city_path} ({self._city.metadata().database_type})"}
        if self._asn is not None:
            out["asn"] = f"{self.asn_path} ({self._asn.metadata().database_type})"
        return out

    def locate(self, address: IPAddress) -> Location | None:
        version = address.version
        block = int(address) >> ((32 if version == 4 else 128) - MEMO_PREFIX[version])
        memo_key = (version, block)
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        exact_key = (-version, int(address))  # records narrower than the block: per address
        found = self._memo.get(exact_key)
        if found is not None:
            return found
        location = self._lookup(address)
        if len(self._memo) >= MEMO_MAX:
            self._memo.clear()
        wide = location.network.prefixlen <= MEMO_PREFIX[version]
        self._memo[memo_key if wide else exact_key] = location
        return location

    def _lookup(self, address: IPAddress) -> Location:
        try:
            city = self._city.city(address)
        except geoip2.errors.AddressNotFoundError as e:
            network: IPNetwork = e.network or ipaddress.ip_network(
                f"{address}/{address.max_prefixlen}"
            )
            location = Location(network)
        else:
            network = city.traits.network or ipaddress.ip_network(
                f"{address}/{address.max_prefixlen}"
            )
            location = Location(
                network,
                city.location.latitude,
                city.location.longitude,
                city.country.iso_code,
                city.continent.code,
                None,
                city.city.name,
                _subdivision(city),
            )
        if self._asn is None:
            return location
        try:
            asn = self._asn.asn(address)
        except geoip2.errors.AddressNotFoundError as e:
            asn_number, asn_network = None, e.network
        else:
            asn_number, asn_network = asn.autonomous_system_number, asn.network
        # The decision may depend on both records: the more specific block is the one to share.
        if asn_network is not None and asn_network.prefixlen > location.network.prefixlen:
            network = asn_network
        else:
            network = location.network
        return Location(
            network,
            location.lat,
            location.lon,
            location.country,
            location.continent,
            asn_number,
            location.city,
            location.subdivision,
        )


def _subdivision(city: geoip2.models.City) -> str | None:
    """The first-level subdivision as ISO 3166-2 writes it: country, hyphen, code (US-CA)."""
    top = city.subdivisions[0].iso_code if city.subdivisions else None
    country = city.country.iso_code
    return f"{country}-{top}" if top and country else None


def _open(path: Path, kind: str) -> geoip2.database.Reader:
    try:
        reader = geoip2.database.Reader(str(path), mode=maxminddb.MODE_MMAP_EXT)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
        raise GeoIpError(f"{path}: cannot open as a GeoIP2 database: {e}") from None
    database_type = reader.metadata().database_type
    if kind not in database_type:
        reader.close()
        raise GeoIpError(f"{path}: a {database_type} database, not a {kind} one")
    return reader
