"""Keeping a DNS process's snapshot current from Redis, change by change.

The process reads everything once (a *full resync*), then follows the two change logs with a
blocking XREAD and applies each entry to a new snapshot that shares every unchanged part
with the one before (gslb.core.zone, gslb.core.stored):

- the *health lane*: an entry carries the decided states themselves; applying it replaces
  those members' states and nothing else, at once;
- the *configuration lane*: an entry names what of a zone changed; a worker per zone reads
  just that (with the zone's meta and head, in one transaction) and swaps in the zone made of
  the old one and the changes. A big change of one zone (a whole document) compiles in a
  thread while health entries and the other zones' changes go on being applied.

Each lane's entries are numbered without gaps. A number that jumps (the log was trimmed past
this process, or Redis came back with another history) means entries were missed: that lane
is read again whole. After a lost connection the process goes on from where it was if the
log still holds its last entry, and resyncs in full otherwise. Meanwhile the DNS listeners
keep answering from the last snapshot: nothing on the answer path waits for Redis.

Load reports, answer counts and ISP paths down change without log entries; they are re-read
every LOAD_REFRESH seconds (load and answers only while some pool uses them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import immutables
import orjson

from gslb.common import logs
from gslb.common.gcpause import gc_paused
from gslb.common.redis import REDIS_ERRORS, refused_credentials
from gslb.core import names
from gslb.core.cookies import Secrets
from gslb.core.dnssec import Signer, SignerStats, SigningKey
from gslb.core.pooldoc import DnssecDoc
from gslb.core.pools import Pool, PoolContext
from gslb.core.snapshot import Snapshot
from gslb.core.state import ClusterState, MemberState, member_state, rounded
from gslb.core.stored import (
    Meta,
    Refused,
    assemble_zone,
    build_zone,
    compile_pools,
    head_doc,
    update_zone,
)
from gslb.core.zone import Zone, ZoneSet
from gslb.core.zonedoc import dnssec_of
from gslb.schema import (
    CONFIG_LOG,
    HEALTH,
    HEALTH_LOG,
    NODES,
    ConfigChange,
    Health,
    HealthChange,
    zone_key,
)
from gslb.shell.mirror import Mirror
from gslb.shell.poolstats import PoolStats
from gslb.shell.ramp import Drains, LoadTrend, SlowStart
from gslb.shell.spill import SpillControl
from gslb.state.keyfiles import KeyDirError, zone_keys
from gslb.state.store import Position, Store

log = logs.get("gslb.sync")

POLL = 1.0  # seconds an XREAD waits for an entry before the loop's periodic work
STALE_LOG_EVERY = 30.0  # seconds between reminders that the snapshot is getting old
LOAD_REFRESH = 5.0  # seconds between re-reads of load, answer counts and ISP paths down
RESIGN_EVERY = 6 * 3600  # seconds a DNSSEC signer serves before new signatures are made
BEAT = 2.0  # seconds between this process's heartbeats in gslb:nodes
TALLY_EVERY = 1.0  # seconds between writes of the answers handed out
COOKIE_ROTATION = 86_400.0  # seconds a DNS Cookie secret is the current one
PERSIST_EVERY = 2.0  # seconds between writes of the snapshot kept on disk
INLINE = 200  # changed items up to which a zone is updated on the loop, beyond in a thread
READMIT_STEP = 5000  # pools looked at between yields while finding a returning member's


class ColdStart:
    """Which pools nobody has decided anything about yet, within their cold-start wait.

    A pool with a monitor is cold from the moment this process first sees it until the first
    decided state of one of its members arrives, or its `cold_start_wait` (the monitor's
    timeout by default) has passed. Its queries are held meanwhile (see Answerer). Decided
    states already in Redis (a restart) make a pool warm at once. Only the pools waiting are
    remembered, so a change costs the pools it adds, not the zone.
    """

    def __init__(self) -> None:
        self.waiting: dict[str, float] = {}  # pool id -> when its wait ends
        self.recheck_at = 0.0

    def added(self, pools: Iterable[Pool], state: ClusterState, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for pool in pools:
            if pool.cold_start_wait <= 0:
                continue
            if any(m.key in state.health for m in pool.members):
                continue
            self.waiting[pool.id] = now + pool.cold_start_wait

    def heard(self, keys: Iterable[str]) -> None:
        """Decided states arrived for these member keys: their pools wait no more."""
        if self.waiting:
            for key in keys:
                self.waiting.pop(key.rpartition("/")[0], None)

    def apply(self, state: ClusterState, now: float | None = None) -> ClusterState:
        now = time.time() if now is None else now
        for pool, deadline in list(self.waiting.items()):
            if deadline <= now:
                del self.waiting[pool]
        deadline = max(self.waiting.values(), default=0.0)
        self.recheck_at = deadline  # then look again, even if no result ever comes
        if state.cold == frozenset(self.waiting) and state.cold_deadline == deadline:
            return state
        return dataclasses.replace(state, cold=frozenset(self.waiting), cold_deadline=deadline)

    def due(self) -> bool:
        if self.recheck_at and time.time() >= self.recheck_at:
            self.recheck_at = 0.0
            return True
        return False


@dataclass
class _Pending:
    """What is still to be applied to one zone, merged from its log entries."""

    pools: set[str] | None = field(default_factory=set)  # None: all of them
    owners: set[str] | None = field(default_factory=set)
    whole: bool = False  # read the zone again whole (its head changed, or it is new)

    def merge(self, change: ConfigChange) -> None:
        if change.head or change.deleted:
            self.whole = True
        if change.pools is None:
            self.pools = None
        elif self.pools is not None:
            self.pools.update(change.pools)
        if change.records is None:
            self.owners = None
        elif self.owners is not None:
            self.owners.update(change.records)

    @property
    def size(self) -> int:
        if self.whole or self.pools is None or self.owners is None:
            return INLINE + 1
        return len(self.pools) + len(self.owners)


class Gap(Exception):
    """A log entry is missing: the lane must be read again whole."""


class Sync:
    """Owns the Redis side of one DNS process: reading, and writing back its answer tally."""

    def __init__(
        self,
        store: Store,
        current: Callable[[], Snapshot],
        install: Callable[[Snapshot], None],
        on_connect: Callable[[bool], Any] | None = None,
        take_tally: Callable[[], dict[str, int]] | None = None,
        cold_start: ColdStart | None = None,
        heartbeat: Callable[[], tuple[str, dict[str, Any]]] | None = None,
        mirror: Mirror | None = None,
        mirror_writer: bool = True,
        pool_stats: PoolStats | None = None,
        key_dir: Path | None = None,
    ) -> None:
        self.store = store
        # Where zones with `dnssec: {keys: NAME}` find their key files (gslb.state.keyfiles).
        self.key_dir = key_dir
        self._key_errors: dict[str, str] = {}  # zone -> why its key files were refused
        # What /metrics says of pools, kept as changes arrive (the node's, not its workers').
        self.pool_stats = pool_stats
        self.current = current
        self._install = install
        self.on_connect = on_connect
        self.take_tally = take_tally
        self.cold_start = cold_start or ColdStart()
        self.slow_start = SlowStart()
        self.drains = Drains()
        self.trend = LoadTrend()
        self.spill = SpillControl()
        self.position: Position | None = None
        self.connected = False
        self.last_sync = 0.0  # when the snapshot last matched Redis (monotonic clock)
        self.resyncs = 0
        self.applied = 0  # log entries applied
        self.down_since: float | None = None
        self._unsent: dict[str, int] = {}
        self._tallied = 0.0
        self._warned = 0.0
        self._refreshed = 0.0
        self.heartbeat = heartbeat
        self._beat = 0.0
        self.synced = asyncio.Event()  # set at the first complete read of Redis
        self.moved = asyncio.Event()  # set whenever the snapshot changed (for waiters)
        self.mirror = mirror if mirror_writer else None
        self._mirror_reader = mirror
        self._persisted = 0.0
        self._pending: dict[str, _Pending] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._failed: BaseException | None = None
        self.checkers: dict[str, Any] = {}  # id -> heartbeat view (Store.checkers), 5 s old
        self._said: dict[str, int] = {}  # address -> announcements of leaving or back seen
        self._readmits: set[asyncio.Task[None]] = set()

    @property
    def staleness(self) -> float:
        """Seconds since the snapshot was last known to match Redis (0 while connected)."""
        if self.connected:
            return 0.0
        return time.monotonic() - self.last_sync if self.last_sync else float("inf")

    def install(
        self,
        zones: ZoneSet | None = None,
        state: ClusterState | None = None,
        secrets: Secrets | None = None,
        signers: Mapping[bytes, Signer] | None = None,
    ) -> None:
        """Swap in the current snapshot with new zones, state, cookie secrets or DNSSEC
        signers (one attribute write)."""
        old = self.current()
        state = self.cold_start.apply(state if state is not None else old.state)
        state = self.drains.apply(self.slow_start.apply(state))
        if self.spill.pools:
            state = self.spill.apply(old.state, state, time.monotonic())
        self._install(
            dataclasses.replace(
                old,
                version=old.version + 1,
                zones=zones if zones is not None else old.zones,
                state=state,
                cookies=secrets if secrets is not None else old.cookies,
                signers=signers if signers is not None else old.signers,
            )
        )
        self.moved.set()

    async def refresh_signers(self, offline: bool = False, reread: bool = False) -> None:
        """A signer for each signed zone, with the cluster's key (gslb.state.store), made
        again every RESIGN_EVERY seconds: a new signer makes new signatures (the snapshot's
        version moves on, so no cached reply keeps an old one), long before the old ones
        expire (a week). A key already held needs no Redis: `offline`, while Redis is down,
        re-signs with the keys held and leaves the zones without one for later. Zones no
        longer signed lose theirs."""
        current = self.current()
        wanted = {
            zone.apex: (zone.name, zone.context.dnssec)
            for zone in current.zones.zones.values()
            if zone.context is not None and zone.context.dnssec is not None
        }
        now = int(time.time())
        held = current.signers
        if (
            not reread
            and set(held) == set(wanted)
            and all(now - signer.now < RESIGN_EVERY for signer in held.values())
        ):
            return
        signers: dict[bytes, Signer] = {}
        for apex, (name, doc) in wanted.items():
            ttl, withdraw = doc.dnskey_ttl, doc.withdraw
            old = held.get(apex)
            keys = old.keys if old is not None else None
            # Keys in files need no Redis: they are read while it is down too.
            if (old is None or reread) and (doc.keys is not None or not offline):
                keys = await self._keys(name, doc) or keys  # refused files: keep those held
            if keys is None:
                continue  # DNSSEC queries get SERVFAIL until there is a key
            if (
                old is not None
                and (keys, ttl, withdraw) == (old.keys, old.dnskey_ttl, old.withdraw)
                and now - old.now < RESIGN_EVERY
            ):
                signers[apex] = old
            else:
                stats = old.stats if old is not None else SignerStats()
                signers[apex] = Signer(apex, keys, now, ttl, withdraw, stats=stats)
        if signers != dict(held):
            self.install(signers=signers)

    async def _keys(self, zone: str, doc: DnssecDoc) -> tuple[SigningKey, ...] | None:
        """The zone's keys: the cluster's, from Redis (made on first use), or those in its
        key directory. Key files that cannot be used are logged, once per reason, and give
        None: the node goes on with what it held."""
        try:
            keys = await zone_keys(self.store, self.key_dir, zone, doc.algorithm, doc.keys)
        except KeyDirError as e:
            if self._key_errors.get(zone) != str(e):
                self._key_errors[zone] = str(e)
                log.error("dnssec key files refused", zone=zone, error=str(e))
            return None
        if self._key_errors.pop(zone, None) is not None:
            log.info("dnssec key files read", zone=zone, keys=len(keys))
        return keys

    async def refresh_cookies(self) -> None:
        """The cluster's cookie secrets, made or rotated when due (gslb.state.store)."""
        current, previous, upcoming = await self.store.cookie_secrets(COOKIE_ROTATION)
        secrets = Secrets(current, previous, upcoming)
        if secrets != self.current().cookies:
            self.install(secrets=secrets)

    # --- full reads ----------------------------------------------------------------------

    async def resync(self) -> None:
        """Read everything again: both lanes, from where the logs stand now.

        The cyclic garbage collector is paused meanwhile: a million pools are tens of millions
        of objects, and each collection would walk all of them again, many times over. Once
        installed, the snapshot is frozen out of the collector's sight (gc.freeze): it holds
        no cycles, and walking it would only cost pauses on the answer path."""
        with gc_paused():
            await self._resync()
        gc.freeze()

    async def _resync(self) -> None:
        position = await self.store.position()
        started = time.monotonic()
        zones = await self._read_zones()
        read_zones = time.monotonic() - started
        health = await self._read_health()
        read_health = time.monotonic() - started - read_zones
        load = self._projected(await self.store.load_state(load=_uses_load(ZoneSet(zones))))
        leaving = frozenset(await self.store.leaving())
        old = self.current()
        new_zones = ZoneSet(zones)
        self._new_pools(old.zones, new_zones, health)
        self.spill.heard(None)  # every member's health read again
        state = _with_load(
            dataclasses.replace(old.state, health=health, leaving=leaving), load, new_zones
        )
        await self.refresh_cookies()  # before the zones: their first answers carry cookies
        self.install(new_zones, state)
        await self._recount(new_zones)
        self.position = position
        self._pending.clear()
        self.last_sync = time.monotonic()
        self.resyncs += 1
        self._refreshed = time.monotonic()
        log.info(
            "read everything from redis",
            zones=len(zones),
            pools=sum(len(z.pools_by_name) for z in zones.values()),
            members=len(health),
            zones_seconds=round(read_zones, 2),
            health_seconds=round(read_health, 2),
            seconds=round(time.monotonic() - started, 2),
        )

    async def _recount(self, counted: ZoneSet) -> None:
        """Count every pool again (in a thread: a million pools take seconds), then once
        more the zones a change swapped meanwhile."""
        if self.pool_stats is None:
            return
        stats = PoolStats()
        health = self.current().state.health
        await asyncio.to_thread(stats.rebuild, counted.zones.values(), health)
        current = self.current()
        for apex, zone in current.zones.zones.items():
            if counted.zones.get(apex) is not zone:
                stats.zone(zone.name, zone, current.state.health)
        for apex in counted.zones.keys() - current.zones.zones.keys():
            stats.zone(counted.zones[apex].name, None, current.state.health)
        self.pool_stats = stats

    async def _read_zones(self) -> dict[bytes, Zone]:
        zones: dict[bytes, Zone] = {}
        for name in await self.store.zone_names():
            zone = await self._read_zone(name)
            if zone is not None:
                zones[zone.apex] = zone
        if self.mirror is not None:
            self.mirror.keep_only(await self.store.zone_names())
        return zones

    async def _read_zone(self, name: str) -> Zone | None:
        """One zone read whole, its pools a batch at a time: each batch is compiled (in a
        thread) and only the compiled pools are kept."""
        meta, head, _, _ = await self.store.zone_items(name, [], [], head=True)
        if meta is None or head is None:
            return None
        try:
            doc = head_doc(head)
        except Refused as e:
            log.error("stored zone refused, skipping it", zone=name, problem=str(e))
            return None
        context = PoolContext.of(doc.apex, doc, dnssec_of(doc))
        rrsets: dict[str, str] = {}
        async for batch in self.store.scan(zone_key(name, "rrsets")):
            rrsets.update(batch)
        if self.mirror is not None:
            self.mirror.zone_whole(name, meta, head, dict(rrsets), {})
        pools: list[Pool] = []
        problems: list[str] = []
        async for batch in self.store.scan(zone_key(name, "pools")):
            compiled, refused = await asyncio.to_thread(_compile, context, batch)
            pools.extend(compiled)
            problems.extend(refused)
            if self.mirror is not None:
                self.mirror.zone_items(name, meta, {}, dict(batch))
                await self.mirror.flush()
        zone, refused = await asyncio.to_thread(_assemble, meta, context, rrsets, pools)
        for problem in [*problems, *refused]:
            log.error("stored zone part refused, skipping it", zone=name, problem=problem)
        return zone

    async def _read_health(self) -> immutables.Map[str, MemberState]:
        health: immutables.Map[str, MemberState] = immutables.Map()
        if self.mirror is not None:
            self.mirror.health_whole({})
        async for batch in self.store.scan(HEALTH):
            health = await asyncio.to_thread(_add_health, health, batch)
            if self.mirror is not None:
                self.mirror.health(_compact_health(batch))
                await self.mirror.flush()
        return health

    def _new_pools(self, old: ZoneSet, new: ZoneSet, health: Any) -> None:
        state = dataclasses.replace(self.current().state, health=health)
        for apex, zone in new.zones.items():
            before = old.zones.get(apex)
            if before is not zone:
                self.drains.zone(before, zone, None)
                self.spill.zone(before, zone, None)
            if before is None:
                self.cold_start.added(zone.pools_by_name.values(), state)
            elif before is not zone:
                self.cold_start.added(
                    (p for n, p in zone.pools_by_name.items() if n not in before.pools_by_name),
                    state,
                )
        for apex, gone in old.zones.items():
            if apex not in new.zones:
                self.spill.zone(gone, None, None)

    # --- following the logs --------------------------------------------------------------

    async def follow_once(self, block: float = POLL) -> int:
        """Wait up to `block` seconds for log entries and apply them; how many there were."""
        assert self.position is not None
        position = self.position
        replies = await self.store.follow(
            {CONFIG_LOG: position.config_id, HEALTH_LOG: position.health_id}, block
        )
        count = 0
        for stream, entries in replies:
            if not entries:
                continue
            count += len(entries)
            try:
                if stream == HEALTH_LOG:
                    self._apply_health(entries)
                else:
                    self._queue_config(entries)
            except Gap as e:
                log.warning("change log entries missed, reading everything again", lane=str(e))
                await self.resync()
                return count
        self.applied += count
        return count

    def _apply_health(self, entries: list[tuple[str, dict[Any, Any]]]) -> None:
        assert self.position is not None
        seq = self.position.health_seq
        changes: dict[str, Health] = {}
        leaving: dict[str, bool] = {}
        for entry_id, fields in entries:
            change = HealthChange.from_fields(fields)
            if change.seq <= seq:
                continue  # seen already
            if change.seq != seq + 1:
                raise Gap("health")
            seq = change.seq
            changes.update(change.changes)
            leaving.update(change.leaving)
            self.position = dataclasses.replace(self.position, health_seq=seq, health_id=entry_id)
        if leaving:
            self._apply_leaving(leaving)
        if not changes:
            return
        state = self.current().state
        base = state.health
        if not isinstance(base, immutables.Map):
            base = immutables.Map(base)
        health = base.mutate()
        for key, decided in changes.items():
            health[key] = _member_state(decided)
        self.cold_start.heard(changes)
        self.slow_start.heard(changes, base, self.current().zones)
        self.spill.heard(changes)
        self.install(state=dataclasses.replace(state, health=health.finish()))
        if self.pool_stats is not None:
            current = self.current()
            self.pool_stats.members(changes, current.zones, current.state.health)
        if self.mirror is not None:
            self.mirror.health({k: h.to_json() for k, h in changes.items()})

    def _apply_leaving(self, announced: dict[str, bool]) -> None:
        """Addresses whose agent said they are leaving go out of every answer at once; those
        back come in again after `_readmit` has found their members in pools with slow
        start (a scan, in steps, that must not hold the loop)."""
        for address in announced:
            self._said[address] = self._said.get(address, 0) + 1
        state = self.current().state
        gone = {a for a, leaving in announced.items() if leaving}
        if gone - state.leaving:
            self.install(state=dataclasses.replace(state, leaving=state.leaving | gone))
        back = {a for a, leaving in announced.items() if not leaving and a in state.leaving}
        if back:
            said = {a: self._said[a] for a in back}
            task = asyncio.create_task(self._readmit(said, time.time()))
            self._readmits.add(task)
            task.add_done_callback(self._readmits.discard)

    async def _readmit(self, said: dict[str, int], at: float) -> None:
        ramps: dict[str, tuple[float, float]] = {}
        seen = 0
        for zone in list(self.current().zones.zones.values()):
            for pool in zone.pools_by_name.values():
                seen += 1
                if seen % READMIT_STEP == 0:
                    await asyncio.sleep(0)
                if pool.slow_start <= 0:
                    continue
                for m in pool.members:
                    if m.address in said:
                        ramps[m.key] = (at, pool.slow_start)
        # An address that left again meanwhile stays out.
        back = frozenset(a for a, n in said.items() if self._said.get(a) == n)
        if not back:
            return
        self.slow_start.since.update(
            (k, r) for k, r in ramps.items() if k.rpartition("/")[2] in back
        )
        state = self.current().state
        self.install(state=dataclasses.replace(state, leaving=state.leaving - back))
        log.info("members back from leaving", addresses=sorted(back), ramping=len(ramps))

    def _queue_config(self, entries: list[tuple[str, dict[Any, Any]]]) -> None:
        assert self.position is not None
        seq = self.position.config_seq
        for entry_id, fields in entries:
            change = ConfigChange.from_fields(fields)
            if change.seq <= seq:
                continue
            if change.seq != seq + 1:
                raise Gap("config")
            seq = change.seq
            self._pending.setdefault(change.zone, _Pending()).merge(change)
            self.position = dataclasses.replace(self.position, config_seq=seq, config_id=entry_id)
        self._start_workers()

    def _start_workers(self) -> None:
        for zone in list(self._pending):
            worker = self._workers.get(zone)
            if worker is None or worker.done():
                task = asyncio.get_running_loop().create_task(self._zone_worker(zone))
                self._workers[zone] = task

    async def _zone_worker(self, zone: str) -> None:
        """Apply what is pending for `zone`, one batch at a time (a batch that arrives while
        one is applied waits for it: changes of one zone apply in order)."""
        while zone in self._pending:
            pending = self._pending.pop(zone)
            try:
                await self._apply_zone(zone, pending)
            except REDIS_ERRORS as e:
                # Applied on reconnect (the pending change is kept, merged with what follows).
                again = self._pending.setdefault(zone, _Pending())
                again.whole = True
                self._failed = e
                return
            except Exception:
                log.exception("zone change not applied; reading the zone again", zone=zone)
                self._pending.setdefault(zone, _Pending()).whole = True
                await asyncio.sleep(1.0)

    async def _apply_zone(self, zone: str, pending: _Pending) -> None:
        old = self.current().zones.zones.get(names.from_text(zone + "."))
        if pending.whole or old is None:
            fresh = await self._read_zone(zone)
            self._swap(zone, old, fresh)
            return
        pools = None if pending.pools is None else sorted(pending.pools)
        owners = None if pending.owners is None else sorted(pending.owners)
        meta, _head, got_pools, got_rrsets = await self.store.zone_items(
            zone, pools, owners, head=False
        )
        if meta is None:
            self._swap(zone, old, None)
            return
        if pending.size > INLINE:
            with gc_paused():
                new, problems = await asyncio.to_thread(
                    update_zone, old, meta, got_rrsets, got_pools
                )
        else:
            new, problems = update_zone(old, meta, got_rrsets, got_pools)
        for problem in problems:
            log.error("stored zone part refused, skipping it", zone=zone, problem=problem)
        if self.mirror is not None:
            self.mirror.zone_items(zone, meta, got_rrsets, got_pools)
        added = [
            new.pools_by_name[n]
            for n in got_pools
            if n in new.pools_by_name and n not in old.pools_by_name
        ]
        touched = None if pools is None else {*pools, *got_pools}
        self._swap(zone, old, new, added, touched)

    def _swap(
        self,
        zone: str,
        old: Zone | None,
        new: Zone | None,
        added: list[Pool] | None = None,
        touched: Iterable[str] | None = None,
    ) -> None:
        """Put `new` (None: nothing) where `old` was in the current snapshot; `added`: the
        pools new in it, when the caller knows (else every pool is looked at); `touched`: the
        pools written or removed, when the caller knows (else the zone is counted again)."""
        zones = dict(self.current().zones.zones)
        if old is not None:
            zones.pop(old.apex, None)
        if new is not None:
            zones[new.apex] = new
            state = self.current().state
            if old is not None:
                self.slow_start.pools(
                    old.pools_by_name,
                    new.pools_by_name,
                    new.pools_by_name if touched is None else touched,
                )
            if added is not None:
                self.cold_start.added(added, state)
            elif old is None:
                self.cold_start.added(new.pools_by_name.values(), state)
            else:
                self.cold_start.added(
                    (p for n, p in new.pools_by_name.items() if n not in old.pools_by_name),
                    state,
                )
        elif self.mirror is not None:
            self.mirror.zone_gone(zone)
        self.drains.zone(old, new, None if touched is None else list(touched))
        self.spill.zone(old, new, None if touched is None else list(touched))
        self.install(ZoneSet(zones))
        if self.pool_stats is not None:
            health = self.current().state.health
            if new is not None and touched is not None:
                self.pool_stats.pools(new, touched, health)
            else:
                self.pool_stats.zone(zone, new, health)

    async def settled(self, within: float = 10.0) -> bool:
        """Wait (up to `within` seconds) until every configuration change this process has
        read is applied."""
        deadline = time.monotonic() + within
        while self._pending or any(not w.done() for w in self._workers.values()):
            if time.monotonic() >= deadline:
                return False
            self.moved.clear()
            try:
                await asyncio.wait_for(self.moved.wait(), deadline - time.monotonic())
            except TimeoutError:
                return False
        return True

    async def caught_up(self, within: float = 10.0) -> bool:
        """Wait (up to `within` seconds) until this process has applied the configuration
        log as it stands now."""
        target = (await self.store.position()).config_seq
        deadline = time.monotonic() + within
        while self.position is None or self.position.config_seq < target:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return await self.settled(max(0.0, deadline - time.monotonic()))

    async def _went_back(self) -> bool:
        """Whether the state this process read went away: Redis holds another epoch (or
        none: restarted empty), or less history than was seen (restored from an old copy).
        What was stored may be gone, zones of zone files among it."""
        if self.position is None:
            return False
        now = await self.store.position()
        return (bool(self.position.epoch) and now.epoch != self.position.epoch) or (
            now.config_seq < self.position.config_seq or now.health_seq < self.position.health_seq
        )

    async def _continuous(self) -> bool:
        """After a reconnection: whether the logs still hold where this process stands (else
        Redis lost or rewrote history, and everything is read again)."""
        if self.position is None:
            return False
        now = await self.store.position()
        position = self.position
        if position.epoch and now.epoch != position.epoch:
            return False
        for log_key, seq, entry_id, current in (
            (CONFIG_LOG, position.config_seq, position.config_id, now.config_seq),
            (HEALTH_LOG, position.health_seq, position.health_id, now.health_seq),
        ):
            if current < seq:
                return False
            if seq and await self.store.entry_at(log_key, entry_id) != seq:
                return False
        return True

    # --- what changes without a log entry ------------------------------------------------

    def _projected(self, fresh: ClusterState) -> ClusterState:
        if not fresh.load:
            return fresh
        return dataclasses.replace(fresh, load=self.trend.project(fresh.load))

    async def refresh_load(self) -> None:
        """Load reports and answer counts (while some pool uses them) and ISP paths down."""
        self._refreshed = time.monotonic()
        await self.refresh_cookies()
        # The checkers' heartbeats, for /metrics (a checker dead is an alert): a few fields.
        self.checkers = await self.store.checkers()
        current = self.current()
        fresh = self._projected(await self.store.load_state(load=_uses_load(current.zones)))
        old = current.state
        state = _with_load(old, fresh, current.zones)
        # Compared field by field: the health map of millions of members is not looked at.
        if (state.load, state.answers, state.isp_paths_down) != (
            old.load,
            old.answers,
            old.isp_paths_down,
        ):
            self.install(state=state)

    async def flush_tally(self, force: bool = False) -> None:
        """Add the answers handed out since the last time to Redis (at most every
        TALLY_EVERY seconds: the counts go into 10-second buckets anyway)."""
        if self.take_tally is None:
            return
        if not force and time.monotonic() - self._tallied < TALLY_EVERY:
            return
        self._tallied = time.monotonic()
        for key, count in self.take_tally().items():
            self._unsent[key] = self._unsent.get(key, 0) + count
        if self._unsent:
            await self.store.add_answers(self._unsent)
            self._unsent = {}

    async def beat(self) -> None:
        """Say in Redis that this process is alive, with what the dashboard shows of it."""
        if self.heartbeat is None or time.monotonic() - self._beat < BEAT:
            return
        self._beat = time.monotonic()
        node_id, info = self.heartbeat()
        await self.store.redis.hset(NODES, node_id, json.dumps(info, sort_keys=True))

    async def persist(self, force: bool = False) -> None:
        """Write what changed since the last time to the snapshot kept on disk (at most every
        PERSIST_EVERY seconds), so that a node restarting while Redis is down answers from
        it instead of from nothing."""
        if self.mirror is None:
            return
        if not force and time.monotonic() - self._persisted < PERSIST_EVERY:
            return
        self._persisted = time.monotonic()
        try:
            await self.mirror.flush()
        except Exception as e:  # a full disk must not stop the answers
            log.warning(
                "cannot keep the snapshot on disk", file=str(self.mirror.path), error=str(e)
            )

    async def load_persisted(self) -> bool:
        """Answer from the snapshot kept on disk until Redis is read (False: there is none)."""
        mirror = self._mirror_reader
        if mirror is None:
            return False
        try:
            kept = await asyncio.to_thread(mirror.read)
        except Exception as e:
            log.warning("snapshot on disk unreadable, ignored", file=str(mirror.path), error=str(e))
            return False
        if kept is None:
            return False
        zones: dict[bytes, Zone] = {}
        problems: list[str] = []
        for name, (meta, head, rrsets, pools) in kept.zones.items():
            try:
                zone, refused = await asyncio.to_thread(_build, meta, head, rrsets, pools)
            except Refused as e:
                problems.append(f"{name}: {e}")
                continue
            problems.extend(f"{name}: {p}" for p in refused)
            zones[zone.apex] = zone
        health = await asyncio.to_thread(_health_map, kept.health)
        for zone in zones.values():
            self.drains.zone(None, zone, None)
            self.spill.zone(None, zone, None)
        self.install(ZoneSet(zones), dataclasses.replace(self.current().state, health=health))
        await self._recount(self.current().zones)
        log.info(
            "answering from the snapshot kept on disk until redis is read",
            file=str(mirror.path),
            zones=len(zones),
            problems=problems,
        )
        return True

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                continuous = await self._continuous()
                lost = self.position is not None and not continuous and await self._went_back()
                if self.on_connect is not None:
                    await self.on_connect(lost)
                if continuous:
                    log.info("redis reachable again, following the change logs on")
                else:
                    await self.resync()
                await self.refresh_signers()  # before answering DNSSEC queries for them
                self._failed = None
                self._start_workers()  # what a lost connection left pending
                self._up()
                backoff = 0.2
                while True:
                    await self.follow_once()
                    if self._failed is not None:
                        raise self._failed
                    self.last_sync = time.monotonic()
                    await self.refresh_signers()
                    if time.monotonic() - self._refreshed >= LOAD_REFRESH:
                        if await self._went_back():
                            # Emptied under a live connection (FLUSHALL, a failover to an
                            # empty replica): start over as after a reconnection.
                            log.warning("the shared state went away under this connection")
                            break
                        await self.refresh_load()
                        await self.refresh_signers(reread=True)
                    if self.cold_start.due() or self.slow_start.due() or self.drains.due():
                        # Cold-start waits have ended, a ramp moved on, or a planned drain.
                        self.install()
                    await self.flush_tally()
                    await self.beat()
                    await self.persist()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as e:
                self._down(e)
                await self.refresh_signers(offline=True)  # signing goes on from the keys held
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _up(self) -> None:
        self.synced.set()
        if not self.connected:
            if self.down_since is not None:
                log.info(
                    "redis reachable again, resynced",
                    was_down=round(time.monotonic() - self.down_since, 1),
                )
            else:
                log.info("redis synced", position=dataclasses.asdict(self.position or _NOWHERE))
        self.connected = True
        self.down_since = None

    def _down(self, error: BaseException) -> None:
        if self.connected or self.down_since is None:
            self.down_since = time.monotonic()
            if refused_credentials(error):
                log.error(
                    "redis refused our credentials (check the password in the Redis URL); "
                    "answering from the last snapshot",
                    error=str(error) or type(error).__name__,
                )
            else:
                log.warning(
                    "redis unreachable, answering from the last snapshot",
                    error=str(error) or type(error).__name__,
                )
        self.connected = False


