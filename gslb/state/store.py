"""The shared state in Redis: the key layout, atomic writes with their change log, reading.

Key names and value formats are in gslb.schema (shared with the checkers); docs/redis.md
has the whole schema. Configuration is kept per resource (gslb.core.stored): a zone's meta,
head and records text, its static RRsets per owner, its pools, and the indexes writes check
against (which pool answers a name, which pools refer to a monitor, site, ISP or pool).

Every write is one MULTI/EXEC that changes the resources, appends what it changed to its lane's
log (gslb.schema: CONFIG_LOG, HEALTH_LOG), bumps `gslb:version` and records the audit entry,
so a reader never sees half a change and a DNS node can apply just what changed. Zone writes
are optimistic: WATCH on the zone's meta key, which every write of the zone changes, so two
writers of one zone never interleave and writers of different zones never wait on each other.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from gslb.core.dnssec import SigningKey
from gslb.core.state import ClusterState, Load, MemberState
from gslb.core.stored import Meta, join
from gslb.schema import (
    ANSWERS,
    APPEND_LOG,
    AUDIT,
    CHECKERS,
    CONFIG_LOG,
    CONFIG_SEQ,
    COOKIE_SECRETS,
    DNSSEC_KEYS,
    EPOCH,
    EVENTS,
    HEALTH,
    HEALTH_LOG,
    HEALTH_SEQ,
    HISTORY,
    LEAVING,
    LOAD,
    NODES,
    PATHS_DOWN,
    RESULTS,
    VERSION,
    ZONE_LIST,
    ZONE_PARTS,
    Checker,
    ConfigChange,
    Health,
    HealthChange,
    Leaving,
    PoolTargets,
    Result,
    append_args,
    zone_key,
)
from gslb.schema import Load as LoadReport

ANSWER_BUCKET = 10  # seconds per answers bucket
ANSWER_WINDOW = 3  # buckets that make "recently" (30 s)
LOAD_FRESH = 30.0  # seconds an agent report stays fresh
AUDIT_KEEP = 10000  # audit records kept (the oldest go first)
NODE_ALIVE = 6.0  # seconds since its last heartbeat that a node counts as alive (3 beats)
SCAN_COUNT = 5000  # hash fields read per round trip when a whole zone is read
WRITE_CHUNK = 5000  # fields per HSET/HDEL when a whole zone is written

Json = Any
T = TypeVar("T")

# HINCRBY for many fields at once, then the key's expiry. KEYS: the hash; ARGV: the expiry in
# seconds, then field, increment, field, increment...
ADD_COUNTS = """
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


def meta_key(zone: str) -> str:
    return zone_key(zone, "meta")


def ref_key(zone: str, kind: str, name: str) -> str:
    """The set of pools of `zone` that refer to the `kind` (monitor, site, isp, pool) `name`."""
    return zone_key(zone, f"refs:{kind}:{name}")


Ref = tuple[str, str]  # (kind, name) a pool refers to


@dataclass
class Write:
    """What one write changes in one zone; every field but `meta`, `change` and `audit` is
    optional (empty: unchanged). `meta` None deletes the zone and every key of it."""

    meta: Meta | None
    change: ConfigChange
    audit: dict[str, Json]
    head: dict[str, Json] | None = None
    records: str | None = None
    rrsets: dict[str, str | None] = field(default_factory=dict)  # owner -> node (None: gone)
    pools: dict[str, str | None] = field(default_factory=dict)  # name -> JSON (None: gone)
    owners: dict[str, str | None] = field(default_factory=dict)  # "owner TYPE" -> pool
    refs: dict[tuple[Ref, str], bool] = field(default_factory=dict)  # (ref, pool) -> add?
    targets: dict[str, str | None] = field(default_factory=dict)  # pool -> PoolTargets JSON
    monitors: dict[str, str] | None = None  # the zone's monitors, replaced whole
    drop: tuple[str, ...] = ()  # keys to remove (a deleted zone's)
    # Member keys no longer probed (removed, or their pool's monitor is): their decided
    # health and checkers' results go with the write (Store.change fills it in).
    forget: list[str] = field(default_factory=list)


