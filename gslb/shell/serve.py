"""A running node: zones, DNS listeners, the HTTP listener and Redis, each with one owner.

`Node.run()` starts everything in order, serves until SIGTERM or SIGINT, and stops everything
in reverse order. The zone files (when the node has a zone directory) are written into Redis at
start and on SIGHUP; every DNS process then builds its snapshot from Redis, so zones changed
through the API or by another node are served too. A directory that does not load whole is
refused, logged with every reason, and the node keeps answering from what it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gslb import zonefiles
from gslb.api.auth import Tokens
from gslb.api.routes import Api
from gslb.common import logs
from gslb.common.redis import REDIS_ERRORS, connect, redacted
from gslb.core.location import Locator
from gslb.core.masterfile import Limits
from gslb.core.snapshot import Settings, Snapshot
from gslb.core.state import EMPTY
from gslb.core.stored import Meta
from gslb.core.zone import ZoneSet
from gslb.schema import NODES
from gslb.shell import http
from gslb.shell.embedded_redis import EmbeddedRedis, die_with_parent
from gslb.shell.geoip import GeoIpError, GeoIpLocator
from gslb.shell.httpguard import GuardedSite, HttpLimits
from gslb.shell.mirror import Mirror
from gslb.shell.poolstats import PoolStats
from gslb.shell.rrl import Limiter, RrlConfig
from gslb.shell.sync import ColdStart, Sync
from gslb.shell.transport import Answerer, Listeners, TcpLimits, format_endpoint, listen
from gslb.shell.workerstats import WorkerStats, send_reports
from gslb.state.migrate import LayoutError, ensure_layout
from gslb.state.store import Store, Write, ZoneView
from gslb.state.zones import (
    Checked,
    FileSource,
    Outcome,
    Who,
    check_loaded,
    write_document,
    zone_name,
)
from healthchecks.checker import CheckerConfig, CheckerNode

log = logs.get("gslb")
PID_FILE = "gslb.pid"  # in the data directory: the node's process id, for signals


@dataclass
class NodeConfig:
    zones_dir: Path | None
    dns: list[tuple[str, int]]
    http: tuple[str, int] | None = None
    redis_url: str | None = None
    data_dir: Path = Path("data")
    # Where zones with `dnssec: {keys: NAME}` find their key files: DIR/NAME/*.pem.
    dnssec_key_dir: Path | None = None
    settings: Settings = field(default_factory=Settings)
    tcp: TcpLimits = field(default_factory=TcpLimits)
    locator: Locator | None = None
    checker: CheckerConfig | None = None  # serve runs one checker beside the DNS
    node_id: str | None = None  # default: host name and first listening address
    region: str = "default"
    # Extra DNS processes on the same ports (SO_REUSEPORT), each with its own snapshot from
    # Redis: `worker_command(redis_url, endpoints, index)` is how to start worker `index`,
    # its command line and what its environment adds (the node's settings, serialized).
    workers: int = 1
    worker_command: (
        Callable[[str, list[tuple[str, int]], int], tuple[list[str], dict[str, str]]] | None
    ) = None
    reuse_port: bool = False  # set in the workers themselves
    wait_for_sync: float = 0.0  # seconds to wait for the first read of Redis before listening
    parent_pid: int | None = None  # a worker stops when this process is gone
    stats_fd: int | None = None  # a worker reports what it counts to its node on this pipe
    query_log_rate: float = 0.0
    snapshot_file: Path | None = None  # the last state read from Redis, kept on disk
    rrl: RrlConfig = field(default_factory=RrlConfig)
    tokens: Tokens = field(default_factory=lambda: Tokens([]))
    api_max_body: int = 1 << 20  # bytes of a request body
    limits: Limits = field(default_factory=Limits)  # what one zone may cost
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    # Host names the HTTP listener answers to besides IP addresses and localhost (DNS
    # rebinding: a browser tricked into sending an attacker's name is turned away).
    http_hosts: tuple[str, ...] = ()


class Node:
    def __init__(
        self, config: NodeConfig, zones: dict[bytes, zonefiles.LoadedZone] | None = None
    ) -> None:
        self.config = config
        self.zones = zones or {}
        self.cold_start = ColdStart()
        zone_set = zonefiles.zone_set(self.zones)
        for zone in zone_set.zones.values():
            self.cold_start.added(zone.pools_by_name.values(), EMPTY)
        snapshot = Snapshot(
            1,
            zone_set,
            config.settings,
            state=self.cold_start.apply(EMPTY),
            locator=config.locator,
        )
        self.answerer = Answerer(snapshot)
        self.answerer.query_log_rate = config.query_log_rate
        self.answerer.rrl = Limiter(config.rrl) if config.rrl.enabled else None
        self.api = Api(
            lambda: self.store,
            lambda: self.answerer.snapshot,
            config.tokens,
            redis_up=lambda: self.sync is not None and self.sync.connected,
            limits=config.limits,
            body_timeout=config.http_limits.body_timeout,
            key_dir=config.dnssec_key_dir,
        )
        self.embedded: EmbeddedRedis | None = None
        self.pid_file: Path | None = None  # DATA/gslb.pid, once written
        self.store: Store | None = None
        self.sync: Sync | None = None
        self.checker: CheckerNode | None = None
        self.listeners: Listeners | None = None
        self.http_runner: web.AppRunner | None = None
        self.http_site: GuardedSite | None = None
        self.stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._reloading = asyncio.Lock()
        # Zone files read but not yet stored in Redis (it was unreachable): stored on reconnect.
        self._files_pending = zones is not None
        self._last_beat = (0.0, 0)
        self._workers: dict[int, asyncio.subprocess.Process] = {}
        self.worker_stats = WorkerStats()  # what the workers count, for /metrics
        self._started_at = time.time()
        self.exit_code = 0
        self.refused: dict[str, object] | None = None  # the last reload's refusal, if it was

    def install(self, snapshot: Snapshot) -> None:
        self.answerer.snapshot = snapshot

    async def reload(self) -> bool:
        """Load the zone directory again; keep the running zones if any file is refused.

        Files are read and compiled in a thread, so queries keep being answered meanwhile.
        """
        if self.config.zones_dir is None:
            return False
        async with self._reloading:  # two quick SIGHUPs: the second reload sees the first's result
            try:
                zones = await asyncio.to_thread(
                    zonefiles.load_directory,
                    self.config.zones_dir,
                    self.zones,
                    self.config.limits,
                )
            except zonefiles.ZoneLoadError as e:
                for error in e.errors:
                    log.error("zone refused, keeping the running zones", error=str(error))
                errors = [str(error) for error in e.errors]
                # Said on the dashboard (this node's heartbeat) until a load succeeds, and
                # kept in the audit trail.
                self.refused = {"at": time.time(), "errors": errors}
                with contextlib.suppress(*REDIS_ERRORS):
                    if self.store is not None:
                        await self.store.record_refusal(
                            f"file:{self.config.zones_dir}", "zones (reload)", errors
                        )
                return False
            self.refused = None
            for zone in zones.values():
                for warning in zone.warnings:
                    log.warning("zone warning", warning=warning)
            self.zones = zones
            self._files_pending = True
            try:
                await self.store_files()
                if self.sync is not None and self.sync.connected:
                    # Serve what was just stored before saying so; other nodes follow the log.
                    await self.sync.caught_up()
            except REDIS_ERRORS as e:
                # Serve the new files here at once; Redis gets them when it is back.
                self._apply_files_locally()
                log.warning("zones reloaded locally, redis unreachable", error=str(e))
            log.info("zones reloaded", zones=zonefiles.describe(zones))
            return True

    async def store_files(self) -> None:
        """Write the zone files into Redis; zones that came from files now gone are removed.

        A file wins when it says something new since it was last stored; a file that says
        what it said then leaves the stored zone alone, edits made through the API included
        (docs/api.md, "Zone files and the API"). A file that changed is stored part by part:
        only what differs from what is stored is written.
        """
        if not self._files_pending or self.store is None or self.config.zones_dir is None:
            return
        store = self.store
        metas = await store.metas()
        for loaded in self.zones.values():
            name = zone_name(loaded.doc.zone)
            before = metas.get(name)
            if before is not None and before.file_digest == loaded.digest:
                continue
            if before is not None and not before.source.startswith("file:"):
                log.warning(
                    "zone file changed: it replaces the edits made through the API",
                    zone=name,
                    file=str(loaded.path),
                    edited_by=before.source,
                )
            who = Who(f"file:{loaded.path}", "load", f"zones/{name}", self.config.limits)
            checked = check_loaded(loaded.doc, loaded.zone.pools_by_name, loaded.static)
            source = FileSource(str(loaded.path), loaded.digest, loaded.serial)
            await store.change(
                name,
                functools.partial(_write_file, zone=name, who=who, checked=checked, source=source),
            )
            log.info("zone file stored", zone=name, file=str(loaded.path))
        names = {zone_name(z.doc.zone) for z in self.zones.values()}
        directory = self.config.zones_dir
        for name in _gone(metas, names, directory):
            who = Who(f"file:{directory}", "delete", f"zones/{name}", self.config.limits)
            await store.change(name, functools.partial(_delete_zone, zone=name, who=who))
        self._files_pending = False

    def _apply_files_locally(self) -> None:
        old = self.answerer.snapshot
        zones = dict(old.zones.zones)
        zones.update(zonefiles.zone_set(self.zones).zones)
        self.install(dataclasses.replace(old, version=old.version + 1, zones=ZoneSet(zones)))

    def _on_sighup(self) -> None:
        self._spawn(self.reload())
        self._spawn(self.reload_geoip())
        for proc in self._workers.values():  # they reopen their GeoIP databases too
            if proc.returncode is None:
                proc.send_signal(signal.SIGHUP)

    async def reload_geoip(self) -> bool:
        """Open the GeoIP databases again (updated files, same paths); keep the open ones if
        the new ones cannot be read. Answers go on meanwhile."""
        old = self.answerer.snapshot.locator
        if not isinstance(old, GeoIpLocator):
            return False
        try:
            fresh = await asyncio.to_thread(GeoIpLocator, old.city_path, old.asn_path)
        except GeoIpError as e:
            log.error("geoip reload refused, keeping the open databases", error=str(e))
            return False
        current = self.answerer.snapshot
        self.install(dataclasses.replace(current, version=current.version + 1, locator=fresh))
        log.info("geoip reloaded", **fresh.describe())
        return True

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_connect(self, lost: bool = False) -> None:
        """First thing on every connection to Redis: its layout, then the zone files. When
        Redis came back with less than it had (`lost`: restarted empty, or from an old
        copy), the zone files are stored again: what they said may be gone from it."""
        assert self.store is not None
        if lost and self.config.zones_dir is not None:
            log.warning(
                "the shared state went back (redis restarted empty, or from an old copy): "
                "storing the zone files again"
            )
            self._files_pending = True
        try:
            await ensure_layout(self.store.redis)
        except LayoutError as e:
            # Nothing here may read (or write) a layout it does not know: stop, and say why.
            log.error("cannot use the shared state", error=str(e))
            self.exit_code = 1
            self.stopping.set()
            await asyncio.Event().wait()  # stopped with the node
        await self.store_files()

    async def redis_alive(self) -> bool:
        return self.sync is not None and self.sync.connected

    async def start(self) -> None:
        url = self.config.redis_url
        if url is None:
            self.embedded = EmbeddedRedis(self.config.data_dir)
            await self.embedded.start()
            url = self.embedded.url
        self.store = Store(connect(url))
        self.sync = Sync(
            self.store,
            current=lambda: self.answerer.snapshot,
            install=self.install,
            on_connect=self._on_connect,
            take_tally=self.answerer.take_tally,
            cold_start=self.cold_start,
            # A worker's node speaks for it (one row per node on the dashboard).
            heartbeat=self.heartbeat if self.config.parent_pid is None else None,
            mirror=Mirror(self.config.snapshot_file) if self.config.snapshot_file else None,
            # Workers read what their node keeps on disk; only the node writes it.
            mirror_writer=self.config.parent_pid is None,
            # Pools by state for /metrics: where there is a /metrics (not in workers).
            pool_stats=(
                PoolStats()
                if self.config.http is not None and self.config.parent_pid is None
                else None
            ),
            key_dir=self.config.dnssec_key_dir,
        )
        await self.sync.load_persisted()
        self._spawn(self.sync.run())
        if self.config.checker is not None:
            self.checker = CheckerNode(connect(url), self.config.checker)
            self._spawn(self.checker.run())
        if self.config.wait_for_sync > 0:
            # A worker joining a running node must not answer REFUSED for zones it has not
            # read yet: it listens once it has them (or after the wait, from what it has).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.sync.synced.wait(), self.config.wait_for_sync)
        reuse = self.config.reuse_port or self.config.workers > 1
        self.listeners = await listen(self.config.dns, self.answerer, self.config.tcp, reuse)
        if self.config.workers > 1 and self.config.worker_command is not None:
            self._spawn(self._run_workers(url, self.listeners.addresses()))
        if self.config.http is not None:
            limits = self.config.http_limits
            self.http_runner = web.AppRunner(
                http.make_app(self), access_log=None, keepalive_timeout=limits.keepalive_timeout
            )
            await self.http_runner.setup()
            host, port = self.config.http
            self.http_site = GuardedSite(self.http_runner, host, port, limits, backlog=1024)
            await self.http_site.start()
        if self.config.parent_pid is None:
            self._write_pid()
        log.info(
            "started",
            dns=[format_endpoint(h, p) for h, p in self.listeners.addresses()],
            http=[format_endpoint(h, p) for h, p in self.http_addresses()],
            redis="embedded" if self.embedded else redacted(url),
            zones=zonefiles.describe(self.zones),
        )

    def _write_pid(self) -> None:
        """DATA/gslb.pid: this node's process, for `kill -HUP "$(cat data/gslb.pid)"`
        (a pattern for pkill also matches the shell that started the node, e.g. make run's,
        which a SIGHUP kills)."""
        path = self.config.data_dir / PID_FILE
        try:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{os.getpid()}\n")
        except OSError as e:
            log.warning("cannot write the pid file", file=str(path), error=str(e))
            return
        self.pid_file = path

    def _remove_pid(self) -> None:
        path = self.pid_file
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text().strip()) == os.getpid():
                path.unlink()

    async def _watch_parent(self, parent: int) -> None:
        # A worker whose node was killed outright must not go on answering alone.
        while os.getppid() == parent:  # noqa: ASYNC110 (no event tells of a parent's death)
            await asyncio.sleep(1.0)
        log.warning("the node that started this worker is gone: stopping", parent=parent)
        self.stopping.set()

    async def _run_workers(self, url: str, endpoints: list[tuple[str, int]]) -> None:
        """Keep workers 1..N-1 running (a worker that dies is started again) until stopped."""
        assert self.config.worker_command is not None
        command = self.config.worker_command
        procs = self._workers
        try:
            while True:
                for index in range(1, self.config.workers):
                    proc = procs.get(index)
                    if proc is not None and proc.returncode is None:
                        continue
                    if proc is not None:
                        log.error(
                            "dns worker exited, starting it again",
                            worker=index,
                            code=proc.returncode,
                        )
                    self.worker_stats.restarted(index)
                    read_end, write_end = os.pipe()
                    argv, extra = command(url, endpoints, index)
                    try:
                        procs[index] = await asyncio.create_subprocess_exec(
                            *argv,
                            "--stats-fd",
                            str(write_end),
                            env={**_worker_environment(url), **extra},
                            pass_fds=(write_end,),
                            # A node killed outright takes its workers along at once.
                            preexec_fn=die_with_parent,
                        )
                    finally:
                        os.close(write_end)
                    self._spawn(self.worker_stats.read(index, read_end))
                    log.info("dns worker started", worker=index, pid=procs[index].pid)
                await asyncio.sleep(1.0)
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()

    @functools.cached_property
    def node_id(self) -> str:
        """Fixed at the first heartbeat, which comes after the listeners are bound."""
        if self.config.node_id:
            return self.config.node_id
        endpoints = (self.listeners.addresses() if self.listeners else []) + self.http_addresses()
        first = format_endpoint(*endpoints[0]) if endpoints else "-"
        return f"{socket.gethostname()}/{first}"

    def heartbeat(self) -> tuple[str, dict[str, object]]:
        """What this process says of itself in gslb:nodes (for the dashboard)."""
        now = time.time()
        # The node speaks for its workers too: one row per node on the dashboard.
        by_process = {"0": self.answerer.queries}
        for index, line in sorted(self.worker_stats.latest.items()):
            by_process[str(index)] = int(line.get("queries", 0))
        queries = self.answerer.queries + self.worker_stats.totals().queries
        last_at, last_queries = self._last_beat
        qps = (queries - last_queries) / (now - last_at) if last_at and now > last_at else 0.0
        self._last_beat = (now, queries)
        roles = [
            role
            for role, on in (
                ("dns", bool(self.config.dns)),
                ("api", self.config.http is not None),
                ("checker", self.config.checker is not None),
            )
            if on
        ]
        return self.node_id, {
            "id": self.node_id,
            "region": self.config.region,
            "roles": roles,
            "dns": [format_endpoint(h, p) for h, p in self.listeners.addresses()]
            if self.listeners
            else [],
            "queries": queries,
            "qps": round(qps, 1),
            "workers": self.config.workers,
            "queries_by_worker": by_process,
            "version": self.answerer.snapshot.version,
            "started": self._started_at,
            "seen": now,
            "refused": self.refused,
        }

    def http_addresses(self) -> list[tuple[str, int]]:
        if self.http_runner is None:
            return []
        return [(str(a[0]), int(a[1])) for a in self.http_runner.addresses]

    async def stop(self) -> None:
        try:
            await self._stop_serving()
        finally:
            # Whatever went wrong above, the embedded server must not outlive its node.
            if self.embedded is not None:
                await self.embedded.stop()
            self._remove_pid()
        log.info("stopped", queries=self.answerer.queries)

    async def _stop_serving(self) -> None:
        if self.listeners is not None:
            await self.listeners.close()
        if self.api.hub is not None:
            await self.api.hub.close()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        await _cancel(list(self._tasks))
        if self.sync is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await asyncio.wait_for(self.sync.flush_tally(force=True), 1.0)
        if self.store is not None:
            with contextlib.suppress(Exception):
                # A node that stops cleanly leaves the dashboard's list at once.
                await asyncio.wait_for(self.store.redis.hdel(NODES, self.node_id), 1.0)
            with contextlib.suppress(Exception):
                await self.store.redis.aclose()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        if self.config.parent_pid is not None:
            self._spawn(self._watch_parent(self.config.parent_pid))
        if self.config.stats_fd is not None:
            self.answerer.answers.unreported = {}  # what the node has not been told yet
        try:
            await self.start()
            if self.config.stats_fd is not None:
                # Reports begin once the sockets are bound: a worker that reports can answer.
                self._spawn(send_reports(self.answerer, self.config.stats_fd))
            await self.stopping.wait()
        finally:
            await self.stop()


async def _cancel(tasks: list[asyncio.Task[object]]) -> None:
    """Cancel the tasks and wait for them, asking again those that go on: a cancellation
    that arrives inside a library call can be swallowed (seen with Python 3.11 and a Redis
    command in flight at shutdown), and a task that never ends must not hang the exit."""
    pending = {t for t in tasks if not t.done()}
    for _attempt in range(3):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=2.0)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" noise at exit
    if pending:
        log.warning("tasks still running at exit", tasks=[t.get_name() for t in pending])


def _worker_environment(url: str) -> dict[str, str]:
    """The node's environment for a worker, less its GSLB_* settings (the worker's command
    line says all it needs: the node's GSLB_HTTP must not open a second HTTP listener), plus
    the Redis URL (in the environment, where `ps` does not show its password)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSLB_")}
    env["GSLB_REDIS"] = url
    return env


def _gone(stored: dict[str, Meta], names: set[str], directory: Path) -> tuple[str, ...]:
    """The stored zones that came from a file of `directory` that no longer has them."""
    where = os.path.abspath(directory)
    return tuple(
        name
        for name, meta in stored.items()
        if meta.file is not None
        and os.path.dirname(os.path.abspath(meta.file)) == where
        and name not in names
    )


async def _write_file(
    view: ZoneView, zone: str, who: Who, checked: Checked, source: FileSource
) -> tuple[Write | None, Outcome]:
    return await write_document(view, zone, None, who, checked=checked, file=source)


async def _delete_zone(view: ZoneView, zone: str, who: Who) -> tuple[Write | None, Outcome]:
    return await write_document(view, zone, None, who)
