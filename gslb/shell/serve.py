"""A running node: zones, DNS listeners, the HTTP listener and Redis, each with one owner.

`Node.run()` starts everything in order, serves until SIGTERM or SIGINT, and stops everything
in reverse order. SIGHUP reloads the zone files: a directory that loads whole replaces the
snapshot in one assignment; one that does not is refused, logged with every reason, and the
node keeps answering from what it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from gslb import zonefiles
from gslb.core.location import Locator
from gslb.core.snapshot import Settings, Snapshot
from gslb.shell import http, logs
from gslb.shell.embedded_redis import EmbeddedRedis
from gslb.shell.transport import Answerer, Listeners, TcpLimits, format_endpoint, listen

log = logs.get("gslb")


@dataclass
class NodeConfig:
    zones_dir: Path
    dns: list[tuple[str, int]]
    http: tuple[str, int] | None = None
    redis_url: str | None = None
    data_dir: Path = Path("data")
    settings: Settings = field(default_factory=Settings)
    tcp: TcpLimits = field(default_factory=TcpLimits)
    locator: Locator | None = None


class Node:
    def __init__(self, config: NodeConfig, zones: dict[bytes, zonefiles.LoadedZone]) -> None:
        self.config = config
        self.zones = zones
        self.answerer = Answerer(
            Snapshot(1, zonefiles.zone_set(zones), config.settings, locator=config.locator)
        )
        self.embedded: EmbeddedRedis | None = None
        self.redis: aioredis.Redis | None = None
        self.listeners: Listeners | None = None
        self.http_runner: web.AppRunner | None = None
        self.stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._reloading = asyncio.Lock()

    async def reload(self) -> bool:
        """Load the zone directory again; keep the running zones if any file is refused.

        Files are read and compiled in a thread, so queries keep being answered meanwhile;
        the new snapshot then replaces the old one in a single assignment.
        """
        async with self._reloading:  # two quick SIGHUPs: the second reload sees the first's result
            try:
                zones = await asyncio.to_thread(
                    zonefiles.load_directory, self.config.zones_dir, self.zones
                )
            except zonefiles.ZoneLoadError as e:
                for error in e.errors:
                    log.error("zone refused, keeping the running zones", error=str(error))
                return False
            self.zones = zones
            old = self.answerer.snapshot
            self.answerer.snapshot = dataclasses.replace(
                old, version=old.version + 1, zones=zonefiles.zone_set(zones)
            )
            log.info("zones reloaded", version=old.version + 1, zones=zonefiles.describe(zones))
            return True

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def redis_alive(self) -> bool:
        if self.redis is None:
            return False
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 1.0))
        except Exception:
            return False

    async def start(self) -> None:
        url = self.config.redis_url
        if url is None:
            self.embedded = EmbeddedRedis(self.config.data_dir)
            await self.embedded.start()
            url = self.embedded.url
        self.redis = aioredis.Redis.from_url(url)
        if not await self.redis_alive():
            log.warning("redis not reachable; answering from the zone files", redis=url)
        self.listeners = await listen(self.config.dns, self.answerer, self.config.tcp)
        if self.config.http is not None:
            self.http_runner = web.AppRunner(http.make_app(self), access_log=None)
            await self.http_runner.setup()
            host, port = self.config.http
            await web.TCPSite(self.http_runner, host, port).start()
        log.info(
            "started",
            dns=[format_endpoint(h, p) for h, p in self.listeners.addresses()],
            http=[format_endpoint(h, p) for h, p in self.http_addresses()],
            zones=zonefiles.describe(self.zones),
        )

    def http_addresses(self) -> list[tuple[str, int]]:
        if self.http_runner is None:
            return []
        return [(str(a[0]), int(a[1])) for a in self.http_runner.addresses]

    async def stop(self) -> None:
        if self.listeners is not None:
            await self.listeners.close()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        if self.embedded is not None:
            await self.embedded.stop()
        log.info("stopped", queries=self.answerer.queries)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        try:
            await self.start()
            await self.stopping.wait()
        finally:
            await self.stop()
