"""`handle(wire, client, snapshot)`: one DNS message in, one reply (or silence) out.

This is the whole protocol, with no I/O: the UDP and TCP transports call it and send what it
returns. It never raises on any input. Replies are decided per key, not per packet: the encoded
body is cached under everything it depends on (snapshot version, canonical name, type, class and
the room the reply has), and each query only patches its ID, flags and letter case in.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gslb.core import encode
from gslb.core.query import FLAG_QR, FormErr, Query, scan
from gslb.core.records import (
    AXFR,
    CLASS_ANY,
    CLASS_IN,
    IXFR,
    MAILA,
    MAILB,
    OPT,
    TKEY,
    TSIG,
)
from gslb.core.snapshot import Snapshot
from gslb.core.zone import (
    RCODE_FORMERR,
    RCODE_NOTIMP,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    Lookup,
    lookup,
)

MIN_UDP = 512
TCP_ROOM = 65535
EXTENDED_BADVERS = 1  # BADVERS is rcode 16: 1 in the OPT's upper eight bits, 0 in the header


class Client(NamedTuple):
    address: str
    port: int
    tcp: bool = False


class ReplyCache:
    """Encoded reply bodies by key, bounded: when full it starts afresh.

    Keys carry the snapshot version, so entries of an old snapshot never match again; they
    only wait to be dropped with the rest at the next reset.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[object, ...], bytes] = {}

    def get(self, key: tuple[object, ...]) -> bytes | None:
        return self._entries.get(key)

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = body

    def __len__(self) -> int:
        return len(self._entries)


def handle(
    wire: bytes, client: Client, snapshot: Snapshot, cache: ReplyCache | None = None
) -> bytes | None:
    """The reply to `wire`, or None when the message deserves no answer."""
    if len(wire) < 12:
        return None  # not even a header to answer to
    qid, flags = struct.unpack_from("!HH", wire)
    if flags & FLAG_QR:
        # A response sent to us. Answer FORMERR, except to an error reply: two servers must
        # never bounce error replies at each other forever.
        return None if flags & 0xF else encode.header_only(qid, flags, RCODE_FORMERR)
    try:
        query = scan(wire)
    except FormErr as e:
        return encode.header_only(qid, flags, RCODE_FORMERR, _echo(flags, e.question))
    try:
        return _respond(query, client, snapshot, cache)
    except Exception:
        # The promise is "never raises": a bug must cost one SERVFAIL, not a worker. The fuzz
        # tests treat any SERVFAIL as a finding.
        return encode.header_only(qid, flags, RCODE_SERVFAIL, _echo(flags, query.question))


def _echo(flags: int, question: bytes) -> bytes:
    # Only a QUERY has a question section; other opcodes give it other meanings (UPDATE's zone
    # section), which an error reply should not pretend to understand.
    return question if flags & 0x7800 == 0 else b""


def _respond(query: Query, client: Client, snapshot: Snapshot, cache: ReplyCache | None) -> bytes:
    if query.opcode != 0:
        return encode.header_only(query.id, query.flags, RCODE_NOTIMP)
    settings = snapshot.settings
    edns = query.edns
    if edns is None:
        limit = TCP_ROOM if client.tcp else MIN_UDP
        opt = b""
    else:
        if edns.version > 0:
            return _reply(
                query,
                Lookup(0, False),
                settings.max_udp_size,
                _opt(query, snapshot, 0, EXTENDED_BADVERS),
            )
        limit = TCP_ROOM if client.tcp else max(MIN_UDP, min(edns.udp_size, settings.max_udp_size))
        opt = _opt(query, snapshot, 0)
    return _answer(query, snapshot, limit, opt, cache)


def _opt(query: Query, snapshot: Snapshot, scope: int, extended_rcode: int = 0) -> bytes:
    edns = query.edns
    assert edns is not None
    nsid = snapshot.settings.nsid if edns.nsid else b""
    return encode.opt_record(
        snapshot.settings.max_udp_size, edns.do, extended_rcode, nsid, edns.ecs, scope
    )


def _answer(
    query: Query, snapshot: Snapshot, limit: int, opt: bytes, cache: ReplyCache | None
) -> bytes:
    room = limit - len(opt)
    key = (snapshot.version, query.key, query.qtype, query.qclass, room)
    body = cache.get(key) if cache is not None else None
    if body is None:
        body = encode.encode(query, decide(query, snapshot), room)
        if cache is not None:
            cache.put(key, body)
    return encode.finish(body, query, opt)


def _reply(query: Query, result: Lookup, room: int, opt: bytes) -> bytes:
    return encode.finish(encode.encode(query, result, room - len(opt)), query, opt)


def decide(query: Query, snapshot: Snapshot) -> Lookup:
    """What to answer, from the snapshot alone."""
    qtype = query.qtype
    if query.qclass not in (CLASS_IN, CLASS_ANY):
        return Lookup(RCODE_REFUSED, False)
    if qtype in (OPT, TSIG, TKEY):
        return Lookup(RCODE_FORMERR, False)  # meta-types are never asked for (RFC 6895 §3.1)
    if qtype in (MAILA, MAILB):
        return Lookup(RCODE_NOTIMP, False)
    zone = snapshot.zones.find(query.key)
    if zone is None or qtype in (AXFR, IXFR):
        # Never recursion, and no zone transfers: REFUSED says "not from me".
        return Lookup(RCODE_REFUSED, False)
    return lookup(zone, query.key, qtype)