class ZoneView:
    """Reads of one zone inside its optimistic transaction (after WATCH): what an edit looks
    at before it decides what to write."""

    def __init__(self, pipe: Any, zone: str) -> None:
        self.pipe = pipe
        self.zone = zone

    async def meta(self) -> Meta | None:
        raw = await self.pipe.get(meta_key(self.zone))
        return None if raw is None else Meta.from_json(raw)

    async def head(self) -> dict[str, Json] | None:
        raw = await self.pipe.get(zone_key(self.zone, "head"))
        return None if raw is None else json.loads(raw)

    async def records(self) -> str:
        raw = await self.pipe.get(zone_key(self.zone, "records"))
        return "" if raw is None else _s(raw)

    async def pool(self, name: str) -> dict[str, Json] | None:
        raw = await self.pipe.hget(zone_key(self.zone, "pools"), name)
        return None if raw is None else json.loads(raw)

    async def pools(self) -> dict[str, dict[str, Json]]:
        return {k: json.loads(v) for k, v in (await self._all("pools")).items()}

    async def rrsets(self, owners: list[str]) -> dict[str, str | None]:
        if not owners:
            return {}
        raw = await self.pipe.hmget(zone_key(self.zone, "rrsets"), owners)
        return {o: None if v is None else _s(v) for o, v in zip(owners, raw, strict=True)}

    async def all_rrsets(self) -> dict[str, str]:
        return await self._all("rrsets")

    async def owners(self) -> dict[str, str]:
        return await self._all("owners")

    async def holder(self, owner: str) -> str | None:
        raw = await self.pipe.hget(zone_key(self.zone, "owners"), owner)
        return None if raw is None else _s(raw)

    async def referrers(self, kind: str, name: str) -> set[str]:
        return {_s(m) for m in await self.pipe.smembers(ref_key(self.zone, kind, name))}

    async def zone_keys(self) -> list[str]:
        """Every key of the zone (to delete it): its parts, meta and reference sets."""
        keys = [meta_key(self.zone), *(zone_key(self.zone, p) for p in ZONE_PARTS)]
        pattern = zone_key(self.zone, "refs:*")
        cursor = 0
        while True:
            cursor, found = await self.pipe.scan(cursor, match=pattern, count=1000)
            keys.extend(_s(k) for k in found)
            if not cursor:
                return keys

    async def _all(self, part: str) -> dict[str, str]:
        return await read_hash(self.pipe, zone_key(self.zone, part))


async def read_hash(client: Any, key: str) -> dict[str, str]:
    """A whole hash, a few thousand fields per round trip (HSCAN), never one huge reply."""
    out: dict[str, str] = {}
    async for batch in scan_hash(client, key):
        out.update(batch)
    return out


async def scan_hash(client: Any, key: str) -> AsyncIterator[dict[str, str]]:
    """A hash in batches of a few thousand fields: a reader of a million pools holds one
    batch of their text at a time."""
    cursor = 0
    while True:
        cursor, batch = await client.hscan(key, cursor, count=SCAN_COUNT)
        if batch:
            yield {_s(k): _s(v) for k, v in batch.items()}
        if not cursor:
            return


# An edit of one zone: given a view of what is stored, what to write (None: nothing) and what
# to tell the caller; raising leaves everything as it was.
Edit = Callable[[ZoneView], Awaitable[tuple[Write | None, T]]]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader stands in the two logs: each lane's last sequence number and entry."""

    config_seq: int
    config_id: str
    health_seq: int
    health_id: str
    epoch: str = ""  # gslb:epoch when read ("": none yet)


