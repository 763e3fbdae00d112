"""gslb's GeoIP reader (gslb.shell.geoip) reads the database's records directly, without
geoip2's model objects: checked against geoip2 itself, as the oracle, on MaxMind's own test
databases (deploy/geoip), for the first address of every network they hold and for addresses
they do not cover."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb
import pytest

from gslb.core.location import IPAddress, Location
from gslb.shell.geoip import GeoIpError, GeoIpLocator

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "deploy" / "geoip" / "GeoLite2-City-Test.mmdb"
ASN = ROOT / "deploy" / "geoip" / "GeoLite2-ASN-Test.mmdb"


def oracle(
    city: geoip2.database.Reader, asn: geoip2.database.Reader | None, ip: IPAddress
) -> Location:
    """What geoip2's models say, in gslb's terms (the more specific block is the scope)."""
    whole = ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}")
    try:
        found = city.city(ip)
    except geoip2.errors.AddressNotFoundError as e:
        location = Location(e.network or whole)
    else:
        top = found.subdivisions[0].iso_code if found.subdivisions else None
        country = found.country.iso_code
        location = Location(
            found.traits.network or whole,
            found.location.latitude,
            found.location.longitude,
            country,
            found.continent.code,
            None,
            found.city.name,
            f"{country}-{top}" if top and country else None,
        )
    if asn is None:
        return location
    try:
        record = asn.asn(ip)
        number, network = record.autonomous_system_number, record.network
    except geoip2.errors.AddressNotFoundError as e:
        number, network = None, e.network
    if network is None or network.prefixlen <= location.network.prefixlen:
        network = location.network
    return Location(
        network,
        location.lat,
        location.lon,
        location.country,
        location.continent,
        number,
        location.city,
        location.subdivision,
    )


def addresses() -> list[IPAddress]:
    out: list[IPAddress] = [
        ipaddress.ip_address(a) for a in ("192.0.2.1", "198.51.100.7", "2001:db8::1", "10.1.2.3")
    ]
    for path in (CITY, ASN):
        with maxminddb.open_database(str(path)) as reader:
            for network, _ in reader:
                out.append(network.network_address)
                out.append(network.broadcast_address)
    return out


@pytest.mark.parametrize("with_asn", [False, True])
def test_every_location_matches_what_geoip2_says(with_asn: bool) -> None:
    locator = GeoIpLocator(CITY, ASN if with_asn else None)
    city = geoip2.database.Reader(str(CITY))
    asn = geoip2.database.Reader(str(ASN)) if with_asn else None
    located = 0
    for ip in addresses():
        expected = oracle(city, asn, ip)
        assert locator.locate(ip) == expected, ip
        located += expected.lat is not None
    assert located > 50, "the test databases locate many of these addresses"


def test_a_file_that_is_not_the_database_asked_for_is_refused_by_name(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database")
    with pytest.raises(GeoIpError, match=r"junk\.mmdb: cannot open as a GeoIP2 database"):
        GeoIpLocator(junk)
    with pytest.raises(
        GeoIpError,
        match=r"GeoLite2-ASN-Test\.mmdb: a GeoLite2-ASN database, not a GeoIP2 City database",
    ):
        GeoIpLocator(ASN)
    with pytest.raises(GeoIpError, match="a GeoLite2-City database, not a GeoIP2 ASN database"):
        GeoIpLocator(CITY, CITY)
