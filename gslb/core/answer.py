"""`handle(wire, client, snapshot)`: one DNS message in, one reply (or silence) out.

This is the whole protocol, with no I/O: the UDP and TCP transports call it and send what it
returns. It never raises on any input.

Replies are decided per key, not per packet (DESIGN.md §9). The first query for a name, type,
class and reply room finds its *route*: static (the reply never depends on the client or on
time, so the encoded body is kept under that key alone) or dynamic (it passes through pools;
the route records what of the client they look at and how many rotation slots they cycle
through). A dynamic reply is then kept under the route key plus the client's decision key
(gslb.core.decisionkey) and the slot the query drew. Every query only patches its ID, flags
and letter case into the kept body and appends its own OPT record.

Caching wraps the answer without changing it: `handle` with no cache decides afresh (a
throwaway cache of its own), with one (gslb.core.replycache) it reuses what the cache holds,
and the UDP front (gslb.core.front) keeps whole replies in front of both.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gslb.core import cookies, dnssec, encode
from gslb.core.decide import combine, period
from gslb.core.decide import decide as decide_pool
from gslb.core.decisionkey import Client, client_decision
from gslb.core.dnssec import Signer
from gslb.core.location import ClientInfo
from gslb.core.policy import Precision
from gslb.core.policy import precision as precision_of
from gslb.core.pools import Pool
from gslb.core.query import FLAG_QR, Edns, FormErr, Query, carries_opt, scan
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
    RRset,
)
from gslb.core.replycache import Dynamic, ReplyCache, Route, Static
from gslb.core.snapshot import Snapshot
from gslb.core.zone import (
    RCODE_FORMERR,
    RCODE_NOTIMP,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    Lookup,
    PoolAnswer,
    Zone,
    lookup,
)

if TYPE_CHECKING:
    from gslb.core.front import Front

__all__ = ["DEFER", "Client", "Deferred", "Reply", "bad_cookie", "cookie_status", "handle"]


class Deferred:
    """What `handle` returns when the answer depends on a pool in its cold start: the
    transport holds the query and asks again with the next snapshot, or with
    `fail_open=True` once the pool's cold-start wait is over."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFER"


DEFER = Deferred()
# A reply, no reply at all (the message deserves none), or wait for health (DEFER).
Reply = bytes | None | Deferred

MIN_UDP = 512
TCP_ROOM = 65535
EXTENDED_BADVERS = 1  # BADVERS is rcode 16: 1 in the OPT's upper eight bits, 0 in the header

# How a reply may be reused by the front: (route or None for static, slot, members handed out).
Note = tuple["Route | None", int, tuple[str, ...]]


def handle(
    wire: bytes,
    client: Client,
    snapshot: Snapshot,
    cache: ReplyCache | None = None,
    fail_open: bool = False,
    front: Front | None = None,
    draw: int | None = None,
) -> Reply:
    """The reply to `wire`, None when the message deserves no answer, or DEFER when it should
    wait for the first health results (never with `fail_open`)."""
    if len(wire) < 12:
        return None  # not even a header to answer to
    qid, flags = struct.unpack_from("!HH", wire)
    if flags & FLAG_QR:
        # A response sent to us. Answer FORMERR, except to an error reply: two servers must
        # never bounce error replies at each other forever.
        return None if flags & 0xF else encode.header_only(qid, flags, RCODE_FORMERR)
    if flags & 0x7800:
        # Not a QUERY (NOTIFY, UPDATE, an unassigned opcode): NOTIMP, whatever the sections
        # hold, before reading them as a question (RFC 1035 §4.1.1; Knot and BIND do so).
        return encode.header_only(qid, flags, RCODE_NOTIMP, b"", _error_opt(snapshot, wire))
    try:
        query = scan(wire)
    except FormErr as e:
        opt = _bare_opt(snapshot) if e.edns else b""
        return encode.header_only(qid, flags, RCODE_FORMERR, _echo(flags, e.question), opt)
    try:
        cache = cache if cache is not None else ReplyCache(16)
        reply, note = _respond(query, client, snapshot, cache, fail_open, draw)
        if front is not None and note is not None and isinstance(reply, bytes):
            front.remember(wire, query, client, reply, note)
        return reply
    except Exception:
        # The promise is "never raises": a bug must cost one SERVFAIL, not a worker. The fuzz
        # tests treat any SERVFAIL as a finding.
        opt = _bare_opt(snapshot) if query.edns is not None else b""
        return encode.header_only(qid, flags, RCODE_SERVFAIL, _echo(flags, query.question), opt)


def _bare_opt(snapshot: Snapshot) -> bytes:
    """Our OPT for an error reply: our UDP size, nothing echoed."""
    return encode.opt_record(snapshot.settings.max_udp_size, False)


def _error_opt(snapshot: Snapshot, wire: bytes) -> bytes:
    return _bare_opt(snapshot) if carries_opt(wire) else b""


def _echo(flags: int, question: bytes) -> bytes:
    # Only a QUERY has a question section; other opcodes give it other meanings (UPDATE's zone
    # section), which an error reply should not pretend to understand.
    return question if flags & 0x7800 == 0 else b""


