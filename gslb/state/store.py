"""The shared state in Redis: key schema, atomic writes, and reading it all back.

Key names and value formats are in gslb.schema (shared with the checkers); docs/redis.md
has the whole schema.

Every multi-key write is one MULTI/EXEC that also bumps `gslb:version` and publishes the
event, so a reader never sees half a change and always learns that one happened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from gslb.core.state import ClusterState, Load, MemberState
from gslb.core.targets import targets_of
from gslb.core.zonedoc import ZoneDoc
from gslb.schema import (
    ANSWERS,
    AUDIT,
    CHECKERS,
    EVENTS,
    HEALTH,
    HISTORY,
    LOAD,
    NODES,
    PATHS_DOWN,
    RESULTS,
    TARGETS,
    VERSION,
    ZONES,
    Checker,
    Health,
    Result,
    Target,
    dumps,
)
from gslb.schema import Load as LoadReport

ANSWER_BUCKET = 10  # seconds per answers bucket
ANSWER_WINDOW = 3  # buckets that make "recently" (30 s)
LOAD_FRESH = 30.0  # seconds an agent report stays fresh
AUDIT_KEEP = 10000  # audit records kept (the oldest go first)
NODE_ALIVE = 6.0  # seconds since its last heartbeat that a node counts as alive (3 beats)


@dataclass(frozen=True, slots=True)
class StoredZone:
    name: str
    document: dict[str, Any]  # the zone document, normalized, records inlined
    serial: int
    fingerprint: str
    source: str  # who wrote it last: "file:PATH" or "api:TOKEN-NAME"
    # The file the zone was loaded from, and a digest of what it said then: a file that still
    # says the same does not undo edits made through the API (docs/api.md, "files and API").
    file: str | None = None
    file_digest: str | None = None
    # What the checkers must probe, when the writer already has it (not stored in the JSON;
    # derived from the document otherwise).
    targets: tuple[Target, ...] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> str:
        return json.dumps(
            {
                "document": self.document,
                "serial": self.serial,
                "fingerprint": self.fingerprint,
                "source": self.source,
                "file": self.file,
                "file_digest": self.file_digest,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, name: str, text: str | bytes) -> StoredZone:
        data = json.loads(text)
        return cls(
            name,
            data["document"],
            int(data["serial"]),
            data["fingerprint"],
            data["source"],
            data.get("file"),
            data.get("file_digest"),
        )


# An edit of one zone: given what is stored (None: nothing), what to store instead (None:
# delete it) and the audit record of the change; raising leaves everything as it was.
ZoneEdit = Callable[[StoredZone | None], Awaitable[tuple[StoredZone | None, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Stored:
    """Everything a snapshot is built from, read in one transaction."""

    version: int
    zones: dict[str, StoredZone]
    state: ClusterState
    # The configuration and decided health as read, for a copy on disk (see Sync.persist).
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_file(self) -> str:
        return json.dumps(self.raw)

    @classmethod
    def from_file(cls, text: str) -> Stored:
        raw = json.loads(text)
        zones = {name: StoredZone.from_json(name, value) for name, value in raw["zones"].items()}
        health = {k.encode(): v.encode() for k, v in raw["health"].items()}
        paths = {p.encode() for p in raw["paths_down"]}
        return cls(int(raw["version"]), zones, _state(health, {}, paths, [], time.time()), raw)


class Store:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def version(self) -> int:
        return int(await self.redis.get(VERSION) or 0)

    async def read(self, now: float | None = None) -> Stored:
        now = time.time() if now is None else now
        bucket = int(now // ANSWER_BUCKET)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(VERSION)
            pipe.hgetall(ZONES)
            pipe.hgetall(HEALTH)
            pipe.hgetall(LOAD)
            pipe.smembers(PATHS_DOWN)
            for b in range(bucket - ANSWER_WINDOW + 1, bucket + 1):
                pipe.hgetall(f"{ANSWERS}{b}")
            version, zones, health, load, paths, *answers = await pipe.execute()
        raw = {
            "version": int(version or 0),
            "zones": {_s(k): _s(v) for k, v in zones.items()},
            "health": {_s(k): _s(v) for k, v in health.items()},
            "paths_down": sorted(_s(p) for p in paths),
        }
        return Stored(
            int(version or 0),
            {_s(k): StoredZone.from_json(_s(k), v) for k, v in zones.items()},
            _state(health, load, paths, answers, now),
            raw,
        )

    async def put_zones(
        self,
        zones: list[StoredZone],
        remove: tuple[str, ...] = (),
        kind: str = "config",
        audit: list[dict[str, Any]] | None = None,
    ) -> int:
        """Store zones (and drop others) atomically, with what the checkers must probe in
        them; returns the new version."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for zone in zones:
                _queue_zone(pipe, zone.name, zone)
            for name in remove:
                _queue_zone(pipe, name, None)
            _queue_audit(pipe, audit or [])
            pipe.incr(VERSION)
            results = await pipe.execute()
        version = int(results[-1])
        await self.publish(kind, version, zones=[z.name for z in zones], removed=list(remove))
        return version

    async def zones(self) -> dict[str, StoredZone]:
        return {
            _s(k): StoredZone.from_json(_s(k), v)
            for k, v in (await self.redis.hgetall(ZONES)).items()
        }

    async def zone(self, name: str) -> StoredZone | None:
        raw = await self.redis.hget(ZONES, name)
        return None if raw is None else StoredZone.from_json(name, raw)

    async def change_zone(self, name: str, edit: ZoneEdit) -> tuple[StoredZone | None, bool]:
        """Apply `edit` to zone `name` atomically: optimistic (WATCH), retried when another
        writer got in between, so the edit always sees what it replaces. Returns what is
        stored now and whether anything changed (an edit that changes nothing writes
        nothing: applying the same document twice is one change)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(ZONES)
                    raw = await pipe.hget(ZONES, name)
                    before = None if raw is None else StoredZone.from_json(name, raw)
                    after, record = await edit(before)
                    if (after and after.to_json()) == (before and before.to_json()):
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return before, False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    _queue_zone(pipe, name, after)
                    _queue_audit(pipe, [record])
                    pipe.incr(VERSION)
                    *_, version = await pipe.execute()
                    break
                except redis.exceptions.WatchError:
                    continue
        await self.publish(
            "config",
            int(version),
            zones=[name] if after else [],
            removed=[] if after else [name],
            who=record.get("who"),
            action=record.get("action"),
            resource=record.get("resource"),
        )
        return after, True

    async def answers(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """Answers handed out per member key in each recent bucket (oldest first), by bucket
        start time: what the dashboard plots."""
        bucket = int((time.time() if now is None else now) // ANSWER_BUCKET)
        buckets = range(bucket - ANSWER_WINDOW - 1, bucket + 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for b in buckets:
                pipe.hgetall(f"{ANSWERS}{b}")
            counts = await pipe.execute()
        return {
            str(b * ANSWER_BUCKET): {_s(k): int(v) for k, v in raw.items()}
            for b, raw in zip(buckets, counts, strict=True)
        }

    async def nodes(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """DNS and API processes by id, from their heartbeats (a node silent for an hour is
        left out: it was stopped without saying so)."""
        now = time.time() if now is None else now
        out = {}
        for key, raw in (await self.redis.hgetall(NODES)).items():
            try:
                info = json.loads(raw)
                seen = float(info["seen"])
            except (ValueError, KeyError, TypeError):
                continue
            if now - seen > 3600:
                continue
            out[_s(key)] = {**info, "alive": now - seen <= NODE_ALIVE}
        return out

    async def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """Decided health changes, newest first."""
        return [json.loads(item) for item in await self.redis.lrange(HISTORY, 0, limit - 1)]

    async def audit(self, limit: int = 100, zone: str | None = None) -> list[dict[str, Any]]:
        """The newest audit records first; with `zone`, only that zone's."""
        raw = await self.redis.lrange(AUDIT, 0, -1 if zone else limit - 1)
        records = [json.loads(item) for item in raw]
        if zone is not None:
            records = [r for r in records if r.get("zone") == zone]
        return records[:limit]

    async def set_health(self, states: dict[str, MemberState]) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, state in states.items():
                pipe.hset(
                    HEALTH,
                    key,
                    json.dumps(
                        {
                            "health": state.health,
                            "rtt": state.rtt,
                            "paths_down": sorted(state.paths_down),
                            "since": time.time(),
                        }
                    ),
                )
            pipe.incr(VERSION)
            results = await pipe.execute()
        version = int(results[-1])
        await self.publish("health", version, members=list(states))
        return version

    async def publish(self, kind: str, version: int, **details: Any) -> None:
        await self.redis.publish(EVENTS, json.dumps({"kind": kind, "version": version, **details}))

    async def health_detail(self, now: float | None = None) -> dict[str, Any]:
        """Every member's verdict, what each checker sees over each path, and the checkers:
        the read-only view for operators (API, dashboard)."""
        now = time.time() if now is None else now
        decided = await self.redis.hgetall(HEALTH)
        keys = sorted(_s(k) for k in decided)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(f"{RESULTS}{key}")
            pipe.hgetall(CHECKERS)
            *results, checkers = await pipe.execute()
        members = {}
        for key, raw_results in zip(keys, results, strict=True):
            verdict = Health.from_json(decided[key.encode()])
            paths = {}
            for name, raw in sorted(raw_results.items()):
                result = Result.from_json(raw)
                paths[_s(name)] = {
                    "vote": result.vote,
                    "ok": result.ok,
                    "rtt": result.rtt,
                    "error": result.error,
                    "at": result.at,
                    "since": result.since,
                    "fresh": result.expires >= now,
                }
            members[key] = {
                "health": verdict.health,
                "rtt": verdict.rtt,
                "paths_down": list(verdict.paths_down),
                "since": verdict.since,
                "checkers": paths,
            }
        return {"members": members, "checkers": _checkers(checkers, now)}

    async def checkers(self, now: float | None = None) -> dict[str, Any]:
        """The checkers by id: region, paths, last heartbeat, whether alive, work done."""
        return _checkers(await self.redis.hgetall(CHECKERS), time.time() if now is None else now)

    async def add_answers(self, tally: dict[str, int], now: float | None = None) -> None:
        """Add this node's answers handed out to the current bucket (no version bump: readers
        pick counts up at their next resync)."""
        if not tally:
            return
        key = f"{ANSWERS}{int((time.time() if now is None else now) // ANSWER_BUCKET)}"
        async with self.redis.pipeline(transaction=False) as pipe:
            for member, count in tally.items():
                pipe.hincrby(key, member, count)
            pipe.expire(key, ANSWER_BUCKET * (ANSWER_WINDOW + 2))
            await pipe.execute()