class Store:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._append_script = redis.register_script(APPEND_LOG)
        self._tally_script = redis.register_script(ADD_COUNTS)

    async def version(self) -> int:
        return int(await self.redis.get(VERSION) or 0)

    # --- reading configuration ---------------------------------------------------------

    async def zone_names(self) -> list[str]:
        return sorted(_s(z) for z in await self.redis.smembers(ZONE_LIST))

    async def metas(self) -> dict[str, Meta]:
        names = await self.zone_names()
        if not names:
            return {}
        raw = await self.redis.mget([meta_key(z) for z in names])
        return {z: Meta.from_json(m) for z, m in zip(names, raw, strict=True) if m is not None}

    async def meta(self, zone: str) -> Meta | None:
        raw = await self.redis.get(meta_key(zone))
        return None if raw is None else Meta.from_json(raw)

    async def head(self, zone: str) -> dict[str, Json] | None:
        raw = await self.redis.get(zone_key(zone, "head"))
        return None if raw is None else json.loads(raw)

    async def pool(self, zone: str, name: str) -> dict[str, Json] | None:
        raw = await self.redis.hget(zone_key(zone, "pools"), name)
        return None if raw is None else json.loads(raw)

    async def pools(self, zone: str) -> dict[str, dict[str, Json]]:
        raw = await read_hash(self.redis, zone_key(zone, "pools"))
        return {k: json.loads(v) for k, v in raw.items()}

    async def pool_count(self, zone: str) -> int:
        return int(await self.redis.hlen(zone_key(zone, "pools")))

    async def document(self, zone: str) -> dict[str, Json] | None:
        """The whole zone document, put back together from its parts."""
        head = await self.head(zone)
        if head is None:
            return None
        records = await self.redis.get(zone_key(zone, "records"))
        return join(head, "" if records is None else _s(records), await self.pools(zone))

    # --- writing configuration ---------------------------------------------------------

    async def change(self, zone: str, edit: Edit[T]) -> tuple[T, bool]:
        """Apply `edit` to `zone` atomically: optimistic (WATCH on the zone's meta), retried
        when another writer of the zone got in between, so the edit always sees what it
        replaces. Returns what the edit said and whether anything was written."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(meta_key(zone))
                    write, result = await edit(ZoneView(pipe, zone))
                    if write is None:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return result, False
                    write.forget = await _no_longer_probed(pipe, zone, write)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    await self._queue(pipe, zone, write)
                    *_, (_seq, version) = await pipe.execute()
                    break
                except redis.exceptions.WatchError:
                    continue
        audit = write.audit
        await self.publish(
            "config",
            int(version),
            zones=[zone] if write.meta is not None else [],
            removed=[] if write.meta is not None else [zone],
            who=audit.get("who"),
            action=audit.get("action"),
            resource=audit.get("resource"),
        )
        return result, True

    async def _queue(self, pipe: Any, zone: str, write: Write) -> None:
        if write.meta is None:
            pipe.srem(ZONE_LIST, zone)
            if write.drop:
                pipe.unlink(*write.drop)
        else:
            pipe.sadd(ZONE_LIST, zone)
            pipe.set(meta_key(zone), write.meta.to_json())
            if write.head is not None:
                pipe.set(zone_key(zone, "head"), json.dumps(write.head, sort_keys=True))
            if write.records is not None:
                pipe.set(zone_key(zone, "records"), write.records)
            _queue_fields(pipe, zone_key(zone, "rrsets"), write.rrsets)
            _queue_fields(pipe, zone_key(zone, "pools"), write.pools)
            _queue_fields(pipe, zone_key(zone, "owners"), write.owners)
            _queue_fields(pipe, zone_key(zone, "targets"), write.targets)
            if write.monitors is not None:
                pipe.unlink(zone_key(zone, "monitors"))
                _queue_fields(pipe, zone_key(zone, "monitors"), dict(write.monitors))
            # Grouped by reference: storing a zone whose million pools share one monitor is a
            # few SADDs of thousands of members, not a million commands.
            grouped: dict[tuple[str, bool], list[str]] = {}
            for ((kind, name), pool), add in write.refs.items():
                grouped.setdefault((ref_key(zone, kind, name), add), []).append(pool)
            for (key, add), pools in grouped.items():
                for start in range(0, len(pools), WRITE_CHUNK):
                    chunk = pools[start : start + WRITE_CHUNK]
                    if add:
                        pipe.sadd(key, *chunk)
                    else:
                        pipe.srem(key, *chunk)
        for start in range(0, len(write.forget), WRITE_CHUNK):
            chunk = write.forget[start : start + WRITE_CHUNK]
            pipe.hdel(HEALTH, *chunk)
            pipe.unlink(*(f"{RESULTS}{key}" for key in chunk))
        pipe.lpush(AUDIT, json.dumps(write.audit, sort_keys=True))
        pipe.ltrim(AUDIT, 0, AUDIT_KEEP - 1)
        await self._append(pipe, CONFIG_LOG, CONFIG_SEQ, write.change.to_fields())

    async def _append(self, pipe: Any, log: str, seq: str, fields: dict[str, str]) -> None:
        """Queue the log entry in `pipe`'s transaction."""
        await self._append_script(keys=[log, seq, VERSION], args=append_args(fields), client=pipe)

    # --- following the logs ------------------------------------------------------------

    async def position(self) -> Position:
        """Where both logs stand now (read together)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(CONFIG_SEQ)
            pipe.xrevrange(CONFIG_LOG, count=1)
            pipe.get(HEALTH_SEQ)
            pipe.xrevrange(HEALTH_LOG, count=1)
            pipe.get(EPOCH)
            config_seq, config_last, health_seq, health_last, epoch = await pipe.execute()
        return Position(
            int(config_seq or 0),
            _s(config_last[0][0]) if config_last else "0-0",
            int(health_seq or 0),
            _s(health_last[0][0]) if health_last else "0-0",
            _s(epoch) if epoch else "",
        )

    async def entry_at(self, log: str, entry_id: str) -> int | None:
        """The sequence number of the entry `entry_id` of `log`, if it is still there."""
        found: Any = await self.redis.xrange(log, entry_id, entry_id, count=1)
        if not found:
            return None
        fields = {_s(k): _s(v) for k, v in found[0][1].items()}
        return int(fields.get("seq") or 0)

    async def follow(
        self, streams: dict[str, str], block: float, count: int = 1000
    ) -> list[tuple[str, list[tuple[str, dict[Any, Any]]]]]:
        """Entries after the given positions, waiting up to `block` seconds for one."""
        reply: Any = await self.redis.xread(
            streams,  # type: ignore[arg-type]
            count=count,
            block=max(1, int(block * 1000)),
        )
        return [(_s(log), [(_s(i), f) for i, f in entries]) for log, entries in reply or []]

    async def zone_items(
        self, zone: str, pools: list[str] | None, owners: list[str] | None, head: bool
    ) -> tuple[Meta | None, dict[str, Json] | None, dict[str, str | None], dict[str, str | None]]:
        """A zone's meta, and (when asked) its head and the named pools and owners' RRsets,
        read together; `pools` / `owners` None: all of them."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(meta_key(zone))
            pipe.get(zone_key(zone, "head"))
            if pools:
                pipe.hmget(zone_key(zone, "pools"), pools)
            if owners:
                pipe.hmget(zone_key(zone, "rrsets"), owners)
            replies = await pipe.execute()
        raw_meta, raw_head, *rest = replies
        meta = None if raw_meta is None else Meta.from_json(raw_meta)
        head_value = json.loads(raw_head) if raw_head is not None and head else None
        got_pools: dict[str, str | None] = {}
        got_rrsets: dict[str, str | None] = {}
        if pools:
            got_pools = {n: _opt(v) for n, v in zip(pools, rest.pop(0), strict=True)}
        if owners:
            got_rrsets = {o: _opt(v) for o, v in zip(owners, rest.pop(0), strict=True)}
        if pools is None:
            got_pools = dict(await read_hash(self.redis, zone_key(zone, "pools")))
        if owners is None:
            got_rrsets = dict(await read_hash(self.redis, zone_key(zone, "rrsets")))
        return meta, head_value, got_pools, got_rrsets

    def scan(self, key: str) -> AsyncIterator[dict[str, str]]:
        return scan_hash(self.redis, key)

    async def dnssec_keys(self, zone: str, algorithm: str) -> tuple[SigningKey, ...]:
        """The zone's signing keys, made on first use: the first node to ask makes one and
        stores it only if no other did meanwhile (HSETNX), then everyone reads the one
        stored, so every node of the cluster signs with the same key."""
        raw = await self.redis.hget(DNSSEC_KEYS, zone)
        if raw is None:
            made = SigningKey.generate(algorithm)
            await self.redis.hsetnx(DNSSEC_KEYS, zone, keys_json([made]))
            raw = await self.redis.hget(DNSSEC_KEYS, zone)
        if raw is None:
            raise redis.exceptions.RedisError(f"the DNSSEC keys of {zone} went away")
        return keys_from_json(raw)

    async def dnssec_roll(self, zone: str, algorithm: str) -> tuple[str, tuple[SigningKey, ...]]:
        """One step of a key rollover (docs/dnssec.md, double signature): with one key, a
        second is made and both sign and are published (CDS names both, for the parent's
        double DS); with two, the older goes. Atomic (WATCH): two operators stepping at once
        make one step. Returns the step taken ("started" or "completed") and the keys."""
        await self.dnssec_keys(zone, algorithm)  # a zone never signed yet gets its first
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(DNSSEC_KEYS)
                    raw = await pipe.hget(DNSSEC_KEYS, zone)
                    keys = list(keys_from_json(raw)) if raw is not None else []
                    if len(keys) >= 2:
                        step, keys = "completed", keys[1:]
                    else:
                        step, keys = "started", [*keys, SigningKey.generate(algorithm)]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(DNSSEC_KEYS, zone, keys_json(keys))
                    await pipe.execute()
                    return step, tuple(keys)
                except redis.exceptions.WatchError:
                    continue

    async def cookie_secrets(
        self, rotate_every: float, now: float | None = None
    ) -> tuple[bytes, bytes | None, bytes | None]:
        """The cluster's DNS Cookie secrets (current, previous, upcoming), made on first use
        and rotated every `rotate_every` seconds by whichever node notices first: the
        upcoming one becomes current, the current one previous, a new one upcoming."""
        now = time.time() if now is None else now
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(COOKIE_SECRETS)
                    raw = {_s(k): _s(v) for k, v in (await pipe.hgetall(COOKIE_SECRETS)).items()}
                    fresh = raw.get("current") and now - float(raw.get("since", 0)) < rotate_every
                    if fresh:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        break
                    if raw.get("current"):
                        raw = {
                            "previous": raw["current"],
                            "current": raw.get("upcoming") or secrets.token_hex(16),
                        }
                    else:
                        raw = {"current": secrets.token_hex(16)}
                    raw["upcoming"] = secrets.token_hex(16)
                    raw["since"] = repr(now)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(COOKIE_SECRETS)
                    pipe.hset(COOKIE_SECRETS, mapping=raw)  # type: ignore[arg-type]
                    await pipe.execute()
                    break
                except redis.exceptions.WatchError:
                    continue
        return (
            bytes.fromhex(raw["current"]),
            bytes.fromhex(raw["previous"]) if raw.get("previous") else None,
            bytes.fromhex(raw["upcoming"]) if raw.get("upcoming") else None,
        )

    async def load_state(self, now: float | None = None, load: bool = True) -> ClusterState:
        """ISP paths down and (with `load`) agents' fresh load reports and recent answer
        counts: the state that changes without a log entry, re-read from time to time."""
        now = time.time() if now is None else now
        bucket = int(now // ANSWER_BUCKET)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(PATHS_DOWN)
            if load:
                pipe.hgetall(LOAD)
                for b in range(bucket - ANSWER_WINDOW + 1, bucket + 1):
                    pipe.hgetall(f"{ANSWERS}{b}")
            paths, *rest = await pipe.execute()
        reports, *answers = rest or [{}]
        return _state({}, reports, paths, answers, now)

    async def leaving(self) -> dict[str, Leaving]:
        """Member addresses whose agent said they are going away (gslb.schema.LEAVING)."""
        out = {}
        for address, raw in (await self.redis.hgetall(LEAVING)).items():
            try:
                out[_s(address)] = Leaving.from_json(raw)
            except (ValueError, KeyError, TypeError):
                out[_s(address)] = Leaving(0.0)  # said, even if unreadably: it stays out
        return out

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

    async def record_refusal(self, who: str, resource: str, errors: list[str]) -> None:
        """An audit record of a configuration refused whole (a zone directory a reload
        could not load): nothing changed, and the trail says why."""
        await self.record_action(who, "refuse", resource, errors=errors)

    async def record_action(self, who: str, action: str, resource: str, **fields: Any) -> None:
        """An audit record of what is not a document write (a refused reload, a DNSSEC
        rollover step), with `fields` to say more."""
        record = {
            "at": round(time.time(), 3),
            "who": who,
            "action": action,
            "zone": fields.pop("zone", None),
            "resource": resource,
            "before": None,
            "after": None,
            **fields,
        }
        pipe = self.redis.pipeline(transaction=True)
        _queue_audit(pipe, [record])
        await pipe.execute()

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
        """Write decided states as a checker does (tests and tools; the checkers write their
        own): the states, their entry in the health log, the version, in one transaction."""
        now = time.time()
        changes = {
            key: Health(state.health, state.rtt, tuple(sorted(state.paths_down)), now)
            for key, state in states.items()
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, health in changes.items():
                pipe.hset(HEALTH, key, health.to_json())
            await self._append(pipe, HEALTH_LOG, HEALTH_SEQ, HealthChange(0, changes).to_fields())
            *_, (_seq, version) = await pipe.execute()
        await self.publish("health", int(version), members=list(states))
        return int(version)

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
        leaving = {a: asdict(x) for a, x in sorted((await self.leaving()).items())}
        return {"members": members, "checkers": _checkers(checkers, now), "leaving": leaving}

    async def checkers(self, now: float | None = None) -> dict[str, Any]:
        """The checkers by id: region, paths, last heartbeat, whether alive, work done."""
        return _checkers(await self.redis.hgetall(CHECKERS), time.time() if now is None else now)

    async def add_answers(self, tally: dict[str, int], now: float | None = None) -> None:
        """Add this node's answers handed out to the current bucket (no version bump: readers
        pick counts up at their next resync)."""
        if not tally:
            return
        key = f"{ANSWERS}{int((time.time() if now is None else now) // ANSWER_BUCKET)}"
        # One script call per few thousand members, not one command each: a node answering
        # ten thousand pools would otherwise spend its loop on the tally.
        items = list(tally.items())
        expiry = str(ANSWER_BUCKET * (ANSWER_WINDOW + 2))
        for start in range(0, len(items), WRITE_CHUNK):
            chunk = items[start : start + WRITE_CHUNK]
            args = [expiry, *(str(x) for item in chunk for x in item)]
            await self._tally_script(keys=[key], args=args)


async def _no_longer_probed(pipe: Any, zone: str, write: Write) -> list[str]:
    """The member keys of `zone` the checkers probe now and will not after `write`: read
    from the targets it replaces (the pools it changes, or every pool of a deleted zone), so
    the cost is that of the change."""
    key = zone_key(zone, "targets")
    if write.meta is None:
        before = {_s(k): v for k, v in (await pipe.hgetall(key)).items()}
        after: dict[str, str | None] = {}
    else:
        if not write.targets:
            return []
        names = list(write.targets)
        values = await pipe.hmget(key, names)
        before = {n: v for n, v in zip(names, values, strict=True) if v is not None}
        after = write.targets
    gone: list[str] = []
    for pool, raw in before.items():
        probed = {m[0] for m in PoolTargets.from_json(raw).members}
        still = after.get(pool)
        if still is not None:
            probed -= {m[0] for m in PoolTargets.from_json(still).members}
        gone.extend(f"{zone}/{pool}/{address}" for address in sorted(probed))
    return gone


def keys_json(keys: list[SigningKey]) -> str:
    return json.dumps(
        [
            {
                "algorithm": k.algorithm,
                "flags": k.flags,
                "private": base64.b64encode(k.private).decode(),
                "created": int(k.created or time.time()),
            }
            for k in keys
        ]
    )


def keys_from_json(raw: bytes | str) -> tuple[SigningKey, ...]:
    return tuple(
        SigningKey(
            int(k["algorithm"]),
            base64.b64decode(k["private"]),
            int(k.get("flags", 257)),
            float(k.get("created", 0)),
        )
        for k in json.loads(raw)
    )


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
            "path_problems": list(checker.path_problems),
        }
    return live


def _queue_audit(pipe: Any, records: list[dict[str, Any]]) -> None:
    for record in records:
        pipe.lpush(AUDIT, json.dumps(record, sort_keys=True))
    if records:
        pipe.ltrim(AUDIT, 0, AUDIT_KEEP - 1)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _opt(value: bytes | str | None) -> str | None:
    return None if value is None else _s(value)


def _queue_fields(pipe: Any, key: str, fields: dict[str, str | None]) -> None:
    """HSET the values and HDEL the Nones, a few thousand fields per command."""
    items = list(fields.items())
    for start in range(0, len(items), WRITE_CHUNK):
        chunk = items[start : start + WRITE_CHUNK]
        setting = {k: v for k, v in chunk if v is not None}
        gone = [k for k, v in chunk if v is None]
        if setting:
            pipe.hset(key, mapping=setting)
        if gone:
            pipe.hdel(key, *gone)


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
        ports = tuple(sorted((int(p), n) for p, n in (report.ports or {}).items() if p.isdigit()))
        loads[_s(address)] = Load(report.sessions, report.cpu, report.traffic, ports, report.at)
    counted: dict[str, float] = {}
    for bucket in answers:
        for key, count in bucket.items():
            counted[_s(key)] = counted.get(_s(key), 0.0) + float(count)
    down: set[tuple[str, str | None]] = set()
    for item in paths:
        isp, _, site = _s(item).partition("|")
        down.add((isp, None if site in ("", "*") else site))
    return ClusterState(members, loads, counted, frozenset(down))
