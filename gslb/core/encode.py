"""Writing replies: header, question, sections with name compression, size limits, OPT.

A reply body is encoded with the question name in canonical (lowercase) form and message ID 0,
without the OPT record: that body depends only on the lookup and the room available, so it can
be cached. `finish` turns a body into the reply for one query: the query's ID and RD/CD bits,
its letter case in the question (compression pointers into the question then show the same
case), and the OPT record built for that query (NSID, client subnet echo).
"""

from __future__ import annotations

import struct

from gslb.core.query import EDNS_CLIENT_SUBNET, EDNS_NSID, ClientSubnet, Query
from gslb.core.records import CLASS_IN, OPT, NameRef, RRset
from gslb.core.zone import Lookup, Section

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_CD = 0x0010
_RR_FIXED = struct.Struct("!HHIH")
_POINTER = 0xC000
_MAX_POINTER = 0x3FFF


def header_only(
    query_id: int, query_flags: int, rcode: int, question: bytes = b"", opt: bytes = b""
) -> bytes:
    """A reply with no records: for FORMERR and NOTIMP, which may not trust the question. A
    query that carried an OPT record gets ours (`opt`) back, errors included (RFC 6891 §7)."""
    flags = FLAG_QR | (query_flags & (0x7800 | FLAG_RD | FLAG_CD)) | (rcode & 0xF)
    header = struct.pack("!6H", query_id, flags, 1 if question else 0, 0, 0, 1 if opt else 0)
    return header + question + opt


def encode(query: Query, lookup: Lookup, room: int) -> bytes:
    """The reply body for `lookup`, at most `room` octets long, or truncated with TC=1."""
    flags = FLAG_QR | (query.opcode << 11) | (lookup.rcode & 0xF)
    if lookup.authoritative:
        flags |= FLAG_AA
    question = query.key + struct.pack("!HH", query.qtype, query.qclass)
    full = _write(flags, question, query.key, lookup.answer, lookup.authority, lookup.additional)
    if len(full) <= room:
        return full
    if lookup.additional and not lookup.glue_required:
        # Additional data is optional (RFC 2181 §9): drop it before truncating.
        trimmed = _write(flags, question, query.key, lookup.answer, lookup.authority, ())
        if len(trimmed) <= room:
            return trimmed
    return _write(flags | FLAG_TC, question, query.key, (), (), ())


def _write(
    flags: int,
    question: bytes,
    qname: bytes,
    answer: Section,
    authority: Section,
    additional: Section,
) -> bytes:
    buf = bytearray(
        struct.pack("!6H", 0, flags, 1, _count(answer), _count(authority), _count(additional))
    )
    buf += question
    offsets: dict[bytes, int] = {}
    _remember(offsets, qname, 12)
    for section in (answer, authority, additional):
        for owner, rrset in section:
            _rrset(buf, offsets, owner, rrset)
    return bytes(buf)


def _count(section: Section) -> int:
    return sum(len(rrset.rdatas) for _, rrset in section)


def _remember(offsets: dict[bytes, int], name: bytes, at: int) -> None:
    i = 0
    while name[i] and at + i <= _MAX_POINTER:
        offsets.setdefault(name[i:], at + i)
        i += name[i] + 1


def _name(buf: bytearray, offsets: dict[bytes, int], name: bytes) -> None:
    i = 0
    while name[i]:
        suffix = name[i:]
        pointer = offsets.get(suffix)
        if pointer is not None:
            buf += struct.pack("!H", _POINTER | pointer)
            return
        if len(buf) <= _MAX_POINTER:
            offsets[suffix] = len(buf)
        n = name[i]
        buf += name[i : i + n + 1]
        i += n + 1
    buf.append(0)


def _rrset(buf: bytearray, offsets: dict[bytes, int], owner: bytes, rrset: RRset) -> None:
    for parts in rrset.rdatas:
        _name(buf, offsets, owner)
        fixed_at = len(buf)
        buf += _RR_FIXED.pack(rrset.rtype, CLASS_IN, rrset.ttl, 0)
        start = len(buf)
        for part in parts:
            if isinstance(part, NameRef):
                _name(buf, offsets, part.wire)
            else:
                buf += part
        struct.pack_into("!H", buf, fixed_at + 8, len(buf) - start)


def opt_record(
    udp_size: int,
    do: bool,
    extended_rcode: int = 0,
    nsid: bytes = b"",
    ecs: ClientSubnet | None = None,
    scope: int = 0,
    extra: bytes = b"",
) -> bytes:
    """Our OPT record (RFC 6891 §6.1.2): version 0, the DO bit echoed (RFC 3225 §3); `extra`:
    options made elsewhere (a COOKIE)."""
    options = extra
    if nsid:
        options += struct.pack("!HH", EDNS_NSID, len(nsid)) + nsid
    if ecs is not None:
        # RFC 7871 §7.2.1: echo family, source prefix and address; the scope is ours to say.
        body = struct.pack("!HBB", ecs.family, ecs.source, scope) + ecs.address
        options += struct.pack("!HH", EDNS_CLIENT_SUBNET, len(body)) + body
    ttl = (extended_rcode << 24) | (0x8000 if do else 0)
    return b"\x00" + _RR_FIXED.pack(OPT, udp_size, ttl, len(options)) + options


def finish(body: bytes, query: Query, opt: bytes) -> bytes:
    """Make a cached body the reply to `query`."""
    qflags = query.flags
    n = len(query.qname)
    arcount = body[10] << 8 | body[11]
    if opt:
        arcount += 1
    return b"".join(
        (
            struct.pack(
                "!HBB",
                query.id,
                body[2] | ((qflags >> 8) & (FLAG_RD >> 8)),
                body[3] | (qflags & FLAG_CD),
            ),
            body[4:10],
            struct.pack("!H", arcount),
            query.qname,
            body[12 + n :],
            opt,
        )
    )
