"""The zone document (DESIGN.md §5): its schema, and compiling it into a `Zone`.

One schema serves the YAML files in `zones/` and the JSON documents of the API. Validation is
pydantic's; errors keep their field path (`soa.minimum`) so that the file loader can turn it
into `file:line` and the API into a JSON error naming the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gslb.core import masterfile, names
from gslb.core.pooldoc import GslbDoc, references
from gslb.core.pools import compile_pools
from gslb.core.records import CNAME, NS, SOA, RRset, rdata_parts, rdata_wire
from gslb.core.zone import Zone

TTL = Annotated[int, Field(ge=0, le=2**31 - 1)]
SERIAL = Annotated[int, Field(ge=1, le=2**32 - 1)]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    names.from_text(value)  # raises BadName (a ValueError) with the reason
    return value


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

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if names.from_text(value) == names.ROOT:
            raise ValueError("the root zone cannot be served")
        return _check_name(value)

    @model_validator(mode="after")
    def _one_source(self) -> ZoneDoc:
        if self.records and self.records_file:
            raise ValueError("give records or records_file, not both")
        return self

    @property
    def apex(self) -> bytes:
        return names.from_text(self.zone if self.zone.endswith(".") else self.zone + ".")


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


def compile_zone(
    doc: ZoneDoc,
    records_text: str,
    automatic_serial: Callable[[str], int] | None = None,
    previous: tuple[ZoneDoc, Zone] | None = None,
    serial: int | None = None,
) -> Zone:
    """Build the served zone. `automatic_serial(fingerprint)` picks the serial when none is given.

    The fingerprint is a digest of everything served except the serial, so that the caller can
    keep the serial while nothing changed and raise it when something did.
    """
    apex = doc.apex
    origin = dns.name.from_wire(apex, 0)[0]
    faults = references(doc)
    if faults:
        path, message = faults[0]
        raise ZoneError(message, path=path)
    try:
        records = masterfile.parse(records_text, origin, doc.ttl)
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
    # A digest of everything is costly for a large zone: made only when a serial needs it.
    automatic = not soa_records and doc.soa is not None and doc.soa.serial is None
    fingerprint = (
        _fingerprint(doc, rrsets, soa_records)
        if automatic and serial is None and automatic_serial is not None
        else ""
    )
    if soa_records:
        parts = soa_records[0].parts
        soa_ttl = soa_records[0].ttl
    else:
        assert doc.soa is not None
        soa = doc.soa
        if soa.serial is not None:
            serial = soa.serial
        elif serial is None:
            serial = automatic_serial(fingerprint) if automatic_serial is not None else 1
        text = (
            f"{soa.mname} {soa.rname} {serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}"
        )
        soa_rdata = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.SOA, text, origin, relativize=False
        )
        soa_ttl = soa.ttl if soa.ttl is not None else doc.ttl
        parts, _ = rdata_parts(soa_rdata)
    rrsets.append(RRset(apex, SOA, soa_ttl, (parts,)))
    try:
        reuse = None
        if previous is not None:
            old_doc, old_zone = previous
            reuse = (old_doc, old_zone.apex, old_zone.pools_by_name)
        pools = compile_pools(apex, doc, reuse)
    except names.BadName as e:
        raise ZoneError(str(e), path=("pools",)) from None
    owners: dict[tuple[bytes, int], str] = {}
    for name, pool in pools.items():
        other = owners.setdefault((pool.owner, pool.rtype), name)
        if other != name:
            raise ZoneError(
                f"pool {other!r} already answers {names.to_text(pool.owner)} "
                f"{'A' if pool.rtype == 1 else 'AAAA'}",
                path=("pools", name),
            )
        if pool.owner != apex and not names.is_subdomain(pool.owner, apex):
            raise ZoneError("the pool's name is outside the zone", path=("pools", name))
        static = grouped.get((pool.owner, pool.rtype)) or grouped.get((pool.owner, CNAME))
        if static:
            kind = "a CNAME" if (pool.owner, CNAME) in grouped else "static records of its type"
            raise ZoneError(
                f"{names.to_text(pool.owner)} already has {kind} (line {static[0].line})",
                path=("pools", name),
            )
    zone = Zone.build(apex, rrsets, pools.values())
    for name, pool in pools.items():
        if zone.find_cut(pool.owner) is not None:
            raise ZoneError("the pool's name is inside a delegated child", path=("pools", name))
    return zone


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


def _fingerprint(
    doc: ZoneDoc, rrsets: list[RRset], soa_records: list[masterfile.SourceRecord]
) -> str:
    digest = hashlib.sha256()
    for rrset in sorted(rrsets, key=lambda r: (r.owner, r.rtype)):
        digest.update(rrset.owner + rrset.rtype.to_bytes(2, "big") + rrset.ttl.to_bytes(4, "big"))
        for parts in sorted(rdata_wire(p) for p in rrset.rdatas):
            digest.update(len(parts).to_bytes(2, "big") + parts)
    soa = doc.soa.model_dump(exclude={"serial"}) if doc.soa else None
    digest.update(repr((soa, [rdata_wire(r.parts).hex() for r in soa_records])).encode())
    gslb = doc.model_dump(include=set(GslbDoc.model_fields), mode="json")
    digest.update(repr(sorted(gslb.items())).encode())
    return digest.hexdigest()
