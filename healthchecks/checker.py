"""`gslb checker`: probe the members assigned to this checker over each of its paths.

One asyncio task per (member, path) probes at the monitor's interval (the first probe at once)
with its source address bound to the path's uplink, and turns outcomes into a vote with rise/
fall hysteresis: a fresh vote follows the first result, after that `up` needs `rise` successes
in a row and `down` needs `fall` failures in a row (RFC 2391's slow re-admission). Results are
written to Redis in batches (at once when a vote changes) with an expiry, and after each write
the checker decides the members it wrote about from every checker's fresh votes, writing the
new state and an event only when the verdict changed.

Every heartbeat the checker announces itself, reads the live checkers and the targets, and
recomputes its share (healthchecks.assign); targets that are no longer its own stop being
probed, new ones start. Idle and backup members are probed like the others: an unused path
that broke must be known before it is needed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis

from gslb.common import logs
from gslb.common.redis import REDIS_ERRORS
from gslb.schema import (
    APPEND_LOG,
    CHECKERS,
    CONFIG_LOG,
    CONFIG_SEQ,
    EVENTS,
    HEALTH,
    HEALTH_LOG,
    HEALTH_SEQ,
    HISTORY,
    HISTORY_KEEP,
    LAYOUT,
    LAYOUT_VERSION,
    LOAD,
    PATHS_DOWN,
    RESULTS,
    VERSION,
    ZONE_LIST,
    Checker,
    ConfigChange,
    Health,
    HealthChange,
    HealthWord,
    Load,
    Monitor,
    PoolTargets,
    Result,
    Target,
    append_args,
    dumps,
    monitor_from_json,
    zone_key,
)
from healthchecks.allow import TargetPolicy
from healthchecks.assign import owners
from healthchecks.probes import Outcome, Probe, Resources, registry
from healthchecks.probes import icmp as icmp_probe
from healthchecks.quorum import Quorum, decide, path_cut
from healthchecks.uplinks import SETTLE, RouteChanges, check
from healthchecks.watch import CONFIRM_GAP, Watch, raise_file_limit

log = logs.get("gslb.checker")

RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ProbeStats:
    """Probes by path and result, and a histogram of successful probes' round-trip times."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, bool], int] = {}
        self.rtt_buckets = [0] * (len(RTT_BUCKETS) + 1)
        self.rtt_sum = 0.0

    def record(self, path: str, ok: bool, rtt: float | None) -> None:
        key = (path, ok)
        self.results[key] = self.results.get(key, 0) + 1
        if ok and rtt is not None:
            self.rtt_buckets[bisect.bisect_left(RTT_BUCKETS, rtt)] += 1
            self.rtt_sum += rtt


FLUSH_EVERY = 0.25  # seconds between batched result writes when no vote changed
DEAD_AFTER = 2.5  # heartbeats without news before a checker's share moves
FORGET_AFTER = 60.0  # seconds before a dead checker leaves the list entirely
SWEEP_EVERY = 10.0  # seconds between re-deciding every member (expired votes of the silent)
START_RATE = 2000  # probe tasks started per second at most (phases spread over the interval)
DECIDE_BATCH = 500  # members decided per flush at most, so one flush never stalls the loop
# Seconds after a vote changes that its member is decided once more: the other checkers'
# results of the same moment are in Redis by then.
DECIDE_AGAIN = 0.1
AGENT_PATH = "agent"
GROUP_LIMIT = 10_000  # members of one (ISP, site) up to which its ISP-wide path state is kept


@dataclass(frozen=True, slots=True)
class CheckerConfig:
    id: str
    region: str = "default"
    paths: dict[str, str | None] | None = None  # path name -> source address
    replicas: int = 3
    quorum: Quorum = "majority"
    heartbeat: float = 1.0
    # Networks this checker may probe; empty: any. A checker must not become a tool for
    # probing arbitrary hosts because someone wrote an address into a zone.
    allow: tuple[str, ...] = ()
    # Refuse to probe while two paths share a route or a source has no policy rule
    # (healthchecks.uplinks): per-path verdicts over paths that are one would be false.
    strict_paths: bool = False

    @property
    def path_map(self) -> dict[str, str | None]:
        return self.paths or {"default": None}


