"""The zone document (DESIGN.md §5): its schema, and compiling it into a `Zone`.

One schema serves the YAML files in `zones/` and the JSON documents of the API. Validation is
pydantic's; errors keep their field path (`soa.minimum`) so that the file loader can turn it
into `file:line` and the API into a JSON error naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from pydantic import Field, field_validator, model_validator

from gslb.core import masterfile, names
from gslb.core.pooldoc import DnssecDoc, GslbDoc, StrictDoc, references
from gslb.core.pools import Pool, PoolContext
from gslb.core.records import (
    CNAME,
    NS,
    SOA,
    NameRef,
    Part,
    RRset,
    rdata_parts,
    rdata_wire,
    type_name,
)
from gslb.core.zone import Zone

TTL = Annotated[int, Field(ge=0, le=2**31 - 1)]
SERIAL = Annotated[int, Field(ge=1, le=2**32 - 1)]


_Doc = StrictDoc


def _check_name(value: str) -> str:
    names.from_text(value)  # raises BadName (a ValueError) with the reason
    return value


_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def check_zone_name(value: str) -> str:
    """A zone's name must be a host name: labels of letters, digits, hyphens (not first or
    last) and underscores. A zone is stored, addressed in URLs and exported to a file under
    its name: `/tmp/x/pwned` is a valid DNS label, and must never become a path."""
    text = value.strip().rstrip(".")
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in labels):
        raise ValueError(
            f"{value!r} is not a host name (letters, digits, hyphens and underscores, "
            "labels separated by dots)"
        )
    return _check_name(value)


class SoaDoc(_Doc):
    """The zone's SOA. Names without a trailing dot are relative to the zone."""

    mname: str
    rname: str = Field(description="mailbox as a name (hostmaster.example.com.) or an address")
    serial: SERIAL | None = Field(
        None, description="omit for an automatic serial that grows with every change"
    )
    refresh: TTL = 3600
    retry: TTL = 600
    expire: TTL = 1209600
    minimum: TTL = Field(30, description="negative-caching TTL (RFC 2308)")
    ttl: TTL | None = Field(None, description="TTL of the SOA record; default: the zone's ttl")

    @field_validator("mname")
    @classmethod
    def _mname(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("rname")
    @classmethod
    def _rname(cls, value: str) -> str:
        if "@" in value:  # hostmaster@example.com: the local part becomes one label
            local, _, domain = value.partition("@")
            value = local.replace(".", "\\.") + "." + domain.rstrip(".") + "."
        return _check_name(value)


class ZoneDoc(GslbDoc):
    zone: str = Field(description="the zone's apex, e.g. gslb.example.com")
    ttl: TTL = Field(300, description="default TTL of static records")
    soa: SoaDoc | None = None
    records: str = Field("", description="RFC 1035 master-file lines")
    records_file: str | None = Field(
        None, description="a master file next to the document, instead of records"
    )
    dnssec: DnssecDoc | None = Field(
        None, description="sign every answer online, with a key the cluster shares"
    )

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if names.from_text(value) == names.ROOT:
            raise ValueError("the root zone cannot be served")
        return check_zone_name(value)

    @model_validator(mode="after")
    def _one_source(self) -> ZoneDoc:
        if self.records and self.records_file:
            raise ValueError("give records or records_file, not both")
        return self

    @property
    def apex(self) -> bytes:
        return names.from_text(self.zone if self.zone.endswith(".") else self.zone + ".")


def dnssec_of(doc: ZoneDoc) -> DnssecDoc | None:
    """How a zone is signed, or None: unsigned."""
    return doc.dnssec


class ZoneError(ValueError):
    """A refused zone document; `line` is within the records text when `in_records`."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        in_records: bool = False,
        path: tuple[int | str, ...] = (),
    ) -> None:
        super().__init__(f"{format_loc(path)}: {message}" if path else message)
        self.message = str(self)
        self.reason = message  # without the field path
        self.line = line
        self.in_records = in_records
        self.path = path


def format_loc(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a field path: `pools.www.members[2].address`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True, slots=True)
class Static:
    """A zone's static data, read from its master-file text and checked.

    `rrsets` holds every RRset but the SOA; `lines` says on which line of the text each RRset
    (owner, type) starts, for errors that point at it; `soa` is the SOA record the text
    gives, if it gives one (parts, TTL), else the SOA comes from the document's `soa:`.
    """

    rrsets: list[RRset]
    lines: dict[tuple[bytes, int], int]
    soa: tuple[tuple[Part, ...], int] | None


def compile_static(
    doc: ZoneDoc, records_text: str, limits: masterfile.Limits | None = None
) -> Static:
    """The zone's static records, or ZoneError with the line of the first refused one."""
    apex = doc.apex
    origin = dns.name.from_wire(apex, 0)[0]
    try:
        records = masterfile.parse(records_text, origin, doc.ttl, limits)
    except masterfile.MasterFileError as e:
        raise ZoneError(e.message, e.line, in_records=True) from None
    grouped: dict[tuple[bytes, int], list[masterfile.SourceRecord]] = {}
    for rec in records:
        if rec.rdtype == SOA and rec.wire != apex:
            raise ZoneError("an SOA record is allowed only at the apex", rec.line, True)
        grouped.setdefault((rec.wire, rec.rdtype), []).append(rec)
    soa_records = grouped.pop((apex, SOA), [])
    if doc.soa is not None and soa_records:
        raise ZoneError(
            "the SOA is given twice: in soa: and in the records", soa_records[0].line, True
        )
    if doc.soa is None and not soa_records:
        raise ZoneError("no SOA: give soa: {mname, rname} or an SOA record at the apex")
    if len(soa_records) > 1:
        raise ZoneError("more than one SOA record", soa_records[1].line, True)
    if (apex, NS) not in grouped:
        raise ZoneError("no NS records at the apex: a delegated zone needs its name servers")
    rrsets = [_rrset(owner, rtype, recs) for (owner, rtype), recs in grouped.items()]
    lines = {key: recs[0].line for key, recs in grouped.items()}
    for rrset in rrsets:
        size = _answer_size(rrset)
        if size > MAX_MESSAGE:
            raise ZoneError(
                f"{names.to_text(rrset.owner)} {type_name(rrset.rtype)}: its records take "
                f"{size} octets; no DNS message can carry more than {MAX_MESSAGE}",
                lines[(rrset.owner, rrset.rtype)],
                True,
            )
    soa = (soa_records[0].parts, soa_records[0].ttl) if soa_records else None
    return Static(rrsets, lines, soa)


def automatic(doc: ZoneDoc, static: Static) -> bool:
    """Whether the zone's serial is ours to choose (no serial given anywhere)."""
    return static.soa is None and doc.soa is not None and doc.soa.serial is None


def soa_rrset(doc: ZoneDoc, static: Static, serial: int) -> RRset:
    """The zone's SOA: the one its records give, else `soa:` with its serial or `serial`."""
    apex = doc.apex
    if static.soa is not None:
        parts, ttl = static.soa
        return RRset(apex, SOA, ttl, (parts,))
    soa = doc.soa
    assert soa is not None
    if soa.serial is not None:
        serial = soa.serial
    text = f"{soa.mname} {soa.rname} {serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}"
    origin = dns.name.from_wire(apex, 0)[0]
    soa_rdata = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.SOA, text, origin, relativize=False
    )
    parts, _ = rdata_parts(soa_rdata)
    return RRset(apex, SOA, soa.ttl if soa.ttl is not None else doc.ttl, (parts,))


