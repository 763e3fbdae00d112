"""Regression: a vote that changes while results are being written must not be decided in
the same flush (its result is not in Redis yet; the member came out "unknown")."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import redis

from gslb.common.redis import connect
from gslb.schema import HEALTH, Health, Result
from healthchecks.checker import CheckerConfig, CheckerNode, Vote
from tests.test_redis_connections import REDIS
from tests.test_redis_state import free_port, redis_ready, until


def result(vote: str) -> Result:
    now = time.time()
    return Result(vote, vote == "up", 0.01, None, now, now, now + 30)  # type: ignore[arg-type]


def test_a_vote_changing_during_the_write_waits_for_the_next_flush(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: redis_ready(port))

        async def run() -> None:
            node = CheckerNode(connect(f"redis://127.0.0.1:{port}/0"), CheckerConfig("c1"))
            node.wanted = {"z/p/a": {"default"}, "z/p/b": {"default"}}
            node.voted = {"z/p/a": {"default"}}
            node.votes[("z/p/a", "default")] = Vote("up")
            node.pending[("z/p/a", "default")] = result("up")
            node.undecided = {"z/p/a"}
            write = node._write

            async def write_while_b_changes(pending: dict[tuple[str, str], Result]) -> None:
                # What the probe loop of member b does while this write is in flight.
                node.voted["z/p/b"] = {"default"}
                node.pending[("z/p/b", "default")] = result("up")
                node.undecided.add("z/p/b")
                await write(pending)

            node._write = write_while_b_changes  # type: ignore[method-assign]
            await node.flush()
            client = redis.Redis(port=port)
            assert Health.from_json(client.hget(HEALTH, "z/p/a")).health == "up"
            assert client.hget(HEALTH, "z/p/b") is None, "b waits: its result is not written yet"
            node._write = write  # type: ignore[method-assign]
            await node.flush()
            assert Health.from_json(client.hget(HEALTH, "z/p/b")).health == "up"
            await node.redis.aclose()

        asyncio.run(run())
    finally:
        server.kill()
        server.wait(10)