@dataclass
class Vote:
    vote: HealthWord = "unknown"
    successes: int = 0
    failures: int = 0
    since: float = 0.0
    rtt: float | None = None
    written: float = 0.0  # when a result was last queued for Redis
    settle: float = 0.0  # when to decide the member once more after a change (0: no need)

    def record(self, outcome: Outcome, rise: int, fall: int, now: float) -> bool:
        """Count an outcome; True when the vote changed."""
        if outcome.ok:
            self.successes += 1
            self.failures = 0
            self.rtt = outcome.rtt
        else:
            self.failures += 1
            self.successes = 0
        before = self.vote
        if before == "unknown":
            # Cold start: a first success counts at once (answers may stop failing open), but
            # calling a member down takes `fall` failures as always: a first probe that was
            # merely slow (a busy checker starting up) must not take a healthy member out.
            if outcome.ok:
                self.vote = "up"
            elif self.failures >= fall:
                self.vote = "down"
        elif before == "down" and self.successes >= rise:
            self.vote = "up"
        elif before == "up" and self.failures >= fall:
            self.vote = "down"
        if self.vote != before:
            self.since = now
        return self.vote != before


class PathsRefused(Exception):
    """--strict-paths and a path that is not its own uplink."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class CheckerNode:
    def __init__(self, redis: aioredis.Redis, config: CheckerConfig) -> None:
        self.redis = redis
        self.config = config
        self._append_log = redis.register_script(APPEND_LOG)
        self.targets: dict[str, Target] = {}
        self.groups: dict[tuple[str, str], list[str]] = {}  # (ISP, site) -> member keys
        # Per zone: pool -> its PoolTargets JSON, and monitor name -> Monitor JSON.
        self.zone_targets: dict[str, dict[str, str]] = {}
        self.zone_monitors: dict[str, dict[str, str]] = {}
        self.position: tuple[int, str] | None = None  # in the configuration log
        self._layout_warned = False
        self.live: list[Checker] = []
        self.tasks: dict[tuple[str, str], tuple[Target, asyncio.Task[None]]] = {}
        self.pending: dict[tuple[str, str], Result] = {}
        self.votes: dict[tuple[str, str], Vote] = {}
        self.wanted: dict[str, set[str]] = {}  # member key -> the paths probed for it
        self.voted: dict[str, set[str]] = {}  # member key -> the paths with a vote already
        # Members to decide again: their votes changed, or the checkers voting on them did.
        self.undecided: set[str] = set()
        # (member key, path) pairs of members gone from the configuration: this checker's
        # results for them are removed by the next flush, after any write still in flight.
        self.forget: set[tuple[str, str]] = set()
        self._live_ids: frozenset[str] = frozenset()
        self._swept = 0.0
        self.flush_now = asyncio.Event()
        self.probes = registry()
        self.resources = Resources(self._load_report)
        self.icmp_problem = icmp_probe.available()
        self._icmp_warned = False
        self.started = time.time()
        self.probes_done = 0
        self.watch_ends = 0  # watched connections that ended (each followed by confirmations)
        self._refused: set[str] = set()  # targets outside `allow`, said once each
        self.policy = TargetPolicy(config.allow)
        self.resources.policy = self.policy
        self.stats = ProbeStats()  # for /metrics where the checker runs inside a node
        self.connected = False
        # What healthchecks.uplinks found wrong with the paths, and when to look again
        # (0: not due; the first beat looks, before any probe starts).
        self.path_problems: list[str] = []
        self._uplinks_at = 1.0 if config.paths else 0.0
        self._route_changes = RouteChanges(self._routes_changed)

    # --- the loops ----------------------------------------------------------------------

    async def run(self) -> None:
        log.info(
            "checker started",
            id=self.config.id,
            region=self.config.region,
            paths={k: v or "system" for k, v in self.config.path_map.items()},
        )
        raise_file_limit()  # a watched connection per (member, path) is a descriptor each
        if self.config.paths:
            self._route_changes.start()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeats())
                group.create_task(self._flushes())
        finally:
            await self.close()

    async def close(self) -> None:
        tasks = [task for _, task in self.tasks.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)  # bounded: shutdown must never hang
        self.tasks.clear()
        self._route_changes.close()
        await self.resources.close()
        with contextlib.suppress(*REDIS_ERRORS):
            await asyncio.wait_for(self.redis.hdel(CHECKERS, self.config.id), 1.0)

    async def _heartbeats(self) -> None:
        while True:
            try:
                await self.beat()
                if not self.connected:
                    log.info("checker connected to redis", id=self.config.id)
                self.connected = True
            except REDIS_ERRORS as e:
                if self.connected:
                    log.warning("checker lost redis; probing on, results wait", error=str(e))
                self.connected = False
            await asyncio.sleep(self.config.heartbeat)

    async def _flushes(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_EVERY):
                    await self.flush_now.wait()
            self.flush_now.clear()
            with contextlib.suppress(*REDIS_ERRORS):  # kept in `pending` for the next flush
                await self.flush()

    # --- heartbeat: who is alive, what is there to probe, what is mine -------------------

    async def beat(self) -> None:
        now = time.time()
        me = Checker(
            self.config.id,
            self.config.region,
            tuple(self.config.path_map),
            now,
            self.started,
            self.probes_done,
            len(self.tasks),
            tuple(self.path_problems),
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(CHECKERS, self.config.id, me.to_json())
            pipe.hgetall(CHECKERS)
            _, checkers = await pipe.execute()
        live = []
        for raw in checkers.values():
            try:
                checker = Checker.from_json(raw)
            except (ValueError, TypeError):
                continue
            age = now - checker.seen
            if age <= DEAD_AFTER * self.config.heartbeat:
                live.append(checker)
            elif age > FORGET_AFTER:
                await self.redis.hdel(CHECKERS, checker.id)
        self.live = sorted(live, key=lambda c: c.id)
        live_ids = frozenset(c.id for c in live)
        if live_ids != self._live_ids or time.monotonic() - self._swept > SWEEP_EVERY:
            # A checker came or went (its votes now expire), or it is time for the slow
            # sweep: decide every member we probe again.
            self._live_ids = live_ids
            self._swept = time.monotonic()
            self.undecided.update(key for key, _ in self.tasks)
        await self.follow_targets()
        if self._uplinks_at and time.monotonic() >= self._uplinks_at:
            await self.check_uplinks()
        self.reassign()

    def _routes_changed(self) -> None:
        # A burst of announcements (an interface coming up adds addresses, routes, rules)
        # is looked at once, after it settles.
        self._uplinks_at = time.monotonic() + SETTLE

    async def check_uplinks(self) -> None:
        """Look at the paths again (healthchecks.uplinks); say what changed; refuse with
        --strict-paths."""
        self._uplinks_at = 0.0
        found = await check(self.config.path_map, (t.address for t in self.targets.values()))
        if found != self.path_problems:
            for problem in found:
                if problem not in self.path_problems:
                    log.error("path problem", id=self.config.id, problem=problem)
            if not found:
                log.info("paths checked: each leaves by a route of its own", id=self.config.id)
            self.path_problems = found
        if found and self.config.strict_paths:
            raise PathsRefused(found)

    # --- what to probe: every monitored pool's members, followed through the config log ---

    async def follow_targets(self) -> None:
        """Bring the targets up to date: read whole at first (and after a gap in the log),
        then only the pools and monitors the configuration log says changed."""
        if self.position is None:
            if not await self._layout_ready():
                return
            await self._read_all_targets()
            return
        seq, entry_id = self.position
        reply: Any = await self.redis.xread({CONFIG_LOG: entry_id}, count=10_000)
        changed: dict[str, ConfigChange] = {}
        for _stream, entries in reply or []:
            for raw_id, fields in entries:
                change = ConfigChange.from_fields(fields)
                if change.seq <= seq:
                    continue
                if change.seq != seq + 1:  # entries were trimmed past us: read everything
                    self.position = None
                    await self.follow_targets()
                    return
                seq, entry_id = change.seq, _text(raw_id)
                old = changed.get(change.zone)
                changed[change.zone] = _merged(old, change)
        for zone, change in changed.items():
            await self._read_zone_targets(zone, change)
        self.position = (seq, entry_id)
        if changed:
            self._rebuild_targets()

    async def _layout_ready(self) -> bool:
        layout = await self.redis.get(LAYOUT)
        if layout is not None and int(layout) == LAYOUT_VERSION:
            return True
        if not self._layout_warned:
            self._layout_warned = True
            log.warning(
                "the shared state is not in layout 2 yet: probing nothing until a gslb node "
                "of this release has moved it",
                layout=None if layout is None else int(layout),
            )
        return False

    async def _read_all_targets(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(CONFIG_SEQ)
            pipe.xrevrange(CONFIG_LOG, count=1)
            pipe.smembers(ZONE_LIST)
            seq, last, zones = await pipe.execute()
        self.zone_targets = {}
        self.zone_monitors = {}
        for zone in sorted(_text(z) for z in zones):
            await self._read_zone_targets(zone, None)
        self.position = (int(seq or 0), _text(last[0][0]) if last else "0-0")
        self._rebuild_targets()

    async def _read_zone_targets(self, zone: str, change: ConfigChange | None) -> None:
        """Read a zone's targets again: the pools `change` names (None: all of them), and
        its monitors when its head changed."""
        targets_key, monitors_key = zone_key(zone, "targets"), zone_key(zone, "monitors")
        if change is not None and change.deleted:
            self.zone_targets.pop(zone, None)
            self.zone_monitors.pop(zone, None)
        whole = change is None or change.pools is None or change.deleted
        pools = self.zone_targets.setdefault(zone, {})
        if whole or change is None:
            raw = await _hash(self.redis, targets_key)
            pools.clear()
            pools.update({k: v for k, v in raw.items()})
        elif change.pools:
            values: list[Any] = await self.redis.hmget(targets_key, list(change.pools))
            for name, value in zip(change.pools, values, strict=True):
                if value is None:
                    pools.pop(name, None)
                else:
                    pools[name] = _text(value)
        if whole or change is None or change.head:
            self.zone_monitors[zone] = await _hash(self.redis, monitors_key)
        if not pools and not self.zone_monitors.get(zone):
            self.zone_targets.pop(zone, None)
            self.zone_monitors.pop(zone, None)

    def _rebuild_targets(self) -> None:
        if self.config.paths and not self._uplinks_at:
            self._uplinks_at = time.monotonic()  # other members, maybe other routes
        targets: dict[str, Target] = {}
        for zone, pools in self.zone_targets.items():
            monitors: dict[str, Monitor] = {}
            for name, raw in self.zone_monitors.get(zone, {}).items():
                try:
                    monitors[name] = monitor_from_json(raw)
                except (ValueError, TypeError):
                    continue
            for pool, raw in pools.items():
                try:
                    found = PoolTargets.from_json(raw)
                except (ValueError, TypeError, KeyError):
                    continue
                monitor = monitors.get(found.monitor)
                if monitor is None:
                    continue
                for target in found.targets(zone, pool, monitor):
                    if self._allowed(target):
                        targets[target.key] = target
        self.targets = targets
        groups: dict[tuple[str, str], list[str]] = {}
        for target in targets.values():
            if target.isp is not None and target.site is not None:
                groups.setdefault((target.isp, target.site), []).append(target.key)
        self.groups = groups

    def _allowed(self, target: Target) -> bool:
        if self.policy.permits(target.address):
            return True
        if target.key not in self._refused:
            self._refused.add(target.key)
            log.error(
                "target refused: outside the networks this checker may probe (link-local and "
                "cloud metadata addresses only when --allow-targets names them)",
                member=target.key,
                address=target.address,
                allowed=list(self.config.allow),
            )
        return False

    def assigned(self) -> set[tuple[str, str]]:
        """(member key, path) pairs this checker probes now."""
        mine = set()
        for key, target in self.targets.items():
            if self.config.id not in owners(key, self.live, self.config.replicas):
                continue
            if target.monitor.type == "agent":
                mine.add((key, AGENT_PATH))
                continue
            if target.monitor.type == "icmp" and self.icmp_problem:
                if not self._icmp_warned:
                    log.error("icmp monitors refused", reason=self.icmp_problem)
                    self._icmp_warned = True
                continue
            for path in self.config.path_map:
                mine.add((key, path))
        return mine

    def reassign(self) -> None:
        wanted = self.assigned()
        self.wanted = {}
        for key, path in wanted:
            self.wanted.setdefault(key, set()).add(path)
        for pair in list(self.tasks):
            target, task = self.tasks[pair]
            if pair not in wanted or self.targets.get(pair[0]) != target:
                task.cancel()
                del self.tasks[pair]
                self.votes.pop(pair, None)
                self.pending.pop(pair, None)
                self.voted.get(pair[0], set()).discard(pair[1])
                if pair[0] not in self.targets:
                    self.forget.add(pair)
                    self.undecided.discard(pair[0])
                    self.voted.pop(pair[0], None)
        new = sorted(wanted - set(self.tasks))
        # Spread the new tasks' first probes (and so their phase ever after) so that no more
        # than START_RATE start per second: a handful start at once, thousands do not all
        # knock in the same millisecond, every second, on the member and on this loop.
        spread = len(new) / START_RATE
        for i, pair in enumerate(new):
            target = self.targets[pair[0]]
            delay = min(target.monitor.interval, spread) * i / max(1, len(new))
            task = asyncio.get_running_loop().create_task(self._probe_loop(target, pair[1], delay))
            self.tasks[pair] = (target, task)

    # --- probing -------------------------------------------------------------------------

    async def _probe_loop(self, target: Target, path: str, delay: float = 0.0) -> None:
        monitor = target.monitor
        probe = self.probes[monitor.type]
        source = None if path == AGENT_PATH else self.config.path_map.get(path)
        vote = self.votes[(target.key, path)] = Vote()
        watch = _watch(target, source)
        confirming = 0  # confirming probes left after the watched connection ended
        lived = 0.0  # how long that connection had lived
        if delay:
            await asyncio.sleep(delay)
        try:
            while True:
                started = time.monotonic()
                outcome = await self._timed(probe, target, source, monitor.timeout)
                self._count(target, path, vote, outcome)
                # Measured from the start of this probe: when the loop is saturated, cycles
                # stretch (fewer probes) rather than probes timing out (false downs).
                rest = max(0.0, monitor.interval - (time.monotonic() - started))
                if watch is None:
                    await asyncio.sleep(rest)
                    continue
                if confirming:
                    if outcome.ok:  # closed by the member's own design, not by a death
                        watch.benign(lived, monitor.interval)
                        confirming = 0
                    elif vote.vote == "down":
                        confirming = 0
                    else:
                        confirming -= 1
                if outcome.ok and watch.wanted(time.monotonic()):
                    await watch.open(monitor.timeout)
                if await watch.pause(CONFIRM_GAP if confirming else rest):
                    lived = watch.lived()
                    confirming = monitor.fall
                    self.watch_ends += 1
        finally:
            if watch is not None:
                watch.close()

    def _count(self, target: Target, path: str, vote: Vote, outcome: Outcome) -> None:
        """Take a probe's outcome into the vote, and queue what Redis must hear of it."""
        monitor = target.monitor
        now = time.time()
        self.probes_done += 1
        self.stats.record(path, outcome.ok, outcome.rtt)
        changed = vote.record(outcome, monitor.rise, monitor.fall, now)
        if changed and vote.vote != "unknown":
            self.voted.setdefault(target.key, set()).add(path)
        # Results expire after three intervals; a result whose vote holds is rewritten
        # only every other interval, which keeps it fresh at half the Redis writes.
        if changed or now - vote.written >= 2 * monitor.interval:
            vote.written = now
            self.pending[(target.key, path)] = Result(
                vote.vote,
                outcome.ok,
                vote.rtt,
                outcome.error,
                now,
                vote.since,
                now + 3 * monitor.interval + monitor.timeout + 1.0,
            )
            if changed:
                self.undecided.add(target.key)
                self.flush_now.set()
                # Decide once more shortly, and again a probe later: checkers that change
                # their votes at the same moment (a death every watch hears at once) each
                # decide before reading the others' new word, and nothing else would make
                # them look again (seen in the netns bed: a second's delay).
                asyncio.get_running_loop().call_later(DECIDE_AGAIN, self._decide_again, target.key)
                vote.settle = now + monitor.interval
        if vote.settle and now >= vote.settle:
            vote.settle = 0.0
            self.undecided.add(target.key)
            self.flush_now.set()

    def _decide_again(self, key: str) -> None:
        if key in self.targets:
            self.undecided.add(key)
            self.flush_now.set()

    async def _timed(
        self, probe: Probe, target: Target, source: str | None, limit: float
    ) -> Outcome:
        """The probe's outcome, a failure after `limit` seconds.

        A timer that cancels this task, as asyncio.timeout does, without its context-manager
        machinery: at thousands of probes a second that is a quarter of the checker's time.
        (Not wait_for: on Python 3.11 it can swallow a cancellation meant for the task.)
        """
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(limit, expire)
        try:
            return await probe(target, source, self.resources)
        except asyncio.CancelledError:
            if not expired:
                raise  # the checker is stopping or the member left our share
            task.uncancel()
            return Outcome(False, None, f"no answer within {limit:g} s")
        except Exception as e:  # a probe bug must not stop the checking of others
            return Outcome(False, None, f"probe failed: {e!r}")
        finally:
            timer.cancel()

    async def _load_report(self, address: str) -> Load | None:
        raw = await self.redis.hget(LOAD, address)
        return Load.from_json(raw) if raw else None

    # --- writing results, deciding --------------------------------------------------------

    def _heard_all_paths(self, key: str) -> bool:
        """Whether every path of this member has a vote: until then a path that failed fast
        must not speak for the checker before a path that works has answered."""
        return self.voted.get(key, set()) >= self.wanted.get(key, set())

    async def flush(self) -> None:
        # Both snapshots before any await: a vote that changes while the results are being
        # written must wait for the next flush, or its member would be decided before its
        # result is in Redis (and come out "unknown").
        if self.forget:
            await self._forget()
        ready = {pair for pair in self.pending if self._heard_all_paths(pair[0])}
        pending = {pair: self.pending.pop(pair) for pair in ready}
        ready_keys = [key for key in self.undecided if self._heard_all_paths(key)]
        if pending:
            await self._write(pending)
        undecided = set(ready_keys[:DECIDE_BATCH])
        if len(ready_keys) > DECIDE_BATCH:
            # More to decide: the next flush does, after this one's Redis round trips let the
            # probes run. (Members still waiting for a path's first vote do not count: they
            # would re-arm the flush forever without ever awaiting anything.)
            self.flush_now.set()
        if undecided:
            self.undecided -= undecided
            try:
                await self.decide(undecided)
            except REDIS_ERRORS:
                self.undecided |= undecided
                raise

    async def _forget(self) -> None:
        """Remove this checker's results for members gone from the configuration (the write
        that removed them took what was there; this takes what was in flight), and their
        decided health unless they came back meanwhile."""
        forget, self.forget = self.forget, set()
        gone = {key for key, _path in forget if key not in self.targets}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, path in forget:
                    pipe.hdel(f"{RESULTS}{key}", f"{self.config.id}|{path}")
                if gone:
                    pipe.hdel(HEALTH, *gone)
                await pipe.execute()
        except REDIS_ERRORS:
            self.forget |= {pair for pair in forget if pair[0] not in self.targets}
            raise

    async def _write(self, pending: dict[tuple[str, str], Result]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (key, path), result in pending.items():
                    pipe.hset(f"{RESULTS}{key}", f"{self.config.id}|{path}", result.to_json())
                await pipe.execute()
        except REDIS_ERRORS:
            for pair, result in pending.items():  # newer results win over these
                self.pending.setdefault(pair, result)
            raise

    async def decide(self, keys: set[str]) -> None:
        ordered = sorted(keys)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in ordered:
                pipe.hgetall(f"{RESULTS}{key}")
            pipe.hmget(HEALTH, ordered)
            *all_results, current = await pipe.execute()
        now = time.time()
        changes: dict[str, Health] = {}
        was: dict[str, str | None] = {}
        expired: dict[str, list[str]] = {}
        for key, raw_results, raw_health in zip(ordered, all_results, current, strict=True):
            results: dict[tuple[str, str], Result] = {}
            for field, raw in raw_results.items():
                name = field.decode() if isinstance(field, bytes) else field
                try:
                    result = Result.from_json(raw)
                except (ValueError, TypeError):
                    continue
                if now - result.expires > FORGET_AFTER:
                    expired.setdefault(key, []).append(name)
                checker, _, path = name.partition("|")
                results[(checker, path)] = result
            previous = Health.from_json(raw_health) if raw_health else None
            decided = decide(results, now, self.config.quorum, previous)
            if previous is None or not previous.same_verdict(decided):
                changes[key] = decided
                was[key] = previous.health if previous is not None else None
            elif decided.rtt != previous.rtt or decided.votes != previous.votes:
                # Same verdict: refresh what the dashboard shows, without waking the DNS nodes.
                await self.redis.hset(HEALTH, key, replace(decided, since=previous.since).to_json())
        for key, names in expired.items():
            await self.redis.hdel(f"{RESULTS}{key}", *names)
        if not changes:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, health in changes.items():
                pipe.hset(HEALTH, key, health.to_json())
                pipe.lpush(
                    HISTORY,
                    dumps(
                        {
                            "at": round(now, 3),
                            "member": key,
                            "health": health.health,
                            "was": was[key],
                            "paths_down": list(health.paths_down),
                            "checker": self.config.id,
                        }
                    ),
                )
            pipe.ltrim(HISTORY, 0, HISTORY_KEEP - 1)
            await self._append_log(
                keys=[HEALTH_LOG, HEALTH_SEQ, VERSION],
                args=append_args(HealthChange(0, changes).to_fields()),
                client=pipe,
            )
            *_, (_seq, version) = await pipe.execute()
        await self.redis.publish(
            EVENTS,
            json.dumps(
                {
                    "kind": "health",
                    "version": int(version),
                    "checker": self.config.id,
                    "changes": {
                        k: {"health": h.health, "paths_down": list(h.paths_down)}
                        for k, h in changes.items()
                    },
                }
            ),
        )
        for key, health in changes.items():
            log.info(
                "member health changed",
                member=key,
                health=health.health,
                paths_down=list(health.paths_down),
                votes=health.votes,
            )
        await self.isp_paths(changes)

    async def isp_paths(self, changes: dict[str, Health]) -> None:
        """Write or clear the ISP-wide path state of the (ISP, site) groups these changes
        touch, from the decided states of all their members (quorum.path_cut)."""
        touched: set[tuple[str, str]] = set()
        for key in changes:
            t = self.targets.get(key)
            if t is not None and t.isp is not None and t.site is not None:
                touched.add((t.isp, t.site))
        for isp, site in sorted(touched):
            keys = self.groups.get((isp, site), [])
            if not keys or len(keys) > GROUP_LIMIT:
                continue  # beyond the limit each member's own paths_down still counts
            states = [
                Health.from_json(raw) if raw else None
                for raw in await self.redis.hmget(HEALTH, keys)
            ]
            item = f"{isp}|{site}"
            if path_cut(isp, states):
                if await self.redis.sadd(PATHS_DOWN, item):
                    log.warning("isp path cut at a site", isp=isp, site=site, members=len(keys))
            elif await self.redis.srem(PATHS_DOWN, item):
                log.info("isp path back at a site", isp=isp, site=site)


def _watch(target: Target, source: str | None) -> Watch | None:
    """The connection watch of a (member, path), for the monitors that connect over TCP."""
    monitor = target.monitor
    if not monitor.watch or monitor.type not in WATCHED:
        return None
    port = monitor.port or (443 if monitor.type == "https" else 80)
    return Watch(target.address, port, source)


WATCHED = ("tcp", "http", "https")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _hash(redis: aioredis.Redis, key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    cursor = 0
    while True:
        found: Any = await redis.hscan(key, cursor, count=5000)
        cursor, batch = found
        out.update({_text(k): _text(v) for k, v in batch.items()})
        if not cursor:
            return out


def _merged(old: ConfigChange | None, new: ConfigChange) -> ConfigChange:
    """Two changes of one zone as one: every pool either names (None: all)."""
    if old is None:
        return new
    pools = None if old.pools is None or new.pools is None else (*old.pools, *new.pools)
    return ConfigChange(
        new.seq, new.zone, pools, (), old.head or new.head, old.deleted or new.deleted
    )