def _respond(
    query: Query,
    client: Client,
    snapshot: Snapshot,
    cache: ReplyCache,
    fail_open: bool,
    draw: int | None = None,
) -> tuple[bytes | Deferred, Note | None]:
    settings = snapshot.settings
    edns = query.edns
    if edns is None:
        limit = TCP_ROOM if client.tcp else MIN_UDP
    else:
        if edns.version > 0:
            opt = _opt(query, client, snapshot, 0, EXTENDED_BADVERS)
            body = encode.encode(query, Lookup(0, False), settings.max_udp_size - len(opt))
            return encode.finish(body, query, opt), None
        limit = TCP_ROOM if client.tcp else max(MIN_UDP, min(edns.udp_size, settings.max_udp_size))
    room = limit - _opt_length(query, snapshot)
    base = (snapshot.version, query.key, query.qtype, query.qclass, room, _dnssec_ok(query))
    found = cache.question(base)
    if found is None:
        found = route_of(query, snapshot) or Static(
            encode.encode(query, secure(query, snapshot, decide(query, snapshot)), room)
        )
        cache.put_question(base, found)
    note: Note | None
    if isinstance(found, Static):
        body, scope = found.body, 0
        note = None if client.tcp else (None, 0, ())
    else:
        if found.cold and not fail_open:
            return DEFER, None
        info, decision_key, scope = client_decision(found, query, client, snapshot)
        slot = (cache.next_slot() if draw is None else draw) % found.period
        key = (base, decision_key, slot)
        entry = cache.answer(key)
        if entry is None:
            entry = _dynamic(query, snapshot, info, decision_key, slot, room)
            cache.put_answer(key, entry)
        body, scope = entry.body, entry.scope if _has_subnet(query) else 0
        cache.count(entry.members)
        note = None if client.tcp or found.cold else (found, slot, entry.members)
    opt = _opt(query, client, snapshot, scope) if edns is not None else b""
    return encode.finish(body, query, opt), note


def _has_subnet(query: Query) -> bool:
    return query.edns is not None and query.edns.ecs is not None and query.edns.ecs.source > 0


def _opt_length(query: Query, snapshot: Snapshot) -> int:
    """Octets our OPT record will take: known before the answer (the scope is one octet)."""
    edns = query.edns
    if edns is None:
        return 0
    length = 11
    nsid = snapshot.settings.nsid
    if edns.nsid and nsid:
        length += 4 + len(nsid)
    if edns.ecs is not None:
        length += 8 + len(edns.ecs.address)
    if edns.cookie is not None and snapshot.cookies is not None:
        length += 4 + cookies.CLIENT_LENGTH + 16
    return length


def _opt(
    query: Query, client: Client, snapshot: Snapshot, scope: int, extended_rcode: int = 0
) -> bytes:
    edns = query.edns
    assert edns is not None
    nsid = snapshot.settings.nsid if edns.nsid else b""
    return encode.opt_record(
        snapshot.settings.max_udp_size,
        edns.do,
        extended_rcode,
        nsid,
        edns.ecs,
        scope,
        _cookie(edns, client, snapshot),
    )


def _cookie(edns: Edns, client: Client, snapshot: Snapshot) -> bytes:
    """The COOKIE option of our reply: the client's cookie and a server cookie for it (the
    one it sent while valid and young, else a fresh one); nothing without secrets yet."""
    secrets = snapshot.cookies
    if edns.cookie is None or secrets is None:
        return b""
    client_cookie, server = cookies.split(edns.cookie)
    now = int(time.time())  # the core's one clock read: a cookie's timestamp
    if not (
        server
        and cookies.valid(secrets, client_cookie, server, client.address, now)
        and cookies.fresh_enough(server, now)
    ):
        server = cookies.make(secrets, client_cookie, client.address, now)
    return cookies.option(client_cookie, server)


def cookie_status(wire: bytes, address: str, snapshot: Snapshot) -> tuple[bool, bool]:
    """(sent a client cookie, brought back a valid server cookie): what rate limiting asks
    of a query it would limit. A valid cookie proves the address: it is not limited."""
    secrets = snapshot.cookies
    if secrets is None or len(wire) < 12 or b"\x00\x0a" not in wire:  # no COOKIE code
        return False, False
    try:
        edns = scan(wire).edns
    except FormErr:
        return False, False
    if edns is None or edns.cookie is None:
        return False, False
    client_cookie, server = cookies.split(edns.cookie)
    return True, bool(server) and cookies.valid(
        secrets, client_cookie, server, address, int(time.time())
    )


