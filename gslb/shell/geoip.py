"""Client location from GeoIP2 databases (City, optionally ASN), opened once.

The readers use libmaxminddb's memory map through the maxminddb C extension
(`MODE_MMAP_EXT`), read as the records the database holds: geoip2's model objects (and the
`ipaddress` network each builds) cost three quarters of a lookup, paid once per new client
network, which is where a mix of many client subnets spends its first pass. Results are
memoised per /24 (IPv4) or /48 (IPv6) whenever the database
record covers that whole block, else per address (ECS addresses are already cut to their
prefix, so there are few), and a busy query path pays the lookup once per client network.
Every `Location` carries the record's own network: the decision depends on exactly that block,
which is the EDNS Client Subnet scope to announce.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

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
        record, prefix = self._city.get_with_prefix_len(address)
        network: IPNetwork = ipaddress.ip_network((address, prefix), strict=False)
        if not isinstance(record, dict):
            location = Location(network)
        else:
            place, country = _map(record, "location"), _map(record, "country")
            location = Location(
                network,
                _float(place.get("latitude")),
                _float(place.get("longitude")),
                _text(country.get("iso_code")),
                _text(_map(record, "continent").get("code")),
                None,
                _text(_map(_map(record, "city"), "names").get("en")),
                _subdivision(record, country),
            )
        if self._asn is None:
            return location
        asn_record, asn_prefix = self._asn.get_with_prefix_len(address)
        number = (
            asn_record.get("autonomous_system_number") if isinstance(asn_record, dict) else None
        )
        asn_number = number if isinstance(number, int) else None
        # The decision may depend on both records: the more specific block is the one to share.
        if asn_prefix > location.network.prefixlen:
            network = ipaddress.ip_network((address, asn_prefix), strict=False)
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


def _map(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _subdivision(record: dict[str, Any], country: dict[str, Any]) -> str | None:
    """The first-level subdivision as ISO 3166-2 writes it: country, hyphen, code (US-CA)."""
    subdivisions = record.get("subdivisions")
    first = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
    top = _text(first.get("iso_code")) if isinstance(first, dict) else None
    code = _text(country.get("iso_code"))
    return f"{code}-{top}" if top and code else None


def _open(path: Path, kind: str) -> maxminddb.Reader:
    try:
        reader = maxminddb.open_database(str(path), mode=maxminddb.MODE_MMAP_EXT)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
        raise GeoIpError(f"{path}: cannot open as a GeoIP2 database: {e}") from None
    database_type = reader.metadata().database_type
    if kind not in database_type:
        reader.close()
        raise GeoIpError(f"{path}: a {database_type} database, not a GeoIP2 {kind} database")
    return reader
