"""Keeping a DNS process's snapshot current from Redis.

The loop subscribes to the event channel, reads everything once, and then rebuilds whenever
an event arrives or the version it polls every second has moved (a missed message cannot leave
a node behind for more than a second). Any connection error drops it into a retry loop; the
first thing after reconnecting is a full resync. Meanwhile the DNS listeners keep answering
from the last snapshot: nothing on the answer path waits for Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gslb.common import logs
from gslb.common.gcpause import gc_paused
from gslb.common.redis import REDIS_ERRORS
from gslb.core.pooldoc import PoolDoc
from gslb.core.snapshot import Snapshot
from gslb.core.state import ClusterState
from gslb.core.zone import Zone, ZoneSet
from gslb.core.zonedoc import ZoneDoc, ZoneError, compile_zone
from gslb.schema import EVENTS, NODES
from gslb.state.store import Store, Stored, StoredZone

log = logs.get("gslb.sync")

POLL = 1.0  # seconds between version checks when no event arrives
STALE_LOG_EVERY = 30.0  # seconds between reminders that the snapshot is getting old
LOAD_REFRESH = 5.0  # seconds between re-reads of load and answer counts, for pools that use them
BEAT = 2.0  # seconds between this process's heartbeats in gslb:nodes
PERSIST_EVERY = 2.0  # seconds between writes of the snapshot kept on disk


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    raw: dict[str, Any]  # the stored document it was compiled from
    serial: int
    doc: ZoneDoc
    zone: Zone


class ZoneCompiler:
    """Compiles stored zone documents, reusing the result while a document is unchanged."""

    def __init__(self) -> None:
        self._cache: dict[str, _Compiled] = {}

    def compile(self, stored: StoredZone) -> Zone:
        cached = self._cache.get(stored.name)
        if cached is not None and cached.serial == stored.serial and cached.raw == stored.document:
            return cached.zone
        doc = self._validate(stored.document, cached)
        previous = (cached.doc, cached.zone) if cached is not None else None
        zone = compile_zone(doc, doc.records, previous=previous, serial=stored.serial)
        self._cache[stored.name] = _Compiled(stored.document, stored.serial, doc, zone)
        return zone

    @staticmethod
    def _validate(raw: dict[str, Any], cached: _Compiled | None) -> ZoneDoc:
        """The document validated; pools whose JSON is unchanged since the last compile keep
        their validated (and so their compiled) selves: one pool changed in ten thousand
        costs one pool's work."""
        if cached is None:
            return ZoneDoc.model_validate(raw)
        head = ZoneDoc.model_validate({k: v for k, v in raw.items() if k != "pools"})
        old_raw = cached.raw.get("pools") or {}
        pools = {}
        for name, pool in (raw.get("pools") or {}).items():
            kept = cached.doc.pools.get(name)
            if kept is not None and old_raw.get(name) == pool:
                pools[name] = kept
            else:
                pools[name] = PoolDoc.model_validate(pool)
        return head.model_copy(update={"pools": pools})

    def build(self, stored: Stored) -> tuple[ZoneSet, list[str]]:
        """Every zone that compiles; a stored document that does not is skipped and reported
        (the API and the file loader validate before storing, so this means a foreign write)."""
        zones: dict[bytes, Zone] = {}
        problems = []
        for name, zone_doc in stored.zones.items():
            try:
                with gc_paused():
                    zone = self.compile(zone_doc)
            except (ZoneError, ValueError) as e:
                problems.append(f"{name}: {e}")
                continue
            zones[zone.apex] = zone
        for name in set(self._cache) - set(stored.zones):
            del self._cache[name]
        return ZoneSet(zones), problems


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)  # a reader sees the old file or the new one, never half


class ColdStart:
    """Which pools nobody has decided anything about yet, within their cold-start wait.

    A pool with a monitor is cold from the moment this process first sees it until the first
    decided state of one of its members arrives, or its `cold_start_wait` (the monitor's
    timeout by default) has passed. Its queries are held meanwhile (see Answerer). Decided
    states already in Redis (a restart) make a pool warm at once.
    """

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        self.recheck_at = 0.0

    def apply(self, zones: ZoneSet, state: ClusterState) -> ClusterState:
        now = time.time()
        cold = set()
        deadline = 0.0
        for zone in zones.zones.values():
            for pool in zone.pools_by_name.values():
                first = self.first_seen.setdefault(pool.id, now)
                if pool.cold_start_wait <= 0 or now >= first + pool.cold_start_wait:
                    continue
                if any(m.key in state.health for m in pool.members):
                    continue
                cold.add(pool.id)
                deadline = max(deadline, first + pool.cold_start_wait)
        self.recheck_at = deadline  # then look again, even if no result ever comes
        return dataclasses.replace(state, cold=frozenset(cold), cold_deadline=deadline)

    def due(self) -> bool:
        if self.recheck_at and time.time() >= self.recheck_at:
            self.recheck_at = 0.0
            return True
        return False


