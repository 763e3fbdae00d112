"""The reply cache: encoded reply bodies by the key they are a pure function of (DESIGN.md §9).

Two kinds of entry, in two maps, each of its own type:

- by the question's key (snapshot version, name, type, class, reply room): a `Static` body
  (the reply never depends on the client or on time) or the `Route` a dynamic reply takes
  (what of the client it reads, how many rotation slots it cycles through);
- by that key plus the client's decision key and the rotation slot: the `Dynamic` reply.

Keys carry the snapshot version, so entries of an old snapshot never match again; they only
wait to be dropped with the rest at the next reset (bounded in entries and in octets: when
full, the cache starts afresh). It also keeps the rotation counter and the tally of answers
handed out per member.

One cache belongs to one thread: the event loop has one (TCP, held queries), and each UDP
thread its own (gslb.shell.transport), so nothing here needs a lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from gslb.core.policy import Precision

ENTRY_OVERHEAD = 160  # octets a cache entry costs besides its key and reply (dict, tuple, object)
CACHE_BYTES = 32 << 20  # what one cache may hold before it starts afresh

# (snapshot version, query key, type, class, reply room, DNSSEC OK)
QuestionKey = tuple[int, bytes, int, int, int, bool]
# (question key, the client's decision key, rotation slot)
AnswerKey = tuple[QuestionKey, bytes, int]


@dataclass(frozen=True, slots=True)
class Static:
    """A reply body that is the same for every client, at every moment of its snapshot."""

    body: bytes


@dataclass(frozen=True, slots=True)
class Route:
    """What a dynamic reply depends on, found once per question key."""

    precision: Precision  # what of the client it depends on
    period: int  # rotation slots
    cold: bool = False  # passes through a pool in its cold start


@dataclass(frozen=True, slots=True)
class Dynamic:
    """A dynamic reply body, for one client network and one rotation slot."""

    body: bytes
    scope: int  # the ECS scope it is good for
    members: tuple[str, ...]  # keys of the members the answer leads with, for the tally


class ReplyCache:
    def __init__(
        self, max_entries: int = 50_000, first_slot: int = 1, max_bytes: int = CACHE_BYTES
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # octets held, roughly
        self._questions: dict[QuestionKey, Static | Route] = {}
        self._answers: dict[AnswerKey, Dynamic] = {}
        self._slot = first_slot - 1
        self._tally: dict[tuple[str, ...], int] = {}

    def question(self, key: QuestionKey) -> Static | Route | None:
        return self._questions.get(key)

    def put_question(self, key: QuestionKey, entry: Static | Route) -> None:
        self._make_room(len(entry.body) if isinstance(entry, Static) else 0)
        self._questions[key] = entry

    def answer(self, key: AnswerKey) -> Dynamic | None:
        return self._answers.get(key)

    def put_answer(self, key: AnswerKey, entry: Dynamic) -> None:
        self._make_room(len(entry.body) + 16 * len(entry.members))
        self._answers[key] = entry

    def _make_room(self, size: int) -> None:
        size += ENTRY_OVERHEAD
        if len(self) >= self.max_entries or self.size + size > self.max_bytes:
            self._questions.clear()
            self._answers.clear()
            self.size = 0
        self.size += size

    def next_slot(self) -> int:
        self._slot += 1
        return self._slot

    def count(self, members: tuple[str, ...]) -> None:
        # One dict update per answer, whatever its size; spelled out per member when taken.
        # gslb/shell/_udploop.c does the same updates (with next_slot's) for front hits.
        tally = self._tally
        tally[members] = tally.get(members, 0) + 1

    def take_tally(self) -> dict[str, int]:
        """The answers led per member since the last time. Called from the event loop while
        a UDP thread may still be counting: the swap is one assignment, and a count the
        thread adds to the old dict after the copy below is the only one lost."""
        counted, self._tally = self._tally, {}
        tally: dict[str, int] = {}
        for members, count in list(counted.items()):
            for key in members:
                tally[key] = tally.get(key, 0) + count
        return tally

    def __len__(self) -> int:
        return len(self._questions) + len(self._answers)
