"""`handle(wire, client, snapshot)`: one DNS message in, one reply (or silence) out.

This is the whole protocol, with no I/O: the UDP and TCP transports call it and send what it
returns. It never raises on any input.

Replies are decided per key, not per packet (DESIGN.md §9). The first query for a name, type,
class and reply room finds its *route*: static (the reply never depends on the client or on
time, so the encoded body is cached under that key alone) or dynamic (it passes through pools;
the route records what of the client they look at and how many rotation slots they cycle
through). A dynamic reply is then cached under the route key plus the client's decision key
(its GeoIP network, its /24, or nothing) and the slot the query drew. Every query only patches
its ID, flags and letter case into the cached body and appends its own OPT record.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gslb.core import cookies, encode
from gslb.core.decide import combine, period
from gslb.core.decide import decide as decide_pool
from gslb.core.location import ClientInfo, IPAddress, Location
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

# handle() returns this (empty) reply when the answer depends on a pool in its cold start:
# the transport holds the query and asks again with the next snapshot, or with
# `fail_open=True` once the pool's cold-start wait is over.
DEFER = b""

MIN_UDP = 512
TCP_ROOM = 65535
EXTENDED_BADVERS = 1  # BADVERS is rcode 16: 1 in the OPT's upper eight bits, 0 in the header


class Client(NamedTuple):
    address: str
    port: int
    tcp: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """What a dynamic reply depends on, found once per (version, name, type, class, room)."""

    precision: Precision  # what of the client it depends on
    period: int  # rotation slots
    cold: bool = False  # passes through a pool in its cold start


@dataclass(frozen=True, slots=True)
class Dynamic:
    body: bytes
    scope: int
    members: tuple[str, ...]  # keys of the members the answer leads with, for the tally


ENTRY_OVERHEAD = 160  # octets a cache entry costs besides its key and reply (dict, tuple, object)
CACHE_BYTES = 32 << 20  # what one cache may hold before it starts afresh


def _size(value: object) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, Dynamic):
        return len(value.body) + 16 * len(value.members)
    return 0


class ReplyCache:
    """Encoded replies by key, bounded in entries and in octets: when full it starts afresh.

    Keys carry the snapshot version, so entries of an old snapshot never match again; they
    only wait to be dropped with the rest at the next reset. It also holds the per-worker
    rotation counter and the tally of answers handed out per member.
    """

    def __init__(
        self, max_entries: int = 50_000, first_slot: int = 1, max_bytes: int = CACHE_BYTES
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # octets held, roughly
        self._entries: dict[tuple[object, ...], object] = {}
        self._slot = first_slot - 1
        self._tally: dict[tuple[str, ...], int] = {}

    def get(self, key: tuple[object, ...]) -> object:
        return self._entries.get(key)

    def put(self, key: tuple[object, ...], value: object) -> None:
        size = ENTRY_OVERHEAD + _size(value)
        if len(self._entries) >= self.max_entries or self.size + size > self.max_bytes:
            self._entries.clear()
            self.size = 0
        self._entries[key] = value
        self.size += size

    def next_slot(self) -> int:
        self._slot += 1
        return self._slot

    def count(self, members: tuple[str, ...]) -> None:
        # One dict update per answer, whatever its size; spelled out per member when taken.
        tally = self._tally
        tally[members] = tally.get(members, 0) + 1

    def take_tally(self) -> dict[str, int]:
        counted, self._tally = self._tally, {}
        tally: dict[str, int] = {}
        # list() copies in one step: a UDP thread may still add to the dict it just had.
        for members, count in list(counted.items()):
            for key in members:
                tally[key] = tally.get(key, 0) + count
        return tally

    def __len__(self) -> int:
        return len(self._entries)


class Rotation:
    """The replies of one dynamic question, one per rotation slot, filled as slots come up."""

    __slots__ = ("members", "period", "replies")

    def __init__(self, period: int) -> None:
        self.period = period
        self.replies: list[bytes | None] = [None] * period
        self.members: list[tuple[str, ...]] = [()] * period


BY_CLIENT = Rotation(1)  # marker: this question's replies are kept per client address


class Front:
    """Whole replies (all but the message ID) by the query's exact octets after its ID.

    In front of everything else for UDP: a repeated question, written the same way (letter
    case, flags, EDNS options and Client Subnet included), gets its reply from one dict lookup
    and the client's ID. Replies that rotate keep one entry per slot; replies that depend on
    the resolver's own address (location without a Client Subnet) are kept per address. The
    entries belong to one snapshot version: a new snapshot starts an empty front, so nothing
    stale is ever served and nothing has to be walked. Bounded: when full it starts afresh.
    """

    def __init__(self, max_entries: int = 100_000, max_bytes: int = CACHE_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # octets held, roughly: keys (the queries) and replies
        self.version = -1
        self.entries: dict[object, bytes | Rotation] = {}

    def reset(self, version: int) -> None:
        self.version = version
        self.entries = {}
        self.size = 0

    def put(self, key: object, value: bytes | Rotation, size: int = 0) -> None:
        """Keep `value` under `key`; `size`: the octets of key and value, as the caller
        knows them (a query kept as its key costs its length)."""
        size += ENTRY_OVERHEAD
        if len(self.entries) >= self.max_entries or self.size + size > self.max_bytes:
            self.entries = {}
            self.size = 0
        self.entries[key] = value
        self.size += size

    def grow(self, size: int) -> None:
        """A rotation slot filled in: its reply counts too."""
        self.size += size


def answer_udp(
    wire: bytes, address: str, snapshot: Snapshot, cache: ReplyCache, front: Front
) -> bytes | None:
    """`handle()` for a UDP query, through the front: what a UDP listener calls."""
    if front.version != snapshot.version:
        front.reset(snapshot.version)
    key = wire[2:]
    entry = front.entries.get(key)
    draw = None
    if entry is not None:
        if entry.__class__ is bytes:
            return wire[:2] + entry
        if entry is BY_CLIENT:
            entry = front.entries.get((key, address))
        if entry is not None:
            assert isinstance(entry, Rotation)
            draw = cache.next_slot()
            slot = draw % entry.period
            reply = entry.replies[slot]
            if reply is not None:
                cache.count(entry.members[slot])
                return wire[:2] + reply
    # Not seen yet (or not this slot): the whole way, with the slot already drawn.
    return handle(wire, Client(address, 0), snapshot, cache, front=front, draw=draw)


def handle(
    wire: bytes,
    client: Client,
    snapshot: Snapshot,
    cache: ReplyCache | None = None,
    fail_open: bool = False,
    front: Front | None = None,
    draw: int | None = None,
) -> bytes | None:
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
        if front is not None and note is not None and _plain(wire, query):
            _remember(front, wire, query, client, reply, note)
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


FRONT_MAX_QUERY = 300  # octets: a question, an OPT with a client subnet, and no more


def _plain(wire: bytes, query: Query) -> bool:
    """Whether the front may keep this reply under the query's octets: only when those
    octets hold nothing but what the reply depends on. A query padded with options that
    change nothing (unknown ones, padding) would otherwise make an entry per spelling, and
    a query with a cookie gets a cookie made for its own address and time."""
    if len(wire) > FRONT_MAX_QUERY or len(wire) <= 12:
        return False
    edns = query.edns
    return edns is None or (edns.cookie is None and not edns.other)


# How a reply may be reused by the front: (route or None for static, slot, members handed out).
Note = tuple["Route | None", int, tuple[str, ...]]


def _remember(
    front: Front, wire: bytes, query: Query, client: Client, reply: bytes, note: Note
) -> None:
    route, slot, members = note
    key: object = wire[2:]
    if route is None:
        front.put(key, reply[2:], len(wire) + len(reply))
        return
    if not route.precision.blind and not _has_subnet(query):
        front.put(key, BY_CLIENT, len(wire))
        key = (key, client.address)
    entry = front.entries.get(key)
    if not isinstance(entry, Rotation) or entry is BY_CLIENT or entry.period != route.period:
        entry = Rotation(route.period)
        front.put(key, entry, len(wire) + 8 * route.period)
    entry.replies[slot] = reply[2:]
    entry.members[slot] = members
    front.grow(len(reply))


def _respond(
    query: Query,
    client: Client,
    snapshot: Snapshot,
    cache: ReplyCache,
    fail_open: bool,
    draw: int | None = None,
) -> tuple[bytes, Note | None]:
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
    base = (snapshot.version, query.key, query.qtype, query.qclass, room)
    found = cache.get(base)
    if found is None:
        found = route_of(query, snapshot)
        if found is None:  # static: the body is the route
            found = encode.encode(query, decide(query, snapshot), room)
        cache.put(base, found)
    note: Note | None
    if isinstance(found, bytes):
        body, scope = found, 0
        note = None if client.tcp else (None, 0, ())
    else:
        assert isinstance(found, Route)
        if found.cold and not fail_open:
            return DEFER, None
        info, decision_key, scope = client_decision(found, query, client, snapshot)
        slot = (cache.next_slot() if draw is None else draw) % found.period
        key = (base, decision_key, slot)
        entry = cache.get(key)
        if entry is None:
            entry = _dynamic(query, snapshot, info, decision_key, slot, room)
            cache.put(key, entry)
        assert isinstance(entry, Dynamic)
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


BLIND = ClientInfo(ipaddress.IPv4Address(0), None)  # for pools that never look at the client


def _client_bits(query: Query, client: Client) -> tuple[int, int, int | None]:
    """(IP version, address as an integer, ECS source prefix or None): the address decisions
    use is the EDNS Client Subnet when given (and not /0), else the resolver's own address
    (RFC 7871 §7.1.1)."""
    ecs = query.edns.ecs if query.edns is not None else None
    if ecs is not None and ecs.source > 0:
        size = 4 if ecs.family == 1 else 16
        value = int.from_bytes(ecs.address, "big") << (8 * (size - len(ecs.address)))
        return (4 if size == 4 else 6), value, ecs.source
    host = client.address
    if ":" in host:
        return (
            6,
            int.from_bytes(socket.inet_pton(socket.AF_INET6, host.partition("%")[0]), "big"),
            None,
        )
    return 4, int.from_bytes(socket.inet_aton(host), "big"), None


def client_info(query: Query, client: Client) -> ClientInfo:
    version, value, source = _client_bits(query, client)
    return ClientInfo(_address(version, value), source)


def _address(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def client_decision(
    route: Route, query: Query, client: Client, snapshot: Snapshot
) -> tuple[ClientInfo, bytes, int]:
    """(client info, decision key, ECS scope) for a dynamic route.

    The decision key is the client's address cut to the prefix the decision depends on (the
    GeoIP record's network, a sticky /24 or /56, topology CIDR rules), as
    `version, prefix, network bits`; client-blind routes share the empty key.
    """
    needs = route.precision
    if needs.blind:
        return BLIND, b"", 0
    version, value, source = _client_bits(query, client)
    bits = 32 if version == 4 else 128
    address = _address(version, value)
    prefix = 0
    location: Location | None = None
    if needs.geo and snapshot.locator is not None:
        location = snapshot.locator.locate(address)
        if location is not None:
            prefix = location.network.prefixlen
    prefix = max(prefix, needs.ipv4 if version == 4 else needs.ipv6)
    network = (value >> (bits - prefix)) << (bits - prefix) if prefix else 0
    key = bytes((version, prefix)) + network.to_bytes(bits // 8, "big")
    return ClientInfo(address, source, location), key, prefix


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

    body = encode.encode(query, decide(query, snapshot, answer), room)
    scope = decision_key[1] if decision_key else 0
    return Dynamic(body, scope, tuple(members))


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
    return lookup(zone, query.key, qtype, pool_answer)
