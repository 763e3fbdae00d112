"""The UDP front: whole replies by the query's exact octets, in front of everything else.

A repeated question, written the same way (letter case, flags, EDNS options and Client Subnet
included), gets its reply from one dict lookup and the client's message ID. Entries:

- `bytes`: the reply (all but its ID), the same for everyone;
- a `Rotation`: one reply per rotation slot, filled as the slots come up;
- `PER_CLIENT`: this question's replies depend on the resolver's own address (a location
  without a Client Subnet), and are kept under (query, address), each a `Rotation`.

The entries belong to one snapshot version: a new snapshot starts an empty front, so nothing
stale is ever served and nothing has to be walked. Bounded: when full it starts afresh. One
front belongs to one UDP thread (gslb.shell.transport): nothing here needs a lock.
"""

from __future__ import annotations

from gslb.core.answer import Note, Reply, handle
from gslb.core.decisionkey import Client
from gslb.core.query import Query
from gslb.core.replycache import CACHE_BYTES, ENTRY_OVERHEAD, ReplyCache
from gslb.core.snapshot import Snapshot

FRONT_MAX_QUERY = 300  # octets: a question, an OPT with a client subnet, and no more


class Rotation:
    """The replies of one dynamic question, one per rotation slot, filled as slots come up."""

    __slots__ = ("members", "period", "replies")

    def __init__(self, period: int) -> None:
        self.period = period
        self.replies: list[bytes | None] = [None] * period
        self.members: list[tuple[str, ...]] = [()] * period


class PerClient:
    """The entry of a question whose replies are kept per resolver address."""

    __slots__ = ()


PER_CLIENT = PerClient()
Entry = bytes | Rotation | PerClient


class Front:
    def __init__(self, max_entries: int = 100_000, max_bytes: int = CACHE_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # octets held, roughly: keys (the queries) and replies
        self.version = -1
        self.entries: dict[object, Entry] = {}

    def reset(self, version: int) -> None:
        self.version = version
        self.entries = {}
        self.size = 0

    def put(self, key: object, value: Entry, size: int = 0) -> None:
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

    def remember(self, wire: bytes, query: Query, client: Client, reply: bytes, note: Note) -> None:
        """Keep `reply` for the next time these exact octets come, as `note` says it may be
        reused."""
        if not _plain(wire, query):
            return
        route, slot, members = note
        key: object = wire[2:]
        if route is None:
            self.put(key, reply[2:], len(wire) + len(reply))
            return
        if not route.precision.blind and not _has_subnet(query):
            self.put(key, PER_CLIENT, len(wire))
            key = (key, client.address)
        entry = self.entries.get(key)
        if not isinstance(entry, Rotation) or entry.period != route.period:
            entry = Rotation(route.period)
            self.put(key, entry, len(wire) + 8 * route.period)
        entry.replies[slot] = reply[2:]
        entry.members[slot] = members
        self.grow(len(reply))


def _plain(wire: bytes, query: Query) -> bool:
    """Whether the front may keep this reply under the query's octets: only when those
    octets hold nothing but what the reply depends on. A query padded with options that
    change nothing (unknown ones, padding) would otherwise make an entry per spelling, and
    a query with a cookie gets a cookie made for its own address and time."""
    if len(wire) > FRONT_MAX_QUERY or len(wire) <= 12:
        return False
    edns = query.edns
    return edns is None or (edns.cookie is None and not edns.other)


def _has_subnet(query: Query) -> bool:
    return query.edns is not None and query.edns.ecs is not None and query.edns.ecs.source > 0


def answer_udp(
    wire: bytes, address: str, snapshot: Snapshot, cache: ReplyCache, front: Front
) -> Reply:
    """The reply to a UDP query, through the front: what a UDP listener calls. Returns what
    `handle` does (`DEFER` included)."""
    if front.version != snapshot.version:
        front.reset(snapshot.version)
    key = wire[2:]
    entry = front.entries.get(key)
    draw = None
    if entry is not None:
        if type(entry) is bytes:
            return wire[:2] + entry
        if entry is PER_CLIENT:
            entry = front.entries.get((key, address))
        if type(entry) is Rotation:
            draw = cache.next_slot()
            slot = draw % entry.period
            reply = entry.replies[slot]
            if reply is not None:
                cache.count(entry.members[slot])
                return wire[:2] + reply
    # Not seen yet (or not this slot): the whole way, with the slot already drawn.
    return handle(wire, Client(address, 0), snapshot, cache, front=front, draw=draw)
