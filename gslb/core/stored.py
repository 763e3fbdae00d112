"""A zone as it is stored: split at the grain it changes, and built back into a `Zone`.

The state layer keeps a zone as separate parts (docs/redis.md): its *head* (the document
without records and pools: zone, TTL, SOA settings, ISPs, sites, monitors, topology), its
*records* text (as written, for reading back), its static RRsets *per owner* (what DNS nodes
read, already parsed), each *pool*'s document, and its *meta* (serial, SOA, who wrote it).
A write touches the parts it changes; a DNS node applies just those to the zone it holds.

Everything here is a pure function of those parts, so that a zone built whole and a zone
brought up to date change by change are the same value (tests/test_incremental.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from gslb.core import names
from gslb.core.pooldoc import PoolDoc
from gslb.core.pools import Pool, PoolContext
from gslb.core.records import SOA, NameRef, Part, RRset
from gslb.core.zone import Node, Zone
from gslb.core.zonedoc import ZoneDoc, dnssec_of

Json = Any

# The order of a zone document's keys (DESIGN.md §5), for documents put back together.
KEY_ORDER = (
    "zone",
    "ttl",
    "soa",
    "dnssec",
    "records",
    "isps",
    "sites",
    "monitors",
    "topology",
    "costs",
    "pools",
)
HEAD_KEYS = ("zone", "ttl", "soa", "dnssec", "isps", "sites", "monitors", "topology", "costs")


def split(document: dict[str, Json]) -> tuple[dict[str, Json], str, dict[str, Json]]:
    """A normalized zone document as (head, records text, pools by name)."""
    head = {k: document[k] for k in HEAD_KEYS if k in document}
    return head, document.get("records", ""), dict(document.get("pools") or {})


def join(head: dict[str, Json], records: str, pools: Mapping[str, Json]) -> dict[str, Json]:
    """The zone document made of its parts, keys in the document's order."""
    whole = {**head, "records": records, "pools": dict(pools)}
    return {k: whole[k] for k in KEY_ORDER if whole.get(k) not in (None, "", {}, [])}


def normal_document(doc: ZoneDoc) -> dict[str, Json]:
    """A zone document in its one normal form: defaults left out, records inline (trailing
    blanks dropped: they mean nothing in a master file), keys in the document's order. GET,
    export and PUT round-trip exactly in it, and a digest changes only with the content."""
    data = doc.model_dump(mode="json", exclude_defaults=True, exclude={"records_file"})
    data["zone"] = doc.zone
    if doc.records:
        data["records"] = "".join(line.rstrip() + "\n" for line in doc.records.splitlines())
    else:
        data.pop("records", None)
    return {key: data[key] for key in KEY_ORDER if key in data}


def digest(value: Json) -> str:
    """A strong digest of a JSON value (ETags, and what a zone file said when stored)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def dumps(value: Json) -> str:
    """The stored text of a JSON value: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def normal_pool(pool: PoolDoc) -> dict[str, Json]:
    """A pool document in its normal form: defaults left out (as in the whole document)."""
    return pool.model_dump(mode="json", exclude_defaults=True)