# What is known about an owner's static data: its types, each with the line it starts on.
StaticAt = Callable[[bytes], Mapping[int, int] | None]


def placement_fault(
    name: str, pool: Pool, apex: bytes, static: StaticAt, holder: str | None
) -> ZoneError | None:
    """Why pool `name` may not answer where it would, if it may not: another pool (`holder`)
    answers that name and type already, the name is outside the zone, static records of its
    type (or a CNAME) are there, or it lies inside a delegated child."""
    where = ("pools", name)
    kind = "A" if pool.rtype == 1 else "AAAA"
    if holder is not None and holder != name:
        return ZoneError(
            f"pool {holder!r} already answers {names.to_text(pool.owner)} {kind}", path=where
        )
    if pool.owner != apex and not names.is_subdomain(pool.owner, apex):
        return ZoneError("the pool's name is outside the zone", path=where)
    here = static(pool.owner) or {}
    line = here.get(pool.rtype) or here.get(CNAME)
    if line is not None:
        what = "a CNAME" if CNAME in here else "static records of its type"
        return ZoneError(
            f"{names.to_text(pool.owner)} already has {what} (line {line})", path=where
        )
    for ancestor in names.suffixes(pool.owner):
        if len(ancestor) <= len(apex):
            break
        if NS in (static(ancestor) or {}):
            return ZoneError("the pool's name is inside a delegated child", path=where)
    return None