def _checkers(raw: dict[Any, Any], now: float) -> dict[str, Any]:
    live = {}
    for value in raw.values():
        checker = Checker.from_json(value)
        live[checker.id] = {
            "region": checker.region,
            "paths": list(checker.paths),
            "seen": checker.seen,
            "alive": now - checker.seen <= 2.5,
            "probes": checker.probes,
            "assigned": checker.assigned,
        }
    return live


def _queue_zone(pipe: Any, name: str, zone: StoredZone | None) -> None:
    if zone is None:
        pipe.hdel(ZONES, name)
        pipe.hdel(TARGETS, name)
    else:
        pipe.hset(ZONES, name, zone.to_json())
        targets = zone.targets if zone.targets is not None else _targets(zone)
        pipe.hset(TARGETS, name, dumps([t.to_dict() for t in targets]))


def _queue_audit(pipe: Any, records: list[dict[str, Any]]) -> None:
    for record in records:
        pipe.lpush(AUDIT, json.dumps(record, sort_keys=True))
    if records:
        pipe.ltrim(AUDIT, 0, AUDIT_KEEP - 1)


def _targets(zone: StoredZone) -> list[Target]:
    try:
        return targets_of(ZoneDoc.model_validate(zone.document))
    except ValueError:
        return []  # the zone will be refused when compiled, and reported there


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _state(
    health: dict[bytes, bytes],
    load: dict[bytes, bytes],
    paths: set[bytes],
    answers: list[dict[bytes, bytes]],
    now: float,
) -> ClusterState:
    members: dict[str, MemberState] = {}
    for key, raw in health.items():
        try:
            decided = Health.from_json(raw)
        except (ValueError, KeyError, TypeError):
            continue  # a foreign or broken entry is no health information
        members[_s(key)] = MemberState(decided.health, decided.rtt, frozenset(decided.paths_down))
    loads: dict[str, Load] = {}
    for address, raw in load.items():
        try:
            report = LoadReport.from_json(raw)
        except (ValueError, TypeError, AttributeError):
            continue
        if now - report.at > LOAD_FRESH:
            continue  # a stale report is no report (RFC 2391: the agent stopped talking)
        loads[_s(address)] = Load(report.sessions, report.cpu, report.traffic)
    counted: dict[str, float] = {}
    for bucket in answers:
        for key, count in bucket.items():
            counted[_s(key)] = counted.get(_s(key), 0.0) + float(count)
    down: set[tuple[str, str | None]] = set()
    for item in paths:
        isp, _, site = _s(item).partition("|")
        down.add((isp, None if site in ("", "*") else site))
    return ClusterState(members, loads, counted, frozenset(down))
