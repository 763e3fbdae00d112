"""Resource record sets as the encoder needs them: frozen, canonical, ready to write.

Rdata is kept as a tuple of parts: raw bytes, or a `NameRef` for a domain name that the encoder
may compress. RFC 3597 §4 allows compression only inside the rdata of the RFC 1035 types (NS,
CNAME, PTR, MX, SOA); every other type is stored as its uncompressed wire form, whatever names
it carries (SRV targets included, as RFC 2782 requires).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import dns.rdata
import dns.rdatatype

from gslb.core.names import wire_of

A = 1
NS = 2
CNAME = 5
SOA = 6
PTR = 12
MX = 15
TXT = 16
AAAA = 28
SRV = 33
OPT = 41
DS = 43
CAA = 257
IXFR = 251
AXFR = 252
MAILB = 253
MAILA = 254
ANY = 255
TSIG = 250
TKEY = 249

CLASS_IN = 1
CLASS_ANY = 255


@dataclass(frozen=True, slots=True)
class NameRef:
    """A compressible domain name inside rdata (canonical wire form)."""

    wire: bytes


Part = bytes | NameRef


@dataclass(frozen=True, slots=True)
class RRset:
    """All records of one owner and type, with one TTL (RFC 2181 §5.2)."""

    owner: bytes
    rtype: int
    ttl: int
    rdatas: tuple[tuple[Part, ...], ...]
    # Names that additional-section processing looks up (NS, MX and SRV targets).
    targets: tuple[bytes, ...] = ()

    def with_ttl(self, ttl: int) -> RRset:
        return RRset(self.owner, self.rtype, ttl, self.rdatas, self.targets)


def type_name(rtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rtype))


def rdata_parts(rd: dns.rdata.Rdata) -> tuple[tuple[Part, ...], bytes | None]:
    """Split dnspython rdata into encoder parts, and the target name used for additional data."""
    t = rd.rdtype
    r: Any = rd  # the fields depend on the type, which dnspython's stubs cannot follow
    if t in (NS, CNAME, PTR):
        target = wire_of(r.target)
        return (NameRef(target),), target
    if t == MX:
        exchange = wire_of(r.exchange)
        return (struct.pack("!H", r.preference), NameRef(exchange)), exchange
    if t == SOA:
        fixed = struct.pack("!IIIII", r.serial, r.refresh, r.retry, r.expire, r.minimum)
        return (NameRef(wire_of(r.mname)), NameRef(wire_of(r.rname)), fixed), None
    wire = rd.to_wire()
    assert wire is not None
    return (wire,), (wire_of(r.target) if t == SRV else None)


def rdata_wire(parts: tuple[Part, ...]) -> bytes:
    """The uncompressed wire rdata, for comparing records."""
    return b"".join(p.wire if isinstance(p, NameRef) else p for p in parts)
