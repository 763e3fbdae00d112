"""Small GeoIP2 City and ASN databases for tests, written with mmdb-writer.

The networks mirror the ones MaxMind's public test databases use (81.2.69.0/24 in London,
and so on), so the same client addresses work in tests and in manual runs with ../shared/geoip.
"""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

LONDON = "81.2.69.142"  # 81.2.69.0/24
NEW_YORK = "216.160.83.56"  # 216.160.83.0/24
SINGAPORE = "202.196.224.1"  # 202.196.224.0/20
NEW_YORK_V6 = "2001:480:10::1"  # 2001:480::/32
NOWHERE = "8.8.8.8"

CITIES = [
    ("81.2.69.0/24", "London", "GB", "EU", 51.5142, -0.0931),
    ("216.160.83.0/24", "New York", "US", "NA", 40.7128, -74.0060),
    ("202.196.224.0/20", "Singapore", "SG", "AS", 1.2897, 103.8501),
    ("2001:480::/32", "New York", "US", "NA", 40.7128, -74.0060),
]
# First-level subdivisions (ISO 3166-2 without the country), for topology's subdivision rules.
SUBDIVISIONS = {"81.2.69.0/24": "ENG", "216.160.83.0/24": "NY", "2001:480::/32": "NY"}
ASNS = [
    ("81.2.69.0/24", 20712, "Andrews & Arnold Ltd"),
    ("216.160.83.0/24", 209, "Qwest Communications"),
]


City = tuple[str, str, str | None, str, float, float]  # network, city, country, continent, lat, lon


def write_city(path: Path, cities: list[City] = CITIES, what: str = "gslb test") -> Path:
    writer = MMDBWriter(
        ip_version=6,
        database_type="GeoIP2-City",
        languages=["en"],
        description=f"{what} city database",
        ipv4_compatible=True,
    )
    for network, city, country, continent, lat, lon in cities:
        record: dict[str, object] = {
            "city": {"names": {"en": city}},
            "continent": {"code": continent},
            "location": {"latitude": lat, "longitude": lon},
        }
        if country is not None:
            record["country"] = {"iso_code": country}
        if network in SUBDIVISIONS:
            record["subdivisions"] = [{"iso_code": SUBDIVISIONS[network]}]
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def write_asn(path: Path) -> Path:
    writer = MMDBWriter(
        ip_version=6,
        database_type="GeoLite2-ASN",
        languages=["en"],
        description="gslb test ASN database",
        ipv4_compatible=True,
    )
    for network, number, org in ASNS:
        writer.insert_network(
            IPSet([network]),
            {
                "autonomous_system_number": number,
                "autonomous_system_organization": org,
            },
        )
    writer.to_db_file(str(path))
    return path