class Sync:
    """Owns the Redis side of one DNS process: reading, and writing back its answer tally."""

    def __init__(
        self,
        store: Store,
        current: Callable[[], Snapshot],
        install: Callable[[Snapshot], None],
        on_connect: Callable[[], Any] | None = None,
        take_tally: Callable[[], dict[str, int]] | None = None,
        cold_start: ColdStart | None = None,
        heartbeat: Callable[[], tuple[str, dict[str, Any]]] | None = None,
        snapshot_file: Path | None = None,
    ) -> None:
        self.store = store
        self.current = current
        self.install = install
        self.on_connect = on_connect
        self.take_tally = take_tally
        self.compiler = ZoneCompiler()
        self.cold_start = cold_start or ColdStart()
        self.stored_version = -1
        self.connected = False
        self.last_sync = 0.0  # when the snapshot last matched Redis (monotonic clock)
        self.resyncs = 0
        self.down_since: float | None = None
        self._unsent: dict[str, int] = {}
        self._warned = 0.0
        self._refreshed = 0.0
        self.heartbeat = heartbeat
        self._beat = 0.0
        self.synced = asyncio.Event()  # set at the first complete read of Redis
        self.snapshot_file = snapshot_file
        self._to_persist: Stored | None = None
        self._persisted = 0.0

    @property
    def staleness(self) -> float:
        """Seconds since the snapshot was last known to match Redis (0 while connected)."""
        if self.connected:
            return 0.0
        return time.monotonic() - self.last_sync if self.last_sync else float("inf")

    async def resync(self, refresh_load: bool = False) -> None:
        """Rebuild from Redis if anything changed. Load reports and answer counts change all
        the time without a version bump; with `refresh_load` they are compared too."""
        stored = await self.store.read()
        unchanged = stored.version == self.stored_version
        if unchanged and not (refresh_load and self._load_differs(stored)):
            self.last_sync = time.monotonic()
            return
        zones, problems = await asyncio.to_thread(self.compiler.build, stored)
        for problem in problems:
            log.error("stored zone refused, skipping it", problem=problem)
        old = self.current()
        state = self.cold_start.apply(zones, stored.state)
        self.install(dataclasses.replace(old, version=old.version + 1, zones=zones, state=state))
        self.stored_version = stored.version
        self.last_sync = time.monotonic()
        self.resyncs += 1
        if self.snapshot_file is not None and stored.raw:
            self._to_persist = stored

    async def persist(self) -> None:
        """Keep the last configuration and health read from Redis on disk (at most every
        PERSIST_EVERY seconds), so that a node restarting while Redis is down answers from
        it instead of from nothing."""
        stored = self._to_persist
        if stored is None or self.snapshot_file is None:
            return
        if time.monotonic() - self._persisted < PERSIST_EVERY:
            return
        self._to_persist = None
        self._persisted = time.monotonic()
        path = self.snapshot_file
        try:
            await asyncio.to_thread(_write_atomically, path, stored.to_file())
        except OSError as e:
            log.warning("cannot keep the snapshot on disk", file=str(path), error=str(e))

    async def load_persisted(self) -> bool:
        """Answer from the snapshot kept on disk until Redis is read (False: there is none)."""
        if self.snapshot_file is None or not self.snapshot_file.exists():
            return False
        try:
            text = await asyncio.to_thread(self.snapshot_file.read_text, "utf-8")
            stored = Stored.from_file(text)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning(
                "snapshot on disk unreadable, ignored", file=str(self.snapshot_file), error=str(e)
            )
            return False
        zones, problems = await asyncio.to_thread(self.compiler.build, stored)
        old = self.current()
        self.install(
            dataclasses.replace(old, version=old.version + 1, zones=zones, state=stored.state)
        )
        log.info(
            "answering from the snapshot kept on disk until redis is read",
            file=str(self.snapshot_file),
            version=stored.version,
            zones=len(zones.zones),
            problems=problems,
        )
        return True

    def _load_differs(self, stored: Stored) -> bool:
        state = self.current().state
        return stored.state.load != state.load or stored.state.answers != state.answers

    def _uses_load(self) -> bool:
        # Only then are load reports and answer counts worth a new snapshot (which also
        # empties the reply caches) every LOAD_REFRESH seconds.
        return any(
            pool.uses_load
            for zone in self.current().zones.zones.values()
            for pool in zone.pools_by_name.values()
        )

    async def flush_tally(self) -> None:
        if self.take_tally is None:
            return
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

    async def run(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self.store.redis.pubsub()
            try:
                await pubsub.subscribe(EVENTS)
                if self.on_connect is not None:
                    await self.on_connect()
                await self.resync()
                self._up()
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
                    changed = message is not None
                    while message is not None:  # coalesce a burst into one rebuild
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=0
                        )
                    if not changed:
                        changed = await self.store.version() != self.stored_version
                    refresh = time.monotonic() - self._refreshed >= LOAD_REFRESH
                    if refresh:
                        self._refreshed = time.monotonic()
                    if self.cold_start.due():
                        self.stored_version = -1  # rebuild: cold-start waits have ended
                        changed = True
                    if changed or (refresh and self._uses_load()):
                        await self.resync(refresh_load=refresh)
                    await self.flush_tally()
                    await self.beat()
                    await self.persist()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as e:
                self._down(e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call]
                except (*REDIS_ERRORS, RuntimeError):
                    pass

    def _up(self) -> None:
        self.synced.set()
        if not self.connected:
            if self.down_since is not None:
                log.info(
                    "redis reachable again, resynced",
                    was_down=round(time.monotonic() - self.down_since, 1),
                )
            else:
                log.info("redis synced", version=self.stored_version)
        self.connected = True
        self.down_since = None

    def _down(self, error: BaseException) -> None:
        if self.connected or self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "redis unreachable, answering from the last snapshot",
                error=str(error) or type(error).__name__,
            )
        self.connected = False