@dataclass(frozen=True, slots=True)
class Meta:
    """What a zone carries besides its documents: the serial and the SOA built with it, who
    wrote it last (`file:PATH` or `api:TOKEN-NAME`), the zone file it came from and a digest
    of what that file said (a file that says the same does not undo API edits, docs/api.md),
    and a revision that grows with every change (the zone's ETag is made from it)."""

    serial: int
    soa: str  # the SOA RRset, encoded as a node (see encode_node)
    source: str
    file: str | None = None
    file_digest: str | None = None
    revision: int = 1
    # Where the SOA comes from: the records text (kept as it is), or the head's `soa:` with
    # a serial of its own or (automatic) one that grows with every change.
    soa_in_records: bool = False
    automatic: bool = True

    def to_json(self) -> str:
        return json.dumps(
            {
                "serial": self.serial,
                "soa": self.soa,
                "source": self.source,
                "file": self.file,
                "file_digest": self.file_digest,
                "revision": self.revision,
                "soa_in_records": self.soa_in_records,
                "automatic": self.automatic,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Meta:
        data = json.loads(raw)
        return cls(
            int(data["serial"]),
            data["soa"],
            data["source"],
            data.get("file"),
            data.get("file_digest"),
            int(data.get("revision", 1)),
            bool(data.get("soa_in_records", False)),
            bool(data.get("automatic", True)),
        )


# --- static RRsets per owner --------------------------------------------------------------


def encode_node(rrsets: Iterable[RRset], lines: Mapping[int, int] | None = None) -> str:
    """One owner's RRsets as stored: `{type: [ttl, line, [rdata...], [targets...]]}`, each
    rdata a list of parts, `b` + hex for octets and `n` + hex for a compressible name.
    The line (in the records text) lets a pool write be refused with where the clash is."""
    out = {}
    for rrset in rrsets:
        out[str(rrset.rtype)] = [
            rrset.ttl,
            (lines or {}).get(rrset.rtype, 0),
            [[_part(p) for p in rdata] for rdata in rrset.rdatas],
            [t.hex() for t in rrset.targets],
        ]
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def _part(part: Part) -> str:
    return "n" + part.wire.hex() if isinstance(part, NameRef) else "b" + part.hex()


def _unpart(text: str) -> Part:
    raw = bytes.fromhex(text[1:])
    return NameRef(raw) if text[0] == "n" else raw


def decode_node(owner: bytes, text: str | bytes) -> dict[int, RRset]:
    out = {}
    for rtype, (ttl, _line, rdatas, targets) in json.loads(text).items():
        out[int(rtype)] = RRset(
            owner,
            int(rtype),
            int(ttl),
            tuple(tuple(_unpart(p) for p in rdata) for rdata in rdatas),
            tuple(bytes.fromhex(t) for t in targets),
        )
    return out


def node_lines(text: str | bytes) -> dict[int, int]:
    """Type -> the line its RRset starts on, from a stored node."""
    return {int(rtype): int(value[1]) for rtype, value in json.loads(text).items()}


def owner_key(owner: bytes) -> str:
    """How an owner is named in the stored RRsets: presentation form, canonical."""
    return names.to_text(owner)


def static_nodes(
    rrsets: Iterable[RRset], lines: Mapping[tuple[bytes, int], int], apex: bytes
) -> dict[str, str]:
    """Every owner's stored node (the apex SOA is kept in the meta, not here)."""
    by_owner: dict[bytes, list[RRset]] = {}
    for rrset in rrsets:
        if rrset.rtype == SOA and rrset.owner == apex:
            continue
        by_owner.setdefault(rrset.owner, []).append(rrset)
    return {
        owner_key(owner): encode_node(
            sorted(group, key=lambda r: r.rtype),
            {r.rtype: lines.get((owner, r.rtype), 0) for r in group},
        )
        for owner, group in by_owner.items()
    }


# --- building the served zone ---------------------------------------------------------------


class Refused(ValueError):
    """A stored part that does not compile: a foreign write (writers check before storing)."""


def head_doc(head: Json) -> ZoneDoc:
    try:
        return ZoneDoc.model_validate(head)
    except pydantic.ValidationError as e:
        raise Refused(f"head: {e.errors()[0]['msg']}") from None


def compile_pool(context: PoolContext, name: str, text: str | bytes) -> Pool:
    try:
        return context.compile(name, PoolDoc.model_validate_json(text))
    except pydantic.ValidationError as e:
        raise Refused(f"pools.{name}: {e.errors()[0]['msg']}") from None
    except names.BadName as e:
        raise Refused(f"pools.{name}: {e}") from None


def build_zone(
    meta: Meta, head: Json, rrsets: Mapping[str, str | bytes], pools: Mapping[str, str | bytes]
) -> tuple[Zone, list[str]]:
    """The zone made of its stored parts, and the parts refused (left out, said why)."""
    doc = head_doc(head)
    context = PoolContext.of(doc.apex, doc, dnssec_of(doc))
    compiled, problems = compile_pools(context, pools)
    zone, refused = assemble_zone(meta, context, rrsets, compiled)
    return zone, [*problems, *refused]


def compile_pools(
    context: PoolContext, pools: Mapping[str, str | bytes | None]
) -> tuple[list[Pool], list[str]]:
    """Stored pools compiled (a batch of them, when a zone is read a few thousand at a
    time), and the ones refused."""
    compiled, problems = [], []
    for name, text in pools.items():
        if text is None:
            continue
        try:
            compiled.append(compile_pool(context, name, text))
        except Refused as e:
            problems.append(str(e))
    return compiled, problems


def assemble_zone(
    meta: Meta, context: PoolContext, rrsets: Mapping[str, str | bytes], pools: list[Pool]
) -> tuple[Zone, list[str]]:
    """The zone of compiled pools and stored static RRsets."""
    apex = context.apex
    problems: list[str] = []
    static = list(decode_node(apex, meta.soa).values())
    for owner, text in rrsets.items():
        try:
            static.extend(_node(owner, text).values())
        except Refused as e:
            problems.append(str(e))
    return Zone.build(apex, static, pools, context), problems


def update_zone(
    zone: Zone,
    meta: Meta | None,
    rrsets: Mapping[str, str | bytes | None],
    pools: Mapping[str, str | bytes | None],
) -> tuple[Zone, list[str]]:
    """`zone` with the parts that changed (None: removed) and its new meta, sharing the rest.
    A changed head cannot be applied this way: its pools compile against it, so the zone is
    built again whole (`build_zone`)."""
    assert zone.context is not None
    problems: list[str] = []
    nodes: dict[bytes, Node | None] = {}
    for owner, text in rrsets.items():
        try:
            wire = names.from_text(owner)
            nodes[wire] = None if text is None else _node(owner, text, wire)
        except (Refused, names.BadName) as e:
            problems.append(str(e))
    if meta is not None or zone.apex in nodes:
        soa = decode_node(zone.apex, meta.soa)[SOA] if meta is not None else zone.soa
        apex_node = nodes[zone.apex] if zone.apex in nodes else zone.nodes.get(zone.apex)
        nodes[zone.apex] = {**{t: r for t, r in (apex_node or {}).items() if t != SOA}, SOA: soa}
    compiled: dict[str, Pool | None] = {}
    for name, text in pools.items():
        if text is None:
            compiled[name] = None
            continue
        try:
            compiled[name] = compile_pool(zone.context, name, text)
        except Refused as e:
            problems.append(str(e))
            compiled[name] = None
    return zone.update(nodes, compiled), problems


def _node(owner: str, text: str | bytes, wire: bytes | None = None) -> dict[int, RRset]:
    try:
        return decode_node(wire if wire is not None else names.from_text(owner), text)
    except (ValueError, KeyError, TypeError) as e:
        raise Refused(f"records at {owner}: {e}") from None