def bad_cookie(wire: bytes, address: str, snapshot: Snapshot) -> bytes | None:
    """BADCOOKIE (RFC 7873 §5.2.3) with a fresh cookie: what a rate-limited query that sent a
    client cookie gets instead of its answer. A few octets; the client asks again with the
    cookie, and passes."""
    if len(wire) < 12 or snapshot.cookies is None:
        return None
    try:
        query = scan(wire)
    except FormErr:
        return None
    if query.edns is None or query.edns.cookie is None or query.flags & 0xF800:
        return None  # QR=1, or an opcode other than QUERY: no question to answer BADCOOKIE to
    client = Client(address, 0)
    opt = _opt(query, client, snapshot, 0, cookies.BADCOOKIE >> 4)
    question = query.qname + struct.pack("!HH", query.qtype, query.qclass)
    return encode.header_only(query.id, query.flags, cookies.BADCOOKIE & 0xF, question, opt)


def route_of(query: Query, snapshot: Snapshot) -> Route | None:
    """Which pools the answer passes through (None: none, the answer is static)."""
    touched: list[Pool] = []

    def record(pool: Pool) -> RRset:
        touched.append(pool)
        return RRset(pool.owner, pool.rtype, pool.ttl, ((b"\0" * 4,),))

    decide(query, snapshot, record)
    zone = _zone_for(query, snapshot)
    if not touched or zone is None:
        return None
    pools = _with_fallbacks(touched, zone.pools_by_name)
    needs = Precision()
    for p in pools:
        needs = needs | precision_of(p)
    slots = combine([period(p, snapshot.state, zone.pools_by_name) for p in pools])
    cold = any(p.id in snapshot.state.cold for p in pools)
    return Route(needs, slots, cold)


def _with_fallbacks(pools: list[Pool], by_name: Mapping[str, Pool]) -> list[Pool]:
    out: list[Pool] = []
    todo = list(pools)
    while todo:
        pool = todo.pop()
        if pool in out:
            continue
        out.append(pool)
        fallback = by_name.get(pool.fallback.pool or "")
        if pool.fallback.kind == "pool" and fallback is not None:
            todo.append(fallback)
    return out


def _dynamic(
    query: Query,
    snapshot: Snapshot,
    info: ClientInfo,
    decision_key: bytes,
    slot: int,
    room: int,
) -> Dynamic:
    members: list[str] = []

    def answer(pool: Pool) -> RRset:
        zone = _zone_for(query, snapshot)
        assert zone is not None
        decision = decide_pool(pool, snapshot.state, zone.pools_by_name, info, slot, decision_key)
        if decision.members:
            # An answer counts for the member it leads with: clients that take only the
            # first address open their session there, and the others are where retries go.
            members.append(decision.members[0].key)
        rdatas = tuple((m.rdata,) for m in decision.members)
        ttl = snapshot.state.ttl.get(pool.id, pool.ttl) if snapshot.state.ttl else pool.ttl
        return RRset(pool.owner, decision.pool.rtype, ttl, rdatas)

    body = encode.encode(query, secure(query, snapshot, decide(query, snapshot, answer)), room)
    scope = decision_key[1] if decision_key else 0
    return Dynamic(body, scope, tuple(members))


def _dnssec_ok(query: Query) -> bool:
    return query.edns is not None and query.edns.do


def secure(query: Query, snapshot: Snapshot, lookup: Lookup) -> Lookup:
    """`lookup` as a query with DO set gets it: signed, when its zone is (gslb.core.dnssec).
    Without DO the answer stays unsigned and small (RFC 3225 §3)."""
    if not _dnssec_ok(query):
        return lookup
    zone = snapshot.zones.find(query.key)
    if zone is None or zone.context is None or zone.context.dnssec is None:
        return lookup
    if zone.apex not in snapshot.signers:
        # The zone is signed but this node has no key yet: an unsigned answer would be
        # bogus to a validator; SERVFAIL sends it to another server.
        return Lookup(RCODE_SERVFAIL, False)
    signers = snapshot.signers

    def signer_of(owner: bytes) -> Signer | None:
        held = snapshot.zones.find(owner)
        return signers.get(held.apex) if held is not None else None

    def types_at(name: bytes) -> set[int]:
        held = snapshot.zones.find(name) or zone
        types = set(held.nodes.get(name, {}))
        types.update(p.rtype for p in held.pools.get(name, ()))
        if name == held.apex and held.apex in signers:
            types.update((dnssec.DNSKEY, dnssec.CDS, dnssec.CDNSKEY))
        return types

    def ds_at(cut: bytes) -> RRset | None:
        return zone.nodes.get(cut, {}).get(dnssec.DS)

    return dnssec.sign_lookup(lookup, query.key, query.qtype, signer_of, types_at, ds_at)


def _zone_for(query: Query, snapshot: Snapshot) -> Zone | None:
    return snapshot.zones.find(query.key)


def decide(query: Query, snapshot: Snapshot, pool_answer: PoolAnswer | None = None) -> Lookup:
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
    signer = snapshot.signers.get(zone.apex) if query.key == zone.apex else None
    if signer is not None and (zone.context is None or zone.context.dnssec is None):
        signer = None  # no longer signed: the signer goes with the next refresh
    added = signer.apex_rrset(qtype) if signer is not None else None
    if added is not None:  # DNSKEY, CDS, CDNSKEY: made from the zone's keys
        return Lookup(0, True, ((zone.apex, added),))
    return lookup(zone, query.key, qtype, pool_answer)
