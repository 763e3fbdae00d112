"""The one immutable value a DNS worker answers from.

A worker holds exactly one `Snapshot` at a time and replaces it whole; nothing in it is ever
mutated. `version` grows with every replacement, which is what reply caches key on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gslb.core.cookies import Secrets
from gslb.core.dnssec import Signer
from gslb.core.location import Locator
from gslb.core.state import EMPTY, ClusterState
from gslb.core.zone import ZoneSet

DEFAULT_MAX_UDP = 1232  # the DNS Flag Day 2020 size: no fragmentation on common paths


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-node answering settings (not per zone)."""

    max_udp_size: int = DEFAULT_MAX_UDP
    nsid: bytes = b""  # RFC 5001 identifier; empty means do not answer NSID


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    zones: ZoneSet
    settings: Settings = field(default_factory=Settings)
    state: ClusterState = EMPTY
    locator: Locator | None = None  # GeoIP; None: proximity and topology keep the order
    cookies: Secrets | None = None  # the cluster's DNS Cookie secrets; None: none yet
    # The signer of each signed zone (by apex), with the cluster's keys: a signed zone
    # without one answers SERVFAIL to DNSSEC queries rather than unsigned (docs/dnssec.md).
    signers: Mapping[bytes, Signer] = field(default_factory=dict)