def compile_zone(
    doc: ZoneDoc,
    records_text: str,
    serial: int = 1,
    limits: masterfile.Limits | None = None,
) -> Zone:
    """Build the served zone from a whole document, checking it whole; `serial` is used when
    the document leaves the serial to us (see `automatic`)."""
    return compile_document(doc, records_text, serial, limits)[0]


def compile_document(
    doc: ZoneDoc,
    records_text: str,
    serial: int = 1,
    limits: masterfile.Limits | None = None,
) -> tuple[Zone, Static]:
    """`compile_zone`, and the static data it read (what the state layer stores)."""
    apex = doc.apex
    faults = references(doc)
    if faults:
        path, message = faults[0]
        raise ZoneError(message, path=path)
    static = compile_static(doc, records_text, limits)
    types: dict[bytes, dict[int, int]] = {}
    for (owner, rtype), line in static.lines.items():
        types.setdefault(owner, {})[rtype] = line
    context = PoolContext.of(apex, doc, dnssec_of(doc))
    pools = {}
    owners: dict[tuple[bytes, int], str] = {}
    for name, pool_doc in doc.pools.items():
        try:
            pool = context.compile(name, pool_doc)
        except names.BadName as e:
            raise ZoneError(str(e), path=("pools",)) from None
        holder = owners.setdefault((pool.owner, pool.rtype), name)
        fault = placement_fault(name, pool, apex, types.get, holder)
        if fault is not None:
            raise fault
        pools[name] = pool
    rrsets = [*static.rrsets, soa_rrset(doc, static, serial)]
    return Zone.build(apex, rrsets, pools.values(), context), static


MAX_MESSAGE = 65_535  # octets of a DNS message over TCP, the most any answer can be


def _answer_size(rrset: RRset) -> int:
    """Octets the RRset takes in an answer at the least (names compressed to 2 octets)."""
    header, question = 12, len(rrset.owner) + 4
    data = sum(
        sum(2 if isinstance(p, NameRef) else len(p) for p in rdata) for rdata in rrset.rdatas
    )
    return header + question + len(rrset.rdatas) * 12 + data


def _rrset(owner: bytes, rtype: int, recs: list[masterfile.SourceRecord]) -> RRset:
    rdatas = []
    targets = []
    seen = set()
    for rec in recs:
        wire = rdata_wire(rec.parts)
        if wire in seen:  # duplicate records are one record (RFC 2181 §5)
            continue
        seen.add(wire)
        rdatas.append(rec.parts)
        if rec.target is not None:
            targets.append(rec.target)
    # One TTL per RRset (RFC 2181 §5.2): where the lines disagree, the smallest wins.
    ttl = min(rec.ttl for rec in recs)
    return RRset(owner, rtype, ttl, tuple(rdatas), tuple(targets))