_NOWHERE = Position(0, "0-0", 0, "0-0")


def _with_load(state: ClusterState, fresh: ClusterState, zones: ZoneSet) -> ClusterState:
    """`state` with the ISP paths down of `fresh`, and its load reports and answer counts
    while some pool uses them (else they stay empty: a change of something no answer reads
    is no reason for a new snapshot, which empties the reply caches)."""
    uses_load = _uses_load(zones)
    return dataclasses.replace(
        state,
        load=fresh.load if uses_load else {},
        answers=fresh.answers if uses_load else {},
        isp_paths_down=fresh.isp_paths_down,
    )


def _uses_load(zones: ZoneSet) -> bool:
    return any(z.load_pools for z in zones.zones.values())


def _member_state(decided: Health) -> MemberState:
    return member_state(decided.health, rounded(decided.rtt), frozenset(decided.paths_down))


def _health_map(raw: dict[str, str]) -> immutables.Map[str, MemberState]:
    return _add_health(immutables.Map(), raw)


def _add_health(
    health: immutables.Map[str, MemberState], raw: dict[str, str]
) -> immutables.Map[str, MemberState]:
    """`health` with the decided states in `raw` (member key -> Health JSON)."""
    changes = health.mutate()
    for key, value in raw.items():
        try:
            data = orjson.loads(value)
            word = data.get("health")
            paths = data.get("paths_down")
            changes[key] = member_state(
                word if word in ("up", "down") else "unknown",
                rounded(data.get("rtt")),
                frozenset(paths) if paths else NO_PATHS,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a foreign or broken entry is no health information
    return changes.finish()


NO_PATHS: frozenset[str] = frozenset()


def _compact_health(raw: dict[str, str]) -> dict[str, str]:
    """What the mirror keeps of a decided state: what the answers read of it."""
    out = {}
    for key, value in raw.items():
        try:
            data = orjson.loads(value)
            out[key] = json.dumps(
                {
                    "health": data.get("health"),
                    "rtt": data.get("rtt"),
                    "paths_down": data.get("paths_down") or [],
                }
            )
        except (ValueError, AttributeError):
            continue
    return out


def _compile(context: PoolContext, batch: dict[str, str]) -> tuple[list[Pool], list[str]]:
    with gc_paused():
        return compile_pools(context, batch)


def _assemble(
    meta: Meta, context: PoolContext, rrsets: dict[str, str], pools: list[Pool]
) -> tuple[Zone, list[str]]:
    with gc_paused():
        return assemble_zone(meta, context, rrsets, pools)


def _build(meta: Meta, head: Any, rrsets: Any, pools: Any) -> tuple[Zone, list[str]]:
    with gc_paused():
        return build_zone(meta, head, rrsets, pools)


def mirror_path(data_dir: Path) -> Path:
    return data_dir / "snapshot.db"
